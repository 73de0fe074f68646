"""Keyword data: ``[DEFAULT]`` (opensvc.md §3), ``[subset#...]`` and free-form sections.

Data only; the model and lookups are in ``keywords.py``.
"""

from __future__ import annotations

from .keywords import Conv, Inherit, Keyword, Status, kw, words

D = "DEFAULT"
HEAD = Inherit.HEAD
LEGACY = Status.LEGACY

PG_KEYWORDS = (
    ("pg_cpus", Conv.STRING, "cpuset cpus the process group may use (AllowedCPUs=)"),
    ("pg_mems", Conv.STRING, "cpuset memory nodes (AllowedMemoryNodes=)"),
    ("pg_cpu_shares", Conv.INT, "relative cpu weight, cgroup v1 shares (CPUWeight=)"),
    ("pg_cpu_quota", Conv.STRING, "cpu quota, e.g. '50%@all' or '1' (CPUQuota=)"),
    ("pg_mem_limit", Conv.SIZE, "memory limit (MemoryMax=)"),
    ("pg_vmem_limit", Conv.SIZE, "memory+swap limit (MemorySwapMax= is the difference)"),
    ("pg_mem_oom_control", Conv.INT, "cgroup v1 oom killer control (no systemd equivalent)"),
    ("pg_mem_swappiness", Conv.INT, "cgroup v1 swappiness (no systemd equivalent)"),
    ("pg_blkio_weight", Conv.INT, "block io weight (IOWeight=)"),
)


def pg_keywords(section: str) -> tuple[Keyword, ...]:
    return tuple(kw(section, n, c, d, inherit=Inherit.LEAF) for n, c, d in PG_KEYWORDS)


def _placement() -> tuple[Keyword, ...]:
    return (
        kw(
            D,
            "nodes",
            Conv.NODES,
            "nodes allowed to host instances, in placement order",
            default="{nodename}",
            scopable=True,
            inherit=HEAD,
        ),
        kw(
            D, "drpnodes", Conv.NODES, "disaster recovery nodes", aliases=("drpnode",), inherit=HEAD
        ),
        kw(
            D,
            "encapnodes",
            Conv.NODES,
            "nodes inside containers running an encapsulated agent",
            scopable=False,
            inherit=HEAD,
        ),
        kw(
            D,
            "topology",
            Conv.STRING,
            "failover: one instance up; flex: several",
            aliases=("cluster_type",),
            default="failover",
            scopable=False,
            inherit=HEAD,
            candidates=("failover", "flex"),
        ),
        kw(
            D,
            "flex_min",
            Conv.INT,
            "below this many up instances the avail is warn",
            aliases=("flex_min_nodes",),
            default="1",
            scopable=False,
            inherit=HEAD,
        ),
        kw(
            D,
            "flex_max",
            Conv.INT,
            "above this many up instances the avail is warn (0: no max)",
            aliases=("flex_max_nodes",),
            default="{#nodes}",
            scopable=False,
            inherit=HEAD,
        ),
        kw(
            D,
            "flex_target",
            Conv.INT,
            "number of up instances the orchestrator aims for",
            default="{flex_min}",
            scopable=False,
            inherit=HEAD,
        ),
        kw(
            D,
            "flex_primary",
            Conv.STRING,
            "the flex instance in charge of syncs (first node)",
            inherit=HEAD,
        ),
        kw(
            D,
            "drp_flex_primary",
            Conv.STRING,
            "the drp flex instance in charge of syncs",
            inherit=HEAD,
        ),
        kw(
            D,
            "orchestrate",
            Conv.STRING,
            "daemon behaviour: no, start or ha",
            default="no",
            inherit=HEAD,
            candidates=("no", "ha", "start"),
        ),
        kw(
            D,
            "placement",
            Conv.STRING,
            "placement policy",
            default="nodes order",
            inherit=HEAD,
            candidates=(
                "nodes order",
                "last start",
                "load avg",
                "shift",
                "spread",
                "score",
                "none",
            ),
        ),
        kw(
            D,
            "priority",
            Conv.INT,
            "daemon action queue priority (lower first)",
            default="50",
            inherit=HEAD,
        ),
        kw(D, "parents", Conv.LIST, "objects that must be up before this one starts", inherit=HEAD),
        kw(
            D,
            "children",
            Conv.LIST,
            "objects that must be down before this one stops",
            inherit=HEAD,
        ),
        kw(
            D,
            "hard_affinity",
            Conv.LIST,
            "objects whose local instance must be up",
            aliases=("affinity",),
            inherit=HEAD,
        ),
        kw(
            D,
            "hard_anti_affinity",
            Conv.LIST,
            "objects whose local instance must be down",
            aliases=("anti_affinity",),
            inherit=HEAD,
        ),
        kw(D, "soft_affinity", Conv.LIST, "v2 soft affinity (parsed, unused by om3)", inherit=HEAD),
        kw(
            D,
            "soft_anti_affinity",
            Conv.LIST,
            "v2 soft anti-affinity (parsed, unused by om3)",
            inherit=HEAD,
        ),
        kw(
            D,
            "stonith",
            Conv.BOOL,
            "fence a lost peer before taking over",
            default="false",
            inherit=HEAD,
        ),
        kw(
            D,
            "monitor_action",
            Conv.LIST,
            "none crash reboot freezestop switch (+ fallback)",
            default="none",
            inherit=HEAD,
        ),
        kw(
            D,
            "pre_monitor_action",
            Conv.SHLEX,
            "command run before the monitor action",
            inherit=HEAD,
        ),
    )


