"""``omc-generator`` under a real PID 1: a lab node's systemd runs it on daemon-reload."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from omc.runtime.lab.api import Lab, Node

CONFIG = """[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-000000000042

[app#0]
start = /bin/touch /tmp/gensvc.started
stop = /bin/rm -f /tmp/gensvc.started
"""
BROKEN = CONFIG.replace("start =", "strat =")
TARGET = "opensvc-svc.gensvc.target"
APP = "opensvc-svc.gensvc-app.0.service"


def show(node: Node, prop: str) -> str:
    return node.run(["systemctl", "show", "-p", prop, "--value", TARGET]).stdout.strip()


def test_node_systemd_runs_the_generator_starts_its_units_and_keeps_them_when_broken(
    lab_factory: Callable[..., Lab],
) -> None:
    """daemon-reload in a node runs omc-generator; the target starts the app; a typo later
    keeps the last good units loaded (the service does not vanish)."""
    node = lab_factory(nodes=1).node("n1")
    omc = Path(sys.executable).parent / "omc"
    node.run(["mkdir", "-p", "/etc/systemd/system-generators"])
    node.run(["ln", "-sfn", str(omc), "/etc/systemd/system-generators/omc-generator"])
    node.write_file("/etc/opensvc/gensvc.conf", CONFIG)
    node.run(["systemctl", "daemon-reload"])
    assert show(node, "LoadState") == "loaded"
    assert show(node, "FragmentPath") == f"/run/systemd/generator/{TARGET}"
    node.run(["systemctl", "start", TARGET])
    assert show(node, "ActiveState") == "active"
    assert node.path("/tmp/gensvc.started").exists()

    node.write_file("/etc/opensvc/gensvc.conf", BROKEN)
    node.run(["systemctl", "daemon-reload"])
    assert show(node, "LoadState") == "loaded"
    assert show(node, "ActiveState") == "active"
    assert node.path(f"/run/systemd/generator/{APP}").is_file()
    # The target stops first (it is ordered after its resources), so `systemctl stop`
    # of the target alone returns before PartOf= has stopped the app: name both.
    node.run(["systemctl", "stop", TARGET, APP])
    assert not node.path("/tmp/gensvc.started").exists()
