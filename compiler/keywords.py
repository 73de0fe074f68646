"""The one keyword table: every OpenSVC keyword omc knows, defined once.

Validation ("unknown keyword", "did you mean"), defaults, inheritance, scoping
rules, converters and the ``omc keywords [DRIVER]`` documentation all read
:data:`TABLE`. The data lives in ``keywords_default.py`` (object-level
sections) and ``keywords_resources.py`` (resource drivers); this module holds
the model, the driver catalogue and the lookups.

Driver support levels (:class:`Support`) decide what happens to a resource.
A driver is ``emitted`` only when omc's runtime has a driver for it
(``omc.runtime.drivers``; ``tests/test_contract.py`` ties the two tables), so a
compiled unit never fails at start for want of one:

=============  ===============================================  ==========================
support        meaning                                          diagnostic
=============  ===============================================  ==========================
``emitted``    omc compiles it into units and runs it           none
``parsed``     an om3 driver omc's runtime does not run         error ("not supported by
               (ip.cni, disk.drbd, fs.zfs, container.kvm,       omc's runtime", with what
               volume ...): keywords checked, then rejected     to use instead), or warning
                                                                when the resource is
                                                                optional or disabled
                                                                (then skipped)
``legacy``     v1/v2-only drivers and section groups, which     same, saying om3 removed it
               om3 rejects too (``container.hpvm``,
               ``ip.amazon``, ``sync.dds``, ``[vg#1]``)
=============  ===============================================  ==========================

Keyword status (:class:`Status`): ``current``; ``deprecated`` (an old
spelling, still honoured: warning); ``legacy`` (v1/v2 only, ignored: warning).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from .records import Record


class Conv(StrEnum):
    """Value converters (opensvc.md §1.8); implemented in ``convert.py``."""

    STRING = "string"
    BOOL = "bool"
    TRISTATE = "tristate"
    INT = "int"
    DURATION = "duration"
    SIZE = "size"
    LIST = "list"
    LISTLOWER = "listlowercase"
    SET = "set"
    SHLEX = "shlex"
    COMMAND = "command"  # om3 CmdArgsFromString: "/bin/sh -c" when | && or ; appear
    NODES = "nodes"
    UMASK = "umask"
    SCHEDULE = "schedule"
    REQUIRES = "requires"
    RETCODES = "retcodes"
    APPCMD = "appcmd"  # app start/stop/check/info: bool, sequence number or command


class Inherit(StrEnum):
    """Where a resource keyword's value comes from (opensvc.md §1.5)."""

    LEAF2HEAD = "leaf2head"  # the section, else DEFAULT, else the default
    HEAD2LEAF = "head2leaf"  # DEFAULT wins over the section
    LEAF = "leaf"  # the section only
    HEAD = "head"  # DEFAULT only


class Status(StrEnum):
    CURRENT = "current"
    DEPRECATED = "deprecated"
    LEGACY = "legacy"


class Support(StrEnum):
    """What omc does with a driver (see the module doc)."""

    EMITTED = "emitted"  # compiled into units; omc's runtime runs it
    PARSED = "parsed"  # an om3 driver omc's runtime does not run: rejected
    LEGACY = "legacy"  # v1/v2 only, removed in om3: rejected


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Keyword(Record):
    """One keyword of one section kind (``DEFAULT``, ``ip``, ``subset``, ``env`` ...)."""

    section: str
    name: str
    conv: Conv = Conv.STRING
    doc: str = ""
    types: frozenset[str] | None = None  # driver types; None = every type of the group
    aliases: tuple[str, ...] = ()
    default: str | None = None  # a raw string, references allowed ("{#nodes}")
    scopable: bool = True
    inherit: Inherit = Inherit.LEAF2HEAD
    required: bool = False
    status: Status = Status.CURRENT
    candidates: tuple[str, ...] = ()  # allowed values (checked after conversion to str)
    default_option: str | None = None  # DEFAULT keyword read on fallback (sync_schedule)

    def applies_to(self, driver_type: str | None) -> bool:
        return self.types is None or driver_type is None or driver_type in self.types

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def kw(
    section: str,
    name: str,
    conv: Conv = Conv.STRING,
    doc: str = "",
    *,
    types: Iterable[str] | None = None,
    **opts: Any,
) -> Keyword:
    """Terse constructor for the data modules (``types`` may be any iterable)."""
    frozen = frozenset(types) if types is not None else None
    return Keyword(section=section, name=name, conv=conv, doc=doc, types=frozen, **opts)


