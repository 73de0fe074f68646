"""The node executor in a lab node: who runs the commands, the fallback, cgroups, signals."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, console, created, om

FLAG_APP = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0a01

[fs#1]
type = flag

[app#0]
start = touch /run/omct/agtsvc.up
stop = rm -f /run/omct/agtsvc.up
"""
TASKS = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0a02

[task#cg]
command = /bin/sh -c "cat /proc/self/cgroup > /run/omct/agttask.cgroup"

[task#slow]
command = /bin/sleep 31.7

[task#umask]
command = /bin/sh -c "(umask; ulimit -n; nice; cat /proc/self/oom_score_adj) >/run/omct/agt.ps"
"""


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


def records(node: Node, *matches: str) -> list[dict[str, str]]:
    node.run(["journalctl", "--sync"], check=False)
    out = node.run(["journalctl", "-o", "json", "--no-pager", *matches]).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def served(node: Node) -> int:
    """How many commands the node's executor handed to a worker (`om executor status`)."""
    out = om(node, "executor", "status").stdout
    assert "served" in out, out
    return int(out.rsplit("served", 1)[1])


def sid_of(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.split("sid ", 1)[1].split(")", 1)[0]


@contextlib.contextmanager
def agent_stopped(node: Node) -> Iterator[None]:
    node.run(["systemctl", "stop", "omc-executor.service"])
    try:
        yield
    finally:
        node.run(["systemctl", "start", "omc-executor.service"])


def test_the_agent_runs_on_every_node(n1: Node) -> None:
    """Lab nodes run omc-executor.service, answering on its socket."""
    assert n1.run(["systemctl", "is-active", "omc-executor.service"]).stdout.strip() == "active"
    assert om(n1, "executor", "status").returncode == 0


def test_actions_and_drivers_run_in_agent_workers(n1: Node) -> None:
    """`om … instance start` and the fs#1 unit's driver both went to executor workers;
    `journalctl -u <resource unit>` still finds the driver's record."""
    with created(n1, "agtsvc", FLAG_APP):
        before = served(n1)
        start = om(n1, "agtsvc", "instance", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        assert served(n1) == before + 2  # the om command, and the fs#1 unit's driver
        found = records(n1, "OBJ_PATH=agtsvc", f"SID={sid_of(start)}")
        by_message = {r["MESSAGE"]: r for r in found}
        flag = by_message["fs#1: install flag file /dev/shm/opensvc/svc/agtsvc/fs#1.flag"]
        assert flag["OBJECT_SYSTEMD_UNIT"] == "opensvc-svc.agtsvc-fs.1.service"
        unit_log = n1.run(["journalctl", "-o", "cat", "-u", "opensvc-svc.agtsvc-fs.1.service"])
        assert "fs#1: install flag file" in unit_log.stdout


def test_without_the_agent_the_same_commands_print_the_same(n1: Node) -> None:
    """With the executor stopped, `om` and the units run the commands themselves, same output."""
    with created(n1, "agtsvc", FLAG_APP):
        served = [console(om(n1, "agtsvc", "instance", verb)) for verb in ("start", "stop")]
        with agent_stopped(n1):
            assert om(n1, "executor", "status").returncode == 3
            alone = [om(n1, "agtsvc", "instance", verb) for verb in ("start", "stop")]
            assert [p.returncode for p in alone] == [0, 0], alone[0].stderr + alone[1].stderr
            assert [console(p) for p in alone] == served
            found = records(n1, "OBJ_PATH=agtsvc", f"SID={sid_of(alone[0])}")
            assert found


def test_clients_in_another_namespace_run_the_command_themselves(n1: Node) -> None:
    """A client in another mount namespace is refused by the executor and runs the action
    itself: its records come from its own process, not a worker."""
    with created(n1, "agtsvc", FLAG_APP):
        before = served(n1)
        proc = n1.run(["unshare", "--mount", "--propagation", "unchanged", OM, "agtsvc",
                       "instance", "start"], check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "<<< done start" in proc.stdout
        assert served(n1) == before + 1  # the fs#1 unit's driver only, not the om command


def test_a_task_runs_in_its_own_unit_cgroup(n1: Node) -> None:
    """A task's command, run by the executor's worker, sits in the task unit's cgroup."""
    with created(n1, "agttask", TASKS):
        before = served(n1)
        n1.run(["systemctl", "start", "opensvc-svc.agttask-task.cg.service"])
        assert served(n1) == before + 1
        cgroups = n1.read_file("/run/omct/agttask.cgroup").splitlines()
        unified = next(line for line in cgroups if line.startswith("0::"))
        assert unified.endswith("/opensvc-svc.agttask-task.cg.service"), cgroups


def test_the_worker_takes_the_client_process_settings(n1: Node) -> None:
    """The worker runs with the client's umask, open-files limit, nice value and OOM score
    adjustment (what a unit's UMask=, LimitNOFILE=, Nice=, OOMScoreAdjust= set), not the
    executor's."""
    with created(n1, "agttask", TASKS):
        before = served(n1)
        run = (
            "umask 027; ulimit -n 777; echo 123 > /proc/self/oom_score_adj; "
            f"exec nice -n 5 {OM} agttask driver run --rid task#umask"
        )
        assert n1.run(["sh", "-c", run]).returncode == 0
        assert served(n1) == before + 1
        got = n1.read_file("/run/omct/agt.ps").split()
        assert got == ["0027", "777", "5", "123"]


def _wait_for(what: str, probe: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(probe) and probe():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("signal", ["TERM", "KILL"])
def test_a_killed_client_ends_its_worker(n1: Node, signal: str) -> None:
    """SIGTERM to the client is forwarded to the worker; a SIGKILLed client's worker sees
    its socket close and ends too."""
    with created(n1, "agttask", TASKS):
        argv = n1.argv([OM, "agttask", "driver", "run", "--rid", "task#slow"])
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            sleeper: list[str] = []

            def started() -> bool:
                sleeper[:] = n1.run(["pgrep", "-f", "^/bin/sleep 31.7"], check=False).stdout.split()
                return bool(sleeper)

            _wait_for("the task's sleep", started)
            status = n1.read_file(f"/proc/{sleeper[0]}/status")
            worker = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:"))
            assert n1.read_file(f"/proc/{worker}/comm").strip() == "om-worker"
            found = n1.run(["pgrep", "-f", "--", "driver run --rid task#slow"]).stdout.split()
            assert len(found) == 1  # the client (the worker's command line is the executor's)
            n1.run(["kill", f"-{signal}", found[0]])
            _wait_for("the worker to end", lambda: not n1.path(f"/proc/{worker}").exists())
            client.wait(timeout=20)
            if signal == "TERM":
                assert client.returncode == 143
        finally:
            client.kill()
            n1.run(["pkill", "-f", "^/bin/sleep 31.7"], check=False)


def test_executor_install_writes_enables_and_starts_the_unit(n1: Node) -> None:
    """`om executor install` on a node: the unit lands in /etc/systemd/system, enabled, active."""
    unit = "/etc/systemd/system/omc-executor.service"
    try:
        proc = om(n1, "executor", "install")
        assert proc.returncode == 0, proc.stderr
        text = n1.read_file(unit)
        assert f"ExecStart={OM} executor run" in text
        assert "Type=notify" in text
        assert (
            n1.run(["systemctl", "is-enabled", "omc-executor.service"]).stdout.strip() == "enabled"
        )
        assert n1.run(["systemctl", "is-active", "omc-executor.service"]).stdout.strip() == "active"
        assert om(n1, "executor", "status").stdout.startswith("executor running")
    finally:
        n1.run(["systemctl", "disable", "omc-executor.service"], check=False)
        n1.run(["rm", "-f", unit], check=False)
        n1.run(["systemctl", "daemon-reload"], check=False)
        n1.run(["systemctl", "restart", "omc-executor.service"], check=False)
