"""The frame of every state change of an instance: lock, log bracket, origin, sinks.

Instance actions, syncs and (through them) the cluster daemon's actions all run
inside one :func:`session`, so they share:

* the per-object action lock (§4.7): one state-changing action per object at a time;
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
import fcntl
import os
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


@contextlib.contextmanager
def object_lock(path: ObjectPath) -> Iterator[None]:
    """The per-object action lock (§4.7): one state-changing action at a time."""
    fd = safefs.open_lock(lock_file(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def try_object_lock(path: ObjectPath) -> Iterator[bool]:
    """The object lock if it is free now (True), else nothing (False): for callers that
    must not wait, the cluster daemon's loop."""
    fd = safefs.open_lock(lock_file(path))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
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
) -> Iterator[Session]:
    """Run an action under the object lock and its log bracket.

    ``avail`` gives the instance avail for the closing line when the body raised
    (an :class:`ActionError` the body did not conclude itself, or anything else);
    a body that succeeds calls :meth:`Session.conclude` itself (it knows the end
    state it checked). ``bracket=False`` (``--dry-run``) logs nothing.
    """
    collector = _collector()
    line = "om " + " ".join(argv)
    log = action_log(str(path), action=verb, console=console, origin=origin, argv=line,
                     extra_sinks=(collector,) if collector is not None else ())  # fmt: skip
    frame = Session(path=path, verb=verb, argv=line, origin=origin, log=log)
    try:
        with object_lock(path) if lock else contextlib.nullcontext():
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
