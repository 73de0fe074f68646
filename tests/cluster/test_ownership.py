"""The ownership key of a failover object (``daemon.claim``) against a real etcd: etcd's
compare-and-put decides who owns it, never what a node's cache says."""

from __future__ import annotations

import uuid

import pytest
from omc.runtime.adapters import etcd as e
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.daemon import Claim, claim


@pytest.fixture
def key() -> str:
    return f"/t/{uuid.uuid4().hex[:8]}/owners/svc0"


def holder(client: e.Etcd, key: str) -> tuple[str, int] | None:
    """The node the key names and the lease it is bound to (None: absent)."""
    _, kvs = client.range(key)
    if not kvs:
        return None
    return str(k.decode(kvs[0].value)["node"]), kvs[0].lease


def test_nobody_owns_it_the_claim_creates_it(client: e.Etcd, key: str) -> None:
    """An absent key is created for the node, bound to its lease."""
    lease, _ = client.lease_grant(30)
    assert claim(client, key, "n1", lease) is Claim.NEW
    assert holder(client, key) == ("n1", lease)


def test_a_peer_owns_it_the_claim_fails_and_leaves_it(client: e.Etcd, key: str) -> None:
    """n2 took the key while n1 was cut off: n1's claim fails and the key still names n2
    under n2's lease (n1 overwrote it when its stale cache said it was n1's, and started
    the object next to n2's)."""
    n1_lease, _ = client.lease_grant(30)
    n2_lease, _ = client.lease_grant(30)
    assert claim(client, key, "n2", n2_lease) is Claim.NEW
    assert claim(client, key, "n1", n1_lease) is Claim.HELD
    assert claim(client, key, "n1", n1_lease, create=False) is Claim.HELD
    assert holder(client, key) == ("n2", n2_lease)


def test_its_own_key_is_bound_to_the_new_lease(client: e.Etcd, key: str) -> None:
    """The key names n1 under an old lease of n1's: the claim re-binds it to the new one,
    so it outlives the old lease."""
    old, _ = client.lease_grant(30)
    new, _ = client.lease_grant(30)
    assert claim(client, key, "n1", old) is Claim.NEW
    assert claim(client, key, "n1", new) is Claim.OURS
    client.lease_revoke(old)
    assert holder(client, key) == ("n1", new)


def test_recovery_does_not_create_a_key_gone_meanwhile(client: e.Etcd, key: str) -> None:
    """Re-binding at start-up (create=False) never creates: a key that expired since the
    read belongs to whoever takes it over."""
    lease, _ = client.lease_grant(30)
    assert claim(client, key, "n1", lease, create=False) is Claim.HELD
    assert holder(client, key) is None
