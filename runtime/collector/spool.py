"""The collector spool: a bounded, ordered queue of XML-RPC calls on disk, per node.

An action never talks to the collector: it appends its calls here and goes on; a
sender (the node daemon's thread, or a short-lived ``om collector send``) posts them
later, in order, each under an idempotency key. The layout, in
``/var/lib/opensvc/collector/spool/`` (root, ``0700``, files ``0600``)::

    state                 the lock (flock) and the counters, JSON (a cache: rebuilt
                          from the entries when it is lost or torn)
    0000000000000042      one call: {"key", "url", "method", "args", "time"}
    damaged/  rejected/   entries set aside (unreadable after a crash; refused by the
                          collector again and again), counted in the state

Why this shape:

* **Order**: a sequence number is taken and the entry linked into place under the
  lock, so the numbers have no holes and the sender's order is the order the calls
  were queued, across processes (a clock can go backwards; this cannot).
* **Crash safety**: an entry is written to a hidden file, then hard-linked to its
  number: it appears whole or not at all, whoever dies when. Writers do not fsync:
  one fsync costs 5-15 ms on the VMs measured, more than the whole budget an action
  may spend on its collector (≤ 5 ms); the sender fsyncs new entries as it finds them,
  which bounds what a power cut can lose to what was queued in that last moment. An
  entry that a power cut left empty or torn is not JSON: it is moved to ``damaged/``
  and counted, never posted.
* **Exactly once**: each entry carries a key, ``<node>:<96 random bits>``, unique
  without any counter that a crash could reset. The sender deletes an
  entry only after the collector acknowledged it; an entry posted but not deleted (a
  lost reply, a crash) is posted again with the same key, which the collector uses
  to drop the duplicate (the ``X-Omc-Idempotency-Key`` header).
* **Bound**: at most ``bound`` entries wait (default 10000); beyond that, new calls are
  dropped and counted (``dropped``, with the time of the last), never the queued ones:
  what is queued is delivered in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omc.runtime import layout, safefs

STATE = "state"
DEFAULT_BOUND = 10000
NAME_DIGITS = 16


@dataclass(frozen=True, slots=True)
class Call:
    """One XML-RPC call: a method and its positional arguments (JSON values)."""

    method: str
    args: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A queued call, as the sender reads it back."""

    seq: int
    key: str
    url: str
    method: str
    args: list[Any]
    time: float

    @property
    def name(self) -> str:
        return entry_name(self.seq)


@dataclass(slots=True, kw_only=True)
class State:
    """The spool's counters (``state``): a cache of what the entries say, plus history."""

    next: int = 0  # the next sequence number
    head: int = 0  # the oldest entry not yet delivered (== next: empty)
    dropped: int = 0  # calls refused because the spool was full
    dropped_at: float = 0.0
    reported: int = 0  # ``dropped`` when the sender last reported it
    delivered: int = 0
    delivered_at: float = 0.0
    rejected: int = 0
    damaged: int = 0
    last_error: str = ""
    error_at: float = 0.0

    @property
    def pending(self) -> int:
        return self.next - self.head

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__dataclass_fields__}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        state = cls(**known)
        if not isinstance(state.next, int) or not isinstance(state.head, int):
            raise TypeError("bad counters")
        return state


def entry_name(seq: int) -> str:
    return f"{seq:0{NAME_DIGITS}d}"


def _seq(name: str) -> int | None:
    return int(name) if len(name) == NAME_DIGITS and name.isdigit() else None


