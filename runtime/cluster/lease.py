"""The node lease's refresh, hedged across the etcd members.

A refresh goes to one member, the one that answered last. When it has not answered
within ``hedge`` (or refused at once), the same refresh goes to every other member, and
the first answer wins; the member that gave it is asked first next time.

Why: one client walking the endpoints in turn lost the detection time whenever a member
could not answer. It waited ``keepalive`` on its own member (no leader during an
election), as long again on a dead node's address, and was cut just as the new leader
could have answered: at each death of the etcd leader's node, healthy nodes stopped
their failover instances (bench/chaos.py, detection 2 s). Refreshing through every
member at once, always, cured that but tripled an idle node's keep-alives, its largest
idle cost. A hedge keeps one request per ``keepalive`` while the members answer, and
adds only ``hedge`` to a refresh when one does not.

Each member has its own thread and connection (a member in a minority hangs until the
call's timeout: it must not hold the others up), opened the first time it is asked.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from omc.runtime.adapters.etcd import EtcdError


class LeaseClient(Protocol):
    def lease_keepalive(self, lease: int) -> int: ...


@dataclass(eq=False)
class _Round:
    """One refresh of ``lease``, asked of one member or more; the first answer counts."""

    lease: int
    asked: int = 0
    failed: int = 0
    ttl: int | None = None
    by: int = -1
    error: str = ""
    cond: threading.Condition = field(default_factory=threading.Condition)

    def over(self) -> bool:
        return self.ttl is not None or self.failed >= self.asked

    def answer(self, index: int, ttl: int) -> None:
        with self.cond:
            if self.ttl is None:
                self.ttl, self.by = ttl, index
            self.cond.notify_all()

    def fail(self, error: str) -> None:
        with self.cond:
            self.failed += 1
            self.error = self.error or error
            self.cond.notify_all()


@dataclass(frozen=True)
class Refresh:
    """What a refresh gave: the lease's TTL (0: expired, its keys gone), or ``None``
    when no member answered, with the first error."""

    ttl: int | None
    by: int
    error: str


class _Member:
    """The thread that refreshes through one member: it takes the newest round it was
    asked (a round it could not take in time is dropped: the next one supersedes it)."""

    def __init__(self, index: int, connect: Callable[[], LeaseClient], stop: threading.Event):
        self.index = index
        self.connect = connect
        self.stop = stop
        self.cond = threading.Condition()
        self.pending: _Round | None = None
        self.thread: threading.Thread | None = None

    def ask(self, rnd: _Round) -> None:
        with rnd.cond:
            rnd.asked += 1
        with self.cond:
            if self.pending is not None:  # superseded before it was sent
                self.pending.fail("superseded")
            self.pending = rnd
            self.cond.notify()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"lease-{self.index}",
                                           daemon=True)  # fmt: skip
            self.thread.start()

    def _run(self) -> None:
        client: LeaseClient | None = None
        while not self.stop.is_set():
            with self.cond:
                while self.pending is None:
                    if self.stop.is_set():
                        return
                    self.cond.wait(1.0)
                rnd, self.pending = self.pending, None
            with rnd.cond:
                answered = rnd.ttl is not None
            if answered:  # another member answered meanwhile: nothing to send
                rnd.fail("answered elsewhere")
                continue
            try:
                client = client or self.connect()
                rnd.answer(self.index, client.lease_keepalive(rnd.lease))
            except EtcdError as exc:
                rnd.fail(str(exc))


class Keeper:
    """Hedged lease refreshes through the members ``connect(i)`` opens (``count`` of
    them); :meth:`refresh` is called by one thread, the daemon's lease thread."""

    def __init__(
        self,
        count: int,
        connect: Callable[[int], LeaseClient],
        stop: threading.Event,
        *,
        hedge: float,
    ):
        self.members = [_Member(i, functools.partial(connect, i), stop) for i in range(count)]
        self.hedge = hedge
        self.preferred = 0

    def refresh(self, lease: int, bound: float) -> Refresh:
        """Refresh ``lease``: first through the preferred member, through all of them
        once it did not answer within ``hedge``; give up ``bound`` seconds after the
        start (the members still busy take the next round when they are free)."""
        start = time.monotonic()
        rnd = _Round(lease)
        self.members[self.preferred].ask(rnd)
        with rnd.cond:
            rnd.cond.wait_for(rnd.over, timeout=self.hedge)
            answered = rnd.ttl is not None
        if not answered:
            for member in self._others():
                member.ask(rnd)
        with rnd.cond:
            rnd.cond.wait_for(rnd.over, timeout=max(0.0, start + bound - time.monotonic()))
            result = Refresh(ttl=rnd.ttl, by=rnd.by, error=rnd.error or "no member answered")
        if result.ttl is not None:
            self.preferred = result.by
        return result

    def _others(self) -> Sequence[_Member]:
        return [m for m in self.members if m.index != self.preferred]
