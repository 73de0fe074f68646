"""Cgroup subtrees for lab nodes, on the host side and inside a node.

A node gets its own directory in every hierarchy, below the cgroup of the process
that creates the lab: ``<own cgroup>/omc-lab/<lab>/<node>``. The node's PID 1 moves
itself there, unshares its cgroup namespace, and mounts the hierarchies afresh, so
each one is rooted at that directory: the node's ``system.slice`` and
``opensvc.slice`` land in its own subtree, never at the host root (lab-notes §0).

Works on hybrid (v1 controllers + ``name=systemd`` + ``unified``) and on pure
cgroup v2 hosts: the node mounts the same layout as the host.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from omc.runtime.exec import cgroup_paths

CGROUP_ROOT = "/sys/fs/cgroup"
SUBTREE = "omc-lab"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hierarchy:
    """One mounted cgroup hierarchy of the host and the caller's place in it."""

    mountpoint: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    data: str  # mount data for a fresh mount: controllers or "none,name=systemd"
    own_path: str  # the caller's cgroup in it, from /proc/self/cgroup

    def dir_for(self, *parts: str) -> str:
        return str(Path(self.mountpoint, self.own_path.lstrip("/"), *parts))


def _mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mountpoint, fstype, super options) of every cgroup mount in a mountinfo text."""
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) >= 3 and rfields[0] in {"cgroup", "cgroup2"}:
            found.append((fields[4], rfields[0], rfields[2]))
    return found


FAVOR = "favordynmods"
_V1_FLAGS = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", FAVOR}


def _is_controller(option: str) -> bool:
    """A v1 super option naming a controller (``cpu``) or a named hierarchy (``name=x``)."""
    if option.startswith("name="):
        return True
    return option not in _V1_FLAGS and "=" not in option


def parse(mountinfo: str, proc_cgroup: str) -> list[Hierarchy]:
    """The host's hierarchies (pure: texts of /proc/self/mountinfo and /proc/self/cgroup)."""
    paths = cgroup_paths(proc_cgroup)
    result = []
    for mountpoint, fstype, opts in _mounts(mountinfo):
        if fstype == "cgroup2":
            result.append(
                Hierarchy(
                    mountpoint=mountpoint, fstype=fstype, data="", own_path=paths.get("", "/")
                )
            )
            continue
        controllers = [o for o in opts.split(",") if _is_controller(o)]
        key = ",".join(controllers)
        if key not in paths:
            continue
        data = key if not key.startswith("name=") else f"none,{key}"
        result.append(
            Hierarchy(mountpoint=mountpoint, fstype=fstype, data=data, own_path=paths[key])
        )
    return result


def host_hierarchies() -> list[Hierarchy]:
    return parse(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())


def favordynmods_remount(mountinfo: str) -> tuple[str, str] | None:
    """(mountpoint, mount data) of a remount that turns ``favordynmods`` on for the
    cgroup2 hierarchy, keeping its other options; None when there is no cgroup2 mount or
    the option is already on (pure: the text of /proc/self/mountinfo)."""
    for mountpoint, fstype, opts in _mounts(mountinfo):
        if fstype != "cgroup2":
            continue
        options = [o for o in opts.split(",") if o not in {"rw", "ro"}]
        return None if FAVOR in options else (mountpoint, ",".join([*options, FAVOR]))
    return None


def favordynmods_on(mountinfo: str) -> bool:
    """Whether a cgroup2 hierarchy of that mountinfo text has ``favordynmods`` on."""
    return any(t == "cgroup2" and FAVOR in o.split(",") for _m, t, o in _mounts(mountinfo))


def favor_dynmods() -> str | None:
    """Turn on the kernel's ``favordynmods`` for the host's cgroup2 hierarchy; a line
    saying what changed, or why not, and None when it was already on.

    Without it, every move of a process into a cgroup (one per unit start: systemd's
    child joins its unit's cgroup) takes a global lock whose write side waits for an RCU
    grace period, ~12 ms per unit here: 20 sequential units start ~0.25 s later. With
    it, the kernel locks per thread group instead, at a small cost on fork and exit. The
    setting is host-wide and, on kernels with the per-threadgroup lock (6.18), cannot be
    turned off again until reboot: only ``om lab up --favordynmods`` (and ``make bench``)
    calls this."""
    from .nodeinit import MS_REMOUNT, mount

    remount = favordynmods_remount(Path("/proc/self/mountinfo").read_text())
    if remount is None:
        return None
    mountpoint, data = remount
    try:
        mount("none", mountpoint, None, MS_REMOUNT, data)
    except OSError as exc:
        return f"cgroup2 favordynmods not set ({exc.strerror}): unit starts keep the kernel's pace"
    return f"cgroup2 favordynmods set on {mountpoint} (host-wide: faster cgroup moves)"


def lab_dirs(hierarchies: list[Hierarchy], lab: str) -> list[str]:
    """The top of a lab's subtree in every hierarchy."""
    return [h.dir_for(SUBTREE, lab) for h in hierarchies]


def create(dirs: list[str]) -> None:
    """mkdir -p each directory; for cpuset, copy cpus/mems down from the parent."""
    for target in dirs:
        path = Path(target)
        missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
        for level in missing:
            if SUBTREE in level.parent.parts:  # never change a cgroup outside the lab's
                _delegate(level.parent)
            level.mkdir()
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (level / knob).exists() and not (level / knob).read_text().strip():
                    (level / knob).write_text((level.parent / knob).read_text())


def _delegate(parent: Path) -> None:
    """On cgroup v2, enable in ``parent`` every controller it has, so a node's systemd can
    enforce limits below. Only called inside the ``omc-lab`` subtree, so controllers reach
    the nodes only if the caller's own cgroup already delegates them. On v1: nothing to do."""
    available = parent / "cgroup.controllers"
    if not available.exists():
        return
    for controller in available.read_text().split():
        with suppress(OSError):
            (parent / "cgroup.subtree_control").write_text(f"+{controller}\n")


def _rmdir_tree(top: Path, deadline: float) -> list[str]:
    """rmdir bottom-up; a directory busy with dying tasks is retried until the deadline."""
    failed: list[str] = []
    for root, _dirs, _files in os.walk(top, topdown=False):
        while True:
            try:
                Path(root).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                failed.append(f"{root}: {exc.strerror}")
                break
    return failed


def remove(dirs: list[str], *, timeout: float = 3.0) -> list[str]:
    """Remove each lab subtree, then the shared ``omc-lab`` parent if it is empty.
    Returns what could not be removed (empty when clean)."""
    deadline = time.monotonic() + timeout
    failed: list[str] = []
    for target in dirs:
        top = Path(target)
        if top.exists():
            failed += _rmdir_tree(top, deadline)
        # the shared parent stays while another lab of this cgroup lives there
        with suppress(OSError):
            top.parent.rmdir()
    return failed


def pids_in(dirs: list[str]) -> set[int]:
    """Every task still attached anywhere below the given directories."""
    pids: set[int] = set()
    for target in dirs:
        for root, _dirs, files in os.walk(target):
            if "cgroup.procs" in files:
                try:
                    text = Path(root, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(p) for p in text.split())
    return pids
