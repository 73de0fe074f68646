"""The decision step's helpers, one rule per test: placement order, the object's
avail, its placement state (the golden table checks whole plans)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from omc.runtime.cluster.decide import (
    RESTART_DELAY,
    Decision,
    Do,
    NodePlan,
    decide,
    decide_object,
    leaders,
    object_avail,
    placement_state,
    sort_candidates,
    started_and_settled,
    timed,
)
from omc.runtime.cluster.model import (
    Expect,
    Instance,
    Intent,
    Node,
    ObjectConfig,
    ObjectView,
    Placement,
    Snapshot,
    State,
)

NODES = ("n1", "n2", "n3")


def view(
    avails: Mapping[str, str] | None = None,
    *,
    path: str = "svc0",
    nodes: tuple[str, ...] = NODES,
    **config: Any,
) -> ObjectView:
    """An object on ``nodes`` with the given instance avails (down where not given)."""
    avails = avails or {}
    cfg = ObjectConfig(path=path, nodes=nodes, **config)
    insts = {n: Instance(node=n, avail=avails.get(n, "down")) for n in nodes}
    return ObjectView(config=cfg, instances=insts)


def snap(*views: ObjectView, **nodes: Node) -> Snapshot:
    """A snapshot of live idle nodes n1..n3 (overridden by ``nodes``) and ``views``."""
    found = {n: Node(name=n) for n in NODES} | nodes
    return Snapshot(nodes=found, objects={v.config.path: v for v in views})


def avail_of(avails: Mapping[str, str] | None = None, **config: Any) -> str:
    """The avail of an object on live nodes n1..n3."""
    v = view(avails, **config)
    return object_avail(v, snap(v))


def placement_of(avails: Mapping[str, str] | None = None, **config: Any) -> str:
    """The placement state of an object on live nodes n1..n3."""
    v = view(avails, **config)
    return placement_state(v, snap(v))


def order(v: ObjectView, s: Snapshot, nodes: tuple[str, ...] = NODES) -> list[str]:
    return sort_candidates(v, s, nodes)


# ---------------------------------------------------------------------------
# sort_candidates


def test_nodes_order_keeps_the_given_order() -> None:
    """nodes order: candidates stay in the order given (DEFAULT.nodes order)."""
    v = view()
    assert order(v, snap(v), ("n3", "n1", "n2")) == ["n3", "n1", "n2"]


def test_spread_sorts_by_md5_of_path_and_node() -> None:
    """spread: the rank is md5(path + node), so it differs between objects."""
    web, db = (
        view(path="web", placement=Placement.SPREAD),
        view(path="db", placement=Placement.SPREAD),
    )
    s = snap(web, db)

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    assert order(web, s) == sorted(NODES, key=lambda n: md5(f"web{n}"))
    assert order(db, s) == sorted(NODES, key=lambda n: md5(f"db{n}"))
    assert order(web, s) != order(db, s)


def test_spread_does_not_depend_on_the_input_order() -> None:
    """spread: the same nodes in another order give the same ranking."""
    v = view(path="web", placement=Placement.SPREAD)
    assert order(v, snap(v), ("n3", "n2", "n1")) == order(v, snap(v), NODES)


def test_score_highest_first_ties_stable() -> None:
    """score: highest node score first; equal scores keep the given order."""
    v = view(placement=Placement.SCORE)
    s = snap(v, n1=Node(name="n1", score=10), n2=Node(name="n2", score=80),
             n3=Node(name="n3", score=80))  # fmt: skip
    assert order(v, s) == ["n2", "n3", "n1"]


def test_load_avg_least_loaded_first() -> None:
    """load avg: lowest load15 first (om3 documents this but sorts nothing)."""
    v = view(placement=Placement.LOAD_AVG)
    s = snap(v, n1=Node(name="n1", load15=2.0), n2=Node(name="n2", load15=0.5),
             n3=Node(name="n3", load15=1.0))  # fmt: skip
    assert order(v, s) == ["n2", "n3", "n1"]


def test_unknown_node_ranks_as_zero() -> None:
    """score and load avg: a node missing from the snapshot counts as 0, no KeyError."""
    v = view(placement=Placement.SCORE)
    s = snap(v, n1=Node(name="n1", score=10))
    assert order(v, s, ("n4", "n1")) == ["n1", "n4"]


def test_last_start_most_recent_first() -> None:
    """last start: the most recent last_started first; never started sorts last."""
    base = view(placement=Placement.LAST_START)
    insts = {
        "n1": Instance(node="n1", last_started=5.0),
        "n2": Instance(node="n2"),
        "n3": Instance(node="n3", last_started=9.0),
    }
    v = ObjectView(config=base.config, instances=insts)
    assert order(v, snap(v)) == ["n3", "n1", "n2"]


def test_shift_rotates_by_scaler_index() -> None:
    """shift: slice <i>.name prefers node i of DEFAULT.nodes (modulo their count)."""
    for index, first in ((0, "n1"), (1, "n2"), (2, "n3"), (4, "n2")):
        v = view(path=f"ns1/svc/{index}.web", placement=Placement.SHIFT)
        assert order(v, snap(v))[0] == first


def test_shift_unscaled_name_is_nodes_order() -> None:
    """shift: a name without a <n>. prefix is not rotated."""
    v = view(path="web", placement=Placement.SHIFT)
    assert order(v, snap(v)) == list(NODES)


def test_shift_rotates_the_scope_not_the_candidates() -> None:
    """shift: a missing candidate does not change the others' rank (1.web: n2, n3, n1)."""
    v = view(path="1.web", placement=Placement.SHIFT)
    assert order(v, snap(v), ("n2", "n3")) == ["n2", "n3"]
    assert order(v, snap(v), ("n1", "n3")) == ["n3", "n1"]