def words(text: str) -> tuple[str, ...]:
    """Whitespace-separated names, for readable data tables."""
    return tuple(text.split())


# --- drivers ---------------------------------------------------------------------

MOUNT_FS_TYPES = words(
    "ext2 ext3 ext4 xfs btrfs vfat reiserfs jfs jfs2 bfs msdos ufs ufs2 minix xia umsdos hpfs "
    "ntfs reiserfs4 vxfs hfs hfsplus qnx4 ocfs ocfs2 nilfs jffs jffs2 tux3 f2fs logfs gfs gfs2 "
    "nfs nfs4 smbfs cifs 9pfs gpfs afs ncpfs glusterfs cephfs tmpfs rpc_pipefs none bind lofs "
    "overlay squashfs iso9660 udf exfat"
)

# group -> {type: support}. "" is the default type when `type` is unset. A type is
# EMITTED only if omc.runtime.drivers runs it (tests/test_contract.py checks both ways).
DRIVERS: dict[str, dict[str, Support]] = {
    "ip": {
        **dict.fromkeys(("host", "netns"), Support.EMITTED),
        **dict.fromkeys(("cni", "route"), Support.PARSED),
        **dict.fromkeys(("amazon", "crossbow", "gce", "rule", "zone"), Support.LEGACY),
    },
    "disk": {
        **dict.fromkeys(("loop", "vg", "md", "raw"), Support.EMITTED),
        **dict.fromkeys(words("lv drbd zpool zvol crypt disk rados hp3par xp8"), Support.PARSED),
        **dict.fromkeys(
            words("advfs amazon gandi gce hpvm ldom scsireserv vdisk vxdg vxvol"), Support.LEGACY
        ),
    },
    "fs": {
        **dict.fromkeys(("flag", "directory", *MOUNT_FS_TYPES), Support.EMITTED),
        "zfs": Support.PARSED,
        "docker": Support.LEGACY,
    },
    "share": {"nfs": Support.EMITTED},
    "container": {
        **dict.fromkeys(("oci", "docker", "podman"), Support.EMITTED),
        **dict.fromkeys(("lxc", "kvm", "vbox"), Support.PARSED),
        **dict.fromkeys(
            words("amazon esx hpvm jail ldom lxd openstack ovm srp vcloud vz xen zone"),
            Support.LEGACY,
        ),
    },
    "app": {"forking": Support.EMITTED, "simple": Support.EMITTED, "winservice": Support.LEGACY},
    "sync": {
        "rsync": Support.EMITTED,
        **dict.fromkeys(("zfs", "zfssnap", "symsnapvx", "symsrdfs"), Support.PARSED),
        **dict.fromkeys(
            words(
                "btrfs btrfssnap dds docker evasnap hp3par hp3parsnap ibmdssnap necismsnap netapp "
                "nexenta radosclone radossnap s3 symclone symsnap"
            ),
            Support.LEGACY,
        ),
    },
    "task": dict.fromkeys(("host", "docker", "podman", "oci"), Support.EMITTED),
    "volume": {},  # the type names a pool type; a single generic driver
}

_NO_ZFS = (
    "omc has no ZFS support: use a disk.loop, disk.vg or disk.md device "
    "with an fs.ext4 or fs.xfs mount"
)

