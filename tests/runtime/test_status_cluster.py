"""``print status`` on a cluster node: the object line, the peers folded, the local
instance expanded, notes in om3's order; degraded when etcd or a daemon is missing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from omc.runtime.cluster.model import config_from_json, snapshot_from_json
from omc.runtime.drivers.base import Status
from omc.runtime.views.cluster import Local, cluster_view, unreachable
from omc.runtime.views.render import InstanceView, ResourceRow, render_tree, to_data

ROWS = (ResourceRow(rid="fs#1", flags="........", status=Status.UP, label="flag"),
        ResourceRow(rid="app#0", flags="........", status=Status.UP, label="forking"))  # fmt: skip


def local(**changes: Any) -> Local:
    """n1's own observation of web: up, unfrozen, node unfrozen."""
    config = config_from_json({"path": "web", "nodes": ["n1", "n2", "n3"], "orchestrate": "ha",
                               **changes.pop("config", {})})  # fmt: skip
    found = Local(node="n1", avail="up", overall="up", frozen=False, node_frozen=False,
                  config=config)  # fmt: skip
    return replace(found, **changes)


def snapshot(nodes: dict[str, Any] | None = None, **web: Any) -> Any:
    instances = web.pop("instances", {
        "n1": {"avail": "up", "local_expect": "started"},
        "n2": {"avail": "down"}, "n3": {"avail": "down"},
    })  # fmt: skip
    return snapshot_from_json({
        "nodes": nodes if nodes is not None else {"n1": {}, "n2": {}, "n3": {}},
        "objects": {"web": {"config": {"nodes": ["n1", "n2", "n3"]}, "instances": instances,
                            **web}},
    })  # fmt: skip


def tree(part: Any, **changes: Any) -> str:
    found = InstanceView(path="web", node="n1", avail=Status.UP, overall=Status.UP,
                         frozen=False, resources=ROWS, cluster=part)  # fmt: skip
    return render_tree(replace(found, **changes))


def test_peers_are_folded_and_the_local_node_expanded() -> None:
    """Every other node's instance on one line (sorted), then the local one with its
    resources; the local one says its monitor is idle and keeps the instance started."""
    part = cluster_view(snapshot(), local(), name="c1")
    assert tree(part) == (
        "web                      up\n"
        "└ instances\n"
        "  ├ n2                   down  idle\n"
        "  ├ n3                   down  idle\n"
        "  └ n1                   up    idle started\n"
        "    └ resources\n"
        "      ├ fs#1   ........  up    flag\n"
        "      └ app#0  ........  up    forking\n"
    )


def test_notes_follow_om3s_order() -> None:
    """warn, frozen, node-frozen, not-provisioned, p<N>, monitor state, global expect,
    local expect."""
    nodes = {"n1": {}, "n2": {"frozen": True}, "n3": {}}
    instances = {
        "n1": {"avail": "up", "overall": "warn", "local_expect": "started", "oid": "o1"},
        "n2": {"avail": "down", "frozen": True, "provisioned": False, "state": "start failed"},
        "n3": {"avail": "down", "state": "starting", "oid": "o1"},
    }
    snap = snapshot(nodes, instances=instances, intent={"expect": "started", "oid": "o1"})
    part = cluster_view(snap, local(overall="warn", config={"priority": 10}), name="c1")
    lines = tree(part, overall=Status.WARN).splitlines()
    assert lines[:5] == [
        "web                      up    warn",
        "└ instances",
        "  ├ n2                   down  frozen node-frozen not-provisioned p10 start failed"
        " started",
        "  ├ n3                   down  p10 starting started",
        "  └ n1                   up    warn p10 idle started started",
    ]


def test_a_frozen_local_instance_and_node() -> None:
    """The local frozen flags are this node's own (fresher than its record): frozen and
    node-frozen; an up frozen instance has no leader: non-optimal placement."""
    part = cluster_view(snapshot(), local(frozen=True, node_frozen=True), name="c1")
    lines = tree(part, frozen=True).splitlines()
    assert lines[0] == "web                      up    non-optimal placement"
    assert lines[4] == "  └ n1                   up    frozen node-frozen idle started"


def test_every_instance_frozen_is_non_optimal_wherever_it_runs() -> None:
    """Every instance frozen: none is a candidate, so there is no leader and an up
    instance is off it, on n1 (first in nodes) as on n2 (started there by hand), with
    orchestrate = ha or no: non-optimal placement, as om3 shows it (its imon leaves
    frozen instances out of the HA leaders, its omon flags an up non-leader)."""
    down = {"avail": "down", "frozen": True}
    for runs_on in ("n1", "n2"):
        for orchestrate in ("ha", "no"):
            instances = {n: {**down, "avail": "up" if n == runs_on else "down"}
                         for n in ("n1", "n2", "n3")}  # fmt: skip
            avail = "up" if runs_on == "n1" else "down"
            mine = local(avail=avail, overall=avail, frozen=True,
                         config={"orchestrate": orchestrate})  # fmt: skip
            part = cluster_view(snapshot(instances=instances), mine, name="c1")
            assert (part.avail, part.notes) == ("up", ("non-optimal placement",)), (
                runs_on, orchestrate)  # fmt: skip


