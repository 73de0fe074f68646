"""sync.rsync (opensvc.md §2.10): ``om <path> sync update [--target nodes|drpnodes|local]``.

Copies ``src`` to ``dst`` on every node of the selected targets, from the node
where the instance is up; elsewhere it is a no-op ("No-op if run from a node
not running the service"): the local ip, disk, fs, share and container
resources of the object must be up (or standby up).

Transport: rsync over ssh by default (``ssh -o BatchMode=yes``; ``OMC_SSH_KEY``
names the identity file). When ``OMC_RSYNC_MODULE`` is set, the rsync daemon
module of that name on each peer is used instead (``rsync://<node>/<module>/<dst>``),
which is what the lab runs (module ``root`` = ``/``). Each successful copy is
recorded in ``<var>/<kind>/<name>/<rid>.last_sync.<node>``; status compares
these with ``max_delay``.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from omc.compiler.contract.node import node_name
from omc.runtime import safefs

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, probe, run, ssh_argv, subprocess_runner

DEFAULT_OPTIONS = ("-HAXpogDtrlvx", "--stats", "--delete", "--force")
DEFAULT_MAX_DELAY = 24 * 3600.0  # seconds: om3's default max_delay is 1d
TARGETS = ("nodes", "drpnodes", "local")
UP_GROUPS = ("ip", "disk", "fs", "share", "container")


def duration(text: str) -> float:
    """``30m``, ``1d``, ``2h30m``, ``90`` (seconds) → seconds."""
    return settings.parse_duration(text, what="duration")


def rsync_options(res: ResourceView) -> list[str]:
    """The defaults merged with ``options`` (or ``options`` alone with ``reset_options``)."""
    extra = list(settings.argv(res, "options"))
    base = [] if settings.boolean(res, "reset_options", default=False) else list(DEFAULT_OPTIONS)
    opts = base + [o for o in extra if o not in base]
    bwlimit = settings.text(res, "bwlimit")
    if bwlimit:
        opts.append(f"--bwlimit={bwlimit}")
    timeout = settings.text(res, "timeout")
    if timeout:
        opts.append(f"--timeout={int(duration(timeout))}")
    return opts


def destination(node: str, dst: str, *, module: str | None) -> str:
    """``node:dst`` (ssh) or ``rsync://node/module/dst`` (daemon)."""
    if module:
        return f"rsync://{node}/{module}/{dst.lstrip('/')}"
    return f"{node}:{dst}"


def rsync_argv(res: ResourceView, node: str | None, *, module: str | None) -> tuple[str, ...]:
    """The rsync command copying ``src`` to ``dst`` on ``node`` (None: local copy)."""
    src = settings.words(res, "src")
    dst = settings.required(res, "dst")
    if not src:
        raise DriverError(f"{res.rid}: keyword 'src' is required by sync.rsync")
    argv = ["rsync", *rsync_options(res)]
    if node is not None and not module:
        argv += ["-e", shlex.join(ssh_argv())]
    target = dst if node is None else destination(node, dst, module=module)
    return (*argv, *src, target)


def _service_config(res: ResourceView) -> dict[str, object]:
    """The object-level keywords (nodes, drpnodes) from the target unit's X-OpenSVC-Config."""
    from . import unitfile

    return unitfile.service_config(res.path)


def target_nodes(res: ResourceView, want: str | None, *, local: str) -> list[str | None]:
    """The peers to copy to (None stands for a ``local`` copy), the local node excluded."""
    configured = settings.words(res, "target") or ("nodes", "drpnodes")
    unknown = [t for t in (*configured, *([want] if want else [])) if t not in TARGETS]
    if unknown:
        raise DriverError(f"unknown sync target {unknown[0]!r}: expected one of {TARGETS}")
    chosen = [t for t in configured if want is None or t == want]
    service = _service_config(res)
    found: list[str | None] = []
    for kind in chosen:
        if kind == "local":
            found.append(None)
            continue
        value = service.get(kind) or []
        peers = settings.as_words(value)
        found += [p for p in peers if p != local and p not in found]
    return found


def _local_node() -> str:
    """This node's name: the contract's, as the compiler evaluated ``nodes`` for it."""
    return node_name()


def stamp_file(res: ResourceView, node: str | None) -> Path:
    """``<var>/…/<rid>.last_sync.<node>``: when the last copy to ``node`` succeeded."""
    from omc.runtime.layout import resource_file

    try:
        return resource_file(res.ref, res.rid, f".last_sync.{node or 'local'}")
    except ValueError as exc:  # PathError, RidError, a node name unfit for a file name
        raise DriverError(str(exc)) from None


class Rsync:
    """Replicates a directory tree to the object's other nodes."""

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def label(self, res: ResourceView) -> str:
        src = " ".join(settings.words(res, "src"))
        return f"{src} to {' '.join(settings.words(res, 'target')) or 'nodes drpnodes'}"

    def start(self, res: ResourceView, log: ActionLog) -> None:
        """Syncs run on ``sync update``, not on start."""

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        """Nothing to stop."""

    def status(self, res: ResourceView) -> Probe:
        try:
            peers = target_nodes(res, None, local=_local_node())
            max_delay = duration(settings.text(res, "max_delay", "sync_max_delay") or "1d")
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        if not peers:
            return Probe(status=Status.NA, messages=("no target node",))
        now, warnings = time.time(), []
        for peer in peers:
            try:
                age = now - stamp_file(res, peer).stat().st_mtime
            except (OSError, DriverError):
                warnings.append(f"{peer or 'local'} never synced")
                continue
            if age > max_delay:
                warnings.append(f"{peer or 'local'} last sync is too old")
        return Probe(status=Status.WARN if warnings else Status.UP, warnings=tuple(warnings))

    def update(self, res: ResourceView, log: ActionLog, *, target: str | None = None) -> None:
        """Copy to each selected target; no-op unless the local instance is up."""
        not_up = instance_not_up(res)
        if not_up:
            log.info(f"no-op: the local instance is not up ({', '.join(not_up)})")
            return
        peers = target_nodes(res, target, local=_local_node())
        if not peers:
            log.info("no-op: no target node")
            return
        module = os.environ.get("OMC_RSYNC_MODULE") or None
        for peer in peers:
            self._check_dstfs(res, peer, module=module)
            argv = rsync_argv(res, peer, module=module)
            run(argv, log=log, runner=self.runner)
            safefs.write_file(stamp_file(res, peer), "")  # a new file: a new mtime

    full = update

    def _check_dstfs(self, res: ResourceView, peer: str | None, *, module: str | None) -> None:
        """``dstfs`` must be a mount point on the peer (checked over ssh only)."""
        dstfs = settings.text(res, "dstfs")
        if not dstfs or module:
            return
        argv: tuple[str, ...] = ("mountpoint", "-q", dstfs)
        if peer is not None:
            argv = (*ssh_argv(), peer, *argv)
        if not probe(argv, runner=self.runner).ok:
            raise DriverError(f"{dstfs} is not mounted on {peer or 'the local node'}")


def instance_not_up(res: ResourceView) -> list[str]:
    """The local ip/disk/fs/share/container resources that are neither up nor standby up."""
    from . import evaluate, unitfile

    bad = []
    for other in unitfile.object_views(res.path):
        group = other.driver.partition(".")[0]
        if group not in UP_GROUPS or "disable" in other.flags or "optional" in other.flags:
            continue
        status = evaluate(other).status
        if status not in (Status.UP, Status.STDBY_UP, Status.NA):
            bad.append(f"{other.rid} is {status}")
    return bad