# What to use instead of a driver omc's runtime does not run, when omc has something
# sensible (the hint of the "not supported by omc's runtime" error).
INSTEAD: dict[str, str] = {
    "ip.cni": (
        "use type = netns (netns = container#N, dev = a host bridge): "
        "omc plumbs the container's interface itself, without CNI"
    ),
    "ip.route": "for the container's default route, set 'gateway' on its ip.netns resource",
    "disk.lv": (
        "use type = vg, which activates every logical volume of the group, "
        "and mount /dev/<vg>/<lv> with an fs resource"
    ),
    "disk.drbd": (
        "omc does not replicate block devices: use a local disk (loop, vg, md) "
        "and copy the data to the other nodes with a sync.rsync resource"
    ),
    "disk.zpool": _NO_ZFS,
    "disk.zvol": _NO_ZFS,
    "fs.zfs": _NO_ZFS,
    "sync.zfs": "replicate the mounted filesystem with a sync.rsync resource",
    "container.lxc": "run the workload as an OCI container (type = podman, docker or oci)",
    "container.kvm": (
        "start and stop the VM from an app resource (start, stop and check with virsh)"
    ),
    "container.vbox": (
        "start and stop the VM from an app resource (start, stop and check with VBoxManage)"
    ),
    "volume": (
        "omc has no pools: put the storage in this service instead "
        "(an fs resource with type = tmpfs for a shm volume, or a disk and an fs mount)"
    ),
}

DEFAULT_TYPES = {
    "app": "forking",
    "ip": "host",
    "task": "host",
    "sync": "rsync",
    "container": "oci",
}

# Old type names that om3 still registers under a new one.
TYPE_ALIASES = {("ip", "docker"): "netns", ("disk", "lvm"): "vg"}

# v1 section groups that were disk resources (opensvc.md §1.3), with the om3 spelling.
LEGACY_GROUPS = {
    "vg": "vg",
    "loop": "loop",
    "md": "md",
    "drbd": "drbd",
    "zpool": "zpool",
    "vmdg": "ldom",
    "vdisk": "vdisk",
    "raw": "raw",
    "lv": "lv",
    "vxdg": "vxdg",
    "vxvol": "vxvol",
    "zvol": "zvol",
    "pool": "zpool",
}

# Groups that only exist in node/cluster configs.
NODE_GROUPS = frozenset(("network", "hb", "array", "switch", "stonith", "backup", "arbitrator"))

FREEFORM_SECTIONS = frozenset(("env", "data", "labels"))


def driver_support(group: str, driver_type: str) -> Support | None:
    """Support level of ``group.type`` (None: no such driver at all).

    ``volume`` is one driver whatever its ``type`` (a pool type); omc has no pools
    and no vol objects, so its runtime does not run it.
    """
    if group == "volume":
        return Support.PARSED
    return DRIVERS.get(group, {}).get(driver_type)


def driver_name(group: str, driver_type: str) -> str:
    """The driver a unit names (``X-OpenSVC-Driver``, the runtime's registry key):
    ``group.type``, or just ``volume`` (its ``type`` names a pool type, not a driver)."""
    return group if group == "volume" else f"{group}.{driver_type}"


def drivers(support: Support) -> tuple[str, ...]:
    """Every driver name of one support level (what the runtime must run, for EMITTED)."""
    names = [
        driver_name(g, t) for g, types in DRIVERS.items() for t, s in types.items() if s is support
    ]
    if driver_support("volume", "") is support:
        names.append(driver_name("volume", ""))
    return tuple(names)


def canonical_type(group: str, driver_type: str) -> str:
    """``type`` as om3 names it: default when empty, old aliases mapped."""
    driver_type = driver_type.strip() or DEFAULT_TYPES.get(group, "")
    return TYPE_ALIASES.get((group, driver_type), driver_type)


# --- the table -------------------------------------------------------------------


@cache
def table() -> tuple[Keyword, ...]:
    """Every keyword (built lazily: the data modules are only imported when needed)."""
    from .keywords_default import DEFAULT_KEYWORDS
    from .keywords_resources import resource_keywords

    return (*DEFAULT_KEYWORDS, *resource_keywords())


@cache
def _index() -> dict[str, tuple[Keyword, ...]]:
    by_section: dict[str, list[Keyword]] = {}
    for keyword in table():
        by_section.setdefault(keyword.section, []).append(keyword)
    return {section: tuple(kws) for section, kws in by_section.items()}


@cache
def section_keywords(section: str, driver_type: str | None = None) -> tuple[Keyword, ...]:
    """Keywords of a section kind, restricted to a driver type when given."""
    return tuple(k for k in _section_table(section) if k.applies_to(driver_type))


