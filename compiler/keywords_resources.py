"""Keyword data: resource drivers (opensvc.md §2). Data only; model in ``keywords.py``."""

from __future__ import annotations

from .contract.paths import Group
from .keywords import MOUNT_FS_TYPES, Conv, Inherit, Keyword, Status, kw
from .keywords_default import pg_keywords
from .keywords_exec import app_keywords, container_keywords, task_keywords

# The driver groups in start order: the contract's, never a copy of them.
RESOURCE_GROUPS = tuple(str(g) for g in Group)
ACTIONS = ("start", "stop", "run", "provision", "unprovision")
V2_TRIGGER_ACTIONS = (
    "startstandby",
    "sync_nodes",
    "sync_drp",
    "sync_restore",
    "sync_resync",
    "sync_update",
    "sync_all",
)
LEGACY = Status.LEGACY


def _common(group: str) -> tuple[Keyword, ...]:
    """Keywords every resource driver gets (opensvc.md §2.1)."""
    return (
        kw(group, "type", Conv.STRING, "driver name in the group"),
        kw(group, "disable", Conv.BOOL, "ignore the resource in actions", default="false"),
        kw(
            group,
            "optional",
            Conv.BOOL,
            "errors do not stop the action",
            default="false",
            inherit=Inherit.HEAD2LEAF,
        ),
        kw(
            group,
            "monitor",
            Conv.BOOL,
            "a down monitored resource triggers monitor_action",
            default="false",
        ),
        kw(group, "restart", Conv.INT, "restart attempts by the daemon", default="0"),
        kw(
            group, "restart_delay", Conv.DURATION, "minimum delay between restarts", default="500ms"
        ),
        kw(
            group,
            "standby",
            Conv.BOOL,
            "always on: started even on stopped instances",
            default="false",
        ),
        kw(group, "shared", Conv.BOOL, "provisioned once, by the leader", default="false"),
        kw(group, "encap", Conv.BOOL, "managed by the encapsulated agent", default="false"),
        kw(group, "subset", Conv.STRING, "resource set name"),
        kw(group, "tags", Conv.SET, "free tags for --tag selection"),
        kw(group, "provision", Conv.BOOL, "provision this resource", default="true"),
        kw(group, "unprovision", Conv.BOOL, "unprovision this resource", default="true"),
        kw(group, "comment", Conv.STRING, "free text"),
        kw(group, "scsireserv", Conv.BOOL, "SCSI-3 persistent reservation", default="false"),
        kw(group, "prkey", Conv.STRING, "reservation key", default="{node.node.prkey}"),
        kw(group, "no_preempt_abort", Conv.BOOL, "do not abort on preempt", default="false"),
        kw(group, "promote_rw", Conv.BOOL, "make devices read-write on start", default="false"),
        kw(group, "start_timeout", Conv.DURATION, "start action limit"),
        kw(group, "stop_timeout", Conv.DURATION, "stop action limit"),
        kw(group, "provision_timeout", Conv.DURATION, "provision action limit"),
        kw(group, "unprovision_timeout", Conv.DURATION, "unprovision action limit"),
        *_triggers(group),
        *_requires(group),
        *pg_keywords(group),
    )


def _triggers(group: str) -> tuple[Keyword, ...]:
    out = []
    for action in ACTIONS:
        for when in ("pre", "post"):
            for blocking in ("", "blocking_"):
                doc = f"{'blocking ' if blocking else ''}{when}-{action} trigger command"
                out.append(kw(group, f"{blocking}{when}_{action}", Conv.COMMAND, doc))
    for action in V2_TRIGGER_ACTIONS:
        for when in ("pre", "post"):
            for blocking in ("", "blocking_"):
                name = f"{blocking}{when}_{action}"
                out.append(kw(group, name, Conv.SHLEX, "v2 trigger: ignored", status=LEGACY))
    return tuple(out)


def _requires(group: str) -> tuple[Keyword, ...]:
    actions = ["start", "stop", "provision", "unprovision"]
    if group == "task":
        actions.append("run")
    if group == "sync":
        actions.append("sync")
    return tuple(
        kw(group, f"{a}_requires", Conv.REQUIRES, f"rid(state,...) list needed before {a}")
        for a in actions
    )


