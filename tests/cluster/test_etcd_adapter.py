"""The etcd adapter's cluster primitives against a real etcd: revisions, transactions
with leases, keep-alives, and a watch that resumes from the last revision."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from omc.runtime.adapters import etcd as e


@pytest.fixture
def prefix() -> str:
    return f"/t/{uuid.uuid4().hex[:8]}/"


def test_range_gives_keys_and_the_revision(client: e.Etcd, prefix: str) -> None:
    """A prefix read returns its keys (and only them) with the store revision."""
    client.put(prefix + "a", "1")
    client.put(prefix + "b", "2")
    client.put(prefix.rstrip("/") + "x", "outside")
    revision, kvs = client.range(prefix)
    assert [(kv.key, kv.value) for kv in kvs] == [(prefix + "a", b"1"), (prefix + "b", b"2")]
    assert revision >= max(kv.mod_revision for kv in kvs)


def test_create_if_absent_transaction(client: e.Etcd, prefix: str) -> None:
    """version == 0 compares make a key creatable once; the loser reads the holder."""
    key = prefix + "owner"
    first = client.txn([e.when_version(key, "=", 0)], [e.put(key, "n1")], [e.get(key)])
    second = client.txn([e.when_version(key, "=", 0)], [e.put(key, "n2")], [e.get(key)])
    assert first.succeeded
    assert not second.succeeded
    assert [kv.value for kv in second.found] == [b"n1"]


def test_a_key_put_with_a_lease_goes_with_it(client: e.Etcd, prefix: str) -> None:
    """Keys put in a transaction with a lease are deleted when the lease is revoked."""
    lease, ttl = client.lease_grant(5)
    assert ttl >= 5
    client.txn([], [e.put(prefix + "k", "v", lease=lease)])
    (kv,) = client.range(prefix)[1]
    assert kv.lease == lease
    assert client.lease_keepalive(lease) >= 4
    client.lease_revoke(lease)
    assert client.range(prefix)[1] == []
    assert client.lease_keepalive(lease) == 0


def test_watch_delivers_in_order_and_resumes(client: e.Etcd, prefix: str) -> None:
    """Events come in revision order; a watch restarted from a revision misses nothing."""
    revision, _ = client.range(prefix)
    got: list[tuple[str, str, int]] = []
    stop = threading.Event()

    def deliver(events: list[e.Event], rev: int) -> None:
        got.extend((ev.kind, ev.kv.key.removeprefix(prefix), ev.kv.mod_revision) for ev in events)
        if len(got) >= 3:
            stop.set()

    client.put(prefix + "a", "1")
    client.put(prefix + "b", "2")
    client.delete(prefix + "a")
    watcher = threading.Thread(target=client.watch, args=(prefix, revision + 1, deliver, stop))
    watcher.start()
    watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert [(k, key) for k, key, _ in got] == [("put", "a"), ("put", "b"), ("delete", "a")]
    assert [r for *_, r in got] == sorted(r for *_, r in got)


def test_watch_of_a_compacted_revision_says_so(client: e.Etcd, prefix: str) -> None:
    """A watch from before the compaction point raises CompactedError (re-read needed)."""
    client.put(prefix + "a", "1")
    revision, _ = client.range(prefix)
    client.put(prefix + "a", "2")
    client.call("/kv/compaction", {"revision": str(revision + 1), "physical": True})
    with pytest.raises(e.CompactedError):
        client.watch(prefix, revision, lambda ev, rev: None, threading.Event())


def test_an_unreachable_endpoint_is_skipped(etcd_url: str, prefix: str) -> None:
    """A dead first endpoint costs one failed connection, then the live one answers."""
    client = e.Etcd(["http://127.0.0.1:1", etcd_url], timeout=2)
    started = time.monotonic()
    client.put(prefix + "k", "v")
    assert client.range(prefix)[1][0].value == b"v"
    assert time.monotonic() - started < 5
