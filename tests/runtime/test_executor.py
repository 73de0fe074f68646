"""The node executor's pure parts: wire format, what it runs, cgroup moves, refusals."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omc.runtime import upgrade
from omc.runtime.exec import cgroup_moves
from omc.runtime.executor import client as client
from omc.runtime.executor import server as executor

_TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


@given(
    cwd=_TEXT,
    argv=st.lists(_TEXT, max_size=6),
    env=st.dictionaries(_TEXT.filter(lambda k: "=" not in k and k != ""), _TEXT, max_size=6),
    umask=st.integers(min_value=0, max_value=0o777),
)
def test_request_round_trips(cwd: str, argv: list[str], env: dict[str, str], umask: int) -> None:
    """decode(encode(x)) is x for any cwd, argv, environment without NUL, and umask."""
    assert client.decode(client.encode(cwd, argv, env, umask)) == (cwd, argv, env, umask)


@pytest.mark.parametrize(
    "fields",
    [[], ["omc3", "/", "22"], ["omc2", "/", "22", "0"], ["omc3", "/", "9", "0"],
     ["omc3", "/", "22", "x"], ["omc3", "/", "22", "3", "a"]],
)  # fmt: skip
def test_bad_requests_are_refused(fields: list[str]) -> None:
    """Anything but a well-formed request raises ValueError (the executor answers fallback)."""
    with pytest.raises(ValueError):
        client.decode("\0".join(fields).encode())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["svc0", "instance", "start"], True),
        (["svc0", "driver", "start", "--rid", "fs#1"], True),
        (["svc0", "print", "status"], True),
        (["lab", "up"], False),
        (["exec", "--pg", "/x", "--", "true"], False),
        (["executor", "run"], False),
        (["svc0", "config", "edit"], False),
        (["--help"], False),
        ([], False),
    ],
)
def test_which_commands_go_to_the_agent(argv: list[str], expected: bool) -> None:
    """Object and driver commands go; the lab, exec, the executor itself and editors stay."""
    assert client.wanted(argv) is expected


def test_omc_agent_0_keeps_every_command_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """OMC_EXECUTOR=0 turns delegation off."""
    monkeypatch.setenv("OMC_EXECUTOR", "0")
    assert not client.wanted(["svc0", "instance", "start"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["svc0", "driver", "run", "--rid", "task#1"], True),
        (["svc0", "driver", "update", "--rid", "sync#1"], True),
        (["svc0", "driver", "full", "--rid", "sync#1"], True),
        (["svc0", "driver", "start", "--rid", "fs#1"], False),
        (["svc0", "instance", "run"], False),
        (["svc0", "instance", "start"], False),
    ],
)
def test_only_user_command_drivers_join_the_unit_cgroup(argv: list[str], expected: bool) -> None:
    """Tasks and syncs run user commands in the unit's cgroup; short driver actions do not."""
    assert executor.joins_cgroups(argv) is expected


HYBRID = """\
81 80 0:51 / /sys/fs/cgroup ro - tmpfs tmpfs ro
82 81 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
90 81 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
91 81 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup rw
"""
LEGACY = "\n".join(HYBRID.splitlines()[:3]) + "\n"
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
EXECUTOR = "/system.slice/omc-executor.service"
EXECUTOR_HYBRID = f"9:name=systemd:{EXECUTOR}\n1:cpu:/\n0::{EXECUTOR}\n"
UNIT = "/system.slice/x.service"


@pytest.mark.parametrize(
    ("peer", "own", "mountinfo", "expected"),
    [
        (f"9:name=systemd:{UNIT}\n1:cpu:{UNIT}\n0::{UNIT}\n", EXECUTOR_HYBRID, HYBRID,
         [f"/sys/fs/cgroup/unified{UNIT}"]),
        (f"9:name=systemd:{UNIT}\n1:cpu:{UNIT}\n", "9:name=systemd:/a\n1:cpu:/\n", LEGACY,
         [f"/sys/fs/cgroup/systemd{UNIT}"]),
        (f"0::{UNIT}\n", f"0::{EXECUTOR}\n", UNIFIED, [f"/sys/fs/cgroup{UNIT}"]),
        (f"0::{UNIT}\n", f"0::{UNIT}\n", UNIFIED, []),
        ("0::/../../..\n", f"0::{EXECUTOR}\n", UNIFIED, []),
    ],
    ids=["hybrid-joins-unified-only", "legacy-joins-name-systemd", "unified", "same", "outside"],
)  # fmt: skip
def test_cgroup_moves(peer: str, own: str, mountinfo: str, expected: list[str]) -> None:
    """The worker joins systemd's tracking hierarchy only, and only when it differs."""
    assert cgroup_moves(peer, own, mountinfo) == [Path(p) for p in expected]


