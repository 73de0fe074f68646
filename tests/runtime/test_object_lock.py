"""The object lock's wait, bound and holder record (engine/session.py), on a scratch run dir.

flock(2) locks belong to an open file description: two ``object_lock`` calls in one
process conflict exactly as two processes would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.engine.session import LockTimeoutError, object_lock

SVC = ObjectPath(name="svc0")


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMC_RUN", str(tmp_path))
    return tmp_path


def test_the_holder_writes_its_pid_action_and_sid_and_erases_them_on_release(
    run_dir: Path,
) -> None:
    """While held, the lock file names the holder; once released it is empty."""
    lock = run_dir / "lock" / f"{SVC.flat}.lock"
    with object_lock(SVC, action="start", sid="s-1"):
        assert lock.read_text() == f"pid {os.getpid()}\naction start\nsid s-1\n"
    assert lock.read_text() == ""


def test_a_second_taker_says_once_whom_it_waits_for_then_gives_up() -> None:
    """The waiter is told the holder once, and fails at the bound with a message of its own."""
    said: list[str] = []
    with (
        object_lock(SVC, action="sync update", sid="s-2"),
        pytest.raises(LockTimeoutError) as caught,
        object_lock(SVC, action="stop", wait=0.2, waiting=said.append),
    ):
        pytest.fail("the lock was taken twice")
    held = f"the object lock held by pid {os.getpid()} (sync update, sid s-2)"
    assert said == [f"svc0: waiting for {held}"]
    assert str(caught.value) == f"svc0: gave up after 200ms waiting for {held}"
    assert not caught.value.logged  # the CLI prints it


def test_a_free_lock_is_taken_without_a_word() -> None:
    """No holder, no waiting message; a zero bound is enough."""
    said: list[str] = []
    with object_lock(SVC, action="create", wait=0, waiting=said.append):
        pass
    assert said == []


def test_a_holder_without_a_record_is_another_process(run_dir: Path) -> None:
    """A lock held by a process that has not written its record yet (or an older om)."""
    import fcntl

    (run_dir / "lock").mkdir()
    fd = os.open(run_dir / "lock" / f"{SVC.flat}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    said: list[str] = []
    try:
        with (
            pytest.raises(LockTimeoutError),
            object_lock(SVC, action="stop", wait=0, waiting=said.append),
        ):
            pass
    finally:
        os.close(fd)
    assert said == ["svc0: waiting for the object lock held by another process"]
