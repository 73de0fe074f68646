"""Unit and slice names: OpenSVC's process-group layout, spelled as systemd units.

om3 (``core/object`` ``pgConfig``) names its cgroups so that systemd reads them
as nested slices, a ``-`` separating the levels::

    /opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice
    /opensvc.slice/opensvc-svc.s1.slice/opensvc-svc.s1-subset.g1.slice/opensvc-svc.s1-subset.g1-app.1.slice
    /opensvc.slice/opensvc-ns.ns1.slice/opensvc-ns.ns1-svc.s1.slice/opensvc-ns.ns1-svc.s1-app.1.slice

(root namespace objects have no namespace level). We keep that layout and
escape each name part with systemd's rules (:func:`unitsyntax.escape_part`),
so a ``-`` in ``my-svc`` becomes ``\\x2d`` instead of a new slice level — om3
does not escape, and a ``-`` there silently changes the hierarchy.

Units of an object share the object's stem: the target ``<stem>.target`` and
one unit per resource ``<stem>-<group>.<index>.<suffix>`` (not nested in the
subset: a resource keeps its unit name when it changes subset). Mountable
filesystems are ``.mount`` units named from the mount point, as systemd
requires.

A disk publishes each device it exposes under a stable path,
:func:`exposed_dev_path` (``/run/opensvc/dev/<namespace>/<kind>/<name>/<group>.<index>.<n>``,
a symlink to ``/dev/loopN`` …): the compiler writes that path in a mount's
``What=`` for ``{disk#x.exposed_devs[n]}``, the disk driver creates it on start
and removes it on stop. It is not under ``/dev``, so systemd adds no ``.device``
dependency that would wait for udev.
"""

from __future__ import annotations

import functools
import re

from ..unitsyntax import UnitSyntaxError, check_unit_name, escape_part, escape_path
from .paths import ObjectPath

__all__ = [
    "ENV_DIR",
    "EXPOSED_DEV_ROOT",
    "EXPOSING_DRIVERS",
    "ROOT_SLICE",
    "cgroup_path",
    "env_file",
    "exposed_dev_path",
    "mount_unit",
    "object_slice",
    "object_stem",
    "resource_slice",
    "resource_unit",
    "slice_cgroups",
    "slice_path",
    "subset_slice",
    "target",
]

ROOT_SLICE = "opensvc.slice"
EXPOSED_DEV_ROOT = "/run/opensvc/dev"
# Root-only environment files of native units with configs/secrets_environment
# (docs/units.md, "Secrets"): written by `om <path> driver env` just before the unit starts.
ENV_DIR = "/run/opensvc/env"
# disk drivers that publish their exposed devices at exposed_dev_path (runtime/drivers/disk.py)
EXPOSING_DRIVERS = frozenset(("disk.loop", "disk.md", "disk.raw"))
_PATH_PART = re.compile(r"[A-Za-z0-9_@+:=-][A-Za-z0-9_.@+:=-]*")
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@\\-]+")  # what systemd allows (escapes are \xNN)


@functools.lru_cache(maxsize=1024)
def object_stem(path: ObjectPath) -> str:
    """``opensvc-svc.svc0`` or ``opensvc-ns.ns1-svc.web``: the prefix of every unit."""
    obj = f"{escape_part(str(path.kind))}.{escape_part(path.name)}"
    if path.namespace == "root":
        return f"opensvc-{obj}"
    return f"opensvc-ns.{escape_part(path.namespace)}-{obj}"


def _rid_part(rid: str) -> str:
    """``app#0`` → ``app.0`` (om3 replaces ``#`` by ``.``), each side escaped."""
    group, sep, index = rid.partition("#")
    if not sep:
        raise UnitSyntaxError("rid", rid, "a resource id is <group>#<index>")
    return f"{escape_part(group)}.{escape_part(index)}"


def _subset_part(subset: str) -> str:
    """``subset.workers``; a ``group:name`` section form keeps the name only (om3)."""
    return f"subset.{escape_part(subset.rsplit(':', 1)[-1])}"