def test_a_later_mount_hides_an_earlier_one() -> None:
    """A lab node's own cgroupfs over its host's: the visible one is used."""
    mountinfo = "59 49 0:38 /../../.. /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n" + HYBRID
    assert cgroup_moves(f"0::{UNIT}\n", "0::/\n", mountinfo) == [
        Path(f"/sys/fs/cgroup/unified{UNIT}")
    ]


def test_refusal_of_clients() -> None:
    """This very process (same namespaces) is served when root; others are refused."""
    assert executor.refusal(os.getpid(), 1000) == "not a root client of this pid namespace"
    assert executor.refusal(0, 0) == "not a root client of this pid namespace"
    if os.geteuid() == 0:
        assert executor.refusal(os.getpid(), 0) == ""


def test_stale_sees_a_changed_source(tmp_path: Path) -> None:
    """A loaded module's source changed on disk (an upgrade): the executor must reload."""
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    sources = {str(source): source.stat().st_mtime_ns}
    assert not upgrade.stale(sources)
    os.utime(source, ns=(0, source.stat().st_mtime_ns + 1_000_000))
    assert upgrade.stale(sources)
    source.unlink()
    assert upgrade.stale({str(source): 0})


def _client_against(
    replies: list[bytes],
    *,
    close: bool = True,
    heard: list[bytes] | None = None,
    within: float = 30.0,
) -> int | None:
    """Run the client's wait loop, with ``within`` seconds for a worker, against a fake
    executor that sends ``replies`` (then closes, unless not ``close``); what the client
    sent it is appended to ``heard``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def fake() -> None:
        for reply in replies:
            theirs.send(reply)
            time.sleep(0.01)
        if close:
            theirs.close()

    thread = threading.Thread(target=fake)
    thread.start()
    try:
        return client._wait(ours, time.monotonic() + within)
    finally:
        thread.join()
        ours.close()
        if heard is not None and not close:
            theirs.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while message := theirs.recv(64):
                    heard.append(message)
        if not close:
            theirs.close()


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ([b"fallback stale"], None),
        ([], None),  # the executor closed before starting a worker: run it here
        ([b"pid 42", b"exit 0"], 0),
        ([b"pid 42", b"exit 3"], 3),
        ([b"pid 42"], 1),  # the worker vanished: an error, never a second run
    ],
)
def test_client_outcomes(replies: list[bytes], expected: int | None) -> None:
    """Fallback before a worker starts; the worker's exit code after; 1 if it vanished."""
    assert _client_against(replies) == expected


def test_a_client_tells_its_worker_to_go() -> None:
    """The worker waits for the client's go: the client sends it on the worker's pid."""
    heard: list[bytes] = []
    assert _client_against([b"pid 42", b"exit 0"], close=False, heard=heard) == 0
    assert heard == [b"go"]


def test_an_executor_that_does_not_answer_in_time_means_run_it_here() -> None:
    """No worker before the deadline (a stopped executor): fall back, and say no go."""
    heard: list[bytes] = []
    assert _client_against([], close=False, heard=heard, within=0.2) is None
    assert heard == []


def test_the_client_imports_only_c_modules() -> None:
    """Every `om` imports the client first: C modules only (besides omc's packages)."""
    code = (
        "import sys; before = set(sys.modules); import omc.runtime.executor.client\n"
        "for name in sorted(set(sys.modules) - before):\n"
        "    if (getattr(sys.modules[name], '__file__', None) or '').endswith('.py'):\n"
        "        print(name)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    python = [m for m in proc.stdout.split() if not m.startswith("omc") and m != "__future__"]
    assert python == []


WORKER_IMPORTS = """
import os, sys
from omc.runtime.executor import server as executor
executor.preload()
before = set(sys.modules)
saved = [os.dup(fd) for fd in (0, 1, 2)]
nulls = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
executor._become(os.getpid(), "/", dict(os.environ), 18, join=False)
executor.take_streams(nulls)
new = sorted(set(sys.modules) - before)
os.write(saved[1], " ".join(new).encode())
"""


def test_a_worker_imports_nothing_the_agent_did_not() -> None:
    """After preload(), becoming a client's worker imports no module (each import would
    be paid by every command). In a fresh interpreter: this one imported more."""
    proc = subprocess.run([sys.executable, "-c", WORKER_IMPORTS], capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    assert proc.stdout == "", f"imported by a worker: {proc.stdout}"