def _identity() -> tuple[Keyword, ...]:
    return (
        kw(D, "id", Conv.STRING, "object id (uuid4)", scopable=False, inherit=HEAD),
        kw(
            D,
            "env",
            Conv.STRING,
            "PRD, DEV ...: a non-PRD object cannot start on a PRD node",
            aliases=("service_type",),
            inherit=HEAD,
        ),
        kw(
            D,
            "app",
            Conv.STRING,
            "application code (collector grouping)",
            default="default",
            inherit=HEAD,
        ),
        kw(D, "comment", Conv.STRING, "free text", inherit=HEAD),
        kw(D, "disable", Conv.BOOL, "disable the whole object", default="false", inherit=HEAD),
        kw(D, "rollback", Conv.BOOL, "roll back a failed start", default="true", inherit=HEAD),
        kw(
            D,
            "create_pg",
            Conv.BOOL,
            "make a cgroup per object, subset and resource",
            default="true",
            inherit=HEAD,
        ),
        kw(
            D,
            "lock_timeout",
            Conv.DURATION,
            "action lock acquisition timeout",
            default="60s",
            inherit=HEAD,
        ),
        kw(
            D,
            "kind",
            Conv.STRING,
            "object kind (pool templates write it)",
            inherit=HEAD,
            scopable=False,
            candidates=("svc", "vol", "cfg", "sec", "usr"),
        ),
    )


def _timeouts_and_schedules() -> tuple[Keyword, ...]:
    timeouts = (
        ("timeout", "1h", "default limit of state-changing actions"),
        ("start_timeout", None, "start action limit"),
        ("stop_timeout", None, "stop action limit (also bounds a rollback)"),
        ("provision_timeout", None, "provision action limit"),
        ("unprovision_timeout", None, "unprovision action limit"),
        ("sync_timeout", None, "sync action limit"),
        ("run_timeout", None, "task run limit"),
        ("status_timeout", "1m", "post-action status evaluation limit"),
    )
    schedules = (
        ("status_schedule", "@10m", "status evaluation"),
        ("monitor_schedule", "@1m", "monitored resources re-evaluation"),
        ("resinfo_schedule", "@60m", "resource info push"),
        ("comp_schedule", "~00:00-06:00", "compliance run"),
        ("sync_schedule", "04:00-06:00", "default schedule of sync resources"),
        ("run_schedule", None, "default schedule of task resources"),
        ("push_schedule", None, "v2 config push to the collector"),
    )
    return (
        *(kw(D, n, Conv.DURATION, d, default=v, inherit=HEAD) for n, v, d in timeouts),
        *(kw(D, n, Conv.SCHEDULE, d, default=v, inherit=HEAD) for n, v, d in schedules),
        kw(D, "comp_modulesets", Conv.LIST, "compliance modulesets", inherit=HEAD),
        kw(D, "comp_modules", Conv.LIST, "compliance modules", inherit=HEAD),
    )


def _kind_specific() -> tuple[Keyword, ...]:
    cert = ("cn", "c", "st", "l", "o", "ou", "email", "alt_names", "bits", "validity", "ca")
    return (
        kw(D, "pool", Conv.STRING, "vol: the pool the volume was allocated from", inherit=HEAD),
        kw(D, "size", Conv.SIZE, "vol: allocated size", inherit=HEAD),
        kw(
            D,
            "access",
            Conv.STRING,
            "vol: access mode",
            default="rwo",
            inherit=HEAD,
            candidates=("rwo", "roo", "rwx", "rox"),
        ),
        kw(D, "devices_from", Conv.LIST, "vol: objects exposing the devices", inherit=HEAD),
        kw(
            D,
            "share",
            Conv.STRING,
            "cfg/sec: namespaces allowed to read the keys",
            default="{namespace}",
            inherit=HEAD,
        ),
        kw(D, "grant", Conv.LIST, "usr: granted roles", inherit=HEAD),
        *(kw(D, n, Conv.STRING, "sec: certificate field", inherit=HEAD) for n in cert),
    )


_V2_DEFAULT = words(
    "constraints scale scaler_slave slaves flex_cpu_low_threshold flex_cpu_high_threshold "
    "docker_data_dir docker_daemon_args docker_exe docker_daemon_private docker_swarm_managers "
    "mode autostart_node show_disabled presnap_trigger postsnap_trigger vm_name cluster "
    "aws aws_profile guestos encapnodes_cmd containerize"
)


def _legacy() -> tuple[Keyword, ...]:
    return tuple(
        kw(D, n, Conv.STRING, "v1/v2 only: ignored by om3", inherit=HEAD, status=LEGACY)
        for n in _V2_DEFAULT
    )


SUBSET_KEYWORDS = (
    kw(
        "subset",
        "parallel",
        Conv.BOOL,
        "start/stop the set's resources concurrently",
        default="false",
        inherit=Inherit.LEAF,
    ),
    *pg_keywords("subset"),
)

DEFAULT_KEYWORDS: tuple[Keyword, ...] = (
    *_placement(),
    *_identity(),
    *_timeouts_and_schedules(),
    *_kind_specific(),
    *pg_keywords(D),
    *_legacy(),
    *SUBSET_KEYWORDS,
)
