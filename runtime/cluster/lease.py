"""The node lease's refresh, hedged across the etcd members.

While refreshes succeed, one member is asked, every ``keepalive``: the one that answered
last. When the refresh due has not succeeded ``hedge`` seconds later (the member hangs,
or refused), every member is asked, each on its own connection and thread, again and
again (``retry`` after each failure), until one answers; that one is asked first from
then on. An overdue request is bounded by ``urgent`` seconds, not ``keepalive``.

Why: one client walking the endpoints in turn lost the detection time whenever a member
could not answer. It waited ``keepalive`` on its own member (no leader during an
election), as long again on a dead node's address, and was cut just as the new leader
could have answered: at each death of the etcd leader's node, healthy nodes stopped
their failover instances (bench/chaos.py, detection 2 s). Refreshing through every
member at once, always, cured that but tripled an idle node's keep-alives, its largest
idle cost. The hedge keeps one request per ``keepalive`` while the members answer;
while they do not, the members' requests go out staggered, as soon as each is free, so
that the first one possible after a heal or an election succeeds. Bounded by
``keepalive``, a request sent just before a heal kept its member busy for that long (its
packets, or its connection's SYN, were lost in the partition): a node healed 0.1 s after
its fencing began waited up to ``keepalive + retry`` for a refresh that would have moved
its split-action deadline, and missed that deadline in the lab (tests/cluster/
test_lease_lab.py). Overdue requests are bounded by ``urgent`` (shorter): the first
request sent after the heal comes at most ``urgent + retry`` after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from omc.runtime.adapters.etcd import EtcdError


class LeaseClient(Protocol):
    def lease_keepalive(self, lease: int) -> int: ...


class Keeper:
    """Hedged refreshes of the lease ``lease()`` returns (0: none now, being granted),
    through ``count`` members (``connect(i, timeout)`` opens a client of member ``i``
    whose requests are bounded by ``timeout``).

    ``on_ttl(lease, sent, ttl)`` reports each answer (``sent``: when the request left,
    the conservative end of its round trip; ``ttl`` 0: that lease expired), ``on_error``
    each failure. Both are called from the members' threads."""

    def __init__(
        self,
        count: int,
        connect: Callable[[int, float], LeaseClient],
        *,
        lease: Callable[[], int],
        on_ttl: Callable[[int, float, int], None],
        on_error: Callable[[str], None],
        keepalive: float,
        hedge: float,
        retry: float,
        urgent: float,
        stop: threading.Event,
    ):
        self.count, self.connect, self.lease = count, connect, lease
        self.on_ttl, self.on_error = on_ttl, on_error
        self.keepalive, self.hedge, self.retry, self.urgent = keepalive, hedge, retry, urgent
        self.stop = stop
        self.cond = threading.Condition()
        self.last_sent_ok = time.monotonic()  # a lease just granted counts as refreshed
        self.preferred = 0
        self.not_before = [0.0] * count  # a member's next try after its failure

    def run(self) -> None:
        """Start one thread per member, and return."""
        for index in range(self.count):
            threading.Thread(target=self._member, args=(index,), name=f"lease-{index}",
                             daemon=True).start()  # fmt: skip

    def when(self, index: int) -> float:
        """When member ``index`` sends next (monotonic; under ``cond``): the preferred
        one when the refresh is due, the others ``hedge`` later, none sooner than
        ``retry`` after its own failure."""
        due = self.last_sent_ok + self.keepalive
        if index != self.preferred:
            due += self.hedge
        return max(due, self.not_before[index])

    def _wait_turn(self, index: int) -> tuple[int, bool]:
        """Block until member ``index`` should send; the lease to refresh (0: stop), and
        whether the refresh is overdue (past ``hedge`` after it was due)."""
        with self.cond:
            while not self.stop.is_set():
                now = time.monotonic()
                at = self.when(index)
                lease = self.lease() if at <= now else 0
                if lease:
                    return lease, now >= self.last_sent_ok + self.keepalive + self.hedge
                # cond is notified on every success (which moves ``when``); a wait of
                # ``retry`` at most when no lease is held (the daemon is granting one).
                self.cond.wait(max(at - now, 0.0) if at > now else self.retry)
        return 0, False

    def _member(self, index: int) -> None:
        clients: dict[bool, LeaseClient] = {}  # overdue or not: each its own connection
        while True:
            lease, overdue = self._wait_turn(index)
            if not lease:
                return
            sent = time.monotonic()
            try:
                if overdue not in clients:
                    clients[overdue] = self.connect(index, self.urgent if overdue else
                                                    self.keepalive)  # fmt: skip
                ttl = clients[overdue].lease_keepalive(lease)
            except EtcdError as exc:
                with self.cond:
                    self.not_before[index] = time.monotonic() + self.retry
                self.on_error(str(exc))
                continue
            with self.cond:
                if ttl > 0 and sent > self.last_sent_ok:
                    self.last_sent_ok, self.preferred = sent, index
                elif ttl <= 0:  # expired: asked again once the daemon holds a new one
                    self.not_before[index] = time.monotonic() + self.retry
                self.cond.notify_all()
            self.on_ttl(lease, sent, ttl)
