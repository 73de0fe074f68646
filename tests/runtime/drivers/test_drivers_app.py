"""app.forking / app.simple: retcodes, command resolution, and real check/start/stop runs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from omc.runtime import drivers
from omc.runtime.drivers import DriverError, Status, app, settings

from .helpers import RecordingLog, view


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:up 1:down", {0: Status.UP, 1: Status.DOWN}),
        (
            "0:up 1:warn 2:n/a 3:undef",
            {0: Status.UP, 1: Status.WARN, 2: Status.NA, 3: Status.UNDEF},
        ),
        ("", {}),
    ],
)
def test_parse_retcodes(text: str, expected: dict[int, Status]) -> None:
    """retcodes maps exit codes to status names."""
    assert app.parse_retcodes(text) == expected


@pytest.mark.parametrize("text", ["0:upp", "x:up", "0"])
def test_parse_retcodes_rejects(text: str) -> None:
    """A bad retcodes item is a DriverError quoting it."""
    with pytest.raises(DriverError, match="retcodes"):
        app.parse_retcodes(text)


def test_compiled_retcodes_pairs() -> None:
    """The compiler's [[code, status], …] form reads like the text form."""
    res = view("app.forking", {"retcodes": [[0, "up"], [2, "down"]]})
    assert app.retcodes(res) == {0: Status.UP, 2: Status.DOWN}
    assert app.retcodes(view("app.forking", {})) == {0: Status.UP, 1: Status.DOWN}


def test_unlisted_code_is_warn() -> None:
    """Exit codes absent from retcodes mean warn."""
    assert app.status_of(7, {0: Status.UP}) is Status.WARN


@pytest.mark.parametrize(
    ("config", "action", "expected"),
    [
        ({"script": "/s.sh", "start": True}, "start", ("/s.sh", "start")),
        ({"script": "/s.sh", "start": "true"}, "start", ("/s.sh", "start")),
        ({"script": "/s.sh", "start": "10"}, "start", ("/s.sh", "start")),
        ({"script": "/s.sh", "stop": False}, "stop", ()),
        ({"script": "/s.sh", "stop": "false"}, "stop", ()),
        ({"check": "test -f '/a b'"}, "check", ("test", "-f", "/a b")),
        ({"check": ["pgrep", "x"]}, "check", ("pgrep", "x")),
        ({}, "check", ()),
    ],
)
def test_command_resolution(
    config: dict[str, object], action: str, expected: tuple[str, ...]
) -> None:
    """true/sequence numbers run the script with the action, false nothing, else the command."""
    assert settings.command(view("app.forking", config), action) == expected


def test_script_true_without_script_is_an_error() -> None:
    """start = true without a script keyword says which keyword is missing."""
    with pytest.raises(DriverError, match="script"):
        settings.command(view("app.forking", {"start": True}), "start")


@pytest.mark.parametrize(("code", "expected"), [(0, Status.UP), (1, Status.DOWN), (3, Status.WARN)])
def test_real_check_maps_exit_codes(code: int, expected: Status) -> None:
    """A real check command's exit code goes through retcodes."""
    res = view("app.forking", {"check": f"sh -c 'exit {code}'"})
    assert drivers.get("app.forking").status(res).status is expected


def test_real_check_sees_opensvc_environment() -> None:
    """The check runs with OPENSVC_RID, OPENSVC_NAME, OPENSVC_ID and the environment keyword."""
    got = "$OPENSVC_RID/$OPENSVC_NAME/$OPENSVC_ID/$OPENSVC_KIND/$FOO"
    script = f'test "{got}" = "app#0/svc0/id1/svc/a b"'
    res = view(
        "app.forking",
        {"check": ["sh", "-c", script], "environment": "FOO='a b'"},
        rid="app#0", object_id="id1",
    )  # fmt: skip
    assert drivers.get("app.forking").status(res).status is Status.UP


def test_status_log_relays_outputs() -> None:
    """With status_log, check stdout becomes info messages and stderr warnings."""
    res = view(
        "app.forking",
        {"check": ["sh", "-c", "echo fine; echo careful >&2; exit 0"], "status_log": True},
    )
    probe = drivers.get("app.forking").status(res)
    assert (probe.status, probe.messages, probe.warnings) == (Status.UP, ("fine",), ("careful",))