def test_none_has_no_candidate() -> None:
    """none: no candidate at all, hence no leader."""
    v = view(placement=Placement.NONE)
    assert order(v, snap(v)) == []
    assert leaders(v, snap(v)) == []


# ---------------------------------------------------------------------------
# object_avail


def test_failover_avail_counts_up_instances() -> None:
    """failover: 0 up is down, 1 up is up, 2 up is warn."""
    assert avail_of() == "down"
    assert avail_of({"n2": "up"}) == "up"
    assert avail_of({"n1": "up", "n2": "up"}) == "warn"


def test_any_warn_instance_makes_warn() -> None:
    """An instance in warn makes the object warn, whatever the others."""
    v = view({"n1": "up", "n2": "warn"})
    assert object_avail(v, snap(v)) == "warn"


def test_standby_instances_are_not_up() -> None:
    """stdby up and stdby down instances do not count as up."""
    v = view({"n1": "stdby up", "n2": "stdby down", "n3": "up"})
    assert object_avail(v, snap(v)) == "up"


def test_flex_avail_within_and_outside_min_max() -> None:
    """flex: up within [flex_min, flex_max] is up, outside is warn, none up is down."""
    flex = {"topology": "flex", "flex_min": 2, "flex_max": 2, "flex_target": 2}
    assert avail_of(**flex) == "down"
    assert avail_of({"n1": "up"}, **flex) == "warn"
    assert avail_of({"n1": "up", "n2": "up"}, **flex) == "up"
    three = dict.fromkeys(NODES, "up")
    assert avail_of(three, **flex) == "warn"


def test_flex_max_zero_is_unlimited() -> None:
    """flex_max 0: no upper bound."""
    v = view(dict.fromkeys(NODES, "up"), topology="flex", flex_max=0, flex_target=1)
    assert object_avail(v, snap(v)) == "up"


def test_dead_nodes_do_not_count() -> None:
    """An instance on a dead node counts for nothing (its up is stale)."""
    v = view({"n1": "up", "n2": "up"})
    assert object_avail(v, snap(v, n1=Node(name="n1", alive=False))) == "up"


def test_all_na_is_na_and_unknown_is_undef() -> None:
    """Only n/a instances: n/a; no status at all, or no live instance: undef."""
    assert avail_of(dict.fromkeys(NODES, "n/a")) == "n/a"
    assert avail_of(dict.fromkeys(NODES, "undef")) == "undef"
    dead = {n: Node(name=n, alive=False) for n in NODES}
    v = view({"n1": "up"})
    assert object_avail(v, snap(v, **dead)) == "undef"


def test_na_and_undef_instances_are_ignored_beside_known_ones() -> None:
    """n/a and undef instances do not change the avail the others give."""
    v = view({"n1": "n/a", "n2": "undef", "n3": "up"})
    assert object_avail(v, snap(v)) == "up"


# ---------------------------------------------------------------------------
# placement_state


def test_optimal_when_up_on_the_leader() -> None:
    """Up on the leader only: optimal."""
    v = view({"n1": "up"})
    assert placement_state(v, snap(v)) == "optimal"


def test_non_optimal_when_up_on_a_non_leader() -> None:
    """Up on n2 while n1 leads: non-optimal."""
    v = view({"n2": "up"})
    assert placement_state(v, snap(v)) == "non-optimal"


def test_frozen_up_instance_is_not_a_leader() -> None:
    """An up instance that is frozen is no leader: non-optimal (om3's `^`)."""
    base = view({"n1": "up"})
    insts = {**base.instances, "n1": Instance(node="n1", avail="up", frozen=True)}
    v = ObjectView(config=base.config, instances=insts)
    assert placement_state(v, snap(v)) == "non-optimal"


def test_na_when_not_up() -> None:
    """Down or warn objects have no placement state."""
    assert placement_of() == "n/a"
    assert placement_of({"n1": "up", "n2": "up"}) == "n/a"


def test_na_for_placement_none() -> None:
    """placement none (observe only): no placement state, even when up."""
    v = view({"n2": "up"}, placement=Placement.NONE)
    assert placement_state(v, snap(v)) == "n/a"


