"""A hung node executor (SIGSTOP) does not hang `om`: clients fall back after a deadline,
and the requests the executor finds when it resumes never run a second time (issue #10.9)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from omc.runtime.lab.api import Lab, Node

from .test_executor_lab import _wait_for
from .test_instance_lab import created, om, status

HUNG = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0c01

[fs#1]
type = flag

[task#count]
command = /bin/sh -c "echo ran >> /run/omct/hung.count"
"""


@contextlib.contextmanager
def executor_stopped(node: Node) -> Iterator[str]:
    """SIGSTOP the executor's main process (its spare worker stays as it is); SIGCONT after."""
    pid = node.run(["systemctl", "show", "-P", "MainPID", "omc-executor.service"]).stdout.strip()
    assert pid not in ("", "0"), pid
    node.run(["kill", "-STOP", pid])
    try:
        yield pid
    finally:
        node.run(["kill", "-CONT", pid])


def test_a_stopped_executor_hangs_no_om_and_runs_nothing_twice(
    lab_factory: Callable[..., Lab],
) -> None:
    """With the executor stopped, `print status`, an instance start (whose fs#1 unit runs
    `om … driver start`) and a task run all complete in their own process; once the
    executor resumes, the requests it finds queued run nothing."""
    node = lab_factory(nodes=1).node("n1")
    with created(node, "hung", HUNG) as path:
        with executor_stopped(node):
            shown = om(node, path, "print", "status")
            assert shown.returncode == 0, shown.stderr
            start = om(node, path, "instance", "start")
            assert start.returncode == 0, start.stdout + start.stderr
            assert "fs#1: install flag file" in start.stdout
            ran = om(node, path, "driver", "run", "--rid", "task#count")
            assert ran.returncode == 0, ran.stdout + ran.stderr
        assert status(node, path) == {"avail": "up", "fs#1": "up", "task#count": "n/a"}
        assert om(node, "executor", "status").returncode == 0  # answered after the queue
        _wait_for(
            "the workers of the queued requests to end",
            lambda: node.run(["pgrep", "-x", "om-worker"], check=False).returncode == 1,
        )
        assert node.read_file("/run/omct/hung.count") == "ran\n"