def _ip() -> tuple[Keyword, ...]:
    g = "ip"
    host, netns, cni, route = ("host",), ("netns",), ("cni",), ("route",)
    return (
        kw(
            g,
            "name",
            Conv.STRING,
            "ip address or dns name",
            aliases=("ipname",),
            types=("host", "netns", "amazon", "crossbow", "gce"),
        ),
        kw(
            g,
            "dev",
            Conv.STRING,
            "interface (host bridge or parent nic for netns)",
            aliases=("ipdev",),
            types=("host", "netns", "route", "amazon", "crossbow", "gce"),
        ),
        kw(
            g,
            "netmask",
            Conv.STRING,
            "dotted mask or prefix length",
            types=("host", "netns", "crossbow"),
        ),
        kw(
            g,
            "alias",
            Conv.BOOL,
            "stack the address (not a labelled dev:n)",
            default="true",
            types=host,
        ),
        kw(g, "check_carrier", Conv.BOOL, "check the link carrier", default="true", types=host),
        kw(g, "expose", Conv.LIST, "<port>/<proto>[:<hostport>] list", types=(*host, *cni)),
        kw(
            g,
            "wait_dns",
            Conv.DURATION,
            "wait for the cluster dns record",
            default="0",
            types=(*host, *cni),
        ),
        kw(
            g,
            "gateway",
            Conv.STRING,
            "default gateway",
            types=(*host, *netns, *route),
            required=False,
        ),
        kw(
            g,
            "network",
            Conv.STRING,
            "network name (cni) or provisioning network",
            types=(*host, *cni, *netns),
        ),
        kw(
            g,
            "netns",
            Conv.STRING,
            "container rid owning the network namespace",
            aliases=("container_rid",),
            types=(*netns, *cni, *route),
        ),
        kw(g, "nsdev", Conv.STRING, "interface name inside the netns", types=(*netns, *cni)),
        kw(g, "macaddr", Conv.STRING, "mac address of the netns interface", types=netns),
        kw(
            g,
            "del_net_route",
            Conv.BOOL,
            "delete the network route in the netns",
            default="false",
            types=netns,
        ),
        kw(g, "vlan_tag", Conv.STRING, "ovs vlan tag", types=netns),
        kw(g, "vlan_mode", Conv.STRING, "ovs vlan mode", types=netns),
        kw(
            g,
            "mode",
            Conv.STRING,
            "netns plumbing",
            default="bridge",
            types=netns,
            candidates=(
                "bridge",
                "dedicated",
                "macvlan",
                "ipvlan-l2",
                "ipvlan-l3",
                "ipvlan-l3s",
                "ovs",
            ),
        ),
        kw(g, "dns_name_suffix", Conv.STRING, "suffix of the dns record", types=cni),
        kw(g, "dns_update", Conv.BOOL, "update the collector dns", default="false"),
        kw(g, "provisioner", Conv.STRING, "ip provisioner", types=host),
        kw(g, "to", Conv.STRING, "route destination cidr", types=route),
        # v1/v2 drivers, parsed so their sections are not "unknown keywords"
        kw(g, "ipdevext", Conv.STRING, "crossbow vnic name", types=("crossbow",)),
        kw(g, "eip", Conv.STRING, "amazon elastic ip", types=("amazon",)),
        kw(g, "cascade_allocation", Conv.LIST, "amazon ip allocation", types=("amazon",)),
        kw(g, "docker_daemon_ip", Conv.BOOL, "amazon docker ip", types=("amazon",)),
        kw(g, "zone", Conv.STRING, "solaris zone", types=("zone", "crossbow")),
    )


