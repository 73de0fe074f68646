"""In a real systemd node: an emitted app unit runs exactly the config's argv and env.

The offline proof (test_injection.py) reads systemd's parse; this one starts the
unit under a booted systemd (PID 1 of a lab node) and lets the process itself
report the argv, environment and cgroup it got.
"""

from __future__ import annotations

import json

from omc.compiler import ir
from omc.compiler.contract import names
from omc.runtime.lab.api import Lab

from .test_injection import HOSTILE

SPAN = ir.SourceSpan(file="/etc/opensvc/inj.conf", line=1, column=1)
REPORT = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[1:], "
    "'env': {k: v for k, v in os.environ.items() if k.startswith(('V', 'OPENSVC_'))}, "
    "'cgroup': open('/proc/self/cgroup').read()}, open(os.environ['OUT'], 'w'))"
)


def test_hostile_values_reach_the_process_literally(lab: Lab, unit_name: str) -> None:
    """argv, environment and cgroup seen by the started process are exactly the config's."""
    from omc.compiler.emit import emit

    node = lab.node("n1")
    out = f"/run/{unit_name}.json"
    path = ir.ObjectPath(name=unit_name)
    env = (*((f"V{i}", v) for i, v in enumerate(HOSTILE)), ("OUT", out))
    res = ir.AppResource(
        rid="app#0",
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=("/usr/bin/python3", "-c", REPORT, *HOSTILE),
        environment=env,
    )
    service = ir.Service(
        path=path, id="id%n $HOME", source="/etc/opensvc/inj.conf", node="n1", resources=(res,)
    )
    units = emit(service, om="/bin/true")
    for name, text in units.items():
        node.write_file(f"/run/systemd/system/{name}", text)
    unit = names.resource_unit(path, "app#0", "service")
    try:
        node.run(["systemctl", "daemon-reload"])
        node.run(["systemctl", "start", unit])
        report = json.loads(node.read_file(out))
    finally:
        node.run(["systemctl", "stop", names.target(path), unit], check=False)
        for name in units:
            node.path(f"/run/systemd/system/{name}").unlink(missing_ok=True)
        node.path(out).unlink(missing_ok=True)
        node.run(["systemctl", "daemon-reload"], check=False)
    assert report["argv"] == HOSTILE
    for i, value in enumerate(HOSTILE):
        assert report["env"][f"V{i}"] == value
    assert report["env"]["OPENSVC_ID"] == "id%n $HOME"
    assert report["env"]["OPENSVC_RID"] == "app#0"
    assert f"{names.cgroup_path(path, 'app#0')}/{unit}" in report["cgroup"]
