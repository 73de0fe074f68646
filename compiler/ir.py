"""The typed intermediate representation: what a config means for one node.

Built once by lowering (parse tree + keyword table + scoping/references for a
node), then only read: by emission (units) and by the runtime (which reads it
back from the units' ``X-OpenSVC-Config``). Every class is frozen, slotted and
keyword-only; collections are tuples or frozensets so an IR can be hashed and
compared in golden tests.

This file is the contract between the compiler front end (lowering) and the
back end (emission). Driver-specific classes extend :class:`Resource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """Object kinds (opensvc.md §1.1). Only svc and vol produce units."""

    SVC = "svc"
    VOL = "vol"
    CFG = "cfg"
    SEC = "sec"
    USR = "usr"


class Group(StrEnum):
    """Driver groups, declared in start order (opensvc.md §2.2)."""

    IP = "ip"
    VOLUME = "volume"
    DISK = "disk"
    FS = "fs"
    SHARE = "share"
    CONTAINER = "container"
    APP = "app"
    SYNC = "sync"
    TASK = "task"

    @property
    def rank(self) -> int:
        """Position in the start order; stop walks the same ranks in reverse."""
        return list(Group).index(self)


class Topology(StrEnum):
    FAILOVER = "failover"
    FLEX = "flex"


class Orchestrate(StrEnum):
    NO = "no"
    HA = "ha"
    START = "start"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectPath:
    """``<namespace>/<kind>/<name>``; displayed as om3 does (``svc0``, ``cfg/c1``, ``ns1/svc/web``)."""

    namespace: str = "root"
    kind: Kind = Kind.SVC
    name: str

    def __str__(self) -> str:
        if self.namespace == "root":
            return self.name if self.kind is Kind.SVC else f"{self.kind}/{self.name}"
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpan:
    """Where a section or keyword was written, for diagnostics and ``SourcePath=``."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessGroup:
    """``pg_*`` caps, already converted to systemd slice property values (None = unset)."""

    cpu_quota: str | None = None  # CPUQuota=, e.g. "50%"
    cpu_weight: int | None = None  # CPUWeight= (from pg_cpu_shares)
    allowed_cpus: str | None = None  # AllowedCPUs= (pg_cpus)
    allowed_mems: str | None = None  # AllowedMemoryNodes= (pg_mems)
    memory_max: int | None = None  # MemoryMax= bytes (pg_mem_limit)
    memory_swap_max: int | None = None  # MemorySwapMax= bytes (pg_vmem_limit - pg_mem_limit)
    io_weight: int | None = None  # IOWeight= (pg_blkio_weight)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__slots__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """``start_requires = ip#0(up,stdby up)``: a rid and the states that satisfy it."""

    rid: str
    states: tuple[str, ...] = ("up", "stdby up")


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """A ``[blocking_](pre|post)_<action>`` command (argv, already shlex-split)."""

    when: str  # "pre" | "post"
    action: str  # "start" | "stop" | "run" | "provision" | "unprovision"
    blocking: bool
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """Keywords common to every driver (opensvc.md §2.1)."""

    rid: str  # "app#web"
    group: Group
    driver: str  # "<group>.<type>", e.g. "fs.flag", "app.forking", "fs.ext4" is "fs.mount"? see docs/design.md
    span: SourceSpan
    tags: frozenset[str] = frozenset()
    subset: str | None = None
    disable: bool = False
    optional: bool = False
    standby: bool = False
    monitor: bool = False
    shared: bool = False
    encap: bool = False
    restart: int = 0
    restart_delay: float = 0.5  # seconds
    comment: str = ""
    start_timeout: float | None = None  # seconds; None = inherit DEFAULT
    stop_timeout: float | None = None
    pg: ProcessGroup = field(default_factory=ProcessGroup)
    start_requires: tuple[Requirement, ...] = ()
    stop_requires: tuple[Requirement, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    # Every keyword of the section after scoping, references and conversion,
    # JSON-friendly (str, int, float, bool, list of str). The runtime's drivers
    # read their settings from here via X-OpenSVC-Config; typed fields on the
    # subclasses are what the compiler itself needs.
    config: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        """The part after ``#`` (``web`` for ``app#web``)."""
        return self.rid.split("#", 1)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Subset:
    """``[subset#app:workers]``: a named resource set of one group."""

    group: Group
    name: str
    parallel: bool = False
    pg: ProcessGroup = field(default_factory=ProcessGroup)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One object evaluated for one node: the root of the IR."""

    path: ObjectPath
    id: str
    source: str  # absolute path of the config file, for SourcePath=
    node: str  # the node it was evaluated for
    nodes: tuple[str, ...] = ()
    drpnodes: tuple[str, ...] = ()
    topology: Topology = Topology.FAILOVER
    orchestrate: Orchestrate = Orchestrate.NO
    placement: str = "nodes order"
    flex_min: int = 1
    flex_max: int = 0
    flex_target: int = 1
    priority: int = 50
    parents: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # the [env] section
    disable: bool = False
    rollback: bool = True
    start_timeout: float | None = None
    stop_timeout: float | None = None
    pg: ProcessGroup = field(default_factory=ProcessGroup)
    subsets: tuple[Subset, ...] = ()
    resources: tuple[Resource, ...] = ()