def _disk() -> tuple[Keyword, ...]:
    g = "disk"
    return (
        kw(g, "file", Conv.STRING, "loop backing file", types=("loop",), required=True),
        kw(
            g,
            "size",
            Conv.SIZE,
            "size (provisioning)",
            types=("loop", "lv", "zvol", "disk", "rados", "amazon", "gce"),
        ),
        kw(
            g,
            "name",
            Conv.STRING,
            "vg / lv / pool / md / crypt name",
            aliases=("vgname",),
            types=(
                "vg",
                "lv",
                "md",
                "zpool",
                "zvol",
                "crypt",
                "disk",
                "rados",
                "lvm",
                "vxdg",
                "vxvol",
                "gce",
                "gandi",
            ),
        ),
        kw(
            g,
            "poolname",
            Conv.STRING,
            "zpool name (old spelling of name)",
            types=("zpool",),
            status=Status.DEPRECATED,
        ),
        kw(g, "pvs", Conv.LIST, "physical volumes (provisioning)", types=("vg",)),
        kw(g, "options", Conv.SHLEX, "vgcreate options", types=("vg",)),
        kw(g, "vg", Conv.STRING, "volume group of the lv", types=("lv",), required=True),
        kw(g, "create_options", Conv.SHLEX, "creation options", types=("lv", "zpool", "zvol")),
        kw(g, "uuid", Conv.STRING, "md array uuid", types=("md",)),
        kw(g, "devs", Conv.LIST, "member devices (md) or <src>[:<dst>] (raw)", types=("md", "raw")),
        kw(g, "level", Conv.STRING, "md raid level", types=("md",)),
        kw(g, "chunk", Conv.SIZE, "md chunk size", types=("md",)),
        kw(g, "spares", Conv.INT, "md spare devices", default="0", types=("md",)),
        kw(g, "bitmap", Conv.STRING, "md bitmap", types=("md",)),
        kw(g, "create_char_devices", Conv.BOOL, "raw char devices", default="true", types=("raw",)),
        kw(g, "user", Conv.STRING, "device owner", types=("raw",)),
        kw(g, "group", Conv.STRING, "device group", types=("raw",)),
        kw(g, "perm", Conv.UMASK, "device mode", types=("raw",)),
        kw(g, "zone", Conv.STRING, "solaris zone", types=("raw", "zpool")),
        kw(g, "vdev", Conv.LIST, "zpool vdevs (provisioning)", types=("zpool",)),
        kw(g, "multihost", Conv.TRISTATE, "zpool multihost", types=("zpool",)),
        kw(g, "blocksize", Conv.SIZE, "zvol block size", types=("zvol",)),
        kw(g, "dev", Conv.STRING, "crypt: the device to open", types=("crypt",), required=True),
        kw(g, "secret", Conv.STRING, "crypt: sec object", default="{name}", types=("crypt",)),
        kw(g, "label", Conv.STRING, "crypt: luks label", default="{fqdn}", types=("crypt",)),
        kw(
            g,
            "manage_passphrase",
            Conv.BOOL,
            "crypt: manage the passphrase",
            default="true",
            types=("crypt",),
        ),
        kw(g, "res", Conv.STRING, "drbd resource name", types=("drbd",)),
        kw(g, "disk", Conv.STRING, "drbd backing disk", types=("drbd",)),
        kw(g, "addr", Conv.STRING, "drbd address", types=("drbd",)),
        kw(g, "port", Conv.INT, "drbd port", types=("drbd",)),
        kw(g, "max_peers", Conv.INT, "drbd max peers", types=("drbd",)),
        kw(g, "network", Conv.STRING, "drbd network", types=("drbd",)),
        kw(g, "template", Conv.STRING, "drbd resource template", types=("drbd",)),
        kw(g, "disk_id", Conv.STRING, "san lun wwn", types=("disk",)),
        kw(g, "pool", Conv.STRING, "array pool", types=("disk",)),
        kw(g, "array", Conv.STRING, "array name", types=("disk", "hp3par", "xp8")),
        kw(g, "diskgroup", Conv.STRING, "array disk group", types=("disk",)),
        kw(g, "slo", Conv.STRING, "array service level", types=("disk",)),
        kw(g, "access", Conv.STRING, "rados access", default="rwo", types=("rados",)),
        kw(g, "keyring", Conv.STRING, "rados keyring", types=("rados",)),
        kw(g, "volumes", Conv.LIST, "amazon volumes", types=("amazon",)),
        kw(g, "container_name", Conv.STRING, "hpvm/ldom guest", types=("hpvm", "ldom")),
    )


