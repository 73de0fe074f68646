"""The typed intermediate representation: what a config means for one node.

Built once by lowering (parse tree + keyword table + scoping/references for a
node), then only read, by emission. Every class is frozen, slotted and
keyword-only; collections are tuples or frozensets so an IR can be hashed and
compared in golden tests.

This file is the contract between the compiler's front end (lowering) and its
back end (emission). The runtime never sees the IR: it reads the installed
units, whose keys and values are fixed by :mod:`omc.compiler.contract` (the
IR re-exports the contract types it uses: ``Kind``, ``Group``, ``ObjectPath``,
``Requirement``). Driver-specific classes extend :class:`Resource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Contract types the IR uses, re-exported (``X as X``: mypy --strict's explicit re-export).
from .contract.paths import Group as Group
from .contract.paths import Kind as Kind
from .contract.paths import ObjectPath as ObjectPath
from .contract.units import Requirement as Requirement
from .records import Record as _Record  # shared ==, hash() and repr() (see records.py)


class Topology(StrEnum):
    FAILOVER = "failover"
    FLEX = "flex"


class Orchestrate(StrEnum):
    NO = "no"
    HA = "ha"
    START = "start"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class SourceSpan(_Record):
    """Where a section or keyword was written, for diagnostics and ``SourcePath=``."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ProcessGroup(_Record):
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


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class KvRef(_Record):
    """One ``configs_environment``/``secrets_environment`` item: ``var`` set to key ``key``
    of the cfg/sec object ``name`` (the service's namespace), or, ``var`` None, one
    variable per key matching the glob ``key``. Resolved at run time; the pipeline
    checks the object and key exist when it is given the config directory."""

    keyword: str  # configs_environment | secrets_environment
    kind: Kind  # cfg | sec
    name: str
    key: str
    var: str | None
    span: SourceSpan | None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Trigger(_Record):
    """A ``[blocking_](pre|post)_<action>`` command (argv, already shlex-split)."""

    when: str  # "pre" | "post"
    action: str  # "start" | "stop" | "run" | "provision" | "unprovision"
    blocking: bool
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Resource(_Record):
    """Keywords common to every driver (opensvc.md §2.1)."""

    rid: str  # "app#web"
    group: Group
    driver: str  # "<group>.<type>", canonical type: "fs.flag", "app.forking"; just "volume"
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
    provision: bool = True
    unprovision: bool = True
    triggers: tuple[Trigger, ...] = ()
    kv_refs: tuple[KvRef, ...] = ()  # configs/secrets_environment, any driver that has them
    # Every keyword of the section after scoping, references and conversion,
    # JSON-friendly (str, int, float, bool, list of str). The runtime's drivers
    # read their settings from here via X-OpenSVC-Config; typed fields on the
    # subclasses are what the compiler itself needs.
    config: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        """The part after ``#`` (``web`` for ``app#web``)."""
        return self.rid.split("#", 1)[1]

    @property
    def type(self) -> str:
        """The part of the driver after the group (``forking`` for ``app.forking``)."""
        return self.driver.split(".", 1)[1] if "." in self.driver else ""

    def get(self, key: str, default: object = None) -> object:
        """One evaluated keyword from :attr:`config` (``default`` when absent)."""
        for name, value in self.config:
            if name == key:
                return value
        return default


# ---------------------------------------------------------------------------
# Schedules (opensvc.md §1.8, §3.3): parsed once, turned into OnCalendar= by
# compiler/schedule.py and used by the runtime for "next run" displays.


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class TimeRange(_Record):
    """``[~]HH:MM[-HH:MM][@interval]``: a window, times as seconds since midnight."""

    begin: int = 0
    end: int = 86400  # exclusive; equal to ``begin`` for "run once at begin"
    interval: float | None = None  # seconds; None = once in the window
    random: bool = False  # "~": spread the run randomly inside the window


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class DaySpec(_Record):
    """``<weekday>[:<nth>]``: weekday 1=mon..7=sun; nth 1..5, -1 = last, None = every."""

    weekday: int
    nth: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ScheduleRule(_Record):
    """One ``[!]<timeranges> [<days> [<weeks> [<months>]]]`` definition.

    Empty ``days``/``weeks``/``months`` mean "all".
    """

    exclude: bool = False
    timeranges: tuple[TimeRange, ...] = (TimeRange(),)
    days: tuple[DaySpec, ...] = ()
    weeks: tuple[int, ...] = ()  # ISO weeks 1..53
    months: tuple[int, ...] = ()  # 1..12


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Schedule(_Record):
    """A parsed OpenSVC schedule string; ``rules == ()`` means never."""

    raw: str
    rules: tuple[ScheduleRule, ...] = ()

    @property
    def never(self) -> bool:
        return not any(not r.exclude for r in self.rules)


