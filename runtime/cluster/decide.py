"""The cluster's decision step, pure: a snapshot in, one node's next steps out.

Every node's daemon runs :func:`decide` for itself whenever the snapshot changes
(an etcd event, a local status change, an action that finished) and carries out
the steps (:mod:`.daemon`). Nothing here reads a clock, etcd or systemd, so the
whole orchestrator is tested Pacemaker-style: a snapshot in, a plan out, for every
node (``tests/cluster/decide_golden``).

Semantics follow om3's instance monitor (opensvc.md §5.3-§5.5; the om3 notes in
docs/cluster.md list where we differ, and why). The parts that make it safe:

* a failover instance starts only after its node took the object's **ownership**
  key in an etcd transaction (:attr:`Do.TAKE`); a start is never decided from a
  node's local view alone, and no "ready period" is needed to let peers object;
* an instance acts only on the orchestration it has acknowledged, one action at a
  time, and a ``… failed`` state blocks it until ``clear`` or a new intent;
* an orchestration ends (:attr:`Do.END`) only once every live instance is done.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from omc.runtime.cluster.model import (
    DOWN_LIKE,
    UP,
    UP_LIKE,
    Expect,
    Instance,
    ObjectView,
    Placement,
    Snapshot,
    State,
)

MAX_PARALLEL = 10  # node.max_parallel: actions a node runs at once (om3's default)
RANKABLE_NODE_STATES = frozenset({"idle"})


class Do(StrEnum):
    """What a node does for an object, in the order a plan lists them."""

    ACK = "ack"  # take the intent's orchestration: monitor oid, done false, state idle
    CLEAR = "clear"  # monitor state back to idle (a failure cleared)
    UNFREEZE = "unfreeze"
    FREEZE = "freeze"
    TAKE = "take"  # own the failover object (etcd transaction bound to the node lease)
    START = "start"  # `om <path> instance start`, origin daemon/monitor
    STOP = "stop"
    RESTART = "restart"
    RELEASE = "release"  # give the failover ownership back
    DONE = "done"  # this instance is done with the orchestration
    END = "end"  # every instance is done: remove the intent (transaction on its oid)


LAUNCHES = frozenset({Do.START, Do.STOP, Do.RESTART})  # run as actions, count in parallel


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One object's next steps on one node, or why there are none (``reason``)."""

    path: str
    steps: tuple[Do, ...] = ()
    reason: str = ""
    priority: int = 50

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