def _fs() -> tuple[Keyword, ...]:
    g = "fs"
    mounts = (*MOUNT_FS_TYPES, "zfs")
    receivers = (*mounts, "directory")
    return (
        kw(g, "mnt", Conv.STRING, "mount point", types=mounts, required=True),
        kw(g, "dev", Conv.STRING, "device, image, LABEL=, host:/path or dataset", types=mounts),
        kw(g, "mnt_opt", Conv.STRING, "fstab-style mount options", types=mounts),
        kw(g, "mkfs_opt", Conv.SHLEX, "mkfs options (provisioning)", types=mounts),
        kw(
            g,
            "stat_timeout",
            Conv.DURATION,
            "timeout of the status stat()",
            default="5s",
            types=mounts,
        ),
        kw(
            g, "check_read", Conv.BOOL, "stat -f to detect stale nfs", default="false", types=mounts
        ),
        kw(g, "zone", Conv.STRING, "solaris zone", types=mounts),
        kw(g, "path", Conv.STRING, "the directory", types=("directory",), required=True),
        kw(g, "user", Conv.STRING, "owner", types=receivers),
        kw(g, "group", Conv.STRING, "group", types=receivers),
        kw(g, "perm", Conv.UMASK, "mode", types=receivers),
        kw(g, "dirperm", Conv.UMASK, "mode of created directories", types=receivers),
        kw(g, "configs", Conv.LIST, "cfg keys to install", types=receivers),
        kw(g, "secrets", Conv.LIST, "sec keys to install", types=receivers),
        kw(g, "install", Conv.LIST, "data to install", types=receivers),
        kw(g, "directories", Conv.LIST, "directories to create", types=receivers),
        kw(g, "signal", Conv.LIST, "<signal>:<rid> to notify on change", types=receivers),
        kw(g, "size", Conv.SIZE, "zfs provisioning size", types=("zfs",)),
        kw(g, "refquota", Conv.STRING, "zfs refquota", types=("zfs",)),
        kw(g, "quota", Conv.STRING, "zfs quota", types=("zfs",)),
        kw(g, "reservation", Conv.STRING, "zfs reservation", types=("zfs",)),
        kw(g, "refreservation", Conv.STRING, "zfs refreservation", types=("zfs",)),
        # removed in om3: fs provisioning of its own logical volume
        kw(
            g, "vg", Conv.STRING, "v2: lv provisioning (use a disk.lv)", types=mounts, status=LEGACY
        ),
        kw(g, "snap_size", Conv.STRING, "v2: snapshot size", types=mounts, status=LEGACY),
        kw(
            g,
            "size",
            Conv.STRING,
            "v2: lv size (use a disk.lv)",
            types=MOUNT_FS_TYPES,
            status=LEGACY,
        ),
        kw(
            g, "create_options", Conv.STRING, "v2: lv creation options", types=mounts, status=LEGACY
        ),
    )


def _share() -> tuple[Keyword, ...]:
    return (
        kw("share", "path", Conv.STRING, "directory to export", types=("nfs",), required=True),
        kw(
            "share",
            "opts",
            Conv.STRING,
            "export options, /etc/exports style",
            types=("nfs",),
            required=True,
        ),
    )


