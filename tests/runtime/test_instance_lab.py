"""Instance actions on real systemd, in a lab node: the seed's logs, rollback, selection, status."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

OM = str(Path(sys.executable).parent / "om")
_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ")
_SID = re.compile(r"sid [0-9a-f-]{36}")
_DURATION = re.compile(r" in [0-9.]+(ns|µs|ms|s|m[0-9.]+s)")


def om(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return node.run([OM, *args], check=False, timeout=120)


def console(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Console lines with timestamps, sids, durations and the om path normalised."""
    lines = []
    for raw in proc.stdout.splitlines():
        assert _STAMP.match(raw), raw
        line = _SID.sub("sid <SID>", _STAMP.sub("", raw))
        lines.append(_DURATION.sub(" in <DUR>", line).replace(OM, "<OM>"))
    return lines


def status(node: Node, path: str) -> dict[str, str]:
    """rid → status, from ``print status --format json``; plus ``avail``."""
    proc = om(node, path, "print", "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    inst = next(iter(data["instances"].values()))
    found = {rid: r["status"] for rid, r in inst["resources"].items()}
    return {"avail": data["avail"], **found}


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


@contextlib.contextmanager
def created(node: Node, path: str, config: str) -> Iterator[str]:
    """An object created from ``config`` for the test, shut down and deleted after it.

    The config file goes to the node's private /run (its /root is the host's)."""
    node.write_file(f"/run/omct/{path}.conf", config)
    proc = om(node, path, "create", "--config", f"/run/omct/{path}.conf")
    assert proc.returncode == 0, proc.stderr
    try:
        yield path
    finally:
        om(node, path, "instance", "shutdown")
        om(node, path, "delete")


# The seed's svc0, as shipped in examples/ (the demo runs the same file).
SVC0 = (Path(__file__).resolve().parents[2] / "examples" / "svc0.conf").read_text()


@pytest.fixture
def svc0(n1: Node) -> Iterator[str]:
    with created(n1, "svc0", SVC0) as path:
        yield path


def test_seed_start_and_stop_reproduce_line_for_line(n1: Node, svc0: str) -> None:
    """`om svc0 instance start|stop` print the seed's lines (timestamps, sid, durations aside)."""
    pg = "/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice"
    start = om(n1, "svc0", "instance", "start")
    assert start.returncode == 0, start.stdout + start.stderr
    assert console(start) == [
        "INF svc0: >>> do start [om svc0 instance start] (origin user, sid <SID>)",
        "INF svc0: fs#1: install flag file /dev/shm/opensvc/svc/svc0/fs#1.flag",
        "INF svc0: app#0: applied pg /opensvc.slice/opensvc-svc.svc0.slice",
        f"INF svc0: app#0: applied pg {pg}",
        f"INF svc0: app#0: run: <OM> exec --pg {pg} -- touch /tmp/svc0.root.svc.default",
        "INF svc0: <<< done start [om svc0 instance start] in <DUR>, instance status is now up",
    ]
    stop = om(n1, "svc0", "instance", "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert console(stop) == [
        "INF svc0: >>> do stop [om svc0 instance stop] (origin user, sid <SID>)",
        f"INF svc0: app#0: run: <OM> exec --pg {pg} -- rm -f /tmp/svc0.root.svc.default",
        "INF svc0: fs#1: uninstall flag file /dev/shm/opensvc/svc/svc0/fs#1.flag",
        "INF svc0: <<< done stop [om svc0 instance stop] in <DUR>, instance status is now down",
    ]


def test_action_records_reach_journald(n1: Node, svc0: str) -> None:
    """The same records land in journald with OBJ_PATH and the action's SID."""
    start = om(n1, "svc0", "instance", "start")
    sid = re.search(r"sid ([0-9a-f-]{36})", start.stdout)
    assert sid is not None
    n1.run(["journalctl", "--sync"], check=False)
    found = n1.run(["journalctl", "-o", "cat", "OBJ_PATH=svc0", f"SID={sid.group(1)}"]).stdout
    assert found.count("fs#1: install flag file /dev/shm/opensvc/svc/svc0/fs#1.flag") == 1
    assert "<<< done start [om svc0 instance start]" in found
    logs = om(n1, "svc0", "logs").stdout
    assert "INF svc0: fs#1: install flag file /dev/shm/opensvc/svc/svc0/fs#1.flag" in logs


def test_restart_when_up_is_idempotent(n1: Node, svc0: str) -> None:
    """A second start logs "already up" per resource and runs no command."""
    assert om(n1, "svc0", "instance", "start").returncode == 0
    again = om(n1, "svc0", "instance", "start")
    assert again.returncode == 0
    lines = console(again)
    assert "INF svc0: fs#1: already up" in lines
    assert "INF svc0: app#0: already up" in lines
    assert not [ln for ln in lines if "run:" in ln or "install flag" in ln]
    refused = om(n1, "svc0", "delete")
    assert refused.returncode == 1 and "units are active" in refused.stderr


def test_systemctl_start_of_the_target_is_seen_by_print_status(n1: Node, svc0: str) -> None:
    """Starting the target with systemctl directly brings the instance up for om too."""
    n1.run(["systemctl", "start", "opensvc-svc.svc0.target"])
    assert status(n1, "svc0") == {"avail": "up", "fs#1": "up", "app#0": "up"}
    # `systemctl stop <target>` returns before the PartOf= stop jobs end: name the units too.
    units = ["opensvc-svc.svc0-app.0.service", "opensvc-svc.svc0-fs.1.service"]
    n1.run(["systemctl", "stop", "opensvc-svc.svc0.target", *units])
    assert status(n1, "svc0")["avail"] == "down"


def test_deleted_flag_file_is_seen_as_down(n1: Node, svc0: str) -> None:
    """Drift: a flag file deleted by hand makes fs#1 down; start repairs it."""
    assert om(n1, "svc0", "instance", "start").returncode == 0
    n1.run(["rm", "-f", "/dev/shm/opensvc/svc/svc0/fs#1.flag"])
    assert status(n1, "svc0")["fs#1"] == "down"
    assert om(n1, "svc0", "instance", "start").returncode == 0
    assert status(n1, "svc0")["fs#1"] == "up"


FAILING = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0101

[fs#1]
type = flag

[fs#2]
type = flag

[app#bad]
start = /bin/false
"""


@pytest.fixture
def failing(n1: Node) -> Iterator[str]:
    with created(n1, "failing", FAILING) as path:
        yield path


def test_failed_start_rolls_back_exactly_what_it_started(n1: Node, failing: str) -> None:
    """A failing app fails the start; the rollback stops what this action started, only."""
    assert om(n1, failing, "instance", "start", "--rid", "fs#1").returncode == 0
    proc = om(n1, failing, "instance", "start")
    assert proc.returncode == 1
    lines = console(proc)
    assert "INF failing: rollback" in lines
    assert "INF failing: fs#2: uninstall flag file /dev/shm/opensvc/svc/failing/fs#2.flag" in lines
    assert status(n1, failing) == {"avail": "warn", "fs#1": "up", "fs#2": "down", "app#bad": "down"}


def test_disable_rollback_leaves_resources_up(n1: Node, failing: str) -> None:
    """With --disable-rollback the started resources stay up after the failure."""
    proc = om(n1, failing, "instance", "start", "--disable-rollback")
    assert proc.returncode == 1
    assert "INF failing: rollback" not in console(proc)
    assert status(n1, failing) == {"avail": "warn", "fs#1": "up", "fs#2": "up", "app#bad": "down"}


SELECT = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0102

[fs#a]
type = flag
tags = a b

[fs#b]
type = flag
tags = a

[fs#c]
type = flag
tags = c
subset = s1

[fs#d]
type = flag
subset = s1

[app#x]
start = /bin/true
tags = b
"""


@pytest.fixture(scope="module")
def selecting(lab: Lab) -> Iterator[str]:
    with created(lab.node("n1"), "selecting", SELECT) as path:
        yield path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--rid", "fs#a"), {"fs#a"}),
        (("--rid", "fs"), {"fs#a", "fs#b", "fs#c", "fs#d"}),
        (("--rid", "fs#a,app#x"), {"fs#a", "app#x"}),
        (("--rid", "fs#[cd]"), {"fs#c", "fs#d"}),
        (("--tag", "a"), {"fs#a", "fs#b"}),
        (("--tag", "a+b"), {"fs#a"}),
        (("--tag", "a+b,c"), {"fs#a", "fs#c"}),
        (("--subset", "s1"), {"fs#c", "fs#d"}),
        (("--rid", "app", "--tag", "c"), {"app#x", "fs#c"}),
    ],
)
def test_selection_acts_on_exactly_the_selected(
    lab: Lab, selecting: str, flags: tuple[str, ...], expected: set[str]
) -> None:
    """Each --rid/--tag/--subset start brings up exactly the expected resources."""
    node = lab.node("n1")
    proc = om(node, selecting, "instance", "start", *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = status(node, selecting)
    up = {rid for rid, st in got.items() if rid != "avail" and st == "up"}
    stop = om(node, selecting, "instance", "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert up == expected, proc.stdout


STANDBY = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0103

[fs#sb]
type = flag
standby = true

[fs#1]
type = flag
"""


def test_standby_stays_up_after_stop_and_force_stops_it(n1: Node) -> None:
    """A standby resource is started by start, left up by stop, stopped by stop --force."""
    with created(n1, "standby", STANDBY) as path:
        assert om(n1, path, "instance", "start").returncode == 0
        assert status(n1, path)["fs#sb"] == "stdby up"
        assert om(n1, path, "instance", "stop").returncode == 0
        assert status(n1, path) == {"avail": "stdby up", "fs#sb": "stdby up", "fs#1": "down"}
        assert om(n1, path, "instance", "stop", "--force").returncode == 0
        assert status(n1, path)["fs#sb"] == "stdby down"


SIMPLE = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0104

[app#sleeper]
type = simple
start = /bin/sleep 1000
"""


def test_killed_simple_app_is_seen_down(n1: Node) -> None:
    """Killing an app.simple process makes the resource and the instance down."""
    with created(n1, "simple", SIMPLE) as path:
        assert om(n1, path, "instance", "start").returncode == 0
        assert status(n1, path)["app#sleeper"] == "up"
        n1.run(["systemctl", "kill", "--signal=KILL", "opensvc-svc.simple-app.sleeper.service"])
        assert status(n1, path) == {"avail": "down", "app#sleeper": "down"}


def test_dry_run_prints_the_plan_and_changes_nothing(n1: Node, svc0: str) -> None:
    """--dry-run prints every step and leaves the instance down."""
    proc = om(n1, svc0, "instance", "start", "--dry-run")
    assert proc.returncode == 0
    assert "fs#1" in proc.stdout and "start" in proc.stdout
    assert status(n1, svc0)["avail"] == "down"


def test_instance_status_exits_with_the_avail_code(n1: Node, svc0: str) -> None:
    """instance status exits 1 when down and 0 when up (v2 encoding)."""
    assert om(n1, svc0, "instance", "status").returncode == 1
    om(n1, svc0, "instance", "start")
    assert om(n1, svc0, "instance", "status").returncode == 0


def test_unknown_object_exits_2(n1: Node) -> None:
    """An exact path that does not exist is 'object not found' (exit 2), no traceback."""
    proc = om(n1, "nosuchsvc", "instance", "start")
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr


TRIGGERS = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0105

[fs#1]
type = flag
post_start = /bin/echo hello from post

[fs#2]
type = flag
blocking_pre_start = /bin/sh -c 'exit {env.code}'

[env]
code = 0
"""


def test_triggers_run_and_blocking_pre_failure_aborts(n1: Node) -> None:
    """Triggers are logged with their output; a failing blocking pre trigger aborts the start."""
    with created(n1, "trig", TRIGGERS) as path:
        proc = om(n1, path, "instance", "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = console(proc)
        assert "INF trig: fs#1: trigger non-blocking post start: /bin/echo hello from post" in lines
        assert "INF trig: fs#1: hello from post" in lines
        assert om(n1, path, "instance", "stop").returncode == 0
        n1.write_file(f"/run/omct/{path}.conf", TRIGGERS.replace("code = 0", "code = 3"))
        assert om(n1, path, "create", "--config", f"/run/omct/{path}.conf").returncode == 0
        failed = om(n1, path, "instance", "start")
        assert failed.returncode == 1
        assert status(n1, path) == {"avail": "down", "fs#1": "down", "fs#2": "down"}


WEB = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0106
orchestrate = ha

[ip#0]
ipname = 10.99.7.10
netmask = 24
dev = eth0

[fs#0]
type = ext4
dev = /var/lib/webfo/disk0.img
mnt = /srv/webfo

[app#web]
type = simple
start = {env.server}

[env]
server = /usr/bin/python3 -m http.server --directory /srv/webfo 8080
"""


def _addresses(node: Node) -> str:
    return node.run(["ip", "-br", "addr", "show", "eth0"]).stdout


def _mounted(node: Node) -> bool:
    return node.run(["findmnt", "/srv/webfo"], check=False).returncode == 0


@pytest.fixture
def webfo(lab: Lab) -> Iterator[tuple[Node, str]]:
    node = lab.node("n2")
    node.run(["mkdir", "-p", "/var/lib/webfo"])
    node.run(["truncate", "-s", "64M", "/var/lib/webfo/disk0.img"])
    node.run(["mkfs.ext4", "-q", "-F", "/var/lib/webfo/disk0.img"])
    with created(node, "webfo", WEB) as path:
        yield node, path


def test_failover_web_service_start_stop_and_drift(webfo: tuple[Node, str]) -> None:
    """The address appears and goes away, the loop-backed ext4 mounts and unmounts."""
    node, path = webfo
    assert om(node, path, "instance", "start").returncode == 0
    assert "10.99.7.10/24" in _addresses(node)
    assert _mounted(node)
    assert status(node, path) == {"avail": "up", "ip#0": "up", "fs#0": "up", "app#web": "up"}
    node.run(["ip", "addr", "del", "10.99.7.10/24", "dev", "eth0"])
    assert status(node, path)["ip#0"] == "down"
    assert om(node, path, "instance", "start").returncode == 0
    assert "10.99.7.10/24" in _addresses(node)
    stop = om(node, path, "instance", "stop")
    assert stop.returncode == 0
    assert "INF webfo: instance frozen" in console(stop)
    assert "10.99.7.10/24" not in _addresses(node)
    assert not _mounted(node)
    assert om(node, path, "instance", "unfreeze").returncode == 0


@pytest.mark.parametrize(("flags", "left_up"), [((), False), (("--disable-rollback",), True)])
def test_failing_app_rolls_back_ip_and_fs(
    webfo: tuple[Node, str], flags: tuple[str, ...], left_up: bool
) -> None:
    """A failing app fails the start; rollback removes the address and unmounts, unless disabled."""
    node, path = webfo
    node.write_file(
        f"/run/omct/{path}.conf", WEB.replace("server = /usr", "server = /bin/false /usr")
    )
    assert om(node, path, "create", "--config", f"/run/omct/{path}.conf").returncode == 0
    proc = om(node, path, "instance", "start", *flags)
    assert proc.returncode == 1
    assert ("10.99.7.10/24" in _addresses(node)) is left_up
    assert _mounted(node) is left_up
    expected = "up" if left_up else "down"
    assert status(node, path) == {"avail": "warn" if left_up else "down", "ip#0": expected,
                                  "fs#0": expected, "app#web": "down"}  # fmt: skip


TASKS = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0107

[task#hello]
command = /bin/echo hello task

[task#bad]
command = /bin/false
"""


def test_run_executes_tasks_and_reports_failures(n1: Node) -> None:
    """instance run runs the selected task (its output is logged); a failing task exits 1."""
    with created(n1, "tsk", TASKS) as path:
        ok = om(n1, path, "instance", "run", "--rid", "task#hello")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "INF tsk: task#hello: hello task" in console(ok)
        assert om(n1, path, "instance", "run", "--rid", "task#bad").returncode == 1


def test_address_alive_elsewhere_vetoes_the_start(lab: Lab, webfo: tuple[Node, str]) -> None:
    """Abort phase: the service address answering on another node aborts before anything starts."""
    node, path = webfo
    other = lab.node("n1")
    other.run(["ip", "addr", "add", "10.99.7.10/24", "dev", "eth0"])
    try:
        proc = om(node, path, "instance", "start")
    finally:
        other.run(["ip", "addr", "del", "10.99.7.10/24", "dev", "eth0"])
    assert proc.returncode == 1
    assert "ERR webfo: abort start: ip#0: 10.99.7.10 is alive" in console(proc)
    assert not _mounted(node)
    assert status(node, path)["avail"] == "down"


def test_broken_config_keeps_last_good_units(n1: Node, svc0: str) -> None:
    """An edited config with an error fails the action with the diagnostic; units stay."""
    n1.write_file("/etc/opensvc/svc0.conf", SVC0 + "\n[fs#2]\ntype = flag\nbogus = 1\n")
    proc = om(n1, "svc0", "instance", "start")
    assert proc.returncode == 1
    line = SVC0.count("\n") + 4  # the appended blank line, [fs#2], type, then bogus
    expected = f"/etc/opensvc/svc0.conf:{line}:1: error: unknown keyword 'bogus' in [fs#2]"
    assert proc.stderr.startswith(expected)
    assert "Traceback" not in proc.stderr
    assert status(n1, "svc0") == {"avail": "down", "fs#1": "down", "app#0": "down"}
    n1.write_file("/etc/opensvc/svc0.conf", SVC0 + "\n[fs#2]\ntype = flag\n")
    assert om(n1, "svc0", "instance", "start").returncode == 0
    assert status(n1, "svc0") == {"avail": "up", "fs#1": "up", "app#0": "up", "fs#2": "up"}


def test_config_edit_installs_a_valid_edit(n1: Node, svc0: str) -> None:
    """config edit runs $EDITOR on a copy; a valid result is saved and its units installed."""
    editor = "EDITOR=sed -i -e '$a[fs#9]' -e '$atype = flag'"
    proc = n1.run(["env", editor, OM, "svc0", "config", "edit"], check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[fs#9]" in n1.read_file("/etc/opensvc/svc0.conf")
    listed = om(n1, "svc0", "resource", "ls").stdout
    assert "fs#9   fs.flag      opensvc-svc.svc0-fs.9.service" in listed
    bad = n1.run(["env", "EDITOR=sed -i -e '$abogus = 1'", OM, "svc0", "config", "edit"],
                 check=False)  # fmt: skip
    assert bad.returncode == 1
    assert "bogus" not in n1.read_file("/etc/opensvc/svc0.conf")


OPTIONAL = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0108

[fs#1]
type = flag

[app#opt]
start = /bin/false
optional = true

[fs#off]
type = flag
disable = true
"""


def test_optional_failure_is_logged_not_fatal_and_disabled_is_skipped(n1: Node) -> None:
    """An optional resource's failure is a warning; a disabled resource is never started."""
    with created(n1, "opt", OPTIONAL) as path:
        proc = om(n1, path, "instance", "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [ln for ln in console(proc) if ln.startswith("WRN opt: app#opt: start failed")]
        got = status(n1, path)
        assert (got["avail"], got["fs#1"], got["app#opt"], got["fs#off"]) == (
            "up", "up", "down", "n/a")  # fmt: skip


def test_delete_leaves_no_failed_unit_behind(n1: Node) -> None:
    """A deleted object's failed units do not linger "not-found failed" (node degraded)."""
    with created(n1, "optdel", OPTIONAL.replace("2a0108", "2a0118")) as path:
        assert om(n1, path, "instance", "start").returncode == 0
        failed = n1.run(["systemctl", "--failed", "--plain", "--no-legend"]).stdout
        assert "opensvc-svc.optdel-app.opt.service" in failed
    failed = n1.run(["systemctl", "--failed", "--plain", "--no-legend"]).stdout
    assert "optdel" not in failed


def test_a_start_clears_the_start_limit_of_an_app_that_crashed(n1: Node) -> None:
    """``restart = 1`` is ``StartLimitBurst=2`` within 10 minutes: systemd restarts the app
    once, then gives up (the unit failed, "Start request repeated too quickly"). A start of
    the object (a user's, the daemon's orchestration) clears that limit first, as
    ``systemctl reset-failed`` does; it was refused for the rest of the window (the chaos
    run saw a flex object stay below its target, its start failing on the only node left).
    A start of the resource alone (``--rid``, the daemon's restarts) keeps the limit: it is
    what ``restart`` bounds (test_ha_lab's monitor_action switch)."""
    unit = "opensvc-svc.startlim-app.0.service"
    config = "[app#0]\ntype = simple\nstart = sleep 600\nrestart = 1\nrestart_delay = 100ms\n"
    with created(n1, "startlim", config) as path:
        assert om(n1, path, "instance", "start").returncode == 0
        for _ in range(20):  # killed until systemd stops restarting it
            n1.run(["systemctl", "kill", "--signal=SIGKILL", unit], check=False)
            time.sleep(0.5)
            if n1.run(["systemctl", "is-failed", "--quiet", unit], check=False).returncode == 0:
                break
        assert n1.run(["systemctl", "is-failed", "--quiet", unit], check=False).returncode == 0
        assert om(n1, path, "instance", "start", "--rid", "app#0").returncode != 0
        proc = om(n1, path, "instance", "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert status(n1, path)["avail"] == "up"
