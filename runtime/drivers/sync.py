"""sync.rsync (opensvc.md §2.10): ``om <path> sync update [--target nodes|drpnodes|local]``.

Copies ``src`` to ``dst`` on every node of the selected targets, from the node
where the instance is up; elsewhere it is a no-op ("No-op if run from a node
not running the service"): the local ip, disk, fs, share and container
resources of the object must be up (or standby up).

Transport, first found of:

* ``OMC_RSYNC_MODULE=<module>``: that rsync daemon module on each peer, without
  authentication (``rsync://<node>/<module>/<dst>``: a lab without a cluster);
* the cluster's rsync daemons (:mod:`omc.runtime.cluster.syncs`: provisioned by
  every node daemon, per-node passwords): ``rsync://<me>@<node>:<port>/omc/<dst>``;
* rsync over ssh (``ssh -o BatchMode=yes``; ``OMC_SSH_KEY`` names the identity file),
  also when cluster.conf says ``[sync] transport = ssh``.

A transfer killed midway leaves the destination as it was: rsync keeps updated files
aside until the end (``--delay-updates``) and deletes after the transfer
(``--delete-delay``), then puts everything in place in one quick pass.

Records: after a successful copy to ``node``, ``<var>/<kind>/<name>/<rid>.last_sync.<node>``
(JSON: from, to, the transfer's start) is written here; ``node`` writes its own (the
cluster's rsync daemon runs :func:`record_received` after each copy it takes in), or,
over ssh or the lab's module, gets this one pushed to the same path. Status, as om3's:
where the instance is up, one stamp per target node checked against ``max_delay``;
elsewhere (a receiving node) the stamp named after the node itself: when this copy
was last received, and from whom.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omc.compiler.contract.node import node_name
from omc.runtime import safefs

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import CommandError, Runner, probe, run, spooled_runner, ssh_argv

DEFAULT_OPTIONS = ("-HAXpogDtrlvx", "--stats", "--delete", "--force", "--delay-updates",
                   "--delete-delay")  # fmt: skip
DEFAULT_MAX_DELAY = 24 * 3600.0  # seconds: om3's default max_delay is 1d
TARGETS = ("nodes", "drpnodes", "local")
UP_GROUPS = ("ip", "disk", "fs", "share", "container")


# The lines rsync's --stats and -v print after the transfer (rsync 3.x), logged as they are.
SUMMARY_PREFIXES = (
    "Number of files:", "Number of created files:", "Number of deleted files:",
    "Number of regular files transferred:", "Total file size:", "Total transferred file size:",
    "Literal data:", "Matched data:", "File list size:", "File list generation time:",
    "File list transfer time:", "Total bytes sent:", "Total bytes received:", "sent ",
    "total size is ",
)  # fmt: skip
NOT_LISTED = ("sending incremental file list", "building file list ... done")


def transfer_summary(stdout: str) -> list[str]:
    """What an action logs of rsync's stdout (pure): the closing summary (``--stats``, and
    ``-v``'s ``sent …``/``total size …``) as rsync prints it, and in place of the file list
    ``-v`` prints before it (a line per path sent or deleted: 10,000 log records for
    10,000 files, each to journald and the collector's spool) one line that counts it.
    om3 logs rsync's stdout at trace level only (drivers/ressyncrsync) and a summary."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    start = len(lines)
    while start > 0 and lines[start - 1].startswith(SUMMARY_PREFIXES):
        start -= 1
    listed = [line for line in lines[:start] if line not in NOT_LISTED]
    if not listed:
        return lines[start:]
    deleted = sum(1 for line in listed if line.startswith("deleting "))
    count = f"rsync listed {len(listed)} paths ({deleted} deleted), not logged one by one"
    return [count, *lines[start:]]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """How to reach peers: over ssh, or to their rsync daemons (a module, on a port,
    as a user with a password file; the lab's unauthenticated module has neither)."""

    module: str = ""
    port: int = 0
    user: str = ""
    password_file: str = ""
    records: bool = False  # the receiving daemon records each copy itself (post-xfer exec)

    @property
    def daemon(self) -> bool:
        return bool(self.module)

    def destination(self, node: str, dst: str) -> str:
        """``node:dst`` (ssh) or ``rsync://[user@]node[:port]/module/dst`` (daemon)."""
        if not self.daemon:
            return f"{node}:{dst}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"rsync://{user}{node}{port}/{self.module}/{dst.lstrip('/')}"

    def options(self) -> list[str]:
        if not self.daemon:
            return ["-e", shlex.join(ssh_argv())]
        return [f"--password-file={self.password_file}"] if self.password_file else []


SSH = Route()


def route() -> Route:
    """The transport of this node (see the module docstring)."""
    module = os.environ.get("OMC_RSYNC_MODULE")
    if module:
        return Route(module=module)
    from omc.runtime.cluster.syncs import transport

    found = transport()
    if found is None or found.kind != "rsyncd":
        return SSH
    return Route(module=found.module, port=found.port, user=found.user,
                 password_file=found.password_file, records=True)  # fmt: skip


def destination(node: str, dst: str, *, module: str | None) -> str:
    """``node:dst`` (ssh) or ``rsync://node/module/dst`` (daemon)."""
    return Route(module=module or "").destination(node, dst)


def rsync_argv(res: ResourceView, node: str | None, *, via: Route = SSH) -> tuple[str, ...]:
    """The rsync command copying ``src`` to ``dst`` on ``node`` (None: local copy)."""
    src = settings.words(res, "src")
    dst = settings.required(res, "dst")
    if not src:
        raise DriverError(f"{res.rid}: keyword 'src' is required by sync.rsync")
    argv = ["rsync", *rsync_options(res)]
    if node is None:
        return (*argv, *src, dst)
    return (*argv, *via.options(), *src, via.destination(node, dst))


def stamp_argv(stamp: Path, node: str, *, via: Route) -> tuple[str, ...]:
    """The rsync command putting this node's stamp of ``node`` at the same path there."""
    return ("rsync", "-t", "--mkpath", *via.options(), str(stamp),
            via.destination(node, str(stamp)))  # fmt: skip


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

    def __init__(self, runner: Runner = spooled_runner) -> None:
        self.runner = runner  # rsync's stdout (a line per path) read at its end, not piped

    def label(self, res: ResourceView) -> str:
        src = " ".join(settings.words(res, "src"))
        return f"{src} to {' '.join(settings.words(res, 'target')) or 'nodes drpnodes'}"

    def start(self, res: ResourceView, log: ActionLog) -> None:
        """Syncs run on ``sync update``, not on start."""

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        """Nothing to stop."""

    def status(self, res: ResourceView) -> Probe:
        local = _local_node()
        try:
            peers = target_nodes(res, None, local=local)
            max_delay = duration(settings.text(res, "max_delay", "sync_max_delay") or "1d")
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        if not peers:
            return Probe(status=Status.NA, messages=("no target node",))
        if instance_not_up(res):  # a receiving node: om3 checks the stamp of itself
            return received(read_stamp(res, local), max_delay, now=time.time())
        stamps = {peer: read_stamp(res, peer) for peer in peers}
        return sent(stamps, max_delay, now=time.time())

    def update(self, res: ResourceView, log: ActionLog, *, target: str | None = None,
               not_up: list[str] | None = None) -> None:  # fmt: skip
        """Copy to each selected target; no-op unless the local instance is up (``not_up``:
        what the caller saw of the local resources; a driver run by a timer looks itself)."""
        if not_up is None:
            not_up = instance_not_up(res)
        if not_up:
            log.info(f"no-op: the local instance is not up ({', '.join(not_up)})")
            return
        local = _local_node()
        peers = target_nodes(res, target, local=local)
        if not peers:
            log.info("no-op: no target node")
            return
        via = route()
        for peer in peers:
            self._check_dstfs(res, peer, via=via)
            begin = time.time()
            done = run(rsync_argv(res, peer, via=via), log=log, runner=self.runner, check=False,
                       stdout=False)  # fmt: skip
            for line in transfer_summary(done.stdout):
                log.info(line, cmd=shlex.join(done.argv), cmd_pid=done.pid or None)
            if not done.ok:
                raise CommandError(f"{shlex.join(done.argv)} exited with code {done.returncode}",
                                   returncode=done.returncode)  # fmt: skip
            stamp = stamp_file(res, peer)
            safefs.write_file(stamp, json.dumps({"from": local, "to": peer or local,
                                                 "time": begin}))  # fmt: skip
            if peer is not None and not via.records:  # the receiver's own record of it
                run(stamp_argv(stamp, peer, via=via), log=log, runner=self.runner)

    full = update

    def _check_dstfs(self, res: ResourceView, peer: str | None, *, via: Route) -> None:
        """``dstfs`` must be a mount point on the peer (checked over ssh only)."""
        dstfs = settings.text(res, "dstfs")
        if not dstfs or via.daemon:
            return
        argv: tuple[str, ...] = ("mountpoint", "-q", dstfs)
        if peer is not None:
            argv = (*ssh_argv(), peer, *argv)
        if not probe(argv, runner=self.runner).ok:
            raise DriverError(f"{dstfs} is not mounted on {peer or 'the local node'}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stamp:
    """A record of one copy: who sent it, to whom, when the transfer began."""

    source: str
    time: float


def read_stamp(res: ResourceView, node: str | None) -> Stamp | None:
    """The stamp of ``node`` (None: ``local``); an empty one (older omc) counts by mtime."""
    try:
        file = stamp_file(res, node)
        text = safefs.read_text(file)
        mtime = file.stat().st_mtime
    except (OSError, DriverError):
        return None
    try:
        data = json.loads(text)
        return Stamp(source=str(data["from"]), time=float(data["time"]))
    except (ValueError, KeyError, TypeError):
        return Stamp(source="", time=mtime)


def sent(stamps: dict[str | None, Stamp | None], max_delay: float, *, now: float) -> Probe:
    """The sending node's view: each target's last copy within ``max_delay`` (pure)."""
    warnings = []
    for peer, stamp in stamps.items():
        name = peer or "local"
        if stamp is None:
            warnings.append(f"{name} never synced")
        elif now - stamp.time > max_delay:
            warnings.append(f"{name} last sync is too old, at {_when(stamp.time)} "
                            f"(>{_span(max_delay)} ago)")  # fmt: skip
    return Probe(status=Status.WARN if warnings else Status.UP, warnings=tuple(warnings))


def received(stamp: Stamp | None, max_delay: float, *, now: float) -> Probe:
    """A receiving node's view: its copy's age against ``max_delay`` (pure)."""
    if stamp is None:
        return Probe(status=Status.WARN, warnings=("no sync received yet",))
    origin = f" from {stamp.source}" if stamp.source else ""
    if now - stamp.time > max_delay:
        return Probe(status=Status.WARN, warnings=(
            f"last sync received{origin} is too old, at {_when(stamp.time)} "
            f"(>{_span(max_delay)} ago)",))  # fmt: skip
    return Probe(status=Status.UP, messages=(f"received{origin} at {_when(stamp.time)}",))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


_NODE = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}\Z")


def record_received(env: Mapping[str, str], *, local: str, now: float | None = None) -> list[Path]:
    """On a receiving node, after a peer's copy (the cluster rsync daemon's ``post-xfer
    exec``, ``om node sync-received``): each sync resource whose ``dst`` the copy went to
    gets its stamp of this node, naming the sender. Only a successful copy counts; the
    sender is the node rsync authenticated (``RSYNC_USER_NAME``); the request (which the
    pre-xfer hook noted under ``RSYNC_PID``) only selects among the resources installed
    here, it never becomes a path."""
    from omc.runtime import layout

    pid = env.get("RSYNC_PID", "")
    if not pid.isdigit():
        return []
    note = layout.sync_requests_dir() / pid
    try:
        request = safefs.read_text(note)
        safefs.remove(note)
    except OSError:
        return []
    if env.get("RSYNC_EXIT_STATUS") != "0":
        return []
    return received_copy(request, sender=env.get("RSYNC_USER_NAME", ""),
                         module=env.get("RSYNC_MODULE_NAME", ""), local=local, now=now)  # fmt: skip


def received_copy(request: str, *, sender: str, module: str, local: str,
                  now: float | None = None) -> list[Path]:  # fmt: skip
    """Write the stamps of a successful copy of ``sender`` to ``<module>/<path>``."""
    from . import unitfile

    head, _, rest = request.partition("/")
    if not _NODE.match(sender) or not module or head != module:
        return []
    dst = "/" + rest.strip("/")
    when = time.time() if now is None else now
    written = []
    for res in unitfile.driver_views("sync."):
        if (settings.text(res, "dst") or "").rstrip("/") != dst.rstrip("/"):
            continue
        stamp = stamp_file(res, local)
        safefs.write_file(stamp, json.dumps({"from": sender, "to": local, "time": when}))
        written.append(stamp)
    return written


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
