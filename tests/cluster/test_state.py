"""The cluster state mirror: etcd keys in, snapshots out (pure; events built by hand)."""

from __future__ import annotations

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters.etcd import Event, KeyValue
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.state import ClusterState

KEYS = k.Keys("/omc/t/")
SVC = ObjectPath(name="svc0")


def put(key: str, value: dict[str, object], revision: int = 1) -> Event:
    return Event(kind="put", kv=KeyValue(key=key, value=k.encode(value).encode(),
                                         mod_revision=revision))  # fmt: skip


def delete(key: str, revision: int = 1) -> Event:
    return Event(kind="delete", kv=KeyValue(key=key, value=b"", mod_revision=revision))


def state_with_two_nodes() -> ClusterState:
    state = ClusterState(keys=KEYS, members=("n1", "n2"))
    state.apply([put(KEYS.node("n1"), {"score": 1}), put(KEYS.node("n2"), {"score": 2}),
                 put(KEYS.instance(SVC, "n1"), {"avail": "up"}),
                 put(KEYS.instance(SVC, "n2"), {"avail": "down"}),
                 put(KEYS.owner(SVC), {"node": "n1"})], 5)  # fmt: skip
    return state


def test_keys_round_trip() -> None:
    """Every key the layout makes parses back to what it names."""
    parsed = KEYS.parse(KEYS.instance(ObjectPath(namespace="ns1", name="web"), "n2"))
    assert parsed is not None
    assert (parsed.space, str(parsed.path), parsed.node) == (k.Space.INSTANCES, "ns1/svc/web", "n2")
    assert KEYS.parse("/omc/other/nodes/n1") is None
    assert KEYS.parse(KEYS.prefix + "instances/root/svc/Bad_Name/n1") is None


def test_a_lost_node_stays_alive_for_the_grace() -> None:
    """A lease expiry deletes the node, its instances and its ownership at once: during
    the grace the node and its instances are still seen (no takeover yet); after it,
    they are gone."""
    state = state_with_two_nodes()
    state.apply([delete(KEYS.node("n1"), 6), delete(KEYS.instance(SVC, "n1"), 6),
                 delete(KEYS.owner(SVC), 6)], 6, now=100.0)  # fmt: skip
    snap = state.snapshot("n2")
    assert snap.alive("n1")
    assert snap.objects["svc0"].instances["n1"].avail == "up"
    assert snap.objects["svc0"].owner is None
    state.forget_lost(100.4, grace=0.5)
    assert state.snapshot("n2").alive("n1")
    state.forget_lost(100.6, grace=0.5)
    snap = state.snapshot("n2")
    assert not snap.alive("n1")
    assert "n1" not in snap.objects["svc0"].instances


def test_an_instance_deleted_on_a_live_node_is_not_kept() -> None:
    """Only the records of lost nodes are kept through the grace."""
    state = state_with_two_nodes()
    state.apply([delete(KEYS.instance(SVC, "n2"), 6)], 6, now=100.0)
    assert "n2" not in state.snapshot().objects["svc0"].instances


def test_a_node_back_is_no_longer_lost() -> None:
    """A node that registers again within the grace is simply alive."""
    state = state_with_two_nodes()
    state.apply([delete(KEYS.node("n1"), 6)], 6, now=100.0)
    state.apply([put(KEYS.node("n1"), {"score": 3}, 7)], 7, now=100.2)
    assert "n1" not in state.lost
    assert state.snapshot().nodes["n1"].score == 3


def test_a_node_lost_while_running_an_object_is_remembered_until_fenced() -> None:
    """After the grace, a lost node that ran svc0 is listed in lost_up (stonith fences
    it before a takeover) until a fenced/<node> key says it was, or it comes back."""
    state = state_with_two_nodes()
    state.apply([delete(KEYS.node("n1"), 6), delete(KEYS.instance(SVC, "n1"), 6)], 6, now=1.0)
    state.forget_lost(2.0, grace=0.5)
    assert state.view(SVC).lost_up == ("n1",)
    state.apply([put(KEYS.fenced("n1"), {"by": "n2"}, 7)], 7)
    assert state.view(SVC).lost_up == ()
    state.apply([delete(KEYS.fenced("n1"), 8), put(KEYS.node("n1"), {}, 8)], 8)
    assert state.view(SVC).lost_up == ()