def object_slice(path: ObjectPath) -> str:
    """``opensvc-svc.svc0.slice``."""
    return check_unit_name(f"{object_stem(path)}.slice")


def subset_slice(path: ObjectPath, subset: str) -> str:
    """``opensvc-svc.s1-subset.g1.slice``: the slice of a resource set."""
    return check_unit_name(f"{object_stem(path)}-{_subset_part(subset)}.slice")


def resource_slice(path: ObjectPath, rid: str, subset: str | None = None) -> str:
    """``opensvc-svc.svc0-app.0.slice`` (inside the subset slice when in a subset)."""
    parent = object_stem(path)
    if subset:
        parent = f"{parent}-{_subset_part(subset)}"
    return check_unit_name(f"{parent}-{_rid_part(rid)}.slice")


def slice_path(slice_name: str) -> tuple[str, ...]:
    """A slice and its ancestors, outermost first, as systemd derives them from ``-``."""
    stem = slice_name.removesuffix(".slice")
    parts = stem.split("-")
    return tuple("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def slice_cgroups(slice_name: str) -> tuple[str, ...]:
    """The cgroup of a slice and of each of its ancestors below ``opensvc.slice``,
    outermost first: what the seed's ``applied pg`` lines show for an app.

    ``opensvc-svc.svc0-app.0.slice`` → ``/opensvc.slice/opensvc-svc.svc0.slice`` and
    ``/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice``.
    """
    if not slice_name.endswith(".slice") or slice_name == "-.slice":
        return ()
    levels = slice_path(slice_name)
    return tuple("/" + "/".join(levels[: i + 1]) for i in range(1, len(levels)))


def cgroup_path(path: ObjectPath, rid: str | None = None, subset: str | None = None) -> str:
    """The cgroup of an object, or of one of its resources (what ``om exec --pg`` takes).

    ``/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice``.
    """
    leaf = resource_slice(path, rid, subset) if rid else object_slice(path)
    return slice_cgroups(leaf)[-1]


def target(path: ObjectPath) -> str:
    """``opensvc-svc.svc0.target``: starting it starts the instance."""
    return check_unit_name(f"{object_stem(path)}.target")


def resource_unit(path: ObjectPath, rid: str, suffix: str = "service") -> str:
    """``opensvc-svc.svc0-ip.0.service`` (``suffix`` without the dot: service, timer)."""
    return check_unit_name(f"{object_stem(path)}-{_rid_part(rid)}.{suffix}")


def mount_unit(mnt: str) -> str:
    """``srv-data.mount`` for ``/srv/data`` (``systemd-escape --path --suffix=mount``)."""
    return check_unit_name(f"{escape_path(mnt)}.mount")


def exposed_dev_path(path: ObjectPath, rid: str, index: int) -> str:
    """``/run/opensvc/dev/root/svc/web/disk.0.0``: where ``rid`` publishes device ``index``.

    The compiler and the disk drivers both call this, so the path a mount unit
    reads is the one the disk writes. Parts that could escape the directory
    (``/``, a leading dot) or need quoting in a unit file are refused.
    """
    group, sep, rindex = rid.partition("#")
    parts = (path.namespace, str(path.kind), path.name, f"{group}.{rindex}.{index}")
    if not sep or index < 0 or not all(_PATH_PART.fullmatch(p) for p in parts):
        raise UnitSyntaxError("exposed device", f"{path.name} {rid} [{index}]", "unsafe path")
    return "/".join((EXPOSED_DEV_ROOT, *parts))


def env_file(unit: str) -> str:
    """``/run/opensvc/env/<unit>.env``: the ``EnvironmentFile=`` of a native unit whose
    resource takes keys from cfg/sec objects; the compiler names it, the runtime writes
    it. ``unit`` is a checked unit name (no ``/``, no leading dot)."""
    check_unit_name(unit)
    if not _UNIT_NAME.fullmatch(unit) or unit.startswith("."):
        raise UnitSyntaxError("environment file", unit, "unsafe unit name")
    return f"{ENV_DIR}/{unit}.env"
