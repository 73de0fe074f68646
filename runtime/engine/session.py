"""The frame of every state change of an instance: lock, log bracket, origin, sinks.

Instance actions, syncs and (through them) the cluster daemon's actions all run
inside one :func:`session`, so they share:

* the per-object action lock (§4.7): one state-changing action per object at a time,
  config changes included; a second one waits for it at most ``--waitlock`` (30 s by
  default, as om3), saying once who holds it, then fails (:class:`LockTimeoutError`);
* the bracket lines of opensvc.md §7.1::

    >>> do start [om svc0 instance start] (origin user, sid <uuid>)
    <<< done start [om svc0 instance start] in 1.6s, instance status is now up

  (``<<< failed …`` at ERR when the action failed), with ``ARGV`` and ``DURATION``
  journald fields on them;
* the log sinks: the console (unless ``-q``), journald (syslog without it), the
  collector's spool when node.conf names a collector (the session starts a sender
  if none runs; it never waits for one);
* the origin (``user``, ``daemon/monitor`` …) and the session id of every record.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omc.compiler.contract.paths import ObjectPath
from omc.runtime import safefs
from omc.runtime.layout import lock_file
from omc.runtime.log import ActionLog, Level, Sink, action_log, go_duration

if TYPE_CHECKING:
    from omc.runtime.collector.sink import CollectorSink


class ActionError(Exception):
    """The action failed (exit code 1); ``logged`` when the action log already said why."""

    def __init__(self, message: str, *, logged: bool = True) -> None:
        super().__init__(message)
        self.logged = logged


WAITLOCK = 30.0  # seconds an action waits for the object lock (om3's --waitlock default)


class LockTimeoutError(ActionError):
    """The object lock stayed held for the whole ``--waitlock``; nothing was done."""

    def __init__(self, message: str) -> None:
        super().__init__(message, logged=False)


def _to_stderr(message: str) -> None:
    print(f"om: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def object_lock(
    path: ObjectPath,
    *,
    action: str,
    sid: str = "",
    wait: float = WAITLOCK,
    waiting: Callable[[str], None] = _to_stderr,
) -> Iterator[None]:
    """The per-object action lock (§4.7): one state-changing action at a time.

    The holder writes its pid, action and sid into the lock file, so that a second
    action can say whom it waits for (``waiting`` is told once) instead of hanging
    silently; it gives up after ``wait`` seconds with :class:`LockTimeoutError`.
    """
    fd = safefs.open_lock(lock_file(path))
    try:
        _acquire(fd, path, wait, waiting)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\naction {action}\nsid {sid}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # still ours: a later waiter never reads a gone holder
    finally:
        os.close(fd)


def _acquire(fd: int, path: ObjectPath, wait: float, waiting: Callable[[str], None]) -> None:
    """Take the lock on ``fd`` within ``wait`` seconds, polling (flock has no timeout,
    and an alarm signal would reach whatever else the process runs)."""
    if safefs.try_lock(fd):
        return
    held = f"the object lock held by {holder(fd)}"
    waiting(f"{path}: waiting for {held}")
    deadline = time.monotonic() + wait
    delay = 0.01
    while not safefs.try_lock(fd):
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeoutError(f"{path}: gave up after {go_duration(wait)} waiting for {held}")
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.2)


def holder(fd: int) -> str:
    """Who holds the lock, from what it wrote: ``pid 42 (start, sid …)``."""
    fields = dict(
        line.partition(" ")[::2]
        for line in os.pread(fd, 4096, 0).decode(errors="replace").splitlines()
    )
    pid, action, sid = fields.get("pid"), fields.get("action"), fields.get("sid")
    if not pid:
        return "another process"  # it has the lock and has not written its name yet
    details = ", ".join(x for x in (action, f"sid {sid}" if sid else "") if x)
    return f"pid {pid} ({details})" if details else f"pid {pid}"


@contextlib.contextmanager
def try_object_lock(path: ObjectPath, *, action: str = "config") -> Iterator[bool]:
    """The object lock if it is free now (True), else nothing (False): for callers that
    must not wait, the cluster daemon's loop."""
    fd = safefs.open_lock(lock_file(path))
    try:
        if not safefs.try_lock(fd):
            yield False
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\naction {action}\nsid \n".encode(), 0)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


@dataclass(slots=True)
class Session:
    """One bracketed action on one object; :meth:`conclude` writes its closing line."""

    path: ObjectPath
    verb: str
    argv: str
    origin: str
    log: ActionLog
    started: float = field(default_factory=time.monotonic)
    concluded: bool = False

    def open(self) -> None:
        self.log.info(
            f">>> do {self.verb} [{self.argv}] (origin {self.origin}, sid {self.log.sid})"
        )

    def conclude(self, avail: str, *, failed: bool, why: str = "") -> None:
        """``<<< done|failed <verb> [<argv>] in <duration>, instance status is now <avail>``."""
        self.concluded = True
        duration = go_duration(time.monotonic() - self.started)
        tail = f"in {duration}, instance status is now {avail}"
        if failed:
            if why:
                self.log.error(why)
            self.log.error(f"<<< failed {self.verb} [{self.argv}] {tail}", duration=duration)
        else:
            self.log.info(f"<<< done {self.verb} [{self.argv}] {tail}", duration=duration)


def _collector() -> CollectorSink | None:
    """The collector sink, when node.conf or ``OMC_COLLECTOR`` names one (docs/runtime.md)."""
    from omc.runtime.collector.sink import from_config

    return from_config()


@contextlib.contextmanager
def session(
    path: ObjectPath,
    verb: str,
    *,
    argv: Sequence[str],
    origin: str,
    console: Sink | None,
    avail: Callable[[], str],
    lock: bool = True,
    bracket: bool = True,
    sid: str | None = None,
    waitlock: float = WAITLOCK,
) -> Iterator[Session]:
    """Run an action under the object lock and its log bracket.

    ``avail`` gives the instance avail for the closing line when the body raised
    (an :class:`ActionError` the body did not conclude itself, or anything else);
    a body that succeeds calls :meth:`Session.conclude` itself (it knows the end
    state it checked). ``bracket=False`` (``--dry-run``) logs nothing. ``lock=False``:
    the caller holds the object lock already (taken with the same ``sid``).
    """
    collector = _collector()
    line = "om " + " ".join(argv)
    sinks = (collector,) if collector is not None else ()
    log = action_log(str(path), action=verb, console=console, origin=origin, sid=sid,
                     argv=line, extra_sinks=sinks)  # fmt: skip
    frame = Session(path=path, verb=verb, argv=line, origin=origin, log=log)
    locked = object_lock(path, action=verb, sid=log.sid, wait=waitlock)
    try:
        with locked if lock else contextlib.nullcontext():
            if bracket:
                frame.open()
            try:
                yield frame
            except Exception:
                if bracket and not frame.concluded:
                    frame.conclude(_safe(avail), failed=True)
                raise
    finally:
        if collector is not None:
            _close(collector, log)


def _close(collector: CollectorSink, log: ActionLog) -> None:
    """Start a sender if none runs; say (not to the collector) what could not be queued."""
    collector.close()
    if collector.failure:
        log.emit_local(log.record(Level.WARNING, f"collector spool: {collector.failure}"))
    elif collector.dropped:
        why = f"collector spool full: {collector.dropped} calls of this action dropped"
        log.emit_local(log.record(Level.WARNING, f"{why} (om collector status)"))


def _safe(avail: Callable[[], str]) -> str:
    """The avail for a failure's closing line; ``undef`` when even that cannot be read."""
    try:
        return avail()
    except Exception:  # the action already failed: its own error is the one to report
        return "undef"