def test_flex_non_optimal_when_a_leader_is_down() -> None:
    """flex target 2: up on n1 and n3 while n1 and n2 lead is non-optimal."""
    flex = {"topology": "flex", "flex_target": 2, "flex_max": 0}
    v = view({"n1": "up", "n3": "up"}, **flex)
    assert placement_state(v, snap(v)) == "non-optimal"
    v = view({"n1": "up", "n2": "up"}, **flex)
    assert placement_state(v, snap(v)) == "optimal"


def test_leader_follows_a_dead_node() -> None:
    """The leader moves when the first node dies: up on n2 is then optimal."""
    v = view({"n2": "up"})
    assert placement_state(v, snap(v, n1=Node(name="n1", alive=False))) == "optimal"


# ---------------------------------------------------------------------------
# decide: the steps' shape


def test_steps_keep_the_plan_order() -> None:
    """Steps added by the ownership rule keep Do's order (release before done)."""
    base = view()
    insts = {n: Instance(node=n, avail="down", frozen=True, oid="o1") for n in NODES}
    v = ObjectView(config=base.config, instances=insts, owner="n1",
                   intent=Intent(expect=Expect.STOPPED, oid="o1"))  # fmt: skip
    assert decide_object(v, snap(v), "n1").steps == (Do.RELEASE, Do.DONE)


def test_busy_instance_waits() -> None:
    """An instance whose action is in flight gets no step."""
    base = view(orchestrate="ha")
    insts = {**base.instances, "n1": Instance(node="n1", avail="down", state=State.STARTING)}
    v = ObjectView(config=base.config, instances=insts)
    found = decide_object(v, snap(v), "n1")
    assert found.steps == ()
    assert found.reason == "starting"


def test_max_parallel_zero_queues_every_action() -> None:
    """max_parallel 0: every start waits in the queue, nothing else changes."""
    v = view(orchestrate="ha")
    plan = decide(snap(v), "n1", max_parallel=0)
    assert plan.decisions[0].steps == ()
    assert plan.decisions[0].reason.startswith("queued")
    assert decide(snap(v), "n1").decisions[0].steps == (Do.TAKE, Do.START)


def test_timed_names_the_decisions_that_time_alone_may_change() -> None:
    """The periodic decisions of an unchanged snapshot redo only these (daemon)."""
    plan = NodePlan(node="n1", decisions=(
        Decision(path="a", reason=RESTART_DELAY),
        Decision(path="b", steps=(Do.TAKE, Do.START)),
        Decision(path="c", reason="not a leader (n2)"),
        Decision(path="d"),
    ))  # fmt: skip
    assert timed(plan) == {"a", "b"}


def _started_view(**insts: Instance) -> ObjectView:
    base = view()
    return ObjectView(config=base.config, instances={**base.instances, **insts},
                      intent=Intent(expect=Expect.STARTED, oid="o1"))  # fmt: skip


def test_a_start_is_settled_once_up_there_and_idle_everywhere() -> None:
    """A waiting command ends a start once the object is up and done where it is up,
    every live instance acknowledged, unfrozen and idle: the others' ``done`` is only
    a round trip more."""
    up = Instance(node="n1", avail="up", oid="o1", done=True)
    idle = {n: Instance(node=n, avail="down", oid="o1") for n in ("n2", "n3")}
    v = _started_view(n1=up, **idle)
    assert started_and_settled(v, snap(v), "o1")
    assert not started_and_settled(v, snap(v), "o2")  # another orchestration


def test_a_start_is_not_settled_before_that() -> None:
    """Not while the object is down, a peer has not acknowledged, is frozen or acting,
    or the up instance has not said done; nor for another intent than a start."""
    up = Instance(node="n1", avail="up", oid="o1", done=True)
    idle = Instance(node="n3", avail="down", oid="o1")
    for n2 in (
        Instance(node="n2", avail="down"),  # not acknowledged
        Instance(node="n2", avail="down", oid="o1", frozen=True),
        Instance(node="n2", avail="down", oid="o1", state=State.STARTING),
    ):
        v = _started_view(n1=up, n2=n2, n3=idle)
        assert not started_and_settled(v, snap(v), "o1"), n2
    down = _started_view(**{n: Instance(node=n, avail="down", oid="o1") for n in NODES})
    assert not started_and_settled(down, snap(down), "o1")
    peers = {n: Instance(node=n, avail="down", oid="o1") for n in ("n2", "n3")}
    not_done = _started_view(n1=Instance(node="n1", avail="up", oid="o1"), **peers)
    assert not started_and_settled(not_done, snap(not_done), "o1")
    v = _started_view(n1=up, **peers)
    assert started_and_settled(v, snap(v), "o1")
    stop = ObjectView(config=v.config, instances=v.instances,
                      intent=Intent(expect=Expect.STOPPED, oid="o1"))  # fmt: skip
    assert not started_and_settled(stop, snap(stop), "o1")