# ---------------------------------------------------------------------------
# Driver families. Typed fields are what emission and the runtime need; every
# other evaluated keyword stays in ``Resource.config``.


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class IpResource(Resource):
    """ip.host, ip.netns (the ip drivers omc runs: ``keywords.DRIVERS``)."""

    ipname: str | None = None  # address or DNS name (keyword ``name``)
    netmask: str | None = None  # dotted or prefix length, as written
    dev: str | None = None
    gateway: str | None = None
    netns: str | None = None  # "container#0" for ip.netns
    mode: str | None = None  # ip.netns: bridge, macvlan, ipvlan-l2 ...
    network: str | None = None  # ip.host provisioning network
    nsdev: str | None = None
    alias: bool = True
    check_carrier: bool = True
    expose: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class DiskResource(Resource):
    """disk.loop, disk.vg, disk.md, disk.raw (the disk drivers omc runs)."""

    disk_name: str | None = None  # vg/md name (keyword ``name``)
    file: str | None = None  # disk.loop backing file
    size: int | None = None  # bytes; None when unset or a "%FREE" form (see config)
    pvs: tuple[str, ...] = ()  # disk.vg provisioning
    devs: tuple[str, ...] = ()  # disk.md / disk.raw
    uuid: str | None = None  # disk.md


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class FsResource(Resource):
    """fs.<fstype> (mountable), fs.flag, fs.directory."""

    fs_type: str  # "ext4", "flag", "directory", "tmpfs", "bind", ...
    is_mountable: bool = False  # becomes a native .mount unit
    dev: str | None = None
    mnt: str | None = None
    mnt_opt: str | None = None
    mkfs_opt: tuple[str, ...] = ()
    stat_timeout: float = 5.0
    check_read: bool = False
    path: str | None = None  # fs.directory
    user: str | None = None
    user_group: str | None = None  # keyword ``group``
    perm: int | None = None  # octal mode as int (0o755)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ShareResource(Resource):
    """share.nfs: ``exportfs -o <opts> <client>:<path>``."""

    path: str | None = None
    opts: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ContainerResource(Resource):
    """container.podman/docker/oci (the container drivers omc runs)."""

    image: str | None = None
    image_pull_policy: str = "once"
    container_name: str | None = None  # keyword ``name`` (default computed)
    hostname: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    run_args: tuple[str, ...] = ()
    netns: str | None = None  # "host", "container#0", None = private
    pidns: str | None = None
    ipcns: str | None = None
    utsns: str | None = None
    userns: str | None = None
    volume_mounts: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    detach: bool = True
    rm: bool = False
    init: bool = False
    privileged: bool = False
    interactive: bool = False
    tty: bool = False
    read_only: bool = False
    user: str | None = None
    cwd: str | None = None
    pull_timeout: float | None = None


class AppKind(StrEnum):
    FORKING = "forking"
    SIMPLE = "simple"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class AppResource(Resource):
    """app.forking / app.simple.

    ``start``/``stop``/``check``/``info`` are the argv to run (``<script>
    <action>`` already expanded for ``true`` or sequence numbers) or None
    (``false`` or unset). ``limits`` are systemd-ish names (``LimitNOFILE``)
    with the converted value (bytes, seconds or count).
    """

    kind: AppKind = AppKind.FORKING
    script: str | None = None
    start: tuple[str, ...] | None = None
    stop: tuple[str, ...] | None = None
    check: tuple[str, ...] | None = None
    info: tuple[str, ...] | None = None
    sequence: int | None = None  # "start = 10" legacy ordering
    environment: tuple[tuple[str, str], ...] = ()
    configs_environment: tuple[str, ...] = ()
    secrets_environment: tuple[str, ...] = ()
    user: str | None = None
    user_group: str | None = None  # keyword ``group``
    cwd: str | None = None
    umask: int | None = None
    limits: tuple[tuple[str, int], ...] = ()
    retcodes: tuple[tuple[int, str], ...] = ((0, "up"), (1, "down"))
    timeout: float | None = None
    check_timeout: float | None = None
    info_timeout: float | None = None
    status_log: bool = False
    netns: str | None = None


class SyncTarget(StrEnum):
    NODES = "nodes"
    DRPNODES = "drpnodes"
    LOCAL = "local"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class SyncResource(Resource):
    """sync.rsync (the sync driver omc runs)."""

    src: tuple[str, ...] = ()
    dst: str | None = None
    dstfs: str | None = None
    target: tuple[SyncTarget, ...] = ()
    options: tuple[str, ...] = ()
    reset_options: bool = False
    bwlimit: str | None = None
    timeout: float | None = None
    schedule: Schedule | None = None
    max_delay: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class TaskResource(Resource):
    """task.host (command) and task.podman/docker/oci (image + command)."""

    command: tuple[str, ...] | None = None
    stop_command: tuple[str, ...] | None = None  # keyword ``stop``
    on_error: tuple[str, ...] | None = None
    schedule: Schedule | None = None
    confirmation: bool = False
    max_parallel: int = 1
    check: str | None = None  # "last_run" | "last_run_warn" | None
    retcodes: tuple[tuple[int, str], ...] = ((0, "up"), (1, "down"))
    log: bool = True
    snooze: float | None = None
    timeout: float | None = None  # run_timeout, else timeout
    user: str | None = None
    user_group: str | None = None  # keyword ``group``
    cwd: str | None = None
    umask: int | None = None
    environment: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, int], ...] = ()
    image: str | None = None  # container tasks
    run_args: tuple[str, ...] = ()
    run_requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class VolumeResource(Resource):
    """volume: a ``vol`` object allocated from a pool, started with the service."""

    volume_name: str | None = None  # keyword ``name`` (default {name}-vol-{rindex})
    pool: str | None = None
    size: int | None = None
    access: str = "rwo"
    format: bool = True
    pool_type: str | None = None  # keyword ``type``
    configs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    directories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Subset(_Record):
    """``[subset#app:workers]``: a named resource set of one group."""

    group: Group
    name: str
    parallel: bool = False
    pg: ProcessGroup = field(default_factory=ProcessGroup)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Service(_Record):
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
    flex_primary: str | None = None
    encapnodes: tuple[str, ...] = ()
    monitor_action: tuple[str, ...] = ()
    # Every DEFAULT keyword after evaluation (JSON-friendly), like Resource.config.
    config: tuple[tuple[str, object], ...] = ()
    # cfg/sec/usr [data] keys (values as written, references not expanded).
    data: tuple[tuple[str, str], ...] = ()
