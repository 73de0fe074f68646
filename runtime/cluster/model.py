"""The cluster as the decision step sees it: a snapshot of nodes, objects and intents.

Pure data, frozen, with a JSON form (:func:`snapshot_from_json`) so that golden
cases are files: a snapshot in, a plan out (``tests/cluster/decide_golden``). The
daemon builds snapshots from etcd (:mod:`.state`), ``om mon`` renders them.

Vocabulary (opensvc.md §5.1-§5.2, om3's strings):

* an **intent** is an object's global expect (``started``, ``stopped``, ``placed@`` …)
  with its orchestration id; it lives in etcd until the orchestration ends;
* an **instance** is the object on one node: its status (avail, frozen …) and its
  monitor (state, the orchestration it acknowledged, whether it is done with it);
* a **node** is alive while its etcd lease is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class Expect(StrEnum):
    """Global expects an orchestrated action sets (opensvc.md §4.1)."""

    STARTED = "started"
    STOPPED = "stopped"
    FROZEN = "frozen"
    UNFROZEN = "unfrozen"
    PLACED = "placed"  # giveback: back to the natural leaders
    PLACED_AT = "placed@"  # switch / takeover: to the destination nodes
    RESTARTED = "restarted"
    ABORTED = "aborted"


class State(StrEnum):
    """Instance monitor states (om3's strings). ``… failed`` states block the instance
    until ``clear`` (or a new intent, which resets every state to idle)."""

    IDLE = "idle"
    STARTING = "starting"
    START_FAILED = "start failed"
    STOPPING = "stopping"
    STOP_FAILED = "stop failed"
    FREEZING = "freezing"
    FREEZE_FAILED = "freeze failed"
    UNFREEZING = "unfreezing"
    UNFREEZE_FAILED = "unfreeze failed"
    RESTARTING = "restarting"
    WAIT_PARENTS = "wait parents"

    @property
    def busy(self) -> bool:
        """An action of this instance is in flight."""
        return self in BUSY

    @property
    def failed(self) -> bool:
        return self.value.endswith(" failed")


BUSY = frozenset({State.STARTING, State.STOPPING, State.FREEZING, State.UNFREEZING,
                  State.RESTARTING})  # fmt: skip
UP = "up"
DOWN_LIKE = frozenset({"down", "stdby down", "stdby up", "n/a", "undef"})
UP_LIKE = frozenset({"up", "warn"})


class Placement(StrEnum):
    """``DEFAULT.placement`` (opensvc.md §5.3)."""

    NODES_ORDER = "nodes order"
    SPREAD = "spread"
    SCORE = "score"
    LAST_START = "last start"
    LOAD_AVG = "load avg"
    SHIFT = "shift"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """An object's global expect and the orchestration carrying it."""

    expect: Expect
    oid: str
    destination: tuple[str, ...] = ()  # placed@: the nodes to place on
    created: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectConfig:
    """The object keywords orchestration reads (evaluated, opensvc.md §3.1)."""

    path: str  # display form: svc0, ns1/svc/web
    nodes: tuple[str, ...]  # scope, in DEFAULT.nodes order
    drpnodes: tuple[str, ...] = ()
    topology: str = "failover"
    orchestrate: str = "no"
    placement: Placement = Placement.NODES_ORDER
    flex_min: int = 1
    flex_max: int = 0  # 0: unlimited
    flex_target: int = 1
    priority: int = 50
    hard_affinity: tuple[str, ...] = ()
    hard_anti_affinity: tuple[str, ...] = ()
    monitor_action: tuple[str, ...] = ("none",)
    stonith: bool = False  # fence a lost node that ran it before taking it over

    @property
    def flex(self) -> bool:
        return self.topology == "flex"

    @property
    def scope(self) -> tuple[str, ...]:
        return (*self.nodes, *(n for n in self.drpnodes if n not in self.nodes))

    @property
    def wanted_up(self) -> int:
        """How many instances should run: 1, or the flex target."""
        return self.flex_target if self.flex else 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """One resource of an instance, as the daemon's resource monitoring reads it (§5.6)."""

    rid: str
    status: str = "undef"
    restart: int = 0  # restart attempts the daemon makes when it is seen down
    restart_delay: float = 0.5  # seconds between two attempts
    monitor: bool = False  # still down after the restarts: the object's monitor_action
    standby: bool = False
    disabled: bool = False
    stopped: bool = False  # stopped on purpose (a --rid stop): left alone


@dataclass(frozen=True, slots=True, kw_only=True)
class Restarts:
    """What is left of a resource's restarts, and when the last one was made."""

    remaining: int
    last: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """An object on one node: its status and its monitor."""

    node: str
    avail: str = "undef"  # up down warn n/a undef "stdby up" "stdby down"
    overall: str = "undef"
    frozen: bool = False
    provisioned: bool = True
    state: State = State.IDLE
    oid: str = ""  # the orchestration this instance acknowledged
    done: bool = False  # … and is done with
    local_expect: str = "none"  # "started": the daemon keeps it up (monitoring)
    last_started: float = 0.0
    config_error: str = ""  # the object's config did not compile on this node
    resources: Mapping[str, Resource] = field(default_factory=dict)
    restarts: Mapping[str, Restarts] = field(default_factory=dict)
    monitor_action_at: float = 0.0  # the monitor action ran (once, until the instance is up)
    took_over: float = 0.0  # when this node last took the object's ownership …
    took_over_why: str = ""  # … and why (decide's reason: a lost node, an orchestration)


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A cluster node as etcd knows it."""

    name: str
    alive: bool = True
    frozen: bool = False
    state: str = "idle"  # idle, draining, drained …
    score: int = 0
    load15: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectView:
    """One object across the cluster."""

    config: ObjectConfig
    intent: Intent | None = None
    instances: Mapping[str, Instance] = field(default_factory=dict)
    owner: str | None = None  # holder of the failover ownership key
    # Lost nodes (lease expired, past the grace) where it was up when lost, not fenced
    # since: with `stonith`, they are fenced before it is taken over.
    lost_up: tuple[str, ...] = ()

    def instance(self, node: str) -> Instance | None:
        return self.instances.get(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The whole cluster at one etcd revision."""

    nodes: Mapping[str, Node]
    objects: Mapping[str, ObjectView]
    revision: int = 0
    now: float = 0.0  # the deciding node's clock (wall, seconds): restart delays

    def alive(self, node: str) -> bool:
        found = self.nodes.get(node)
        return found is not None and found.alive


# ---------------------------------------------------------------------------
# JSON (golden cases, `om mon --format json`, the daemon's etcd values)


def intent_from_json(data: Mapping[str, Any] | None) -> Intent | None:
    if not data:
        return None
    return Intent(expect=Expect(data["expect"]), oid=str(data["oid"]),
                  destination=tuple(data.get("destination", ())),
                  created=float(data.get("created", 0.0)))  # fmt: skip


class Field(NamedTuple):
    """How one field of a stored value decodes, and what its absence stands for. The
    decoders below read these tables, and a summary leaves out the fields that decode
    to what their absence would (:func:`.records.instance_summary`): the one place the
    defaults are defined, the one place each field's decoding is."""

    decode: Callable[[Any], Any]
    default: Any = None
    # Absent: that other field's value (or its default; a field without a fallback of
    # its own): an instance's overall is its avail.
    fallback: str = ""


def decode_field(fields: Mapping[str, Field], data: Mapping[str, Any], name: str) -> Any:
    """Field ``name`` of ``data``, decoded as ``fields`` says."""
    spec = fields[name]
    if name in data:
        return spec.decode(data[name])
    if spec.fallback:
        return spec.decode(data.get(spec.fallback, fields[spec.fallback].default))
    return spec.decode(spec.default)


class Fields(dict[str, Field]):
    """A record's fields by name, and the same as plain tuples (``plan``), which
    :func:`decode_fields` loops over: ``om mon`` and the daemon's views decode every
    record through it, and the loop over the NamedTuples took ~40 % longer (Python 3.11
    unpacks an exact tuple alone on its fast path)."""

    def __init__(self, fields: Mapping[str, Field]) -> None:
        super().__init__(fields)
        self.plan = tuple((name, *spec) for name, spec in fields.items())
        # field → the fields that fall back to it while absent (an avail: its overall)
        self.fallers: dict[str, tuple[str, ...]] = {}
        for name, spec in fields.items():
            if spec.fallback:
                self.fallers[spec.fallback] = (*self.fallers.get(spec.fallback, ()), name)


def decode_fields(fields: Fields, data: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of ``fields``, decoded from ``data`` (as :func:`decode_field`)."""
    get, decoded = data.get, {}
    for name, decode, default, fallback in fields.plan:
        if fallback and name not in data:
            decoded[name] = decode(get(fallback, fields[fallback].default))
        else:
            decoded[name] = decode(get(name, default))
    return decoded


NO_MONITOR_ACTION = ("none",)

# ObjectConfig's fields but ``path``, which the reader supplies.
CONFIG_FIELDS = Fields({
    "nodes": Field(tuple, ()),
    "drpnodes": Field(tuple, ()),
    "topology": Field(str, "failover"),
    "orchestrate": Field(str, "no"),
    "placement": Field(Placement, "nodes order"),
    "flex_min": Field(int, 1),
    "flex_max": Field(int, 0),
    "flex_target": Field(int, 1),
    "priority": Field(int, 50),
    "hard_affinity": Field(tuple, ()),
    "hard_anti_affinity": Field(tuple, ()),
    "stonith": Field(bool, False),
    "monitor_action": Field(lambda v: tuple(str(a) for a in v) or NO_MONITOR_ACTION,
                            NO_MONITOR_ACTION),
})  # fmt: skip


def config_from_json(data: Mapping[str, Any]) -> ObjectConfig:
    return ObjectConfig(path=str(data["path"]), **decode_fields(CONFIG_FIELDS, data))


def instance_from_json(node: str, data: Mapping[str, Any]) -> Instance:
    """An instance record, or summary (``config`` is the object's, not read here). A
    summary (no resources, no restarts: what ``om mon`` reads) is decoded once per
    distinct value and node: most of a cluster's are alike (down, idle …), and building
    the frozen instance was most of ``om mon``'s snapshot."""
    if "resources" in data or "restarts" in data:
        return _instance(node, data)
    items = tuple(i for i in data.items() if i[0] != "config")
    return _shared(_cached_instance, _instance, node, items, data)


def _shared(
    cached: Callable[[str, tuple[tuple[str, Any], ...]], T],
    plain: Callable[[str, Mapping[str, Any]], T],
    name: str,
    items: tuple[tuple[str, Any], ...],
    data: Mapping[str, Any],
) -> T:
    """``cached(name, items)``: one frozen object per distinct value; ``plain(name,
    data)`` when a field is unhashable (not shared)."""
    try:
        return cached(name, items)
    except TypeError:
        return plain(name, data)


@functools.lru_cache(maxsize=4096)
def _cached_instance(node: str, items: tuple[tuple[str, Any], ...]) -> Instance:
    return _instance(node, dict(items))


def _instance(node: str, data: Mapping[str, Any]) -> Instance:
    return Instance(node=node, **decode_fields(INSTANCE_FIELDS, data))


def _resources(value: Mapping[str, Any]) -> dict[str, Resource]:
    return {rid: _shared_resource(rid, v) for rid, v in value.items()}


def _restarts(value: Mapping[str, Mapping[str, Any]]) -> dict[str, Restarts]:
    return {rid: Restarts(remaining=int(v.get("remaining", 0)), last=float(v.get("last", 0.0)))
            for rid, v in value.items()}  # fmt: skip


# Instance's fields but ``node``, which the reader supplies (the record's key names it).
INSTANCE_FIELDS = Fields(
    {
        "avail": Field(str, "undef"),
        "overall": Field(str, fallback="avail"),
        "frozen": Field(bool, False),
        "provisioned": Field(bool, True),
        "state": Field(State, "idle"),
        "oid": Field(str, ""),
        "done": Field(bool, False),
        "local_expect": Field(str, "none"),
        "last_started": Field(float, 0.0),
        "config_error": Field(str, ""),
        "resources": Field(_resources, {}),
        "restarts": Field(_restarts, {}),
        "monitor_action_at": Field(float, 0.0),
        "took_over": Field(float, 0.0),
        "took_over_why": Field(str, ""),
    }
)


def _shared_resource(rid: str, value: object) -> Resource:
    """:func:`_resource`, one frozen object per distinct record: most resources of a
    cluster's instances are alike (down, no restart …), and building them was ~a third of
    decoding an instance record (``om mon`` decodes every one)."""
    if isinstance(value, Mapping):
        return _shared(_cached_resource, _resource, rid, tuple(value.items()), value)
    return _resource(rid, value)


@functools.lru_cache(maxsize=4096)
def _cached_resource(rid: str, items: tuple[tuple[str, Any], ...]) -> Resource:
    return _resource(rid, dict(items))


def _resource(rid: str, value: object) -> Resource:
    if not isinstance(value, Mapping):  # older records: the status alone
        return Resource(rid=rid, status=str(value))
    return Resource(
        rid=rid,
        status=str(value.get("status", "undef")),
        restart=int(value.get("restart", 0)),
        restart_delay=float(value.get("restart_delay", 0.5)),
        monitor=bool(value.get("monitor", False)),
        standby=bool(value.get("standby", False)),
        disabled=bool(value.get("disabled", False)),
        stopped=bool(value.get("stopped", False)),
    )


def node_from_json(name: str, data: Mapping[str, Any]) -> Node:
    return Node(
        name=name,
        alive=bool(data.get("alive", True)),
        frozen=bool(data.get("frozen", False)),
        state=str(data.get("state", "idle")),
        score=int(data.get("score", 0)),
        load15=float(data.get("load15", 0.0)),
        labels=dict(data.get("labels", {})),
    )


def snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    """A snapshot from its JSON form (the golden cases' input)."""
    nodes = {name: node_from_json(name, value) for name, value in data["nodes"].items()}
    objects = {}
    for path, value in data["objects"].items():
        config = config_from_json({"path": path, **value.get("config", {})})
        instances = {n: instance_from_json(n, v) for n, v in value.get("instances", {}).items()}
        objects[path] = ObjectView(config=config, intent=intent_from_json(value.get("intent")),
                                   instances=instances, owner=value.get("owner"),
                                   lost_up=tuple(value.get("lost_up", ())))  # fmt: skip
    return Snapshot(nodes=nodes, objects=objects, revision=int(data.get("revision", 0)),
                    now=float(data.get("now", 0.0)))  # fmt: skip