@cache
def _section_table(section: str) -> tuple[Keyword, ...]:
    """``_index()[section]``, built without the other groups' keywords (cold start)."""
    from .keywords_resources import RESOURCE_GROUPS, group_keywords

    if section in RESOURCE_GROUPS:
        return group_keywords(section)
    from .keywords_default import DEFAULT_KEYWORDS

    return tuple(k for k in DEFAULT_KEYWORDS if k.section == section)


@cache
def lookup(section: str, name: str, driver_type: str | None = None) -> Keyword | None:
    """The keyword named ``name`` (or one of its aliases) in a section kind."""
    for keyword in section_keywords(section, driver_type):
        if name in keyword.names:
            return keyword
    return None


def lookup_any_type(section: str, name: str) -> Keyword | None:
    """A keyword of the group that exists for some other driver type (for hints)."""
    return lookup(section, name, None)


def suggest(section: str, name: str, driver_type: str | None = None) -> str | None:
    """The closest known keyword name ("did you mean"), or None."""
    names = [n for k in section_keywords(section, driver_type) for n in k.names]
    import difflib  # lazily: only for a typo's hint, not on the cold path

    found = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return found[0] if found else None


# --- documentation ---------------------------------------------------------------


def _keyword_line(k: Keyword) -> str:
    flags = [str(k.conv)]
    if k.required:
        flags.append("required")
    if k.default is not None:
        flags.append(f"default={k.default!r}")
    if not k.scopable:
        flags.append("not scopable")
    if k.inherit is not Inherit.LEAF2HEAD:
        flags.append(f"inherit={k.inherit}")
    if k.aliases:
        flags.append("aliases=" + ",".join(k.aliases))
    if k.status is not Status.CURRENT:
        flags.append(str(k.status))
    if k.candidates:
        flags.append("one of: " + " ".join(k.candidates))
    return f"  {k.name:<24} {k.doc}\n  {'':<24} ({'; '.join(flags)})"


def keyword_doc(driver: str | None = None) -> str:
    """Reference text for ``omc keywords [DRIVER]`` (``DEFAULT``, ``ip``, ``ip.host`` ...)."""
    if driver is None:
        sections = list(_index())
        return "\n\n".join(_section_doc(s, None) for s in sections) + "\n"
    group, _, driver_type = driver.partition(".")
    if group not in _index():
        known = ", ".join(sorted(_index()))
        raise KeyError(f"unknown driver or section {driver!r} (known: {known})")
    if driver_type and driver_support(group, canonical_type(group, driver_type)) is None:
        raise KeyError(f"unknown driver {driver!r}")
    return _section_doc(group, canonical_type(group, driver_type) or None) + "\n"


def _section_doc(section: str, driver_type: str | None) -> str:
    title = f"[{section}]" if driver_type is None else f"[{section}] type = {driver_type}"
    lines = [_keyword_line(k) for k in section_keywords(section, driver_type)]
    support = (
        _group_support(section) if driver_type is None else _type_support(section, driver_type)
    )
    return "\n".join([title, *support, *lines])


_SUPPORT_LABELS = {
    Support.EMITTED: "types omc runs",
    Support.PARSED: "om3 types omc's runtime does not run (rejected)",
    Support.LEGACY: "v1/v2 types om3 removed (rejected)",
}


def _group_support(group: str) -> list[str]:
    """A resource group's types by support level, so the reference says what omc runs."""
    if group == "volume":
        return _type_support(group, "")
    types = DRIVERS.get(group, {})
    return [
        f"  {label}: {' '.join(names)}"
        for support, label in _SUPPORT_LABELS.items()
        if (names := [t for t, s in types.items() if s is support])
    ]


def _type_support(group: str, driver_type: str) -> list[str]:
    """The verdict on one driver omc rejects (none for the drivers it runs)."""
    support, driver = driver_support(group, driver_type), driver_name(group, driver_type)
    if support is Support.LEGACY:
        return [f"  v1/v2 only; om3 removed it: {driver} is rejected"]
    if support is not Support.PARSED:
        return []
    instead = INSTEAD.get(driver)
    verdict = f"  not supported by omc's runtime: {driver} is rejected"
    return [verdict, f"  instead: {instead}"] if instead else [verdict]
