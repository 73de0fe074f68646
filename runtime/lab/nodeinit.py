"""PID 1 of a lab node until it execs systemd: private mounts, own cgroups, masks.

Run by the host as ``nsenter --net=<netns> unshare --pid --fork --mount --uts --ipc
--propagation private --mount-proc python -I -S .../lab/nodeinit.py <lab dir> <node>``
(by path: it uses only the standard library).
It reads ``nodes/<node>/init.json`` written by the host, then:

1. moves itself into the node's cgroup directories and unshares the cgroup namespace
   (so every hierarchy mounted afterwards is rooted at the node's own subtree);
2. mounts a private tmpfs on /run (the lab directory is bound back at its own path),
   /tmp and /dev/shm, copy-on-write overlays on /etc, /var and the other trees a node
   writes (``OVERLAID``: the upper layers live in the lab directory, /etc's pre-seeded
   with hostname, machine-id, hosts, etcd endpoints), a tmpfs for container storage,
   sysfs read-only (no ``.device`` units: there is no udev), and fresh cgroup mounts;
3. binds the shared directories (the checkout, its venv: ``init.json``'s ``shared``)
   back at their own paths, read-write, then makes the rest of / read-only: nothing a
   node writes outside its private trees reaches the host;
4. seeds /run/systemd/system with the lab's units and runtime masks, binds a file over
   /dev/console, and execs systemd with the lab's minimal boot target.

Why the masks and the private /tmp: Debian's ``tmp.conf`` would otherwise empty the
host's /tmp at boot (lab-notes §0). Uses the mount(2) and unshare(2) syscalls through
ctypes: no subprocess per mount, and nothing here may import more than the stdlib.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
CLONE_NEWCGROUP = 0x02000000
SYSTEMD = "/lib/systemd/systemd"
# Host trees a node sees copy-on-write: the host's files show through, the node's writes
# land in the node directory. They are the trees an admin (or a test) writes on a node:
# configuration, state, homes (root's is where tools write caches and keys), service
# data (/srv), mount points (/mnt, /media), add-on software (/opt, /usr/local). The rest
# of / is read-only in a node.
OVERLAID = ("etc", "var", "root", "home", "srv", "mnt", "opt", "media", "usr/local")
# Trees a node gets a fresh tmpfs for: the host's files there are hidden, so a shared
# directory below one of them must be bound back (``bind_shared``).
HIDDEN = ("/run", "/tmp", "/dev/shm")
# podman's storage: its overlay driver cannot keep layers on overlayfs (the node's /var)
# without fuse-overlayfs, a package setup does not install; on a tmpfs it runs natively.
CONTAINER_STORAGE = "/var/lib/containers"

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str = "") -> None:
    """mount(2); raises OSError naming the target."""
    rc = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or 'bind'} {source} on {target}: {os.strerror(err)}")


def detach_under(top: str) -> None:
    """Lazily unmount every mount below ``top`` (deepest first). The node's copy of the
    host's /run would otherwise pin other labs' netns bind mounts (/run/netns/*)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(top + "/"):
            points.append(point)
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        _libc.umount2(point.encode(), MNT_DETACH)


def unshare_cgroup() -> None:
    if _libc.unshare(CLONE_NEWCGROUP) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWCGROUP): {os.strerror(err)}")


def enter_cgroups(cfg: dict[str, Any]) -> None:
    """Join the node's directory in every hierarchy, then root a cgroup namespace there."""
    for h in cfg["cgroups"]:
        Path(h["host_dir"], "cgroup.procs").write_text("0\n")
    unshare_cgroup()


def mount_cgroups(cfg: dict[str, Any]) -> None:
    """Fresh cgroup mounts inside the namespace, in the host's layout."""
    hierarchies = cfg["cgroups"]
    if not any(h["mountpoint"] == "/sys/fs/cgroup" for h in hierarchies):
        mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")
    for h in hierarchies:
        Path(h["mountpoint"]).mkdir(parents=True, exist_ok=True)
        flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
        mount("cgroup", h["mountpoint"], h["fstype"], flags, h["data"])


def mount_run(cfg: dict[str, Any]) -> None:
    """A private /run with the lab directory bound back at the same path."""
    lab_dir = cfg["lab_dir"]
    fd = os.open(lab_dir, os.O_PATH | os.O_DIRECTORY)
    detach_under("/run")
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    Path(lab_dir).mkdir(parents=True, exist_ok=True)
    mount(f"/proc/self/fd/{fd}", lab_dir, None, MS_BIND)
    os.close(fd)
    for sub in ("systemd/system", "systemd/journald.conf.d", "lock"):
        Path("/run", sub).mkdir(parents=True, exist_ok=True)


def mount_private(cfg: dict[str, Any]) -> None:
    """tmpfs /tmp and /dev/shm, overlays on the ``OVERLAID`` trees the host has, a tmpfs
    for container storage, read-only sysfs, cgroups."""
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    node_dir = cfg["node_dir"]
    for top in OVERLAID:
        if not Path(f"/{top}").is_dir():
            continue  # absent on the host: absent (and not creatable) in the node
        upper, work = f"{node_dir}/ov/{top}/upper", f"{node_dir}/ov/{top}/work"
        mount(
            "overlay", f"/{top}", "overlay", 0, f"lowerdir=/{top},upperdir={upper},workdir={work}"
        )
    Path(CONTAINER_STORAGE).mkdir(parents=True, exist_ok=True)
    mount("tmpfs", CONTAINER_STORAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
    mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount_cgroups(cfg)
    protect_proc_sys()
    mount(f"{node_dir}/console.log", "/dev/console", None, MS_BIND)


def protect_proc_sys() -> None:
    """/proc/sys read-only except /proc/sys/net (per netns): a node must not change the
    host's kernel-wide settings (pid_max, file-max …), as nspawn does."""
    mount("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC)
    mount("/proc/sys/net", "/proc/sys/net", None, MS_BIND | MS_REC)
    mount("none", "/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    if Path("/proc/sysrq-trigger").exists():
        mount("/proc/sysrq-trigger", "/proc/sysrq-trigger", None, MS_BIND)
        mount("none", "/proc/sysrq-trigger", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def open_shared(cfg: dict[str, Any]) -> list[tuple[str, int]]:
    """An O_PATH descriptor of each shared directory, taken while the host's view of it
    is still there (a private /tmp or /run hides it)."""
    return [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in cfg["shared"]]


def bind_shared(shared: list[tuple[str, int]]) -> None:
    """Bind each shared directory back at its own path, read-write (over a private tree
    or the read-only root alike)."""
    for path, fd in shared:
        Path(path).mkdir(parents=True, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)


def read_only_root() -> None:
    """Make the node's / read-only (its own mount: the host's stays as it is). Trees mounted
    on it (the private ones, the shared binds, /proc, /dev …) keep their own flags."""
    kept = os.statvfs("/").f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)  # same bits as ST_*
    mount("none", "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


STOCK_GENERATORS = "/usr/lib/systemd/system-generators"


def mask_stock_generators() -> None:
    """Disable the distribution's generators (fstab would read the host's fstab, sysv
    scans /etc/init.d, getty …): none applies to a lab node, and together they cost
    tens of milliseconds at every boot. Generators installed elsewhere (/etc, /run,
    /usr/local: e.g. ``omc``'s own) still run."""
    masked = Path("/run/systemd/system-generators")
    masked.mkdir(parents=True, exist_ok=True)
    for generator in Path(STOCK_GENERATORS).iterdir():
        (masked / generator.name).symlink_to("/dev/null")


def seed_units(cfg: dict[str, Any]) -> None:
    """The lab's units and masks as runtime units; journald kept volatile and off kmsg."""
    system = Path("/run/systemd/system")
    for unit in Path(cfg["node_dir"], "units").iterdir():
        shutil.copyfile(unit, system / unit.name)
    for name in cfg["masks"]:
        (system / name).symlink_to("/dev/null")
    mask_stock_generators()
    Path("/run/systemd/journald.conf.d/omc-lab.conf").write_text(
        "[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToConsole=no\n"
    )


def main(argv: list[str]) -> None:
    """Set the node up and become systemd (never returns on success)."""
    lab_dir, node = argv
    cfg = json.loads(Path(lab_dir, "nodes", node, "init.json").read_text())
    enter_cgroups(cfg)
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    shared = open_shared(cfg)
    mount_run(cfg)
    mount_private(cfg)
    bind_shared(shared)
    read_only_root()
    seed_units(cfg)
    env = {
        "container": "omc-lab",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    args = [SYSTEMD, "--system", f"--unit={cfg['target']}", "--log-target=journal-or-kmsg"]
    os.execve(SYSTEMD, [*args, "--show-status=no"], env)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except OSError as exc:
        print(f"omc-lab node init: {exc}", file=sys.stderr)
        sys.exit(1)
