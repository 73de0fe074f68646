"""ClusterState's snapshots: each object's view is decoded again only when what it is
made of changed, whichever way it changed (a watch event, or the daemon's own writes)."""

from __future__ import annotations

from omc.compiler.contract.paths import parse_path
from omc.runtime.adapters.etcd import Event, KeyValue
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.state import ClusterState

KEYS = k.Keys("/omc/t/")
SVC0, SVC1 = parse_path("svc0"), parse_path("svc1")


def kv(key: str, value: dict[str, object], revision: int) -> KeyValue:
    return KeyValue(key=key, value=k.encode(value).encode(), mod_revision=revision)


def loaded() -> ClusterState:
    """Two objects, svc0 down on n1 and n2, svc1 up on n1."""
    state = ClusterState(keys=KEYS, members=("n1", "n2"))
    state.load(3, [
        kv(KEYS.node("n1"), {"state": "idle"}, 1),
        kv(KEYS.instance(SVC0, "n1"), {"avail": "down", "config": {"nodes": ["n1", "n2"]}}, 2),
        kv(KEYS.instance(SVC0, "n2"), {"avail": "down"}, 2),
        kv(KEYS.instance(SVC1, "n1"), {"avail": "up"}, 3),
    ])  # fmt: skip
    return state


def test_an_unchanged_object_keeps_its_view() -> None:
    """Two snapshots with nothing changed in between share every object's view."""
    state = loaded()
    first, second = state.snapshot("n1"), state.snapshot("n1")
    assert second.objects["svc0"] is first.objects["svc0"]
    assert second.objects["svc1"] is first.objects["svc1"]


def test_a_watch_event_renews_only_the_view_it_touches() -> None:
    """A put of svc0's n2 instance: svc0's view shows it, svc1's view is the same object."""
    state = loaded()
    before = state.snapshot("n1")
    put = kv(KEYS.instance(SVC0, "n2"), {"avail": "up"}, 4)
    state.apply([Event(kind="put", kv=put)], 4)
    after = state.snapshot("n1")
    assert after.objects["svc0"].instances["n2"].avail == "up"
    assert before.objects["svc0"].instances["n2"].avail == "down"
    assert after.objects["svc1"] is before.objects["svc1"]


def test_the_daemons_direct_writes_are_seen() -> None:
    """The daemon updates the state itself after its writes (an owner, an intent, a
    record replaced, a node's first record): every such change shows in the next view."""
    state = loaded()
    state.snapshot("n1")
    state.owners[SVC0] = "n1"
    assert state.snapshot("n1").objects["svc0"].owner == "n1"
    state.intents[SVC0] = {"expect": "started", "oid": "x"}
    assert state.snapshot("n1").objects["svc0"].intent is not None
    state.instances[SVC0]["n1"] = {**state.instances[SVC0]["n1"], "frozen": True}
    assert state.snapshot("n1").objects["svc0"].instances["n1"].frozen
    state.instances.setdefault(SVC1, {})["n2"] = {"avail": "down"}
    assert set(state.snapshot("n1").objects["svc1"].instances) == {"n1", "n2"}


def test_a_record_replaced_by_an_equal_one_keeps_the_view() -> None:
    """The watch's echo of the daemon's own write (an equal record, a new dict) does not
    decode the view again."""
    state = loaded()
    before = state.snapshot("n1").objects["svc0"]
    echo = kv(KEYS.instance(SVC0, "n2"), {"avail": "down"}, 4)
    state.apply([Event(kind="put", kv=echo)], 4)
    assert state.snapshot("n1").objects["svc0"] is before


def test_the_deciding_node_picks_the_config() -> None:
    """The config comes from the deciding node's record: asking as another node decodes
    the view again rather than reusing the first one."""
    state = loaded()
    assert state.snapshot("n1").objects["svc0"].config.nodes == ("n1", "n2")
    state.instances[SVC0]["n2"] = {"avail": "down", "config": {"nodes": ["n2"]}}
    assert state.snapshot("n2").objects["svc0"].config.nodes == ("n2",)
    assert state.snapshot("n1").objects["svc0"].config.nodes == ("n1", "n2")


def test_a_deleted_object_leaves_the_snapshot() -> None:
    """Deleting svc1's only instance removes it from the next snapshot."""
    state = loaded()
    state.snapshot("n1")
    gone = KeyValue(key=KEYS.instance(SVC1, "n1"), value=b"", mod_revision=4)
    state.apply([Event(kind="delete", kv=gone)], 4)
    assert set(state.snapshot("n1").objects) == {"svc0"}