def _sync() -> tuple[Keyword, ...]:
    g = "sync"
    rsync = ("rsync",)
    zfs = ("zfs", "btrfs", "dds", "hp3par", "symclone", "symsnap", "netapp")
    return (
        kw(g, "schedule", Conv.SCHEDULE, "when to sync", default_option="sync_schedule"),
        kw(
            g,
            "max_delay",
            Conv.DURATION,
            "warn when the last sync is older",
            aliases=("sync_max_delay",),
            default="1d",
        ),
        kw(g, "src", Conv.LIST, "rsync source(s)", types=(*rsync, *zfs)),
        kw(g, "dst", Conv.STRING, "rsync destination", types=(*rsync, *zfs)),
        kw(g, "dstfs", Conv.STRING, "remote mount point that must be mounted", types=rsync),
        kw(
            g,
            "target",
            Conv.LIST,
            "nodes, drpnodes, local",
            types=(*rsync, *zfs, "docker", "zfssnap", "symsrdfs"),
        ),
        kw(g, "options", Conv.SHLEX, "extra rsync options", types=rsync),
        kw(g, "reset_options", Conv.BOOL, "use options only", default="false", types=rsync),
        kw(g, "snap", Conv.BOOL, "rsync from a snapshot", default="false", types=rsync),
        kw(g, "bwlimit", Conv.STRING, "rsync --bwlimit", types=rsync),
        kw(g, "timeout", Conv.DURATION, "rsync timeout and action limit"),
        kw(g, "recursive", Conv.BOOL, "zfs recursive", default="true", types=("zfs", "zfssnap")),
        kw(
            g,
            "intermediary",
            Conv.BOOL,
            "zfs intermediary snapshots",
            default="true",
            types=("zfs",),
        ),
        kw(g, "dataset", Conv.LIST, "zfssnap datasets", types=("zfssnap",)),
        kw(g, "name", Conv.STRING, "snapshot name", types=("zfssnap", "symsnapvx")),
        kw(g, "keep", Conv.INT, "snapshots kept", default="3", types=("zfssnap", "btrfssnap")),
        kw(g, "array", Conv.STRING, "array name", types=("hp3par", "symsrdfs", "symsnapvx")),
        kw(g, "rcg", Conv.STRING, "hp3par remote copy group", types=("hp3par",)),
        kw(g, "mode", Conv.STRING, "replication mode", types=("hp3par", "symsrdfs")),
        kw(g, "symid", Conv.STRING, "symmetrix id", types=("symsrdfs", "symsnapvx")),
        kw(g, "devs", Conv.LIST, "devices", types=("symsnapvx",)),
    )


def _volume() -> tuple[Keyword, ...]:
    g = "volume"
    return (
        kw(g, "name", Conv.STRING, "vol object name", default="{name}-vol-{rindex}"),
        kw(g, "pool", Conv.STRING, "pool to allocate from"),
        kw(g, "size", Conv.SIZE, "volume size"),
        kw(
            g,
            "access",
            Conv.STRING,
            "access mode",
            default="rwo",
            candidates=("rwo", "roo", "rwx", "rox"),
        ),
        kw(g, "format", Conv.BOOL, "format the volume", default="true"),
        kw(g, "volatile", Conv.BOOL, "do not keep the data", default="false"),
        kw(g, "configs", Conv.LIST, "cfg keys to install"),
        kw(g, "secrets", Conv.LIST, "sec keys to install"),
        kw(g, "install", Conv.LIST, "data to install"),
        kw(g, "directories", Conv.LIST, "directories to create"),
        kw(g, "user", Conv.STRING, "owner"),
        kw(g, "group", Conv.STRING, "group"),
        kw(g, "perm", Conv.UMASK, "mode"),
        kw(g, "dirperm", Conv.UMASK, "mode of created directories"),
        kw(g, "signal", Conv.LIST, "<signal>:<rid> to notify on change"),
    )


_SPECIFIC = {
    "ip": _ip,
    "disk": _disk,
    "fs": _fs,
    "share": _share,
    "container": container_keywords,
    "app": app_keywords,
    "sync": _sync,
    "task": task_keywords,
    "volume": _volume,
}


def group_keywords(group: str) -> tuple[Keyword, ...]:
    """One group's keywords: its drivers', then the common ones they do not redefine.

    Built per group on demand (:func:`keywords.section_keywords` caches them): a
    cold ``omc`` builds the ~100 keywords of the groups its config uses, not all ~1000.
    """
    mine = _SPECIFIC[group]()
    names = {k.name for k in mine}
    return (*mine, *(k for k in _common(group) if k.name not in names))


def resource_keywords() -> tuple[Keyword, ...]:
    """Every group's keywords, in group order."""
    return tuple(k for group in RESOURCE_GROUPS for k in group_keywords(group))
