"""fs drivers: ``fs.flag``, ``fs.directory``, and the mountable fs status probe.

Mounting at start is the native ``.mount`` unit's job; :class:`Mount` still
implements start/stop with mount(8)/umount(8) so ``om … driver start`` works on
its own, and its probe reads ``/proc/self/mountinfo`` (no command run), which
is what ``print status`` calls on every run.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from omc.compiler.contract.node import node_name
from omc.runtime import layout, safefs

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, run, subprocess_runner


def flag_file(res: ResourceView) -> Path:
    """``/dev/shm/opensvc/<kind>/<name>/<rid>.flag``; namespaced under ``namespaces/<ns>/``."""
    try:
        return layout.flag_file(res.ref, res.rid)
    except ValueError as exc:  # PathError, RidError
        raise DriverError(str(exc)) from None


class Flag:
    """A file in /dev/shm: the cheapest "this instance is started" marker.

    /dev/shm is writable by every user, so the flag is made and read through
    :mod:`omc.runtime.safefs`: a flag counts only when root made it, in directories
    only root can change; anything else in the way fails start and stop with the
    path and its owner, and shows in the status as a warning.
    """

    def label(self, res: ResourceView) -> str:
        return "flag"

    def start(self, res: ResourceView, log: ActionLog) -> None:
        path = flag_file(res)
        if safefs.is_file(path):
            log.info(f"flag file {path} is already installed")
            return
        log.info(f"install flag file {path}")
        safefs.create_file(path)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        path = flag_file(res)
        if not safefs.is_file(path):
            log.info(f"flag file {path} is already uninstalled")
            return
        log.info(f"uninstall flag file {path}")
        safefs.remove(path)

    def status(self, res: ResourceView) -> Probe:
        try:
            up = safefs.is_file(flag_file(res))
        except safefs.UnsafePathError as exc:
            return Probe(status=Status.DOWN, warnings=(str(exc),))
        return Probe(status=Status.UP if up else Status.DOWN)

    def abort(self, res: ResourceView) -> str | None:
        """A failover object with peers: refuse when the flag is up on one of them (ssh)."""
        if layout.is_set(flag_file(res)):
            return None
        peer = flag_peer(res)
        return f"already up on peer {peer}" if peer else None


def flag_peer(res: ResourceView, runner: Runner = subprocess_runner) -> str | None:
    """The first peer holding the flag file, asked over ssh (BatchMode, 2 s connect timeout).

    Only for failover objects with more than one node (flex instances run
    everywhere). A peer that cannot be reached is not counted: like OpenSVC,
    the veto only protects against a visible double start. So the peers the node
    daemon names as down (no lease: :func:`.command.peers_down`) are not asked: an
    unreachable one would only cost the connect timeout. The peer's flag must
    be a file root owns (``test -O`` as root over ssh): a user of the peer cannot
    veto our start with a file of theirs.
    """
    from . import unitfile  # lazily: only failover objects with peers get here
    from .command import peers_down, probe, ssh_argv

    try:
        service = unitfile.service_config(res.path)
    except DriverError:
        return None
    peers = settings.as_words(service.get("nodes"))
    if service.get("topology", "failover") != "failover" or len(peers) < 2:
        return None
    local = node_name()
    ssh = ssh_argv(connect_timeout=2)
    flag = str(flag_file(res))
    down = peers_down()
    for peer in peers:
        if (
            peer != local
            and peer not in down
            and probe((*ssh, peer, "test", "-f", flag, "-a", "-O", flag), runner=runner).ok
        ):
            return peer
    return None


def _uid(user: str | None) -> int:
    if not user:
        return -1
    try:
        return int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    except KeyError:
        raise DriverError(f"unknown user {user!r}") from None


def _gid(group: str | None) -> int:
    if not group:
        return -1
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise DriverError(f"unknown group {group!r}") from None


class Directory:
    """A directory owned by the service: created on start, left in place on stop.

    As in om3, its status is ``n/a`` when the directory exists as configured
    (it is not something that runs), ``warn`` when owner or mode drifted,
    ``down`` when it is missing.
    """

    def label(self, res: ResourceView) -> str:
        return settings.text(res, "path") or ""

    def start(self, res: ResourceView, log: ActionLog) -> None:
        path = Path(settings.required(res, "path"))
        uid = _uid(settings.text(res, "user"))
        gid = _gid(settings.text(res, "group"))
        mode = settings.mode(res, "perm", "dirperm")
        if not path.is_dir():
            log.info(f"create directory {path}")
            path.mkdir(parents=True, exist_ok=True)
        st = path.stat()
        if uid not in (-1, st.st_uid):
            log.info(f"set {path} user to {uid} ({settings.text(res, 'user')})")
        if gid not in (-1, st.st_gid):
            log.info(f"set {path} group to {gid} ({settings.text(res, 'group')})")
        if uid not in (-1, st.st_uid) or gid not in (-1, st.st_gid):
            os.chown(path, uid, gid)
        if mode is not None and stat.S_IMODE(st.st_mode) != mode:
            log.info(f"set {path} mode to {mode:04o}")
            path.chmod(mode)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        """Nothing to undo: the data stays (OpenSVC never removes it on stop)."""

    def status(self, res: ResourceView) -> Probe:
        path = settings.text(res, "path")
        if not path:
            return Probe(status=Status.UNDEF, warnings=("path is not defined",))
        try:
            st = Path(path).stat()
        except OSError:
            return Probe(status=Status.DOWN)
        if not stat.S_ISDIR(st.st_mode):
            return Probe(status=Status.DOWN, warnings=(f"{path} is not a directory",))
        drift = _drift(res, st)
        return Probe(status=Status.WARN if drift else Status.NA, warnings=drift)


def _drift(res: ResourceView, st: os.stat_result) -> tuple[str, ...]:
    """Owner and mode differences from the configuration, as status warnings."""
    found = []
    uid = _uid(settings.text(res, "user"))
    gid = _gid(settings.text(res, "group"))
    mode = settings.mode(res, "perm", "dirperm")
    if uid not in (-1, st.st_uid):
        found.append(f"user should be {uid} but is {st.st_uid}")
    if gid not in (-1, st.st_gid):
        found.append(f"group should be {gid} but is {st.st_gid}")
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        found.append(f"mode should be {mode:04o} but is {stat.S_IMODE(st.st_mode):04o}")
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class MountEntry:
    """One line of /proc/self/mountinfo, the fields the probe needs."""

    devno: str  # "major:minor"
    target: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> tuple[MountEntry, ...]:
    """Parse mountinfo (proc(5)): fields, ``-``, fstype, source, options."""
    entries = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 2:
            continue
        entries.append(
            MountEntry(
                devno=fields[2],
                target=_unescape(fields[4]),
                fstype=rest[0],
                source=_unescape(rest[1]),
            )
        )
    return tuple(entries)


def mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> tuple[MountEntry, ...]:
    return parse_mountinfo(mountinfo.read_text())


def loop_backing_file(devno: str, sys_block: Path = Path("/sys/block")) -> str | None:
    """The file behind a loop device given as ``7:N``, from sysfs."""
    major, _, minor = devno.partition(":")
    if major != "7":
        return None
    try:
        return (sys_block / f"loop{minor}" / "loop" / "backing_file").read_text().strip()
    except OSError:
        return None


def device_matches(dev: str, entry: MountEntry) -> bool:
    """Is ``entry`` a mount of ``dev``? Compares device numbers, loop files or names."""
    if dev in ("", "none") or dev.startswith(("LABEL=", "UUID=")) or dev == entry.source:
        return True
    try:
        st = Path(dev).stat()
    except OSError:
        return False
    if stat.S_ISBLK(st.st_mode):
        return entry.devno == f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if stat.S_ISREG(st.st_mode):
        backing = loop_backing_file(entry.devno)
        return backing is not None and Path(backing) == Path(dev).resolve()
    return False


def _mount_of(mnt: str, table: tuple[MountEntry, ...]) -> MountEntry | None:
    want = os.path.normpath(mnt)
    found = [e for e in table if e.target == want]
    return found[-1] if found else None  # the last mount on a path is the visible one


_EXPOSED = re.compile(r"^\{(?P<rid>disk#[^.{}]+)\.exposed_devs\[(?P<index>\d+)\]\}$")


def resolve_dev(res: ResourceView) -> str:
    """``dev``, with a ``{disk#x.exposed_devs[i]}`` reference resolved at run time.

    The compiler cannot know which loop device a disk will get, so such a
    reference reaches us as is. The stable link the disk published on start
    (:func:`disk.published`) comes first; without it a disk.loop resolves to
    its image file (mount takes it with ``-o loop``, the probe matches loop
    backing files); other disks to their ``exposed_devs``.
    """
    dev = settings.text(res, "dev", "device") or "none"
    found = _EXPOSED.match(dev)
    if found is None:
        return dev
    from . import get, unitfile  # lazily: only for referenced disks
    from .disk import published  # lazily: only for referenced disks

    link = published(replace(res, rid=found["rid"]), int(found["index"]))
    if safefs.readlink(link) is not None and link.exists():  # root's link, to a device
        return str(link)

    disk = unitfile.load(res.path, found["rid"])
    if disk.driver == "disk.loop":
        return settings.required(disk, "file")
    devs = list(getattr(get(disk.driver), "exposed_devs", lambda _: [])(disk))
    index = int(found["index"])
    if index >= len(devs):
        raise DriverError(f"{dev}: {found['rid']} exposes {len(devs)} device(s)")
    return str(devs[index])


class Mount:
    """A mountable filesystem (``fs.ext4``, ``fs.xfs``, ``fs.tmpfs`` …)."""

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def label(self, res: ResourceView) -> str:
        try:
            dev = resolve_dev(res)
        except DriverError:
            dev = settings.text(res, "dev", "device") or "none"
        return f"{dev}@{settings.text(res, 'mnt', 'mount_point') or '?'}"

    def status(self, res: ResourceView) -> Probe:
        mnt = settings.text(res, "mnt", "mount_point")
        if not mnt:
            return Probe(status=Status.UNDEF, messages=("mnt is not set",))
        entry = _mount_of(mnt, mounts())
        if entry is None:
            return Probe(status=Status.DOWN)
        try:
            dev = resolve_dev(res)
        except DriverError as exc:
            return Probe(status=Status.WARN, warnings=(str(exc),))
        if not device_matches(dev, entry):
            return Probe(status=Status.WARN, warnings=(f"{mnt} is mounted from {entry.source}",))
        return Probe(status=Status.UP)

    def mount_argv(self, res: ResourceView) -> tuple[str, ...]:
        """``mount -t <type> [-o <opts>] <dev> <mnt>``; an image file gets ``loop``."""
        mnt = settings.required(res, "mnt", "mount_point")
        dev = resolve_dev(res)
        fstype = res.driver.partition(".")[2]
        opts = [o for o in (settings.text(res, "mnt_opt") or "").split(",") if o]
        if Path(dev).is_file() and "loop" not in opts:
            opts.append("loop")
        argv = ["mount", "-t", fstype]
        if opts:
            argv += ["-o", ",".join(opts)]
        return (*argv, dev, mnt)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        mnt = settings.required(res, "mnt", "mount_point")
        if self.status(res).status is Status.UP:
            log.info(f"already up: {mnt} is mounted")
            return
        Path(mnt).mkdir(parents=True, exist_ok=True)
        run(self.mount_argv(res), log=log, runner=self.runner)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        mnt = settings.required(res, "mnt", "mount_point")
        if _mount_of(mnt, mounts()) is None:
            log.info(f"already down: {mnt} is not mounted")
            return
        run(("umount", mnt), log=log, runner=self.runner)