def sort_candidates(view: ObjectView, snap: Snapshot, nodes: Iterable[str]) -> list[str]:
    """Candidates in placement order, best first (``none``: no candidate at all)."""
    cfg = view.config
    chosen = list(nodes)
    policy = cfg.placement
    if policy is Placement.NONE:
        return []
    if policy is Placement.SPREAD:
        return sorted(chosen, key=lambda n: _spread_key(cfg.path, n))
    if policy is Placement.SCORE:
        return sorted(chosen, key=lambda n: -snap.nodes[n].score)
    if policy is Placement.LOAD_AVG:  # least loaded first (om3 has no case for it)
        return sorted(chosen, key=lambda n: snap.nodes[n].load15)
    if policy is Placement.LAST_START:
        return sorted(chosen, key=lambda n: -_last_started(view, n))
    if policy is Placement.SHIFT and chosen:
        shift = _scaler_index(cfg.path) % len(chosen)
        return chosen[shift:] + chosen[:shift]
    return chosen


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
    compiled, not ``start failed``, and whose affinities hold. ``ignore_frozen``:
    frozen *instances* count (an intent that unfreezes them all is being carried
    out: the leader must not depend on which node unfroze first)."""
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
        if node.frozen or (inst.frozen and not ignore_frozen):
            continue
        if _affine(view, snap, name):
            found.append(name)
    return sort_candidates(view, snap, found)


def leaders(view: ObjectView, snap: Snapshot, *, ignore_frozen: bool = False) -> list[str]:
    """The nodes where the object should run: the first candidate, or the first
    ``flex_target`` candidates of a flex object."""
    return candidates(view, snap, ignore_frozen=ignore_frozen)[: view.config.wanted_up]


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
    """The object's avail from its instances' (opensvc.md §6.1)."""
    avails = [i.avail for i in live_instances(view, snap) if i.avail not in ("n/a", "undef")]
    if not avails:
        return "n/a" if view.instances else "undef"
    if "warn" in avails:
        return "warn"
    ups = avails.count(UP)
    cfg = view.config
    if cfg.flex:
        if ups == 0:
            return "down"
        too_many = cfg.flex_max > 0 and ups > cfg.flex_max
        return "warn" if ups < cfg.flex_min or too_many else UP
    return {0: "down", 1: UP}.get(ups, "warn")


def placement_state(view: ObjectView, snap: Snapshot) -> str:
    """``non-optimal`` when the object is up but a leader is not, or a non-leader is."""
    if object_avail(view, snap) != UP:
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


def _all_done(view: ObjectView, snap: Snapshot, oid: str) -> bool:
    return all(i.oid == oid and i.done for i in live_instances(view, snap))


# ---------------------------------------------------------------------------
# One object on one node


def _start_here(view: ObjectView, snap: Snapshot, node: str) -> Decision:
    """Start the local instance: failover ones after taking the ownership."""
    path = view.config.path
    if view.config.flex:
        return Decision(path=path, steps=(Do.START,))
    if (peer := _busy_peer(view, snap, node)) is not None:
        return _wait(path, f"{peer} is up or acting")
    if view.owner not in (None, node):
        return _wait(path, f"owned by {view.owner}")
    return Decision(path=path, steps=(Do.TAKE, Do.START))


def _done(view: ObjectView, inst: Instance, *, clear: bool = False) -> Decision:
    steps = [Do.CLEAR] if clear and inst.state is not State.IDLE else []
    if view.owner == inst.node and inst.avail in DOWN_LIKE:
        steps.append(Do.RELEASE)
    return Decision(path=view.config.path, steps=(*steps, Do.DONE))


def _started(view: ObjectView, snap: Snapshot, inst: Instance) -> Decision:
    path = view.config.path
    if inst.frozen:
        return Decision(path=path, steps=(Do.UNFREEZE,))
    if started(view, snap):
        return _done(view, inst, clear=True)
    chosen = leaders(view, snap, ignore_frozen=True)  # every instance unfreezes first
    if inst.state is State.START_FAILED:
        if not chosen:
            return _done(view, inst)  # every candidate failed: the failure stays shown
        return _wait(path, f"start failed here, {chosen[0]} tries next")
    if not chosen:
        return _done(view, inst)
    if inst.node not in chosen:
        return _wait(path, f"not a leader ({', '.join(chosen)})")
    if inst.avail in UP_LIKE:
        return _wait(path, "up here, waiting for the other leaders")
    return _start_here(view, snap, inst.node)


def _stopped(view: ObjectView, inst: Instance) -> Decision:
    if not inst.frozen:
        return Decision(path=view.config.path, steps=(Do.FREEZE,))
    if inst.state is State.STOP_FAILED or inst.avail in DOWN_LIKE:
        return _done(view, inst)
    return Decision(path=view.config.path, steps=(Do.STOP,))


def _destination(
    view: ObjectView, snap: Snapshot, expect: Expect, dest: tuple[str, ...]
) -> list[str]:
    if expect is Expect.PLACED_AT:
        return list(dest)
    return leaders(view, snap, ignore_frozen=True)  # giveback: the natural leaders


def _placed(view: ObjectView, snap: Snapshot, inst: Instance, dest: list[str]) -> Decision:
    path = view.config.path
    if inst.frozen:
        return Decision(path=path, steps=(Do.UNFREEZE,))
    if inst.node not in dest:
        if inst.state is State.STOP_FAILED or inst.avail in DOWN_LIKE:
            return _done(view, inst)
        return Decision(path=path, steps=(Do.STOP,))
    if inst.state is State.START_FAILED or inst.avail == UP:
        return _done(view, inst)
    if view.config.flex:
        return Decision(path=path, steps=(Do.START,))
    for peer in live_instances(view, snap):
        if peer.node not in dest and (peer.state.busy or peer.avail in UP_LIKE):
            return _wait(path, f"waiting for {peer.node} to stop")
    return _start_here(view, snap, inst.node)


def _restarted(view: ObjectView, snap: Snapshot, inst: Instance) -> Decision:
    """Rolling: one instance at a time, in placement order."""
    path = view.config.path
    if inst.state.failed or inst.avail not in UP_LIKE:
        return _done(view, inst)
    for peer in live_instances(view, snap):
        if peer.node != inst.node and peer.state.busy:
            return _wait(path, f"{peer.node} is restarting")
    return Decision(path=path, steps=(Do.RESTART,))


def _with_intent(view: ObjectView, snap: Snapshot, inst: Instance) -> Decision:
    intent = view.intent
    assert intent is not None
    if inst.done:
        if _all_done(view, snap, intent.oid):
            return Decision(path=view.config.path, steps=(Do.END,))
        return _wait(view.config.path, "done, waiting for the other instances")
    expect = intent.expect
    if expect is Expect.STARTED:
        return _started(view, snap, inst)
    if expect is Expect.STOPPED:
        return _stopped(view, inst)
    if expect is Expect.FROZEN:
        return _done(view, inst) if inst.frozen else Decision(path=view.config.path,
                                                               steps=(Do.FREEZE,))  # fmt: skip
    if expect is Expect.UNFROZEN:
        if inst.frozen:
            return Decision(path=view.config.path, steps=(Do.UNFREEZE,))
        return _done(view, inst)
    if expect in (Expect.PLACED, Expect.PLACED_AT):
        return _placed(view, snap, inst, _destination(view, snap, expect, intent.destination))
    if expect is Expect.RESTARTED:
        return _restarted(view, snap, inst)
    return _done(view, inst)  # aborted


def _without_intent(view: ObjectView, snap: Snapshot, inst: Instance, *, boot: bool) -> Decision:
    """No orchestration: clear a start failure the object got over, and with
    ``orchestrate = ha`` keep it running (flex: at ``flex_target``); ``start``
    starts it on its natural leader once, when the node's daemon starts."""
    path, cfg = view.config.path, view.config
    if inst.state is State.START_FAILED and started(view, snap):
        return Decision(path=path, steps=(Do.CLEAR,))
    auto = cfg.orchestrate == "ha" or (cfg.orchestrate == "start" and boot)
    node = snap.nodes.get(inst.node)
    if not auto or inst.frozen or node is None or node.frozen or inst.state.failed:
        return _wait(path, "")
    chosen = leaders(view, snap)
    if cfg.flex and cfg.orchestrate == "ha":
        ups = up_count(view, snap)
        if ups > cfg.flex_target and inst.node not in chosen and inst.avail == UP:
            return Decision(path=path, steps=(Do.STOP,))
        if ups >= cfg.flex_target:
            return _wait(path, "")
    elif started(view, snap):
        return _wait(path, "")
    if inst.node not in chosen or inst.avail in UP_LIKE:
        return _wait(path, "")
    return _start_here(view, snap, inst.node)


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
    if inst.config_error:  # nothing to act with: it takes no part (and holds none up)
        if intent is not None and not inst.done:
            return Decision(path=path, steps=(Do.DONE,), reason="config does not compile here")
        return _wait(path, "config does not compile here")
    if intent is not None:
        found = _with_intent(view, snap, inst)
    else:
        found = _without_intent(view, snap, inst, boot=boot)
    steps = found.steps
    if view.owner == node and inst.avail in DOWN_LIKE and not {Do.START, Do.RELEASE} & set(steps):
        steps = (Do.RELEASE, *steps)  # down here (a failed start, a stop): let another run it
    return Decision(path=path, steps=steps, reason=found.reason, priority=view.config.priority)


