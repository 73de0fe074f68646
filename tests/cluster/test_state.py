"""The cluster state mirror: etcd keys in, snapshots out (pure; events built by hand).
Each object's view is decoded again only when what it is made of changed, whichever way
it changed (a watch event, or the daemon's own writes)."""

from __future__ import annotations

from omc.compiler.contract.paths import ObjectPath, parse_path
from omc.runtime.adapters.etcd import Event, KeyValue
from omc.runtime.cluster import keys as k
from omc.runtime.cluster import monitor, records
from omc.runtime.cluster.model import config_from_json, instance_from_json
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
    web = ObjectPath(namespace="ns1", name="web")
    made = {KEYS.node("n1"): (k.Space.NODES, None, "n1", ""),
            KEYS.node_intent("n1"): (k.Space.NODE_INTENTS, None, "n1", ""),
            KEYS.fenced("n1"): (k.Space.FENCED, None, "n1", ""),
            KEYS.request("n1", "r1"): (k.Space.REQUESTS, None, "n1", "r1"),
            KEYS.instance(web, "n2"): (k.Space.INSTANCES, web, "n2", ""),
            KEYS.summary(web, "n2"): (k.Space.SUMMARIES, web, "n2", ""),
            KEYS.owner(web): (k.Space.OWNERS, web, "", ""),
            KEYS.intent(web): (k.Space.INTENTS, web, "", ""),
            KEYS.config(web): (k.Space.CONFIGS, web, "", "")}  # fmt: skip
    for key, named in made.items():
        parsed = KEYS.parse(key)
        assert parsed is not None
        assert (parsed.space, parsed.path, parsed.node, parsed.rid) == named
        assert KEYS.parse(key + "/x") is None  # one segment too many
    assert KEYS.parse(KEYS.secret("sync")) is None
    assert KEYS.parse(KEYS.prefix + "summaries/ns1/svc/web") is None


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


def test_one_objects_keys_leave_out_the_objects_that_share_its_name_as_a_prefix() -> None:
    """A command about svc0 reads its instances, not svc01's (the prefix ends with /)."""
    reads = dict(KEYS.of_object(parse_path("svc0")))
    mine = KEYS.instance(parse_path("svc0"), "n1")
    theirs = KEYS.instance(parse_path("svc01"), "n1")
    prefixes = [key for key, prefix in reads.items() if prefix]
    assert any(mine.startswith(p) for p in prefixes)
    assert not any(theirs.startswith(p) for p in prefixes)
    assert reads[KEYS.intent(parse_path("svc0"))] is False


# A record as a daemon publishes it (records.instance_record), fields away from defaults.
RECORD = {
    "avail": "up", "overall": "warn", "frozen": True, "provisioned": True,
    "resources": {"fs#1": {"status": "up", "restart": 2, "monitor": True}},
    "config": {"nodes": ["n1", "n2"], "topology": "failover", "orchestrate": "ha",
               "placement": "nodes order", "flex_min": 1, "flex_max": 2, "flex_target": 1,
               "priority": 50, "hard_affinity": [], "monitor_action": ["none"],
               "stonith": False},
    "config_error": "", "config_sha": "ab" * 32, "state": "starting", "oid": "o1",
    "done": False, "local_expect": "started", "last_started": 12.5,
    "restarts": {"fs#1": {"remaining": 1, "last": 3.0}}, "monitor_action_at": 0.0,
    "took_over": 11.0, "took_over_why": "placed on n1",
}  # fmt: skip


def published(path: ObjectPath, node: str, record: dict[str, object]) -> list[Event]:
    """What a daemon writes for one instance: its record, and its summary."""
    return [put(KEYS.instance(path, node), record),
            put(KEYS.summary(path, node), records.instance_summary(record))]  # fmt: skip


