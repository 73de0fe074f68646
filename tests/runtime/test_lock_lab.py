"""The object lock in a lab node: a second action says whom it waits for, and for how long
(``--waitlock``), then gives up clearly (issue #10.8)."""

from __future__ import annotations

import contextlib
import re
import select
import subprocess
import time
from collections.abc import Iterator
from typing import IO

import pytest
from omc.runtime.exitcodes import ExitStatus
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, created, om, status

# fs#1's blocking pre-start trigger holds the start (and so the lock) until the test
# creates the "go" file.
HELD = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0e01

[fs#1]
type = flag
blocking_pre_start = /bin/sh -c 'while [ ! -e /run/omct/{name}.go ]; do sleep 0.05; done'
"""


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


def line_with(stream: IO[str], text: str, timeout: float = 60.0) -> str:
    """The first line of ``stream`` containing ``text`` (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.5)
        if not ready:
            continue
        line = stream.readline()
        if not line:
            break
        if text in line:
            return line
        seen.append(line)
    pytest.fail(f"no line with {text!r} in {seen}")


def background(node: Node, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(node.argv([OM, *args]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@contextlib.contextmanager
def holding(node: Node, path: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """An ``instance start`` of ``path`` that holds the object lock until the block ends;
    yields the process and its sid."""
    node.run(["rm", "-f", f"/run/omct/{path}.go"])
    start = background(node, path, "instance", "start")
    try:
        assert start.stdout is not None
        opened = line_with(start.stdout, ">>> do start")
        sid = re.search(r"sid ([0-9a-f-]{36})", opened)
        assert sid is not None, opened
        yield start, sid.group(1)
    finally:
        node.write_file(f"/run/omct/{path}.go", "")
        out, err = start.communicate(timeout=120)
        assert start.returncode == 0, out + err
        assert "<<< done start" in out, out


def test_a_second_action_names_the_holder_and_gives_up_at_waitlock(n1: Node) -> None:
    """With the lock held by a start, `stop --waitlock 1s` says once whom it waits for,
    then fails with exit 1 and a message of its own; nothing was stopped."""
    with created(n1, "lk", HELD.format(name="lk")) as path:
        with holding(n1, path) as (_, sid):
            proc = om(n1, path, "instance", "stop", "--waitlock", "1s")
        assert status(n1, path)["fs#1"] == "up"
        held = rf"the object lock held by pid \d+ \(start, sid {sid}\)"
        lines = proc.stderr.splitlines()
        assert proc.returncode == ExitStatus.ERROR, proc.stdout + proc.stderr
        assert len(lines) == 2, lines
        assert re.fullmatch(rf"om: {path}: waiting for {held}", lines[0]), lines
        assert re.fullmatch(rf"om: error: {path}: gave up after 1s waiting for {held}", lines[1])
        assert proc.stdout == ""  # no bracket: the action never began


def test_a_waiting_action_runs_once_the_holder_is_done(n1: Node) -> None:
    """Within the bound, the second action waits for the first to end, then runs."""
    with created(n1, "lk2", HELD.format(name="lk2")) as path:
        with holding(n1, path):
            stop = background(n1, path, "instance", "stop")
            assert stop.stderr is not None
            line_with(stop.stderr, "waiting for the object lock held by pid")
        out, err = stop.communicate(timeout=120)
        assert stop.returncode == 0, out + err
        assert "<<< done stop" in out
        assert status(n1, path)["fs#1"] == "down"


@pytest.mark.parametrize("value", ["", "soon", "-1s", "1..5"])
def test_a_bad_waitlock_is_a_usage_error(n1: Node, value: str) -> None:
    """--waitlock takes a duration (10s, 1m, a bare number of seconds); anything else is
    a usage error naming the value."""
    proc = om(n1, "nosuch", "instance", "start", "--waitlock", value)
    assert proc.returncode == ExitStatus.USAGE
    assert proc.stderr.startswith(f"om: error: --waitlock expects a duration like 30s, 1m or 10, "
                                  f"got {value!r}")  # fmt: skip