def test_a_frozen_peer_leaves_the_placement_optimal() -> None:
    """n3 frozen and down, up on n1: n1 still leads, no note; n1 frozen and down, up on
    n2: the leader moves past it to n2, no note either."""
    instances = {"n1": {"avail": "up"}, "n2": {"avail": "down"},
                 "n3": {"avail": "down", "frozen": True}}  # fmt: skip
    part = cluster_view(snapshot(instances=instances), local(), name="c1")
    assert (part.avail, part.placement, part.notes) == ("up", "optimal", ())
    instances = {"n1": {"avail": "down", "frozen": True}, "n2": {"avail": "up"},
                 "n3": {"avail": "down"}}  # fmt: skip
    mine = local(avail="down", overall="down", frozen=True)
    part = cluster_view(snapshot(instances=instances), mine, name="c1")
    assert (part.avail, part.placement, part.notes) == ("up", "optimal", ())


def test_an_instance_up_off_its_leader_is_non_optimal() -> None:
    """Up on n2 while n1 (first in nodes, healthy) is the leader: the object line says so."""
    instances = {"n1": {"avail": "down"}, "n2": {"avail": "up"}, "n3": {"avail": "down"}}
    part = cluster_view(
        snapshot(instances=instances), local(avail="down", overall="down"), name="c1"
    )
    assert part.notes == ("non-optimal placement",)
    assert part.avail == "up"


def test_a_lost_peer_and_a_peer_without_monitor() -> None:
    """A node without a lease: ``undef daemon down``; a live node that published nothing
    for the object: ``no-monitor``."""
    snap = snapshot({"n1": {}, "n2": {}}, instances={"n1": {"avail": "up"}})
    part = cluster_view(snap, local(), name="c1")
    assert [(p.node, p.avail, p.notes) for p in part.peers] == [
        ("n2", "undef", ("no-monitor",)),
        ("n3", "undef", ("daemon down",)),
    ]


def test_the_local_daemon_down() -> None:
    """This node holds no lease: its instance says ``daemon down``, and still counts in
    the object's avail (it was observed here, now)."""
    snap = snapshot({"n2": {}, "n3": {}}, instances={"n2": {"avail": "down"}})
    part = cluster_view(snap, local(), name="c1")
    assert part.local is not None
    assert part.local.notes == ("daemon down",)
    assert part.avail == "up"


def test_etcd_unreachable_shows_the_local_instance_alone() -> None:
    """No cluster state: the object line is this node's, no peer, the local instance
    noted ``no-monitor``; the data form carries the error."""
    part = unreachable("c1", "etcd is unreachable: no etcd endpoint answered", local())
    lines = tree(part).splitlines()
    assert lines[:3] == ["web                      up", "└ instances",
                         "  └ n1                   up  no-monitor"]  # fmt: skip
    found = InstanceView(path="web", node="n1", avail=Status.UP, overall=Status.UP,
                         frozen=False, resources=ROWS, cluster=part)  # fmt: skip
    data = to_data(found)
    assert data["cluster"] == {"name": "c1", "error": part.error}
    assert list(data["instances"]) == ["n1"]  # type: ignore[call-overload]


def test_data_form_has_every_instance_with_its_notes() -> None:
    """``--format json|yaml``: the object's cluster avail and placement; instances peers
    first then the local one, each with avail, frozen flags, priority, monitor, notes;
    the local one keeps its resources."""
    snap = snapshot(intent={"expect": "stopped", "oid": "o1"})
    found = InstanceView(path="web", node="n1", avail=Status.UP, overall=Status.UP,
                         frozen=False, resources=ROWS,
                         cluster=cluster_view(snap, local(), name="c1"))  # fmt: skip
    data = to_data(found)
    assert (data["avail"], data["placement"], data["notes"]) == ("up", "optimal", [])
    instances = data["instances"]
    assert isinstance(instances, dict)
    assert list(instances) == ["n2", "n3", "n1"]
    assert instances["n2"]["monitor"] == {"state": "idle", "global_expect": "stopped",
                                          "local_expect": "none"}  # fmt: skip
    assert instances["n2"]["notes"] == ["idle", "stopped"]
    assert instances["n1"]["notes"] == ["idle", "stopped", "started"]
    assert set(instances["n1"]["resources"]) == {"fs#1", "app#0"}


def test_without_a_cluster_nothing_changes() -> None:
    """A node outside any cluster: no peers, notes from the local flags only."""
    text = tree(None, frozen=True)
    assert text.splitlines()[:3] == ["web                      up", "└ instances",
                                     "  └ n1                   up  frozen"]  # fmt: skip


def test_object_notes_stay_whole_in_the_data_form() -> None:
    """``non-optimal placement`` is one note, in the text and in the data."""
    part = cluster_view(snapshot(), local(frozen=True), name="c1")
    found = InstanceView(path="web", node="n1", avail=Status.UP, overall=Status.UP,
                         frozen=True, resources=ROWS, cluster=part)  # fmt: skip
    assert to_data(found)["notes"] == ["non-optimal placement"]
