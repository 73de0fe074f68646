"""The cluster's decision step, pure: a snapshot in, one node's next steps out.

Every node's daemon runs :func:`decide` for itself whenever the snapshot changes
(an etcd event, a local status change, an action that finished) and carries out
the steps (:mod:`.daemon`) in order, stopping at the first one that fails (a
launched action counts as carried out: its end is a later status change). Nothing
here reads a clock, etcd or systemd, so the whole orchestrator is tested
Pacemaker-style: a snapshot in, a plan out, for every node
(``tests/cluster/decide_golden``).

Semantics follow om3's instance monitor (opensvc.md §5.3-§5.5; the om3 notes in
docs/cluster.md list where we differ, and why). The parts that make it safe:

* a failover instance starts only after its node took the object's **ownership**
  key in an etcd transaction (:attr:`Do.TAKE`), and only once every live peer has
  published a status that is not up; a start is never decided from a node's local
  view alone, and no "ready period" is needed to let peers object;
* a node gives the ownership back (:attr:`Do.RELEASE`) as soon as its instance is
  down and it is not about to start it, so a failed or stopped owner never blocks
  the next candidate; an instance found up without an owner takes it;
* an instance acts only on the orchestration it has acknowledged, one action at a
  time, and a ``… failed`` state blocks it until ``clear`` or a new intent: the
  action that failed is never repeated by the same orchestration;
* an orchestration ends (:attr:`Do.END`) only once every live instance is done,
  and every node reaches done: no handler waits for a peer that will not act.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from omc.runtime.cluster.model import (
    DOWN_LIKE,
    UP,
    UP_LIKE,
    Expect,
    Instance,
    ObjectConfig,
    ObjectView,
    Placement,
    Snapshot,
    State,
)

MAX_PARALLEL = 10  # node.max_parallel: actions a node runs at once (om3's default)
RESTART_DELAY = "restart_delay"  # the reason of a wait that only time ends
QUEUED = "queued: node.max_parallel actions running"  # a wait for another object's action
RANKABLE_NODE_STATES = frozenset({"idle"})
# A local avail that proves the instance holds nothing (``undef`` proves nothing).
RELEASABLE = DOWN_LIKE - {"undef"}


class Do(StrEnum):
    """What a node does for an object, in the order a plan lists them."""

    ACK = "ack"  # take the intent's orchestration: monitor oid, done false, state idle
    CLEAR = "clear"  # monitor state back to idle (a failure cleared)
    UNFREEZE = "unfreeze"
    FREEZE = "freeze"
    FENCE = "fence"  # stonith: fence the lost nodes it ran on (view.lost_up) before a takeover
    TAKE = "take"  # own the failover object (etcd transaction bound to the node lease)
    START = "start"  # `om <path> instance start`, origin daemon/monitor
    STOP = "stop"
    RESTART = "restart"
    RESTART_RESOURCES = "restart resources"  # `instance start --rid …` of down resources
    EVICT = "evict"  # monitor_action switch: stop, then `start failed` (no longer a candidate)
    SPLIT = "split"  # monitor_action crash|reboot: the node's split action
    RELEASE = "release"  # give the failover ownership back
    DONE = "done"  # this instance is done with the orchestration (after a restart:
    # the daemon marks it, as only it knows the restart ran)
    END = "end"  # every instance is done: remove the intent (transaction on its oid)


LAUNCHES = frozenset(
    {Do.START, Do.STOP, Do.RESTART, Do.RESTART_RESOURCES, Do.EVICT}
)  # run as actions, count in parallel
_ORDER = {step: rank for rank, step in enumerate(Do)}
# A failure state blocks the action that failed until `clear` or a new intent.
_FAILED_ACTION = {
    State.START_FAILED: Do.START,
    State.STOP_FAILED: Do.STOP,
    State.FREEZE_FAILED: Do.FREEZE,
    State.UNFREEZE_FAILED: Do.UNFREEZE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One object's next steps on one node, or why there are none (``reason``)."""

    path: str
    steps: tuple[Do, ...] = ()
    reason: str = ""
    priority: int = 50
    rids: tuple[str, ...] = ()  # the resources of a `restart resources` step

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"steps": [str(s) for s in self.steps]}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePlan:
    """Everything one node does next, objects in path order."""

    node: str
    decisions: tuple[Decision, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {d.path: d.to_json() for d in self.decisions}


def _wait(path: str, reason: str) -> Decision:
    return Decision(path=path, reason=reason)


def _do(path: str, *steps: Do, reason: str = "") -> Decision:
    return Decision(path=path, steps=steps, reason=reason)


# ---------------------------------------------------------------------------
# Placement (opensvc.md §5.3)


def _spread_key(path: str, node: str) -> str:
    """A stable pseudo-random rank per (object, node): om3 means this but its code
    sorts by node name (it appends md5("") to the name instead of hashing it)."""
    return hashlib.md5(f"{path}{node}".encode(), usedforsecurity=False).hexdigest()


def _scaler_index(path: str) -> int:
    """The ``<n>.`` prefix of a scaled object's name (``3.web`` → 3), else 0."""
    name = path.rsplit("/", 1)[-1]
    head, dot, _ = name.partition(".")
    return int(head) if dot and head.isdigit() else 0


def _shifted(nodes: tuple[str, ...], path: str) -> list[str]:
    """``DEFAULT.nodes`` rotated by the scaler index: slice ``i`` prefers node ``i``.
    The whole list turns, not the candidates, so that a node going away does not
    move every slice's preference (om3 turns the candidates, and only past n)."""
    if not nodes:
        return []
    shift = _scaler_index(path) % len(nodes)
    return [*nodes[shift:], *nodes[:shift]]


def sort_candidates(view: ObjectView, snap: Snapshot, nodes: Iterable[str]) -> list[str]:
    """Candidates in placement order, best first (``none``: no candidate at all).
    Every sort is stable: ties keep the order ``nodes`` came in."""
    cfg = view.config
    chosen = list(nodes)
    policy = cfg.placement
    if policy is Placement.NONE:
        return []
    if policy is Placement.SPREAD:
        return sorted(chosen, key=lambda n: _spread_key(cfg.path, n))
    if policy is Placement.SCORE:
        return sorted(chosen, key=lambda n: -_node_metric(snap, n, "score"))
    if policy is Placement.LOAD_AVG:  # least loaded first (om3 has no case for it)
        return sorted(chosen, key=lambda n: _node_metric(snap, n, "load15"))
    if policy is Placement.LAST_START:
        return sorted(chosen, key=lambda n: -_last_started(view, n))
    if policy is Placement.SHIFT:
        order = {n: i for i, n in enumerate(_shifted(cfg.nodes, cfg.path))}
        return sorted(chosen, key=lambda n: order.get(n, len(order)))
    return chosen


def _node_metric(snap: Snapshot, name: str, metric: str) -> float:
    """A node's score or load, 0 for a node the snapshot does not know."""
    node = snap.nodes.get(name)
    return float(getattr(node, metric)) if node is not None else 0.0


def _last_started(view: ObjectView, node: str) -> float:
    inst = view.instance(node)
    return inst.last_started if inst else 0.0


def _affine(view: ObjectView, snap: Snapshot, node: str) -> bool:
    """Hard affinity (objects whose instance here must be up or n/a) and anti-affinity
    (objects whose instance here must not be up)."""
    for other in view.config.hard_affinity:
        found = snap.objects.get(other)
        inst = found.instance(node) if found else None
        if inst is None or inst.avail not in (UP, "n/a"):
            return False
    for other in view.config.hard_anti_affinity:
        found = snap.objects.get(other)
        inst = found.instance(node) if found else None
        if inst is not None and inst.avail in UP_LIKE:
            return False
    return True


def candidates(view: ObjectView, snap: Snapshot, *, ignore_frozen: bool = False) -> list[str]:
    """The nodes that may run the object, in placement order: alive, rankable and
    unfrozen nodes of ``DEFAULT.nodes`` whose instance is unfrozen, provisioned,
    compiled, not ``start failed``, and whose affinities hold."""
    found = []
    for name in view.config.nodes:
        node = snap.nodes.get(name)
        inst = view.instance(name)
        if node is None or not node.alive or node.state not in RANKABLE_NODE_STATES:
            continue
        if inst is None or inst.avail == "n/a" or inst.config_error or not inst.provisioned:
            continue
        if inst.state is State.START_FAILED:
            continue
        if not ignore_frozen and (node.frozen or inst.frozen):
            continue
        if _affine(view, snap, name):
            found.append(name)
    return sort_candidates(view, snap, found)


def leaders(view: ObjectView, snap: Snapshot, *, ignore_frozen: bool = False) -> list[str]:
    """The nodes where the object should run: the first candidate, or the first
    ``flex_target`` candidates of a flex object."""
    return candidates(view, snap, ignore_frozen=ignore_frozen)[: view.config.wanted_up]


def _runners(view: ObjectView, snap: Snapshot) -> list[str]:
    """The leaders that still have to start for the object to be started. None for
    a failover object already (partly) up somewhere: a second instance is never
    started beside a ``warn`` one, and starting the ``warn`` one again changes
    nothing (resource restart is what repairs it)."""
    live = live_instances(view, snap)
    if not view.config.flex and any(i.avail in UP_LIKE for i in live):
        return []
    up_like = {i.node for i in live if i.avail in UP_LIKE}
    return [n for n in leaders(view, snap) if n not in up_like]


# ---------------------------------------------------------------------------
# Object state


def live_instances(view: ObjectView, snap: Snapshot) -> list[Instance]:
    """Instances on live nodes of the object's scope."""
    return [i for n, i in sorted(view.instances.items()) if snap.alive(n)]


def up_count(view: ObjectView, snap: Snapshot) -> int:
    return sum(1 for i in live_instances(view, snap) if i.avail == UP)


def started(view: ObjectView, snap: Snapshot) -> bool:
    """Failover: an instance is up; flex: at least ``flex_target`` are."""
    return up_count(view, snap) >= view.config.wanted_up


def object_avail(view: ObjectView, snap: Snapshot) -> str:
    """The object's avail from its live instances' (opensvc.md §6.1): ``n/a`` when
    they are all n/a, ``undef`` when none tells (no live instance, or no status)."""
    return aggregate_avail([i.avail for i in live_instances(view, snap)], view.config)


def aggregate_avail(live: Sequence[str], cfg: ObjectConfig) -> str:
    """:func:`object_avail` of the live instances' avails (``om mon`` aggregates their
    overall statuses the same way)."""
    avails = [a for a in live if a not in ("n/a", "undef")]
    if not avails:
        return "n/a" if "n/a" in live else "undef"
    if "warn" in avails:
        return "warn"
    ups = avails.count(UP)
    if cfg.flex:
        if ups == 0:
            return "down"
        too_many = cfg.flex_max > 0 and ups > cfg.flex_max
        return "warn" if ups < cfg.flex_min or too_many else UP
    return {0: "down", 1: UP}.get(ups, "warn")


def placement_state(view: ObjectView, snap: Snapshot) -> str:
    """``non-optimal`` when the object is up but a leader is not, or a non-leader is;
    ``n/a`` when it is not up, or has no placement (``none``: observe only)."""
    if object_avail(view, snap) != UP or view.config.placement is Placement.NONE:
        return "n/a"
    chosen = set(leaders(view, snap))
    for inst in live_instances(view, snap):
        if inst.node in chosen and inst.avail != UP:
            return "non-optimal"
        if inst.node not in chosen and inst.avail in UP_LIKE:
            return "non-optimal"
    return "optimal"


def _busy_peer(view: ObjectView, snap: Snapshot, node: str) -> str | None:
    """A peer whose action is in flight, or whose instance is up (failover: one at a time)."""
    for inst in live_instances(view, snap):
        if inst.node != node and (inst.state.busy or inst.avail in UP_LIKE):
            return inst.node
    return None


def _silent_peer(view: ObjectView, snap: Snapshot, node: str) -> str | None:
    """A live scope peer whose instance status is not known yet: it may be up (its
    daemon restarted, so its ownership went with its old lease)."""
    for name in view.config.scope:
        if name == node or not snap.alive(name):
            continue
        inst = view.instance(name)
        if inst is None or (inst.avail == "undef" and not inst.config_error):
            return name
    return None


def _acting_peer(view: ObjectView, snap: Snapshot, node: str) -> Instance | None:
    """A peer instance whose action is in flight."""
    return next((i for i in live_instances(view, snap) if i.node != node and i.state.busy), None)


def _frozen_peer(view: ObjectView, snap: Snapshot, node: str, oid: str) -> str | None:
    """A peer instance still frozen that a ``start`` is about to unfreeze (it acts:
    its node is idle, it has not failed, nor given up) and that may lead instead of
    ``node``: it ranks before ``node`` in placement order, frozen or not. One ranked
    after it cannot change whether ``node`` leads (the nodes before ``node`` are the
    same once it unfreezes): the natural leader of a stopped object (every instance
    frozen) starts without waiting for the others' unfreeze, one round trip through
    etcd less. A node that is no candidate at all waits for every frozen peer: any
    may become the leader, and it must not conclude that nobody is left to try."""
    order = candidates(view, snap, ignore_frozen=True)
    rivals = set(order[: order.index(node)]) if node in order else None
    for inst in live_instances(view, snap):
        found = snap.nodes.get(inst.node)
        acts = found is not None and found.state in RANKABLE_NODE_STATES
        if inst.node == node or not inst.frozen or not acts or inst.config_error:
            continue
        if rivals is not None and inst.node not in rivals:
            continue
        if not inst.state.failed and not _has_done(inst, oid):
            return inst.node
    return None


def all_done(view: ObjectView, snap: Snapshot, oid: str) -> bool:
    """The orchestration ``oid`` is over: every live instance acknowledged it and is
    done. What ends it (:attr:`Do.END`), and what a waiting command checks."""
    return all(i.oid == oid and i.done for i in live_instances(view, snap))


def started_and_settled(view: ObjectView, snap: Snapshot, oid: str) -> bool:
    """A ``start`` (``oid``) that reached its goal: the object is started, and every
    live instance acknowledged it, is unfrozen and idle, and is done where it is up.
    What is left is only the others saying done, each once it saw the object up: one
    more round trip through etcd, which a waiting command need not pay before it ends
    the orchestration (they then have nothing to do: with no intent, a ``start
    failed`` instance clears once the object is up, :func:`_without_intent`)."""
    intent = view.intent
    if intent is None or intent.oid != oid or intent.expect is not Expect.STARTED:
        return False
    live = live_instances(view, snap)
    return (
        bool(live)
        and started(view, snap)
        and all(
            i.oid == oid and not i.frozen and not i.state.busy and (i.done or i.avail in DOWN_LIKE)
            for i in live
        )
    )


def _has_done(inst: Instance, oid: str) -> bool:
    return inst.oid == oid and inst.done


# ---------------------------------------------------------------------------
# One object on one node


def _start_here(view: ObjectView, snap: Snapshot, node: str, why: str) -> Decision:
    """Start the local instance: failover ones after taking the ownership. ``why``: what
    makes it start here (``om mon --verbose`` shows it for each takeover)."""
    path = view.config.path
    if view.config.flex:
        return _do(path, Do.START, reason=why)
    if (peer := _busy_peer(view, snap, node)) is not None:
        return _wait(path, f"{peer} is up or acting")
    if (peer := _silent_peer(view, snap, node)) is not None:
        return _wait(path, f"no status from {peer} yet")
    if view.owner not in (None, node):
        return _wait(path, f"owned by {view.owner}")
    if view.config.stonith and view.lost_up:  # the lost node may still run it
        return _do(path, Do.FENCE, Do.TAKE, Do.START, reason=f"{why}; fenced first")
    return _do(path, Do.TAKE, Do.START, reason=why)


def _done(view: ObjectView, inst: Instance, *, clear: bool = False, reason: str = "") -> Decision:
    steps = (Do.CLEAR,) if clear and inst.state is not State.IDLE else ()
    return _do(view.config.path, *steps, Do.DONE, reason=reason)


def _started(view: ObjectView, snap: Snapshot, inst: Instance, oid: str) -> Decision:
    """Unfreeze everywhere, and let every unfreeze land before choosing: without a
    ready period, the natural leader still frozen would lose the start to the next
    node. Then the leaders that are down start, one candidate after the other as
    starts fail; every other node is done once no leader is left to try (om3 waits
    for ever when a candidate cannot act)."""
    path = view.config.path
    if inst.frozen:
        return _do(path, Do.UNFREEZE)
    if started(view, snap):
        return _done(view, inst, clear=True)
    if inst.avail in UP_LIKE:
        return _done(view, inst)  # up here: flex, the other leaders carry on
    if (peer := _frozen_peer(view, snap, inst.node, oid)) is not None:
        return _wait(path, f"waiting for {peer} to unfreeze")  # it may be the leader
    runners = _runners(view, snap)
    if inst.node in runners:
        return _start_here(view, snap, inst.node, "orchestrated start")
    if (acting := _acting_peer(view, snap, inst.node)) is not None:
        # Its status is mid-action (a start shows `warn` while its first resources are
        # up): nothing can be concluded from it before its action ends.
        return _wait(path, f"{acting.node} is {acting.state}")
    if not runners:
        return _done(view, inst)  # nobody left to try: a failure stays shown
    if inst.state is State.START_FAILED:
        return _wait(path, f"start failed here, {runners[0]} tries next")
    return _wait(path, f"not a leader ({', '.join(runners)})")


def _stopped(view: ObjectView, inst: Instance) -> Decision:
    if not inst.frozen:
        return _do(view.config.path, Do.FREEZE)
    if inst.state is State.STOP_FAILED or inst.avail in DOWN_LIKE:
        return _done(view, inst)
    return _do(view.config.path, Do.STOP)


def _destination(
    view: ObjectView, snap: Snapshot, expect: Expect, dest: tuple[str, ...]
) -> list[str]:
    """``placed@``: the nodes given; ``placed`` (giveback): the nodes the intent
    recorded, else the natural leaders as they are now (frozen or not: the
    giveback unfreezes them)."""
    if expect is Expect.PLACED_AT or dest:
        return list(dest)
    return leaders(view, snap, ignore_frozen=True)


def _placed(
    view: ObjectView, snap: Snapshot, inst: Instance, dest: list[str], oid: str
) -> Decision:
    """Switch, takeover, giveback: unfreeze everywhere, stop off the destination,
    then start on it. Nothing stops when no destination can run the object (a dead
    or unknown node, no natural leader): a switch never ends with it down everywhere
    for want of a target."""
    path = view.config.path
    if inst.frozen:
        return _do(path, Do.UNFREEZE)
    if not any(_can_host(view, snap, n) for n in dest):
        return _done(view, inst, reason="no live destination")
    if inst.node not in dest:
        if inst.state is State.STOP_FAILED or inst.avail in DOWN_LIKE:
            return _done(view, inst)
        return _do(path, Do.STOP)
    if inst.state is State.START_FAILED or inst.avail in UP_LIKE:
        return _done(view, inst)
    if view.config.flex:
        return _do(path, Do.START)
    for peer in live_instances(view, snap):
        if peer.node not in dest and (peer.state.busy or peer.avail in UP_LIKE):
            if peer.state.failed or _has_done(peer, oid):  # it will not stop: never two up
                return _done(view, inst, reason=f"{peer.node} did not stop")
            return _wait(path, f"waiting for {peer.node} to stop")
    return _start_here(view, snap, inst.node, f"placed on {','.join(dest)}")


def _can_host(view: ObjectView, snap: Snapshot, node: str) -> bool:
    """A destination that can run the object: alive, with a compiled instance."""
    inst = view.instance(node)
    return snap.alive(node) and inst is not None and not inst.config_error


def _rank(view: ObjectView, snap: Snapshot, nodes: list[str]) -> list[str]:
    """Nodes in placement order (``none``: in ``DEFAULT.nodes`` order)."""
    if view.config.placement is Placement.NONE:
        return nodes
    return sort_candidates(view, snap, nodes)


def _restarts(inst: Instance) -> bool:
    """A ``restarted`` orchestration restarts this instance: it is up, and not failed."""
    return inst.avail in UP_LIKE and not inst.state.failed


def _restarted(view: ObjectView, snap: Snapshot, inst: Instance, oid: str) -> Decision:
    """Rolling: one instance at a time, in placement order; each waits for the ones
    before it to be done. After a restart the instance looks as before, so the
    daemon itself marks it done when the restart succeeds (a failed one leaves
    ``start failed``, which is done here)."""
    path = view.config.path
    if not _restarts(inst):
        return _done(view, inst)
    # the instances that will restart, in placement order (the down ones are done at once)
    order = _rank(view, snap, [i.node for i in live_instances(view, snap) if _restarts(i)])
    for prior in order[: order.index(inst.node)]:
        found = view.instance(prior)
        if found is not None and not _has_done(found, oid):
            return _wait(path, f"{prior} restarts first")
    for peer in live_instances(view, snap):
        if peer.node != inst.node and peer.state.busy:
            return _wait(path, f"{peer.node} is {peer.state}")
    return _do(path, Do.RESTART)


def _with_intent(view: ObjectView, snap: Snapshot, inst: Instance) -> Decision:
    intent = view.intent
    assert intent is not None
    expect = intent.expect
    if expect is Expect.STARTED:
        return _started(view, snap, inst, intent.oid)
    if expect is Expect.STOPPED:
        return _stopped(view, inst)
    if expect is Expect.FROZEN:
        return _done(view, inst) if inst.frozen else _do(view.config.path, Do.FREEZE)
    if expect is Expect.UNFROZEN:
        return _do(view.config.path, Do.UNFREEZE) if inst.frozen else _done(view, inst)
    if expect in (Expect.PLACED, Expect.PLACED_AT):
        dest = _destination(view, snap, expect, intent.destination)
        return _placed(view, snap, inst, dest, intent.oid)
    if expect is Expect.RESTARTED:
        return _restarted(view, snap, inst, intent.oid)
    return _done(view, inst)  # aborted


def _surplus(view: ObjectView, snap: Snapshot, node: str) -> bool:
    """Flex with ``orchestrate = ha``: this up instance is beyond ``flex_target``.
    The up instances rank frozen ones first (they cannot stop), then by placement,
    so that only the surplus stops, never every non-leader at once."""
    ups = [i for i in live_instances(view, snap) if i.avail == UP]
    if len(ups) <= view.config.flex_target:
        return False
    rank = {n: i for i, n in enumerate(_rank(view, snap, list(view.config.nodes)))}

    def key(inst: Instance) -> tuple[bool, int]:
        found = snap.nodes.get(inst.node)
        frozen = inst.frozen or (found is not None and found.frozen)
        return (not frozen, rank.get(inst.node, len(rank)))

    keep = {i.node for i in sorted(ups, key=key)[: view.config.flex_target]}
    return any(i.node == node for i in ups) and node not in keep


def _without_intent(view: ObjectView, snap: Snapshot, inst: Instance, *, boot: bool) -> Decision:
    """No orchestration: clear a start failure the object got over, and with
    ``orchestrate = ha`` keep it running (flex: at ``flex_target``); ``start``
    starts it on its natural leader once, when the node's daemon starts."""
    path, cfg = view.config.path, view.config
    if inst.state is State.START_FAILED and started(view, snap):
        return _do(path, Do.CLEAR)
    auto = cfg.orchestrate == "ha" or (cfg.orchestrate == "start" and boot)
    node = snap.nodes.get(inst.node)
    if not auto or inst.frozen or node is None or node.frozen or inst.state.failed:
        return _wait(path, "")
    if cfg.flex and cfg.orchestrate == "ha" and _surplus(view, snap, inst.node):
        return _do(path, Do.STOP)
    if started(view, snap) or inst.node not in _runners(view, snap):
        return _wait(path, "")
    return _start_here(view, snap, inst.node, _ha_why(view, cfg.orchestrate))


def _ha_why(view: ObjectView, orchestrate: str) -> str:
    """Why an object starts with no orchestration asked for: a node lost while it ran
    it (the failover), or the object not up anywhere."""
    if view.lost_up:
        return f"orchestrate = {orchestrate}: {', '.join(view.lost_up)} lost while running it"
    return f"orchestrate = {orchestrate}: not up on any node"


def _local(view: ObjectView, snap: Snapshot, inst: Instance, *, boot: bool) -> Decision:
    """The next steps of an acknowledged, idle instance."""
    path, intent = view.config.path, view.intent
    if intent is not None and inst.done:  # a done node waits for the others, then ends
        if all_done(view, snap, intent.oid):
            return _do(path, Do.END)
        return _wait(path, "done, waiting for the other instances")
    if intent is not None and intent.expect is Expect.ABORTED:
        return _done(view, inst)
    if inst.config_error:  # nothing to act with: it takes no part (and holds none up)
        if intent is not None:
            return _do(path, Do.DONE, reason="config does not compile here")
        return _wait(path, "config does not compile here")
    node = snap.nodes.get(inst.node)
    if node is None or node.state not in RANKABLE_NODE_STATES:  # om3: only idle nodes act
        return _wait(path, f"node is {node.state if node else 'unknown'}")
    if intent is None:
        return _without_intent(view, snap, inst, boot=boot)
    found = _with_intent(view, snap, inst)
    retried = _FAILED_ACTION.get(inst.state)
    if retried is not None and retried in found.steps:  # never repeat what failed
        return _done(view, inst, reason=f"{inst.state}: clear to retry")
    return found


MONITORED_STATES = frozenset({State.IDLE, State.START_FAILED, State.STOP_FAILED})
DOWN_RESOURCE = frozenset({"down", "warn", "stdby down"})


def _resource_monitoring(view: ObjectView, snap: Snapshot, inst: Instance) -> Decision | None:
    """opensvc.md §5.6: a resource seen down while the instance should run (``local
    expect started``, or a standby resource) is restarted ``restart`` times, at most
    every ``restart_delay``; still down after them and ``monitor`` set, the object's
    ``monitor_action`` runs, once (``freezestop``, ``switch``, ``crash``, ``reboot``,
    ``none``). None: nothing for resource monitoring to do."""
    node = snap.nodes.get(inst.node)
    if node is None or node.frozen or node.state not in RANKABLE_NODE_STATES:
        return None
    if inst.frozen or inst.state not in MONITORED_STATES or inst.monitor_action_at:
        return None
    path = view.config.path
    restart, monitor, waiting = [], False, False
    for rid, res in sorted(inst.resources.items()):
        if res.disabled or res.stopped or res.status not in DOWN_RESOURCE:
            continue
        if not (res.standby or inst.local_expect == "started"):
            continue
        left = inst.restarts.get(rid)
        remaining = res.restart if left is None else left.remaining
        if remaining > 0:
            last = 0.0 if left is None else left.last
            if snap.now - last >= res.restart_delay:
                restart.append(rid)
            else:
                waiting = True
        elif res.monitor:
            monitor = True
    if restart:
        return _restart(view, inst, tuple(restart))
    if waiting:
        return _wait(path, RESTART_DELAY)
    if monitor:
        return _monitor_action(view)
    return None


def _restart(view: ObjectView, inst: Instance, rids: tuple[str, ...]) -> Decision | None:
    """Restart the down resources ``rids``. A failover instance does it under its
    ownership key, as it starts: the key in etcd, not this node's cache, says it is still
    ours (a node back from a partition, its instance stopped by self-fencing, still
    believes it owns it and would restart it next to the new owner's). None when another
    node owns it: not ours to restart (:func:`_ownership` stops it if it runs)."""
    if view.config.flex:
        return Decision(path=view.config.path, steps=(Do.RESTART_RESOURCES,), rids=rids,
                        reason="resource monitoring")  # fmt: skip
    if view.owner not in (None, inst.node):
        return None
    return Decision(path=view.config.path, steps=(Do.TAKE, Do.RESTART_RESOURCES), rids=rids,
                    reason="resource monitoring")  # fmt: skip


def _monitor_action(view: ObjectView) -> Decision:
    path, action = view.config.path, (view.config.monitor_action or ("none",))[0]
    if action == "freezestop":
        return _do(path, Do.FREEZE, Do.STOP, reason="monitor_action freezestop")
    if action == "switch":
        return _do(path, Do.EVICT, reason="monitor_action switch")
    if action in ("crash", "reboot"):
        return _do(path, Do.SPLIT, reason=f"monitor_action {action}")
    return _wait(path, "monitored resource down, monitor_action none")


def _ownership(view: ObjectView, inst: Instance, steps: tuple[Do, ...]) -> tuple[Do, ...]:
    """Failover: release the ownership when the instance is down and not about to
    start (a failed start, a stop, a non-leader); take it when the instance is up
    without an owner (started by hand, or its daemon restarted with a new lease); stop
    it when it is up while another node owns the object."""
    if view.config.flex:
        return steps
    found = set(steps)
    if view.owner not in (None, inst.node) and inst.avail in UP_LIKE:
        return (Do.STOP,)  # another node owns it: never two up (a lost lease, a manual start)
    if view.owner == inst.node and inst.avail in RELEASABLE and not found & {Do.TAKE, Do.START}:
        found.add(Do.RELEASE)
    elif view.owner is None and inst.avail in UP_LIKE and not found & {Do.STOP, Do.RESTART}:
        found.add(Do.TAKE)
    return tuple(sorted(found, key=_ORDER.__getitem__))


def decide_object(view: ObjectView, snap: Snapshot, node: str, *, boot: bool = False) -> Decision:
    """The next steps of ``node`` for one object (empty when it has no instance there)."""
    path = view.config.path
    inst = view.instance(node)
    if inst is None:
        return _wait(path, "no instance here")
    intent = view.intent
    if intent is not None and inst.oid != intent.oid:
        return Decision(path=path, steps=(Do.ACK,), priority=view.config.priority)
    if inst.state.busy:
        return _wait(path, f"{inst.state}")
    monitored = _resource_monitoring(view, snap, inst) if not inst.config_error else None
    if monitored is not None and (monitored.steps or view.intent is None):
        return Decision(path=path, steps=monitored.steps, reason=monitored.reason,
                        priority=view.config.priority, rids=monitored.rids)  # fmt: skip
    found = _local(view, snap, inst, boot=boot)
    return Decision(path=path, steps=_ownership(view, inst, found.steps), reason=found.reason,
                    priority=view.config.priority)  # fmt: skip


def decide(
    snap: Snapshot,
    node: str,
    *,
    boot: bool = False,
    max_parallel: int = MAX_PARALLEL,
    paths: Collection[str] | None = None,
) -> NodePlan:
    """Every object's next steps on ``node`` (``paths``: those objects' only; the
    actions running elsewhere still count). Actions (start, stop, restart) beyond
    ``max_parallel`` running at once wait, lowest ``priority`` first (opensvc.md §3.1)."""
    found = [decide_object(v, snap, node, boot=boot) for p, v in sorted(snap.objects.items())
             if paths is None or p in paths]  # fmt: skip
    running = sum(
        1 for v in snap.objects.values() if (i := v.instance(node)) is not None and i.state.busy
    )
    slots = max(0, max_parallel - running)
    launching = sorted((d for d in found if LAUNCHES & set(d.steps)),
                       key=lambda d: (d.priority, d.path))  # fmt: skip
    deferred = {d.path for d in launching[slots:]}
    decisions = tuple(_wait(d.path, QUEUED) if d.path in deferred else d for d in found)
    return NodePlan(node=node, decisions=decisions)


def timed(plan: NodePlan) -> set[str]:
    """The objects whose next decision may differ with no change in the snapshot: a
    wait that only time ends (``restart_delay``), and steps, which the node may not
    have carried out (a failure, a fence to retry). Every other decision stays the
    same until the snapshot changes."""
    return {d.path for d in plan.decisions if d.steps or d.reason == RESTART_DELAY}


def queued(plan: NodePlan) -> set[str]:
    """The objects whose action waits for a slot (``max_parallel``): their next decision
    changes when another object's action ends, with no change of their own."""
    return {d.path for d in plan.decisions if d.reason == QUEUED}


def decide_all(
    snap: Snapshot, *, boot: bool = False, max_parallel: int = MAX_PARALLEL
) -> Mapping[str, NodePlan]:
    """Every live node's plan (``--dry-run``, the golden cases)."""
    return {name: decide(snap, name, boot=boot, max_parallel=max_parallel)
            for name in sorted(snap.nodes) if snap.alive(name)}  # fmt: skip