def decide(
    snap: Snapshot, node: str, *, boot: bool = False, max_parallel: int = MAX_PARALLEL
) -> NodePlan:
    """Every object's next steps on ``node``. Actions (start, stop, restart) beyond
    ``max_parallel`` running at once wait, lowest ``priority`` first (opensvc.md §3.1)."""
    found = [decide_object(v, snap, node, boot=boot) for _, v in sorted(snap.objects.items())]
    running = sum(
        1 for v in snap.objects.values() if (i := v.instance(node)) is not None and i.state.busy
    )
    slots = max(0, max_parallel - running)
    launching = sorted((d for d in found if LAUNCHES & set(d.steps)),
                       key=lambda d: (d.priority, d.path))  # fmt: skip
    deferred = {d.path for d in launching[slots:]}
    decisions = tuple(
        _wait(d.path, "queued: node.max_parallel actions running") if d.path in deferred else d
        for d in found
    )
    return NodePlan(node=node, decisions=decisions)


def decide_all(snap: Snapshot, *, boot: bool = False) -> Mapping[str, NodePlan]:
    """Every live node's plan (``--dry-run``, the golden cases)."""
    return {name: decide(snap, name, boot=boot) for name in sorted(snap.nodes)
            if snap.alive(name)}  # fmt: skip