def test_forking_without_check_is_na() -> None:
    """app.forking without check: n/a with "check is not set"."""
    probe = drivers.get("app.forking").status(view("app.forking", {"start": "true"}))
    assert (probe.status, probe.messages) == (Status.NA, ("check is not set",))


def test_forking_real_cycle(tmp_path: Path) -> None:
    """start runs once (then "already up"), stop runs once (then "already down")."""
    marker = tmp_path / "m"
    res = view(
        "app.forking",
        {"start": f"touch {marker}", "stop": f"rm -f {marker}", "check": f"test -f {marker}"},
    )
    drv, log = drivers.get("app.forking"), RecordingLog()
    drv.start(res, log)
    drv.start(res, log)
    assert marker.exists()
    drv.stop(res, log)
    drv.stop(res, log)
    assert not marker.exists()
    assert log.messages == [
        f"run: touch {marker}",
        "already up",
        f"run: rm -f {marker}",
        "already down",
    ]


def test_forking_failing_start_raises() -> None:
    """A non-zero start exit fails the start with the code in the message."""
    res = view("app.forking", {"start": "sh -c 'echo oops >&2; exit 4'", "check": "false"})
    log = RecordingLog()
    with pytest.raises(DriverError, match="code 4"):
        drivers.get("app.forking").start(res, log)
    assert ("warning", "oops") in log.records


def test_simple_real_processes_found_by_environment() -> None:
    """app.simple without check is up while a process has its OPENSVC_ID/RID, down after stop."""
    res = view("app.simple", {"start": "sleep 60"}, rid="app#s", object_id=str(uuid.uuid4()))
    drv, log = drivers.get("app.simple"), RecordingLog()
    assert drv.status(res).status is Status.DOWN
    drv.start(res, log)
    try:
        assert drv.status(res).status is Status.UP
        drv.start(res, log)
    finally:
        drv.stop(res, log)
    assert drv.status(res).status is Status.DOWN
    drv.stop(res, log)
    assert log.messages[:2] == ["run: sleep 60", "already up"]
    assert log.messages[-1] == "already down"


def test_simple_start_failing_fast_is_an_error() -> None:
    """A simple app whose process exits at once fails its start."""
    res = view("app.simple", {"start": "/bin/false"}, rid="app#f", object_id=str(uuid.uuid4()))
    with pytest.raises(DriverError, match="right after start"):
        drivers.get("app.simple").start(res, RecordingLog())


def _fake_process(
    proc: Path, pid: int, environ: bytes, *, state: str = "S", flags: int = 0
) -> Path:
    """``proc/<pid>`` with the two files :func:`app.app_processes` reads."""
    found = proc / str(pid)
    found.mkdir()
    (found / "environ").write_bytes(environ)
    (found / "stat").write_text(f"{pid} (tail) {state} 1 1 1 0 -1 {flags} 0 0 0 0\n")
    return found


def test_simple_process_in_the_middle_of_an_exec_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment that reads empty (an execve in progress: ``sh`` exec'ing the app) is
    read again, so the app is found once the exec is over: a status right after a start
    must not say down while the app runs (its start failed, and the next node started it
    too)."""
    res = view("app.simple", {"start": "sleep 60"}, rid="app#x", object_id="oid1")
    pid = _fake_process(tmp_path, 4242, b"")

    def exec_ends(_: float) -> None:
        (pid / "environ").write_bytes(b"OPENSVC_RID=app#x\0OPENSVC_ID=oid1\0")

    monkeypatch.setattr(app.time, "sleep", exec_ends)
    assert list(app.app_processes(res, proc=tmp_path)) == [4242]


def test_kernel_threads_and_zombies_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They never have an environment: no wait for them (a host has a hundred kthreads)."""
    res = view("app.simple", {"start": "sleep 60"}, rid="app#x", object_id="oid1")
    _fake_process(tmp_path, 2, b"", flags=app.PF_KTHREAD)
    _fake_process(tmp_path, 77, b"", state="Z")
    slept: list[float] = []
    monkeypatch.setattr(app.time, "sleep", slept.append)
    assert list(app.app_processes(res, proc=tmp_path)) == []
    assert slept == []