def test_a_summary_decodes_as_its_record_but_what_om_mon_never_shows() -> None:
    """A summary leaves out resources, restarts, the config's sha, the monitor action's
    time, and what the decoders default to, and decodes to what the record does without
    them: the same instance, the same config."""
    bare = {**RECORD, "avail": "down", "overall": "down", "frozen": False, "state": "idle",
            "oid": "", "local_expect": "none", "last_started": 0.0, "took_over": 0.0,
            "took_over_why": ""}  # fmt: skip
    unseen = {"avail": "undef", "config": {}}  # installed, not observed yet
    assert records.instance_summary(unseen) == {"avail": "undef", "config": {}}
    for record in (RECORD, bare, unseen, {"avail": "undef", "config_error": "bad"}):
        summary = records.instance_summary(record)
        assert not set(summary) & set(records.NOT_SUMMARIZED)
        shown = {k: v for k, v in record.items() if k not in records.NOT_SUMMARIZED}
        assert instance_from_json("n1", summary) == instance_from_json("n1", shown)
        configs = [config_from_json({**r.get("config", {}), "path": "x"}) for r in (summary, shown)]
        assert configs[0] == configs[1]
    assert records.instance_summary(bare) == {
        "avail": "down",
        "config": {"nodes": ["n1", "n2"], "orchestrate": "ha", "flex_max": 2},
    }
    assert len(k.encode(records.instance_summary(RECORD))) < len(k.encode(RECORD)) / 2


class Counted(str):
    """A string that counts its decodings (``str()`` of it)."""

    calls = 0

    def __str__(self) -> str:
        Counted.calls += 1
        return str.__str__(self)


def test_a_summary_decodes_each_field_of_the_record_once() -> None:
    """A summary decodes the record once, not once per field to see what the defaults
    cover (~0.2 ms a changed record, bench/summary.py): ``oid`` is decoded for the
    whole record, and never again when the other fields are tried without."""
    Counted.calls = 0
    oid, why = Counted("o1"), Counted("")
    summary = records.instance_summary({**RECORD, "oid": oid, "took_over_why": why})
    assert summary["oid"] == "o1" and "took_over_why" not in summary
    assert Counted.calls == 2  # oid's and took_over_why's own decodings, once each


def test_overall_is_left_out_when_it_is_the_avail() -> None:
    """An absent overall decodes as the avail (its fallback): left out when it equals
    the avail, kept when the avail is left out and it differs, in any field order."""
    for record, summary in (
        ({"avail": "up", "overall": "up"}, {"avail": "up"}),
        ({"overall": "up", "avail": "up"}, {"avail": "up"}),
        ({"avail": "up", "overall": "warn"}, {"avail": "up", "overall": "warn"}),
        ({"avail": "undef", "overall": "up"}, {"overall": "up", "avail": "undef"}),
        ({"overall": "undef", "avail": "undef"}, {"avail": "undef"}),
    ):
        assert records.instance_summary(record) == summary
        assert instance_from_json("n1", summary) == instance_from_json("n1", record)


def test_the_field_tables_are_the_decoders() -> None:
    """Every field of an instance and of an object config but the one the reader
    supplies has its entry in the tables its decoder and the summaries read, and a
    fallback has no fallback of its own."""
    from dataclasses import fields

    from omc.runtime.cluster.model import CONFIG_FIELDS, INSTANCE_FIELDS, Instance, ObjectConfig

    assert {f.name for f in fields(Instance)} == {"node", *INSTANCE_FIELDS}
    assert {f.name for f in fields(ObjectConfig)} == {"path", *CONFIG_FIELDS}
    for table in (INSTANCE_FIELDS, CONFIG_FIELDS):
        assert all(not table[s.fallback].fallback for s in table.values() if s.fallback)


