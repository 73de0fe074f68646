"""task.host: run rules (confirmation, max_parallel, on_error) and check=last_run, for real."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from omc.runtime import drivers
from omc.runtime.drivers import DriverError, Status, task

from .helpers import RecordingLog, view


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMC_VAR", str(tmp_path / "var"))
    return tmp_path / "var"


def test_last_run_file_location(var_dir: Path) -> None:
    """The last run result is kept in <var>/<kind>/<name>/<rid>.last_run."""
    res = view("task.host", {}, rid="task#1")
    assert task.last_run_file(res) == var_dir / "svc/svc0/task#1.last_run"


@pytest.mark.parametrize(
    ("command", "expected"),
    [("true", Status.UP), ("sh -c 'exit 1'", Status.DOWN), ("sh -c 'exit 3'", Status.WARN)],
)
def test_check_last_run_follows_the_result(command: str, expected: Status) -> None:
    """check=last_run: n/a before any run, then the last exit code through retcodes."""
    res = view("task.host", {"command": command, "check": "last_run"}, rid="task#1")
    drv = drivers.get("task.host")
    assert drv.status(res) == drivers.Probe(status=Status.NA, messages=("never run",))
    with contextlib.suppress(DriverError):
        drv.run(res, RecordingLog())  # type: ignore[attr-defined]
    assert drv.status(res).status is expected


def test_check_unset_is_na() -> None:
    """Without check, a task's status is always n/a."""
    res = view("task.host", {"command": "true"})
    assert drivers.get("task.host").status(res).status is Status.NA


def test_last_run_warn_reports_failure_as_warning() -> None:
    """check=last_run_warn: n/a, with a warning when the last run failed."""
    res = view("task.host", {"command": "false", "check": "last_run_warn"}, rid="task#w")
    drv = task.HostTask()
    with pytest.raises(DriverError):
        drv.run(res, RecordingLog())
    probe = drv.status(res)
    assert (probe.status, probe.warnings) == (Status.NA, ("last run failed with code 1",))


def test_confirmation_refused_without_confirm() -> None:
    """confirmation=true and no --confirm (no tty under pytest): refused, nothing runs."""
    res = view("task.host", {"command": "true", "confirmation": True}, rid="task#c")
    log = RecordingLog()
    with pytest.raises(DriverError, match="--confirm"):
        task.HostTask().run(res, log)
    assert log.messages == []
    task.HostTask().run(res, log, confirm=True)
    assert log.messages == ["run: true"]


def test_max_parallel_counts_live_runs() -> None:
    """A live pid file at the limit refuses the run; a stale one is swept."""
    res = view("task.host", {"command": "true", "max_parallel": 1}, rid="task#p")
    pids = task.pid_dir(res)
    pids.mkdir(parents=True)
    (pids / str(os.getppid())).write_text("")
    with pytest.raises(DriverError, match="max_parallel=1"):
        task.HostTask().run(res, RecordingLog())
    (pids / str(os.getppid())).unlink()
    (pids / "999999999").write_text("")
    task.HostTask().run(res, RecordingLog())
    assert list(pids.iterdir()) == []


def test_on_error_runs_after_failure(tmp_path: Path) -> None:
    """on_error runs when the command fails, and the failure is still reported."""
    marker = tmp_path / "on_error"
    res = view("task.host", {"command": "false", "on_error": f"touch {marker}"}, rid="task#e")
    with pytest.raises(DriverError):
        task.HostTask().run(res, RecordingLog())
    assert marker.exists()


def test_task_env_says_run() -> None:
    """The command sees OPENSVC_ACTION=run and its rid."""
    script = 'test "$OPENSVC_ACTION:$OPENSVC_RID" = "run:task#v"'
    res = view("task.host", {"command": ["sh", "-c", script], "check": "last_run"}, rid="task#v")
    task.HostTask().run(res, RecordingLog())
    assert task.HostTask().status(res).status is Status.UP
