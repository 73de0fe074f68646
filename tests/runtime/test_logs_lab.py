"""Logs on real lab nodes: an app's output on the console, in journald and at the
collector (a real XML-RPC server in the node); syslog when journald is stopped."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, console, created, om

pytestmark = pytest.mark.lab
SERVER = str(Path(__file__).resolve().parents[1] / "collector_server.py")
PORT = 8730
APPFAIL = """\
[DEFAULT]
nodes = n1

[app#0]
start = sh -c 'echo out; echo err >&2; exit 1'
"""
FLAG = "[DEFAULT]\nnodes = n1\n\n[fs#1]\ntype = flag\n"
SYSLOG_LISTENER = """\
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open("/run/ready", "w").close()
while True:
    data = s.recv(65536)
    with open("/run/syslog.txt", "ab") as out:
        out.write(data + b"\\n")
"""


def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def calls(node: Node) -> list[tuple[str, str, list[object]]]:
    path = node.path("/run/omct/calls.jsonl")
    return [tuple(json.loads(ln)) for ln in path.read_text().splitlines()] if path.exists() else []  # type: ignore[misc]


@pytest.fixture
def collector(lab: Lab) -> Iterator[Node]:
    """n1 with node.conf naming a collector served inside n1 (a transient unit)."""
    n1 = lab.node("n1")
    n1.run(["rm", "-f", "/run/omct/calls.jsonl"], check=False)
    n1.run(["mkdir", "-p", "/run/omct"])
    n1.run(["systemd-run", "--unit=omct-collector", "--collect", sys.executable, SERVER,
            str(PORT), "normal", "/run/omct/calls.jsonl"])  # fmt: skip
    n1.write_file("/etc/opensvc/node.conf", f"[node]\ndbopensvc = http://127.0.0.1:{PORT}/\n")
    until(lambda: n1.run(["ss", "-Hltn", f"sport = :{PORT}"]).stdout.strip() != "")
    try:
        yield n1
    finally:
        n1.run(["rm", "-f", "/etc/opensvc/node.conf"])
        n1.run(["systemctl", "stop", "omct-collector"], check=False)


def test_a_failed_app_shows_its_output_everywhere(collector: Node) -> None:
    """`start = sh -c 'echo out; echo err >&2; exit 1'`: the console shows the run: line,
    `out` (INF), `err` (WRN), then the failure; journalctl OBJ_PATH= SID= has the same
    lines (with CMD and CMD_PID); the collector's res_action_batch carries them."""
    n1 = collector
    with created(n1, "appfail", APPFAIL):
        proc = om(n1, "appfail", "instance", "start")
        assert proc.returncode == 1
        lines = console(proc)
        run = next(i for i, ln in enumerate(lines) if "app#0: run: " in ln)
        assert "echo out; echo err >&2; exit 1" in lines[run]  # as the unit runs it
        # stdout and stderr are two journald streams: their lines keep journald's order of
        # reception, which the machine's load decides (no order asserted between them).
        assert sorted(lines[run + 1 : run + 3]) == [
            "INF appfail: app#0: out",
            "WRN appfail: app#0: err",
        ]
        assert lines[run + 3].startswith("ERR appfail: app#0: start failed: job failed")
        sid = proc.stdout.split("sid ", 1)[1].split(")", 1)[0]
        n1.run(["journalctl", "--sync"])
        found = n1.run(["journalctl", "-o", "json", "OBJ_PATH=appfail", f"SID={sid}"]).stdout
        records = [json.loads(ln) for ln in found.splitlines()]
        out = [r for r in records if r["MESSAGE"] in ("app#0: out", "app#0: err")]
        got = sorted((r["MESSAGE"], r["PRIORITY"]) for r in out)
        assert got == [("app#0: err", "4"), ("app#0: out", "6")]
        assert "echo out; echo err >&2; exit 1" in out[0]["CMD"]
        assert out[0]["CMD_PID"] == out[1]["CMD_PID"] != ""
        assert all(r["VERSION"] and r["EID"] and r["CWD"] for r in records)
        assert om(n1, "appfail", "update").returncode == 0  # Sync All: a session too
        until(lambda: sum(m == "end_action" for _, m, _ in calls(n1)) == 2)
        actions = [args[1][1] for _, m, args in calls(n1) if m == "begin_action"]  # type: ignore[index]
        assert actions == ["start", "sync update"]
        batch = next(args for _, m, args in calls(n1) if m == "res_action_batch")
        rows = {row[5]: row for row in batch[1]}  # type: ignore[attr-defined]
        # stdout and stderr reach the journal on two streams: either may come first.
        logged = rows["app#0"][9].splitlines()
        assert "out" in logged and "err" in logged and rows["app#0"][10] == "err"
        assert batch[2][0] and batch[2][1] == "n1"  # type: ignore[index]


def test_an_app_that_exits_before_journald_reads_it_still_shows_its_output(lab: Lab) -> None:
    """journald paused while the app runs (a loaded machine's journald lags behind): the
    app has exited when journald takes its streams in, so it cannot tell their unit
    from the pid's cgroup and the lines carry ``_PID`` only. The action still finds
    them, by the pids systemd kept of the unit's commands: both lines, then the failure."""
    n1 = lab.node("n1")
    n1.run(["mkdir", "-p", "/run/omct"])
    with created(n1, "applag", APPFAIL):
        script = (f"pkill -STOP -x systemd-journal && (sleep 1; pkill -CONT -x systemd-journal) &"
                  f" {OM} applag instance start")  # fmt: skip
        proc = n1.run(["sh", "-c", script], check=False, timeout=120)
        n1.run(["pkill", "-CONT", "-x", "systemd-journal"], check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = console(proc)
        run = next(i for i, ln in enumerate(lines) if "app#0: run: " in ln)
        assert sorted(lines[run + 1 : run + 3]) == [
            "INF applag: app#0: out",
            "WRN applag: app#0: err",
        ], lines
        assert lines[run + 3].startswith("ERR applag: app#0: start failed: job failed")
        found = n1.run(["journalctl", "-o", "json", "MESSAGE=out", "SYSLOG_IDENTIFIER=sh"]).stdout
        last = json.loads(found.splitlines()[-1])
        assert "_SYSTEMD_UNIT" not in last  # the case this test is about did happen


def test_without_journald_the_action_logs_to_syslog(lab_factory: Callable[..., Lab]) -> None:
    """journald stopped, a listener on /dev/log: the action's lines (om's own and the
    driver's) arrive there, RFC 3164 with their fields, the console unchanged."""
    node = lab_factory(nodes=1).node("n1")
    units = ["systemd-journald.service", "systemd-journald.socket",
             "systemd-journald-dev-log.socket", "systemd-journald-audit.socket"]  # fmt: skip
    node.run(["systemctl", "stop", *units], check=False)
    node.run(["systemctl", "mask", "--runtime", *units], check=False)
    node.run(["rm", "-f", "/dev/log", "/run/systemd/journal/socket"])
    listener = SYSLOG_LISTENER
    node.run(["systemd-run", "--unit=omct-syslog", sys.executable, "-c", listener])
    until(lambda: node.path("/run/ready").exists())
    with created(node, "sysl", FLAG):
        proc = om(node, "sysl", "instance", "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "INF sysl: fs#1: install flag file" in "\n".join(console(proc))
        sid = proc.stdout.split("sid ", 1)[1].split(")", 1)[0]
        until(lambda: b"<<< done start" in node.path("/run/syslog.txt").read_bytes())
        got = [ln for ln in node.path("/run/syslog.txt").read_text().splitlines() if sid in ln]
        opened = next(ln for ln in got if ">>> do start" in ln)
        assert opened.startswith(f"<{3 * 8 + 6}>") and " om[" in opened
        for field in ("OBJ_PATH=sysl", f"SID={sid}", "ACTION=start", "ORIGIN=user",
                      "NODE=n1", "VERSION=", "EID=", "CWD=", "OBJ_KIND=svc"):  # fmt: skip
            assert field in opened
        flag = [ln for ln in got if "fs#1: install flag file" in ln]
        assert len(flag) == 1 and "RID=fs#1" in flag[0]  # the driver's, sent once
