"""Running driver commands: one chokepoint that logs them as OpenSVC does.

``run: <cmd>`` at info, then the command's stdout lines at info and its
stderr lines at warning (opensvc.md §7.1). Drivers receive a :class:`Runner`
so unit tests can replace the real subprocess with a recorded fake; the real
one is :func:`subprocess_runner` (argv lists only, never a shell).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import ActionLog, DriverError


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """What a command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    pid: int = 0  # journald's CMD_PID on the output lines (0: unknown)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandError(DriverError):
    """A command exited non-zero; ``returncode`` keeps its code (tasks record it)."""

    def __init__(self, message: str, *, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


Runner = Callable[..., Completed]
"""``runner(argv, *, input=None, env=None, timeout=None) -> Completed``."""


def capture(
    argv: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    spool: bool = False,
    **popen: Any,
) -> Completed:
    """Run ``argv``, capture its output and its pid; a timeout kills it and raises
    ``subprocess.TimeoutExpired``, a missing program raises FileNotFoundError.

    ``spool``: for a command whose stdout is long and only read at the end (rsync ``-v``:
    a line, and a ``write``, per path), stdout goes to an anonymous memory file read once
    the command exits, not to a pipe that wakes this process up once per line (10,000
    wake-ups, each a scheduling round trip, for 10,000 files); stderr stays a pipe."""
    spooled = os.memfd_create("om-command-stdout", os.MFD_CLOEXEC) if spool else -1
    try:
        with subprocess.Popen(
            list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=spooled if spool else subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(env) if env is not None else None, **popen,
        ) as proc:  # fmt: skip
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        if spool:
            size = os.fstat(spooled).st_size
            out = os.pread(spooled, size, 0).decode(errors="replace") if size else ""
    finally:
        if spool:
            os.close(spooled)
    return Completed(argv=tuple(argv), returncode=proc.returncode, stdout=out, stderr=err,
                     pid=proc.pid)  # fmt: skip


def subprocess_runner(
    argv: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    spool: bool = False,
) -> Completed:
    """Run ``argv`` for real; a missing program or a timeout is a :class:`DriverError`."""
    try:
        return capture(argv, input=input, env=env, timeout=timeout, spool=spool)
    except FileNotFoundError:
        raise DriverError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"timeout after {timeout}s: {shlex.join(argv)}") from None


def spooled_runner(
    argv: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Completed:
    """:func:`subprocess_runner` with stdout spooled (see :func:`capture`)."""
    return subprocess_runner(argv, input=input, env=env, timeout=timeout, spool=True)


SSH_KEY_ENV = "OMC_SSH_KEY"
# Peers the cluster knows are down (no etcd lease), space-separated: the node daemon sets
# it on its actions, so that a takeover's start does not wait out an ssh connect timeout
# on the very node it takes over from (a dead machine answers no ARP).
PEERS_DOWN_ENV = "OMC_PEERS_DOWN"


def peers_down() -> frozenset[str]:
    """The peers not to ask over ssh (:data:`PEERS_DOWN_ENV`)."""
    return frozenset(os.environ.get(PEERS_DOWN_ENV, "").split())


def ssh_argv(*, connect_timeout: int = 5) -> tuple[str, ...]:
    """The ssh client used to reach peers: non-interactive, quiet, no known_hosts writes.

    Peers are cluster nodes named in the config; host keys are not recorded
    (``UserKnownHostsFile=/dev/null``) so a node reinstall never blocks a
    failover, and ``LogLevel=ERROR`` keeps "Permanently added" notices out of
    the action log. ``OMC_SSH_KEY`` names the identity file.
    """
    argv = [
        "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    key = os.environ.get(SSH_KEY_ENV)
    if key:
        argv += ["-i", key]
    return tuple(argv)


def log_outputs(log: ActionLog, done: Completed, *, stdout: bool = True) -> None:
    """Relay a command's output: stdout at info (unless ``stdout`` is False: the caller
    reads it and logs what matters of it), stderr at warning, line by line, with
    journald's ``CMD`` and ``CMD_PID`` (opensvc.md §7.1)."""
    cmd = shlex.join(done.argv)
    pid = done.pid or None
    for line in done.stdout.splitlines() if stdout else ():
        if line.strip():
            log.info(line, cmd=cmd, cmd_pid=pid)
    for line in done.stderr.splitlines():
        if line.strip():
            log.warning(line, cmd=cmd, cmd_pid=pid)


def run(
    argv: Sequence[str],
    *,
    log: ActionLog,
    runner: Runner = subprocess_runner,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdout: bool = True,
) -> Completed:
    """Log ``run: <cmd>``, run it, relay its output (stdout only when ``stdout``: see
    :func:`log_outputs`); raise on failure when ``check``."""
    log.info(f"run: {shlex.join(argv)}", cmd=shlex.join(argv))
    done = runner(argv, input=input, env=env, timeout=timeout)
    log_outputs(log, done, stdout=stdout)
    if check and not done.ok:
        raise CommandError(
            f"{shlex.join(argv)} exited with code {done.returncode}", returncode=done.returncode
        )
    return done


def probe(argv: Sequence[str], *, runner: Runner = subprocess_runner) -> Completed:
    """Run an observing command quietly (status probes log nothing)."""
    return runner(argv)
