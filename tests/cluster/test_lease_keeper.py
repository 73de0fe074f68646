"""The hedged lease refresh (``omc.runtime.cluster.lease``) against members that answer,
hang or refuse: fakes of one method, the lab test (tests/cluster/test_lease_lab.py) runs
it against real etcd members stopped and cut off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from omc.runtime.adapters.etcd import EtcdError
from omc.runtime.cluster.lease import Keeper


class Member:
    """A member that answers a TTL, hangs for ``hang`` seconds, or refuses."""

    def __init__(self, mode: str = "answer", hang: float = 5.0) -> None:
        self.mode, self.hang, self.calls = mode, hang, 0

    def lease_keepalive(self, lease: int) -> int:
        self.calls += 1
        if self.mode == "hang":
            time.sleep(self.hang)
            raise EtcdError("timed out")
        if self.mode == "refuse":
            raise EtcdError("connection refused")
        return 4


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def keeper(members: list[Member], stop: threading.Event, hedge: float = 0.05) -> Keeper:
    return Keeper(len(members), lambda i: members[i], stop, hedge=hedge)


def test_members_that_answer_get_one_request_per_refresh(stop: threading.Event) -> None:
    """The idle cost: one keep-alive per period, to one member, not one per member."""
    members = [Member(), Member(), Member()]
    k = keeper(members, stop)
    for _ in range(5):
        assert k.refresh(7, bound=1.0).ttl == 4
    assert [m.calls for m in members] == [5, 0, 0]


def test_a_hung_member_is_hedged_and_the_answering_one_preferred(
    stop: threading.Event,
) -> None:
    """The first member hangs (a member without a leader), the second is cut off: the
    third answers, within the bound, and is asked first from then on."""
    members = [Member("hang"), Member("hang"), Member()]
    k = keeper(members, stop)
    first = k.refresh(7, bound=1.0)
    assert (first.ttl, first.by) == (4, 2)
    assert k.refresh(7, bound=1.0).by == 2
    assert members[2].calls == 2 and members[0].calls == 1 and members[1].calls == 1


def test_a_refusal_is_hedged_without_waiting(stop: threading.Event) -> None:
    """A member that refuses at once (its node dead: connection refused) does not cost
    the hedge delay: the others are asked as soon as it failed."""
    members = [Member("refuse"), Member()]
    k = keeper(members, stop, hedge=5.0)
    begun = time.monotonic()
    assert k.refresh(7, bound=10.0).by == 1
    assert time.monotonic() - begun < 5.0  # not the hedge delay


def test_no_member_answers_within_the_bound(stop: threading.Event) -> None:
    """Every member hangs: no TTL, the round given up at the bound, the error named."""
    members = [Member("hang", 0.5), Member("refuse")]
    done = keeper(members, stop).refresh(7, bound=0.2)
    assert done.ttl is None and done.error == "connection refused"


def test_an_expired_lease_is_reported(stop: threading.Event) -> None:
    """TTL 0 from a member: the lease expired (keys gone), not a failure to refresh."""

    class Expired(Member):
        def lease_keepalive(self, lease: int) -> int:
            return 0

    assert keeper([Expired()], stop).refresh(7, bound=1.0).ttl == 0
