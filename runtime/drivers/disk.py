"""disk drivers (opensvc.md §2.5): loop, vg, md, raw.

* ``disk.loop`` attaches a loop device to ``file`` (creating a sparse file of
  ``size`` first when it is missing: provisioning folded into start, logged);
  status reads ``/sys/block/loop*/loop/backing_file``, no command.
* ``disk.vg`` activates/deactivates a volume group with ``vgchange -ay/-an``.
  LVM runs with a device filter accepting loop devices only when
  ``OMC_LVM_LOOP_ONLY`` is set (the lab, lab-notes §5). LVs need device-mapper,
  which this kernel lacks: tested with a fake command runner only.
* ``disk.md`` assembles/stops an md array by ``uuid`` with mdadm (not installed
  here: unit-tested with a fake runner).
* ``disk.raw`` checks the ``devs`` are present and creates the ``<src>:<dst>``
  device nodes (``mknod`` with the source's numbers), removed on stop.

loop, md and raw publish the devices they expose (``exposed_devs``) as
symlinks at :func:`omc.compiler.contract.names.exposed_dev_path`
(``/run/opensvc/dev/<namespace>/<kind>/<name>/<group>.<index>.<n>``) on start
and remove them on stop: the compiler writes that path in the ``What=`` of a
mount whose ``dev`` is ``{disk#x.exposed_devs[n]}``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from omc.runtime import safefs

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, probe, run, subprocess_runner

SYS_BLOCK = Path("/sys/block")
LVM_LOOP_FILTER = 'devices{filter=["a|^/dev/loop|","r|.*|"] use_devicesfile=0}'


def loop_devices(file: str, sys_block: Path = SYS_BLOCK) -> list[str]:
    """``/dev/loopN`` devices whose backing file is ``file``."""
    want = str(Path(file).resolve())
    found = []
    for entry in sorted(sys_block.glob("loop*")):
        try:
            backing = (entry / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue
        if backing == want:
            found.append(f"/dev/{entry.name}")
    return found


def published(res: ResourceView, index: int, root: Path = Path("/")) -> Path:
    """Where ``res`` publishes its exposed device ``index`` (the rule shared with the compiler)."""
    from omc.compiler.contract.names import (
        exposed_dev_path,  # only on start/stop: keep imports cheap
    )

    try:
        return root / exposed_dev_path(res.ref, res.rid, index).lstrip("/")
    except ValueError as exc:
        raise DriverError(f"cannot publish the devices of {res.rid}: {exc}") from None


def _stale_links(res: ResourceView, keep: int, root: Path) -> list[Path]:
    """Published links of ``res`` with an index ``>= keep``."""
    first = published(res, 0, root)
    pattern = re.compile(re.escape(first.name.removesuffix(".0")) + r"\.([0-9]+)")
    return [
        first.parent / name
        for name in safefs.entries(first.parent)
        if (m := pattern.fullmatch(name)) and int(m[1]) >= keep
        and safefs.readlink(first.parent / name) is not None
    ]  # fmt: skip


def publish(res: ResourceView, devs: list[str], log: ActionLog, root: Path = Path("/")) -> None:
    """Point the stable links at ``devs`` (atomically replaced, in root's directories:
    a mount unit follows them as root), dropping extra old ones."""
    for index, dev in enumerate(devs):
        link = published(res, index, root)
        if safefs.readlink(link) == dev:
            continue
        safefs.symlink(link, dev)
        log.info(f"publish {dev} as {link}")
    for link in _stale_links(res, len(devs), root):
        safefs.remove(link)


def unpublish(res: ResourceView, log: ActionLog, root: Path = Path("/")) -> None:
    """Remove the stable links of ``res``: a mount can no longer find the device."""
    for link in _stale_links(res, 0, root):
        log.info(f"unpublish {link}")
        safefs.remove(link)


class Loop:
    """A loop device over a regular file."""

    def __init__(self, runner: Runner = subprocess_runner, root: Path = Path("/")) -> None:
        self.runner = runner
        self.root = root

    def label(self, res: ResourceView) -> str:
        return settings.text(res, "file") or ""

    def exposed_devs(self, res: ResourceView) -> list[str]:
        return loop_devices(settings.required(res, "file"))

    def status(self, res: ResourceView) -> Probe:
        file = settings.text(res, "file")
        if not file:
            return Probe(status=Status.UNDEF, warnings=("file is not set",))
        devs = loop_devices(file)
        return Probe(status=Status.UP if devs else Status.DOWN, messages=tuple(devs))

    def _provision(self, res: ResourceView, log: ActionLog, file: Path) -> None:
        size = settings.size(res, "size")
        if size is None:
            raise DriverError(f"{file} does not exist and no size is set to create it")
        log.info(f"create file {file} of {size} bytes")
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("wb") as out:
            out.truncate(size)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        file = Path(settings.required(res, "file"))
        devs = loop_devices(str(file))
        if devs:
            log.info(f"already up: {file} is attached to {', '.join(devs)}")
        else:
            if not file.exists():
                self._provision(res, log, file)
            run(("losetup", "--find", "--show", str(file)), log=log, runner=self.runner)
            devs = loop_devices(str(file))
        publish(res, devs[:1], log, self.root)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        file = settings.required(res, "file")
        unpublish(res, log, self.root)
        devs = loop_devices(file)
        if not devs:
            log.info(f"already down: {file} is not attached")
            return
        for dev in devs:
            run(("losetup", "--detach", dev), log=log, runner=self.runner)


def lvm_argv(*args: str) -> tuple[str, ...]:
    """An LVM command, with the loop-only device filter when ``OMC_LVM_LOOP_ONLY`` is set."""
    if os.environ.get("OMC_LVM_LOOP_ONLY"):
        return (args[0], "--config", LVM_LOOP_FILTER, *args[1:])
    return args


def parse_lv_attrs(text: str) -> list[str]:
    """``lvs --noheadings -o lv_attr`` lines → attribute strings."""
    return [line.strip() for line in text.splitlines() if line.strip()]


class Vg:
    """An LVM volume group: active when every logical volume in it is active."""

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def label(self, res: ResourceView) -> str:
        return settings.text(res, "name", "vgname") or ""

    def status(self, res: ResourceView) -> Probe:
        name = settings.required(res, "name", "vgname")
        try:
            exists = probe(lvm_argv("vgs", "--noheadings", name), runner=self.runner)
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        if not exists.ok:
            return Probe(status=Status.DOWN, messages=(f"vg {name} not found",))
        lvs = probe(lvm_argv("lvs", "--noheadings", "-o", "lv_attr", name), runner=self.runner)
        attrs = parse_lv_attrs(lvs.stdout)
        active = [a for a in attrs if len(a) > 4 and a[4] == "a"]
        if len(active) == len(attrs):
            return Probe(status=Status.UP)
        if not active:
            return Probe(status=Status.DOWN)
        return Probe(status=Status.WARN, warnings=(f"{len(active)}/{len(attrs)} lv active",))

    def start(self, res: ResourceView, log: ActionLog) -> None:
        name = settings.required(res, "name", "vgname")
        if self.status(res).status is Status.UP:
            log.info(f"already up: vg {name} is active")
            return
        run(lvm_argv("vgchange", "-ay", name), log=log, runner=self.runner)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        name = settings.required(res, "name", "vgname")
        if self.status(res).status is Status.DOWN:
            log.info(f"already down: vg {name} is not active")
            return
        run(lvm_argv("vgchange", "-an", name), log=log, runner=self.runner)


def md_arrays(detail_scan: str) -> dict[str, str]:
    """``mdadm --detail --scan`` → {uuid: device}; lines like ``ARRAY /dev/md0 … UUID=…``."""
    arrays = {}
    for line in detail_scan.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "ARRAY":
            continue
        for word in words[2:]:
            if word.startswith("UUID="):
                arrays[word.removeprefix("UUID=")] = words[1]
    return arrays


class Md:
    """A Linux software RAID array, identified by its uuid."""

    def __init__(self, runner: Runner = subprocess_runner, root: Path = Path("/")) -> None:
        self.runner = runner
        self.root = root

    def exposed_devs(self, res: ResourceView) -> list[str]:
        dev = self._device(res)
        return [dev] if dev else []

    def label(self, res: ResourceView) -> str:
        return settings.text(res, "uuid") or settings.text(res, "name") or ""

    def _device(self, res: ResourceView) -> str | None:
        done = probe(("mdadm", "--detail", "--scan"), runner=self.runner)
        return md_arrays(done.stdout).get(settings.required(res, "uuid"))

    def status(self, res: ResourceView) -> Probe:
        try:
            dev = self._device(res)
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        return Probe(status=Status.UP if dev else Status.DOWN, messages=(dev,) if dev else ())

    def start(self, res: ResourceView, log: ActionLog) -> None:
        uuid = settings.required(res, "uuid")
        dev = self._device(res)
        if dev:
            log.info(f"already up: md {uuid} is assembled as {dev}")
        else:
            argv = ["mdadm", "--assemble", "--scan", f"--uuid={uuid}"]
            name = settings.text(res, "name")
            if name:
                argv.insert(2, f"/dev/md/{name}")
            run(argv, log=log, runner=self.runner)
        publish(res, self.exposed_devs(res), log, self.root)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        uuid = settings.required(res, "uuid")
        unpublish(res, log, self.root)
        dev = self._device(res)
        if not dev:
            log.info(f"already down: md {uuid} is not assembled")
            return
        run(("mdadm", "--stop", dev), log=log, runner=self.runner)


def raw_pairs(res: ResourceView) -> Iterator[tuple[str, str | None]]:
    """``devs`` items ``<src>[:<dst>]``."""
    for item in settings.words(res, "devs"):
        src, sep, dst = item.partition(":")
        yield src, (dst if sep and dst else None)


class Raw:
    """Raw devices: present or not; optional device nodes mirroring them."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def exposed_devs(self, res: ResourceView) -> list[str]:
        return [src for src, _ in raw_pairs(res)]

    def label(self, res: ResourceView) -> str:
        return " ".join(settings.words(res, "devs"))

    def status(self, res: ResourceView) -> Probe:
        pairs = list(raw_pairs(res))
        if not pairs:
            return Probe(status=Status.UNDEF, warnings=("devs is not set",))
        missing = [src for src, _ in pairs if not Path(src).exists()]
        if missing:
            return Probe(status=Status.DOWN, messages=tuple(f"{m} is missing" for m in missing))
        absent = [dst for _, dst in pairs if dst and not Path(dst).exists()]
        return Probe(status=Status.DOWN if absent else Status.UP)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        pairs = list(raw_pairs(res))
        missing = [src for src, _ in pairs if not Path(src).exists()]
        if missing:
            raise DriverError(f"missing devices: {' '.join(missing)}")
        created = False
        for src, dst in pairs:
            if dst and not Path(dst).exists():
                self._mknod(res, src, dst, log)
                created = True
        if not created:
            log.info("already up: devices present")
        publish(res, self.exposed_devs(res), log, self.root)

    def _mknod(self, res: ResourceView, src: str, dst: str, log: ActionLog) -> None:
        st = Path(src).stat()
        if not (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            raise DriverError(f"{src} is not a device")
        kind = stat.S_IFMT(st.st_mode)
        if settings.boolean(res, "create_char_devices", default=False):
            kind = stat.S_IFCHR
        perm = settings.mode(res, "perm") or 0o600
        log.info(f"create device node {dst} ({os.major(st.st_rdev)}:{os.minor(st.st_rdev)})")
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.mknod(dst, kind | perm, st.st_rdev)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        unpublish(res, log, self.root)
        removed = False
        for _, dst in raw_pairs(res):
            if dst and Path(dst).exists():
                log.info(f"remove device node {dst}")
                Path(dst).unlink()
                removed = True
        if not removed:
            log.info("already down: no device node to remove")