def test_a_state_reads_one_of_the_instance_spaces() -> None:
    """The daemon's state holds the records (summaries ignored), ``om mon``'s the
    summaries (records ignored): a watch event of the other space changes nothing."""
    daemon, mon = ClusterState(keys=KEYS), ClusterState(keys=KEYS, summaries=True)
    for state in (daemon, mon):
        state.apply(published(SVC, "n1", RECORD), 2)
    assert daemon.instances[SVC]["n1"] == RECORD
    assert mon.instances[SVC]["n1"] == records.instance_summary(RECORD)
    assert daemon.apply([put(KEYS.summary(SVC, "n1"), {"avail": "down"})], 3) == set()
    assert mon.apply([put(KEYS.instance(SVC, "n1"), {"avail": "down"})], 3) == set()
    assert daemon.instances[SVC]["n1"] == RECORD
    assert mon.instances[SVC]["n1"]["avail"] == "up"


def test_a_lost_nodes_summaries_stay_for_the_grace() -> None:
    """In ``om mon``'s state (``--watch``), a lease expiry deletes the node and its
    summaries at once: its instances are still shown during the grace, not after."""
    state = ClusterState(keys=KEYS, members=("n1", "n2"), summaries=True)
    state.apply([put(KEYS.node("n1"), {}), put(KEYS.node("n2"), {}),
                 *published(SVC, "n1", RECORD), *published(SVC, "n2", {"avail": "down"})],
                5)  # fmt: skip
    state.apply([delete(KEYS.node("n1"), 6), delete(KEYS.instance(SVC, "n1"), 6),
                 delete(KEYS.summary(SVC, "n1"), 6)], 6, now=100.0)  # fmt: skip
    assert state.snapshot("n2").objects["svc0"].instances["n1"].avail == "up"
    state.forget_lost(100.6, grace=0.5)
    assert "n1" not in state.snapshot("n2").objects["svc0"].instances


def test_what_om_mon_reads_draws_the_same_frame() -> None:
    """``om mon`` reads only :meth:`~.keys.Keys.of_monitor` (the instances' summaries,
    the configs' names, not their text): what it draws from that is what the whole
    prefix draws, an object that is only configured (no instance, no intent) included."""
    web, db = ObjectPath(name="web"), ObjectPath(name="db")
    bare = {**RECORD, "state": "idle", "avail": "down", "overall": "down"}
    every = [KeyValue(key=e.kv.key, value=e.kv.value, mod_revision=1)
             for e in [put(KEYS.node("n1"), {"score": 1, "started": 1.0}),
                       put(KEYS.node("n2"), {"score": 2, "started": 2.0}),
                       *published(SVC, "n1", RECORD), *published(SVC, "n2", bare),
                       put(KEYS.intent(web), {"expect": "started", "oid": "o1"}),
                       put(KEYS.config(db), {"text": "[DEFAULT]\n", "scope": ["n1"]}),
                       put(KEYS.node_intent("n1"), {"freeze": True}),
                       put(KEYS.request("n1", "r1"), {"clear": "svc0"}),
                       put(KEYS.secret("sync"), {"x": 1})]]  # fmt: skip
    read = [KeyValue(key=kv.key, value=b"" if keys_only else kv.value, mod_revision=1)
            for kv in every for prefix, keys_only in KEYS.of_monitor()
            if kv.key.startswith(prefix)]  # fmt: skip
    whole, shown = (
        ClusterState(keys=KEYS, members=("n1", "n2")),
        ClusterState(keys=KEYS, members=("n1", "n2"), summaries=True),
    )
    whole.load(3, every)
    shown.load(3, read)
    assert sum(len(kv.value) for kv in read) < sum(len(kv.value) for kv in every) / 3
    assert [str(p) for p in shown.paths()] == ["db", "svc0", "web"]
    for local in ("n1", "n2", ""):
        frames = [monitor.state_frame(s, local=local, now=10.0, verbose=True)
                  for s in (whole, shown)]  # fmt: skip
        assert frames[0] == frames[1]
        data = [monitor.to_data(s.snapshot(local)) for s in (whole, shown)]
        assert data[0] == data[1]
