"""``om exec --pg <cgroup> -- CMD``: run a command inside a given process group (cgroup).

om3 runs app commands as ``om exec --pg /opensvc.slice/…/opensvc-svc.svc0-app.0.slice -- cmd``
(opensvc.md §2.9), so their processes are accounted and capped with the
resource's slice. This moves the current process into that cgroup in every
mounted hierarchy, then ``execvp``s the command (same pid, so nothing to wait
for and no extra process left behind):

* cgroup v2 (``/sys/fs/cgroup`` or the hybrid ``/sys/fs/cgroup/unified``) and
  the v1 named ``systemd`` hierarchy: the directory is created if missing
  (systemd creates slices lazily; it adopts the directory when the slice starts);
* v1 controller hierarchies (cpu, memory …): joined only where systemd has
  created the slice (that is where its caps are), never created here.

On pure v2 a slice with enabled controllers cannot hold processes (the kernel's
"no internal processes" rule, EBUSY): the command then runs in a leaf
``<pg>/om-exec-<pid>`` directory, which the kernel lets us remove only once
empty; it is left for systemd or the next run to clean (documented limit).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USAGE = "usage: om exec --pg <cgroup path> -- <command> [args...]"


class ExecError(Exception):
    """The command line or the cgroup move is wrong; the message says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hierarchy:
    """A mounted cgroup hierarchy: where, and whether we may create directories in it."""

    mountpoint: Path
    create: bool  # v2 and name=systemd: yes; v1 controllers: join existing only
    root: str = "/"  # the cgroup mounted there (mountinfo's root field)
    options: frozenset[str] = frozenset()  # v1 super options (controllers, name=); v2: none


def parse(argv: list[str]) -> tuple[str, list[str]]:
    """``--pg PG -- CMD…`` → (PG, CMD). ``--pg=PG`` is accepted; ``--`` is required."""
    if "--" not in argv:
        raise ExecError("missing '--' before the command")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    if not command:
        raise ExecError("missing command after '--'")
    pg = ""
    while options:
        word = options.pop(0)
        if word.startswith("--pg="):
            pg = word.removeprefix("--pg=")
        elif word == "--pg" and options:
            pg = options.pop(0)
        else:
            raise ExecError(f"unexpected argument {word!r}")
    if pg and (not pg.startswith("/") or ".." in pg.split("/")):
        raise ExecError(f"--pg must be an absolute cgroup path without '..', got {pg!r}")
    return pg, command


def hierarchies(mountinfo: str) -> Iterator[Hierarchy]:
    """The cgroup hierarchies in a mountinfo text (pure, tested)."""
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        fstype, options = rest[0], frozenset(rest[2].split(","))
        if fstype == "cgroup2":
            yield Hierarchy(mountpoint=Path(fields[4]), create=True, root=fields[3])
        elif fstype == "cgroup":
            named = "name=systemd" in options
            yield Hierarchy(mountpoint=Path(fields[4]), create=named, root=fields[3],
                            options=options)  # fmt: skip


def _join(directory: Path, pid: int) -> None:
    (directory / "cgroup.procs").write_text(f"{pid}\n")


def join(pg: str, *, mountinfo: str | None = None, pid: int | None = None) -> list[Path]:
    """Move ``pid`` (default: self) into ``pg`` in every hierarchy; the directories joined."""
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    pid = os.getpid() if pid is None else pid
    joined: list[Path] = []
    for h in hierarchies(text):
        target = h.mountpoint / pg.lstrip("/")
        if not target.is_dir():
            if not h.create:
                continue
            target.mkdir(parents=True, exist_ok=True)
        try:
            _join(target, pid)
        except OSError as exc:
            if exc.errno != errno.EBUSY or not h.create:
                raise ExecError(f"cannot join cgroup {target}: {exc.strerror}") from None
            target = target / f"om-exec-{pid}"
            target.mkdir(exist_ok=True)
            _join(target, pid)
        joined.append(target)
    return joined


def cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup``: controllers (``""`` for v2, ``name=systemd`` …) → path."""
    found = {}
    for line in proc_cgroup.splitlines():
        if line:
            _, controllers, path = line.split(":", 2)
            found[controllers] = path
    return found


def cgroup_moves(peer: str, own: str, mountinfo: str) -> list[Path]:
    """The cgroup directory a process in cgroups ``own`` joins to be tracked by
    systemd with another process, ``peer`` (both ``/proc/<pid>/cgroup`` texts):
    in the unified (v2) hierarchy, which systemd tracks processes with in unified
    and hybrid layouts, else (legacy v1) in the named ``systemd`` one. Not the v1
    controllers of a hybrid layout: each migration costs a kernel RCU grace period
    (~15 ms measured in a lab node), and what runs there is short. Nothing when
    the two agree or the peer's cgroup is outside this cgroup namespace (pure,
    tested). Of mounts at the same place, the last one is the visible one (a lab
    node's own cgroupfs over its host's)."""
    mine, theirs = cgroup_paths(own), cgroup_paths(peer)
    controllers = "" if "" in theirs else "name=systemd"
    path = theirs.get(controllers)
    if path is None or mine.get(controllers) == path or path.startswith("/.."):
        return []
    visible = {h.mountpoint: h for h in hierarchies(mountinfo)}
    moves = []
    for mountpoint, h in visible.items():
        tracked = controllers in h.options if controllers else not h.options  # v2: no options
        if not tracked:
            continue
        root = h.root.rstrip("/")
        if path == h.root or path.startswith(root + "/"):
            moves.append(mountpoint / path[len(root) :].lstrip("/"))
    return moves


def join_cgroups_of(peer_pid: int, pid: int) -> None:
    """Move ``pid`` into the cgroup of ``peer_pid`` that systemd tracks (see
    :func:`cgroup_moves`), when they differ."""
    for directory in cgroup_moves(
        Path(f"/proc/{peer_pid}/cgroup").read_text(),
        Path(f"/proc/{pid}/cgroup").read_text(),
        Path("/proc/self/mountinfo").read_text(),
    ):
        _join(directory, pid)


def main(argv: list[str]) -> int:
    """Join the cgroup and exec; returns only on error (64: usage, 1: cgroup, 126/127: exec)."""
    from omc.runtime.exitcodes import ExitStatus

    try:
        pg, command = parse(list(argv))
        if pg:
            join(pg)
    except OSError as exc:
        print(f"om exec: error: cannot join the cgroup: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except ExecError as exc:
        print(f"om exec: error: {exc}\n{USAGE}", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"om exec: error: {command[0]}: {exc.strerror}", file=sys.stderr)
        if exc.errno == errno.ENOENT:
            return ExitStatus.COMMAND_NOT_FOUND
        return ExitStatus.COMMAND_NOT_EXECUTABLE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
