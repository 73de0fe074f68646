"""The cluster part of ``om <path> print status`` (opensvc.md §6.2). Pure.

On a cluster node, ``print status`` shows the object as the cluster sees it: the
object line gets the cluster's avail and notes (``warn``, ``non-optimal
placement``), every other node's instance is folded to one line, and the local
instance keeps its resources. The local instance's avail and frozen flags are this
node's fresh observation, not its last published record; the rest (monitor state,
peers) is etcd's.

Instance notes, in om3's order: ``warn``, ``frozen``, ``node-frozen``,
``not-provisioned``, ``p<N>`` (priority ≠ 50), then the monitor: its state
(``idle`` …), the global expect while an orchestration runs (``started``,
``placed@`` …), the local expect ``started`` (the daemon keeps the instance up).
When there is no monitor to read, one note says why instead: ``daemon down`` (the
node holds no etcd lease: its daemon is stopped or the node is lost) or
``no-monitor`` (the daemon runs but published nothing for this object, or etcd
could not be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from omc.runtime.cluster.decide import object_avail, placement_state
from omc.runtime.cluster.model import Instance, Node, ObjectConfig, ObjectView, Snapshot
from omc.runtime.cluster.monitor import object_overall

DEFAULT_PRIORITY = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceLine:
    """One node's instance as ``print status`` shows it: avail, notes, and the facts
    the notes come from (its ``--format json|yaml`` form)."""

    node: str
    avail: str
    notes: tuple[str, ...]
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterView:
    """The object across the cluster, from this node's point of view."""

    name: str
    avail: str = "undef"
    overall: str = "undef"
    placement: str = "n/a"
    peers: tuple[InstanceLine, ...] = ()  # the other nodes, sorted: folded lines
    local: InstanceLine | None = None
    error: str = ""  # etcd could not be read: only the local instance is shown

    @property
    def notes(self) -> tuple[str, ...]:
        """The object line's notes."""
        notes = ["warn"] if self.overall == "warn" else []
        if self.placement == "non-optimal":
            notes.append("non-optimal placement")
        return tuple(notes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Local:
    """What this node observed itself, fresher than its published record."""

    node: str
    avail: str
    overall: str
    frozen: bool
    node_frozen: bool
    config: ObjectConfig


def unreachable(name: str, error: str, local: Local) -> ClusterView:
    """etcd could not be read: the local instance only, with ``no-monitor``."""
    inst = Instance(node=local.node, avail=local.avail, overall=local.overall,
                    frozen=local.frozen)  # fmt: skip
    view = ObjectView(config=local.config, instances={local.node: inst})
    snap = Snapshot(nodes={local.node: Node(name=local.node, frozen=local.node_frozen)},
                    objects={local.config.path: view})  # fmt: skip
    line = _line(view, snap, local.node, monitored=False, daemon=True)
    return ClusterView(name=name, local=line, error=error)


def cluster_view(snap: Snapshot, local: Local, *, name: str) -> ClusterView:
    """The object line, the peers' folded lines and the local line's notes."""
    path = local.config.path
    known = snap.objects.get(path, ObjectView(config=local.config))
    daemon = snap.alive(local.node)
    record = known.instance(local.node) if daemon else None
    fresh = replace(record or Instance(node=local.node), avail=local.avail,
                    overall=local.overall, frozen=local.frozen)  # fmt: skip
    node = replace(snap.nodes.get(local.node) or Node(name=local.node), alive=True,
                   frozen=local.node_frozen)  # fmt: skip
    # This node's own observation counts even when its daemon is down.
    view = replace(known, config=local.config, instances={**known.instances, local.node: fresh})
    merged = replace(snap, nodes={**snap.nodes, local.node: node},
                     objects={**snap.objects, path: view})  # fmt: skip
    others = sorted((set(view.config.scope) | set(view.instances)) - {local.node})
    peers = tuple(
        _line(view, merged, n, monitored=n in view.instances, daemon=merged.alive(n))
        for n in others
    )
    return ClusterView(
        name=name,
        avail=object_avail(view, merged),
        overall=object_overall(view, merged),
        placement=placement_state(view, merged),
        peers=peers,
        local=_line(view, merged, local.node, monitored=record is not None, daemon=daemon),
    )


def _line(view: ObjectView, snap: Snapshot, node: str, *, monitored: bool,
          daemon: bool) -> InstanceLine:  # fmt: skip
    inst = view.instance(node) if snap.alive(node) else None
    host = snap.nodes.get(node)
    node_frozen = host is not None and host.alive and host.frozen
    notes = instance_notes(view, inst, node_frozen=node_frozen, monitored=monitored,
                           daemon=daemon)  # fmt: skip
    monitor = None
    if inst is not None and monitored and daemon:
        expect = str(view.intent.expect) if view.intent else "none"
        monitor = {"state": str(inst.state), "global_expect": expect,
                   "local_expect": inst.local_expect}  # fmt: skip
    facts: dict[str, object] = {
        "avail": inst.avail if inst else "undef", "overall": inst.overall if inst else "undef",
        "frozen": bool(inst and inst.frozen), "node_frozen": node_frozen,
        "priority": view.config.priority, "daemon": daemon, "monitor": monitor,
        "notes": list(notes),
    }  # fmt: skip
    return InstanceLine(node=node, avail=str(facts["avail"]), notes=notes, facts=facts)


def instance_notes(view: ObjectView, inst: Instance | None, *, node_frozen: bool,
                   monitored: bool, daemon: bool) -> tuple[str, ...]:  # fmt: skip
    """om3's instance notes, in its order (module docstring)."""
    notes: list[str] = []
    if inst is not None:
        if inst.overall == "warn":
            notes.append("warn")
        if inst.frozen:
            notes.append("frozen")
    if node_frozen:
        notes.append("node-frozen")
    if inst is not None and not inst.provisioned:
        notes.append("not-provisioned")
    if view.config.priority != DEFAULT_PRIORITY:
        notes.append(f"p{view.config.priority}")
    if not daemon:
        notes.append("daemon down")
    elif inst is None or not monitored:
        notes.append("no-monitor")
    else:
        notes.append(str(inst.state))
        if view.intent is not None:
            notes.append(str(view.intent.expect))
        if inst.local_expect not in ("none", ""):
            notes.append(inst.local_expect)
    return tuple(notes)