class Spool:
    """The spool of one node (``directory`` for tests; the layout's by default)."""

    def __init__(self, directory: Path | None = None, *, bound: int = DEFAULT_BOUND,
                 keep_open: bool = False) -> None:  # fmt: skip
        self.directory = directory or layout.collector_spool_dir()
        self.bound = bound
        self.keep_open = keep_open
        self._fd: int | None = None
        self._head = -1  # the head last settled (the sender's own view)

    @contextlib.contextmanager
    def _dir(self, *, create: bool = True) -> Iterator[int]:
        """The directory's descriptor, every component checked from ``/`` (safefs). With
        ``keep_open`` (an action's spool) it is opened once, not once per call."""
        if self._fd is not None:
            yield self._fd
            return
        mode = layout.SPOOL_DIR_MODE if create else None
        if self.keep_open:
            self._fd = safefs.open_dir(self.directory, create=mode)
            yield self._fd
            return
        with safefs.directory(self.directory, create=mode) as fd:
            yield fd

    def open_lock(self, name: str) -> int:
        """A descriptor on the lock file ``name`` of the spool (the sender's lock)."""
        with self._dir() as dir_fd:
            return safefs.open_lock_at(dir_fd, name)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def _locked(self, held: int | None = None, *, create: bool = True) -> Iterator[
            tuple[int, State]]:  # fmt: skip
        """The spool directory's descriptor (``held``, or opened here, created unless
        ``create`` is false: FileNotFoundError then) and its state, under the lock; the
        state is written back when the block changed it."""
        with contextlib.ExitStack() as stack:
            dir_fd = held
            if dir_fd is None:
                dir_fd = stack.enter_context(self._dir(create=create))
            fd = safefs.open_lock_at(dir_fd, STATE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = self._read_state(fd, dir_fd)
                before = state.to_json()
                yield dir_fd, state
                after = state.to_json()
                if after != before:
                    raw = after.encode()
                    os.pwrite(fd, raw, 0)
                    os.ftruncate(fd, len(raw))
            finally:
                os.close(fd)

    def _read_state(self, fd: int, dir_fd: int) -> State:
        raw = os.pread(fd, 1 << 16, 0)
        try:
            return State.from_json(raw.decode())
        except (ValueError, TypeError, UnicodeDecodeError):
            return self._rebuild(dir_fd, raw)

    def _rebuild(self, dir_fd: int, raw: bytes) -> State:
        """A lost or torn state: the entries say where the queue stands."""
        seqs = self._seqs(dir_fd)
        state = State()
        state.next = seqs[-1] + 1 if seqs else 0
        state.head = seqs[0] if seqs else state.next
        if raw.strip():
            state.last_error = "the spool state was unreadable: rebuilt from the entries"
            state.error_at = time.time()
        return state

    @staticmethod
    def _seqs(dir_fd: int) -> list[int]:
        found = (_seq(n) for n in os.listdir(dir_fd))
        return sorted(s for s in found if s is not None)

    # -- the writers' side (actions) ------------------------------------------------------

    def append(self, url: str, calls: Sequence[Call], *, node: str) -> int:
        """Queue ``calls`` (in this order) for ``url``; returns how many were dropped
        because the spool is full. The files are written before the lock is taken, so
        the lock is held for a few link(2) calls only."""
        now = time.time()
        with self._dir() as dir_fd:
            staged = [safefs.stage_at(dir_fd, _body(c, url=url, node=node, now=now), mode=0o600)
                      for c in calls]  # fmt: skip
            dropped = 0
            try:
                with self._locked(dir_fd) as (_, state):
                    for tmp in staged:
                        if state.pending >= self.bound:
                            dropped += 1
                            continue
                        while not safefs.publish_at(dir_fd, tmp, entry_name(state.next)):
                            state.next += 1  # a state older than the entries
                        state.next += 1
                    if dropped:
                        state.dropped += dropped
                        state.dropped_at = now
            finally:
                for tmp in staged:
                    safefs.unlink_at(dir_fd, tmp)
        return dropped

    # -- the sender's side ----------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[Entry]:
        """The oldest ``limit`` entries, in order; unreadable ones are set aside. Read
        without the lock (a published entry never changes): writers are not held up."""
        with self._dir() as dir_fd:
            seqs = self._seqs(dir_fd)
            found: list[Entry] = []
            damaged: list[int] = []
            for seq in seqs[:limit]:
                entry = _load(dir_fd, seq)
                if entry is None:
                    damaged.append(seq)
                else:
                    found.append(entry)
            if damaged or (seqs and seqs[0] != self._head):
                self._settle(dir_fd, seqs, damaged)
            return found

    def _settle(self, dir_fd: int, seqs: list[int], damaged: list[int]) -> None:
        """Under the lock: set damaged entries aside, bring the counters to what the
        entries say (entries deleted by hand, a state older than them)."""
        with self._locked(dir_fd) as (_, state):
            for seq in damaged:
                safefs.move_at(dir_fd, entry_name(seq), "damaged")
                state.damaged += 1
            state.head = seqs[0] if seqs else state.next
            if seqs and seqs[-1] >= state.next:
                state.next = seqs[-1] + 1
            self._head = state.head

    def sync(self, entries: Sequence[Entry]) -> None:
        """Flush new entries to disk (what writers skip to stay fast)."""
        with self._dir() as dir_fd:
            safefs.fsync_at(dir_fd, [e.name for e in entries])

    def delivered(self, entry: Entry) -> None:
        """The collector acknowledged ``entry``: remove it."""
        with self._locked() as (dir_fd, state):
            safefs.unlink_at(dir_fd, entry.name)
            state.head = max(state.head, entry.seq + 1)
            state.delivered += 1
            state.delivered_at = time.time()
            state.last_error = ""

    def reject(self, entry: Entry, why: str) -> None:
        """The collector refuses ``entry`` for good: keep it aside, go on with the next."""
        with self._locked() as (dir_fd, state):
            safefs.move_at(dir_fd, entry.name, "rejected")
            state.head = max(state.head, entry.seq + 1)
            state.rejected += 1
            state.last_error = why
            state.error_at = time.time()

    def failed(self, why: str) -> None:
        with self._locked() as (_, state):
            state.last_error = why
            state.error_at = time.time()

    def newly_dropped(self) -> int:
        """Calls dropped since the last call of this (the sender reports them once)."""
        with self._locked() as (_, state):
            count = state.dropped - state.reported
            state.reported = state.dropped
            return count

    def state(self) -> State:
        """The counters (FileNotFoundError when the spool was never used)."""
        with self._locked(create=False) as (_, state):
            return state

    def empty(self) -> bool:
        try:
            return self.state().pending == 0
        except FileNotFoundError:
            return True


def _body(call: Call, *, url: str, node: str, now: float) -> str:
    """An entry's content; its key is random (96 bits), unique without any counter."""
    key = f"{node}:{os.urandom(12).hex()}"
    return json.dumps({"key": key, "url": url, "method": call.method, "args": call.args,
                       "time": now})  # fmt: skip


def _load(dir_fd: int, seq: int) -> Entry | None:
    try:
        data = json.loads(safefs.read_at(dir_fd, entry_name(seq)))
        return Entry(seq=seq, key=str(data["key"]), url=str(data["url"]),
                     method=str(data["method"]), args=list(data["args"]),
                     time=float(data["time"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
