"""The cluster state a node holds: etcd's keys under the prefix, kept current by a watch.

:class:`ClusterState` starts from one range read (keys + revision) and applies
watch events in revision order; :meth:`ClusterState.snapshot` turns it into the
pure :class:`~omc.runtime.cluster.model.Snapshot` that ``decide`` and ``om mon``
read. No I/O here: the daemon and the CLI feed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters.etcd import Etcd, Event, KeyValue, when_mod
from omc.runtime.adapters.etcd import delete as op_delete
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.model import (
    Node,
    ObjectConfig,
    ObjectView,
    Snapshot,
    config_from_json,
    instance_from_json,
    intent_from_json,
    node_from_json,
)

# The spaces as module names: an enum member looked up through its class costs ~0.2 µs
# (Python 3.11), and a key took up to ten (``om mon`` puts ~800 keys).
_NODES, _FENCED, _NODE_INTENTS, _REQUESTS = (
    k.Space.NODES, k.Space.FENCED, k.Space.NODE_INTENTS, k.Space.REQUESTS)  # fmt: skip
_INSTANCES, _SUMMARIES = k.Space.INSTANCES, k.Space.SUMMARIES
_OWNERS, _INTENTS, _CONFIGS = k.Space.OWNERS, k.Space.INTENTS, k.Space.CONFIGS


@dataclass(slots=True)
class ClusterState:
    """etcd's view of one cluster, as decoded values, plus the revision it reflects."""

    keys: k.Keys
    members: tuple[str, ...] = ()  # cluster.conf nodes: shown even when not alive
    # ``instances`` holds the instances' summaries (``summaries/``: what ``om mon`` reads
    # and shows), not their records; the other space is ignored, in reads and watches.
    summaries: bool = False
    revision: int = 0
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[ObjectPath, dict[str, dict[str, Any]]] = field(default_factory=dict)
    owners: dict[ObjectPath, str] = field(default_factory=dict)
    intents: dict[ObjectPath, dict[str, Any]] = field(default_factory=dict)
    intent_revisions: dict[ObjectPath, int] = field(default_factory=dict)  # for END's compare
    configs: dict[ObjectPath, dict[str, Any]] = field(default_factory=dict)
    node_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # node → id →
    # Nodes whose lease expired (or was revoked): when (a monotonic time), their last record
    # and instances. Kept ``grace`` seconds, shown alive meanwhile: peers take over only
    # after it (docs/cluster.md, "Timing").
    lost: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    preserved: dict[ObjectPath, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lost_up: dict[ObjectPath, set[str]] = field(default_factory=dict)  # up there when lost
    fenced: dict[str, dict[str, Any]] = field(default_factory=dict)  # fenced/<node>
    # path → (the inputs a view was decoded from, the view): see :meth:`view`
    _views: dict[ObjectPath, tuple[Any, ObjectView]] = field(default_factory=dict, repr=False)

    def load(self, revision: int, kvs: Iterable[KeyValue]) -> None:
        """Replace everything by one range read's result."""
        for table in (self.nodes, self.instances, self.owners, self.intents, self.configs,
                      self.node_intents, self.intent_revisions, self.requests,
                      self.fenced):  # fmt: skip
            table.clear()
        for kv in kvs:
            parsed = self.keys.parse(kv.key)
            if parsed is not None:
                self._put(kv, parsed)
        self.revision = revision

    def apply(
        self, events: Iterable[Event], revision: int, *, now: float = 0.0
    ) -> set[ObjectPath | str]:
        """Apply watch events; what changed: object paths, and node names. ``now`` (a
        monotonic time) dates the nodes found lost in them."""
        touched: set[ObjectPath | str] = set()
        gone: list[tuple[ObjectPath, str, dict[str, Any]]] = []
        ours, theirs = self._instance_spaces()
        for event in events:
            parsed = self.keys.parse(event.kv.key)
            if parsed is None or parsed.space is theirs:
                continue
            if event.kind == "delete":
                if parsed.space is _NODES and parsed.node in self.nodes:
                    self.lost[parsed.node] = (now, self.nodes[parsed.node])
                elif parsed.space is ours and parsed.path is not None:
                    record = self.instances.get(parsed.path, {}).get(parsed.node)
                    if record is not None:
                        gone.append((parsed.path, parsed.node, record))
                self._delete(parsed)
            else:
                self._put(event.kv, parsed)
                if parsed.space is _NODES:
                    self.lost.pop(parsed.node, None)
            touched.add(parsed.path if parsed.path is not None else parsed.node)
        for path, node, record in gone:  # a lease's keys go in one revision, its node's too
            if node in self.lost:
                self.preserved.setdefault(path, {})[node] = record
        self.revision = max(self.revision, revision)
        return touched

    def forget_lost(self, now: float, grace: float) -> bool:
        """Drop what is kept of nodes lost more than ``grace`` seconds ago; True when
        some node's grace ended (the snapshot changed)."""
        ended = False
        for node, (when, _) in list(self.lost.items()):
            if now - when >= grace:
                ended = True
                del self.lost[node]
                for path, records in self.preserved.items():
                    record = records.pop(node, None)
                    if record is not None and record.get("avail") in ("up", "warn"):
                        self.lost_up.setdefault(path, set()).add(node)
        self.preserved = {p: r for p, r in self.preserved.items() if r}
        return ended

    def _instance_spaces(self) -> tuple[k.Space, k.Space]:
        """The space ``instances`` is read from, and the one ignored."""
        if self.summaries:
            return _SUMMARIES, _INSTANCES
        return _INSTANCES, _SUMMARIES

    def _put(self, kv: KeyValue, parsed: k.ParsedKey) -> None:
        """Store one key's value (``parsed``: its key, parsed once by the caller)."""
        ours, theirs = self._instance_spaces()
        if parsed.space is theirs:
            return
        value = k.decode(kv.value)
        space, path = parsed.space, parsed.path
        if space is _NODES:
            self.nodes[parsed.node] = value
            for nodes in self.lost_up.values():  # back: it runs nothing unknown to us
                nodes.discard(parsed.node)
        elif space is _FENCED:
            self.fenced[parsed.node] = value
        elif space is _NODE_INTENTS:
            self.node_intents[parsed.node] = value
        elif space is _REQUESTS:
            self.requests.setdefault(parsed.node, {})[parsed.rid] = value
        elif path is None:
            return
        elif space is ours:
            self.instances.setdefault(path, {})[parsed.node] = value
        elif space is _OWNERS:
            self.owners[path] = str(value.get("node", ""))
        elif space is _INTENTS:
            self.intents[path] = value
            self.intent_revisions[path] = kv.mod_revision
        elif space is _CONFIGS:
            self.configs[path] = value

    def _delete(self, parsed: k.ParsedKey) -> None:
        space, path = parsed.space, parsed.path
        ours, _ = self._instance_spaces()
        if space is _NODES:
            self.nodes.pop(parsed.node, None)
        elif space is _FENCED:
            self.fenced.pop(parsed.node, None)
        elif space is _NODE_INTENTS:
            self.node_intents.pop(parsed.node, None)
        elif space is _REQUESTS:
            self.requests.get(parsed.node, {}).pop(parsed.rid, None)
        elif path is None:
            return
        elif space is ours:
            self.instances.get(path, {}).pop(parsed.node, None)
            if not self.instances.get(path):
                self.instances.pop(path, None)
        elif space is _OWNERS:
            self.owners.pop(path, None)
        elif space is _INTENTS:
            self.intents.pop(path, None)
            self.intent_revisions.pop(path, None)
        elif space is _CONFIGS:
            self.configs.pop(path, None)

    def paths(self) -> list[ObjectPath]:
        """Every object the cluster knows of (configured, running or intended)."""
        found = {*self.configs, *self.instances, *self.intents, *self.preserved}
        return sorted(found, key=lambda p: p.fqn)

    def snapshot(
        self, local: str = "", *, now: float = 0.0, only: Iterable[ObjectPath] | None = None
    ) -> Snapshot:
        """The pure snapshot; each object's config is the one ``local`` evaluated (the
        node that decides), else any instance's. ``only``: those objects alone (a
        command following one object need not decode the others)."""
        nodes = {name: node_from_json(name, value) for name, value in self.nodes.items()}
        for name, (_, record) in self.lost.items():  # within the takeover grace
            nodes.setdefault(name, node_from_json(name, record))
        for name in self.members:
            nodes.setdefault(name, Node(name=name, alive=False))
        if only is not None:
            objects = {str(path): self.view(path, local) for path in only}
            return Snapshot(nodes=nodes, objects=objects, revision=self.revision, now=now)
        paths = self.paths()
        objects = {str(path): self.view(path, local) for path in paths}
        for gone in self._views.keys() - set(paths):
            del self._views[gone]
        return Snapshot(nodes=nodes, objects=objects, revision=self.revision, now=now)

    def view(self, path: ObjectPath, local: str = "") -> ObjectView:
        """One object's view, decoded again only when what it is made of changed: the
        daemon takes a snapshot of every object at each turn of its loop, and decoding
        them all made an idle daemon with 200 objects spend ~5 % of a core. The records
        are compared by value (identity first): every writer (the watch, the daemon's
        own publications) replaces a record, none changes one in place."""
        published = {**self.preserved.get(path, {}), **self.instances.get(path, {})}
        lost_up = tuple(sorted(self.lost_up.get(path, set()) - set(self.fenced) - set(self.nodes)))
        inputs = (local, published, self.intents.get(path), self.owners.get(path), lost_up)
        cached = self._views.get(path)
        if cached is not None and cached[0] == inputs:
            self._views[path] = (inputs, cached[1])  # equal, maybe not identical: next time
            return cached[1]
        config = _config(path, published, local)
        instances = {n: instance_from_json(n, v) for n, v in published.items()}
        view = ObjectView(config=config, intent=intent_from_json(self.intents.get(path)),
                          instances=instances, owner=self.owners.get(path),
                          lost_up=lost_up)  # fmt: skip
        self._views[path] = (inputs, view)
        return view


def _config(
    path: ObjectPath, published: Mapping[str, Mapping[str, Any]], local: str
) -> ObjectConfig:
    chosen = published.get(local) or next(iter(published.values()), {})
    return config_from_json({**chosen.get("config", {}), "path": str(path)})


def end_intent(etcd: Etcd, state: ClusterState, path: ObjectPath) -> bool:
    """Delete ``path``'s intent in a transaction on the revision ``state`` read it at, so
    that nothing newer is ever deleted: whoever ends an orchestration second (a daemon,
    or the command that waits for it) finds the revision changed and deletes nothing.
    True when it deleted it (then ``state`` forgets it at once, before the echo)."""
    key = state.keys.intent(path)
    revision = state.intent_revisions.get(path, 0)
    if not etcd.txn([when_mod(key, "=", revision)], [op_delete(key)]).succeeded:
        return False
    state.intents.pop(path, None)
    state.intent_revisions.pop(path, None)
    return True
