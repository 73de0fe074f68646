"""The hedged lease refresh (``omc.runtime.cluster.lease``) against members that answer,
hang or refuse: fakes of one method, run on the keeper's real threads. The lab tests
(tests/cluster/test_lease_lab.py) run it against real etcd members stopped and cut off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from omc.runtime.adapters.etcd import EtcdError
from omc.runtime.cluster.lease import Keeper

# Wide enough for a loaded CI machine: a thread woken 0.1 s late made the preferred
# member's answer overdue, and the hedge (rightly) asked the others.
KEEPALIVE, HEDGE, RETRY, URGENT = 0.5, 0.25, 0.02, 0.1


class Member:
    """A member that answers a TTL, hangs, or refuses (``mode`` may change meanwhile)."""

    def __init__(self, mode: str = "answer") -> None:
        self.mode, self.calls = mode, 0

    def lease_keepalive(self, lease: int) -> int:
        self.calls += 1
        if self.mode == "hang":
            time.sleep(KEEPALIVE)  # a minority member: until the call's timeout
            raise EtcdError("timed out")
        if self.mode == "refuse":
            raise EtcdError("connection refused")
        return 0 if self.mode == "expired" else 4


class Run:
    """A keeper over ``members``, with what it reported."""

    def __init__(self, members: list[Member], stop: threading.Event) -> None:
        self.members = members
        self.answers: list[tuple[int, float, int]] = []
        self.connects: list[tuple[int, float]] = []  # (member, timeout) of each connection
        self.errors: list[str] = []
        self.keeper = Keeper(
            len(members),
            self.connect,
            lease=lambda: 7,
            on_ttl=lambda lease, sent, ttl: self.answers.append((lease, sent, ttl)),
            on_error=self.errors.append,
            keepalive=KEEPALIVE,
            hedge=HEDGE,
            retry=RETRY,
            urgent=URGENT,
            stop=stop,
        )
        self.keeper.run()

    def connect(self, index: int, timeout: float) -> Member:
        self.connects.append((index, timeout))
        return self.members[index]

    def refreshed_by(self) -> int:
        with self.keeper.cond:
            return self.keeper.preferred


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def wait_for(what: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        assert time.monotonic() < end, "not within 5 s"
        time.sleep(0.005)


def test_members_that_answer_get_one_request_per_period(stop: threading.Event) -> None:
    """The idle cost: one keep-alive per period, to one member, not one per member."""
    run = Run([Member(), Member(), Member()], stop)
    wait_for(lambda: len(run.answers) >= 5)
    assert run.members[1].calls == run.members[2].calls == 0
    assert {lease for lease, _, _ in run.answers} == {7}


def test_a_hung_member_is_hedged_and_the_answering_one_preferred(
    stop: threading.Event,
) -> None:
    """The first member hangs (a member without a leader), the second refuses (a dead
    node): the third answers, and is the one asked from then on."""
    run = Run([Member("hang"), Member("refuse"), Member()], stop)
    wait_for(lambda: run.refreshed_by() == 2)
    calls = run.members[2].calls
    wait_for(lambda: run.members[2].calls >= calls + 3)
    assert run.errors, "the hung and refusing members were not asked"
    hung = run.members[0].calls
    run.members[0].mode = "answer"  # back: not asked while the third answers
    time.sleep(5 * KEEPALIVE)
    assert run.members[0].calls <= hung + 1  # at most the request in flight


def test_while_no_member_answers_each_keeps_trying(stop: threading.Event) -> None:
    """A partition: every member fails. Each is tried again ``retry`` after its own
    failure, so the first one able to answer after the heal does, without waiting for
    a period or for the others."""
    run = Run([Member("refuse"), Member("refuse")], stop)
    wait_for(lambda: min(m.calls for m in run.members) >= 5)
    assert not run.answers
    run.members[1].mode = "answer"  # healed
    wait_for(lambda: bool(run.answers))
    assert run.refreshed_by() == 1


def test_an_expired_lease_is_reported_not_hammered(stop: threading.Event) -> None:
    """TTL 0: the lease expired (its keys are gone), reported with the lease it was;
    asked again only ``retry`` later (the daemon grants a new one meanwhile)."""
    run = Run([Member("expired")], stop)
    wait_for(lambda: bool(run.answers))
    assert run.answers[0][0] == 7 and run.answers[0][2] == 0
    time.sleep(10 * RETRY)
    assert run.members[0].calls <= 15  # at most one per retry (20 ms) over ~0.2 s


def test_overdue_refreshes_are_bounded_by_the_urgent_timeout(stop: threading.Event) -> None:
    """A partition: the refresh due goes out bounded by ``keepalive``; once it is overdue,
    each member is asked on a connection bounded by ``urgent``, so that the first request
    after the heal is sent within ``urgent + retry`` (a request sent just before the heal
    may be lost with the partition's packets: its member waits out its bound)."""
    run = Run([Member("hang"), Member("hang")], stop)
    wait_for(lambda: min(m.calls for m in run.members) >= 3)
    assert (0, KEEPALIVE) in run.connects, run.connects  # the refresh due, not yet overdue
    assert {(0, URGENT), (1, URGENT)} <= set(run.connects), run.connects
    assert (1, KEEPALIVE) not in run.connects, "the hedged member asked before overdue"


def test_a_failing_member_waits_retry_between_its_requests(stop: threading.Event) -> None:
    """A member that refuses at once (a dead node's address: connection refused) is asked
    again ``retry`` after each failure, not in a busy loop: at most one request per
    ``retry`` while the refresh is overdue."""
    run = Run([Member("refuse")], stop)
    wait_for(lambda: run.members[0].calls >= 1)
    first = run.members[0].calls
    time.sleep(20 * RETRY)
    assert run.members[0].calls - first <= 21, run.members[0].calls  # one per 20 ms at most
    assert run.members[0].calls - first >= 5, "the member was not asked again"
