"""task.host and task.podman/docker: one-shot commands run by ``run`` (opensvc.md §2.11).

A task is never "up": start does nothing, stop runs the optional ``stop``
command, and ``run`` executes ``command`` under the task rules: refusal
without confirmation when ``confirmation`` is set, at most ``max_parallel``
concurrent runs (pid files), ``on_error`` after a failure, and the result
recorded in ``<var>/<kind>/<name>/<rid>.last_run`` for ``check = last_run``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from omc.runtime import layout, safefs

from . import settings
from .app import AppCommands, retcodes, status_of
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import CommandError, Runner, run, subprocess_runner
from .settings import command


def last_run_file(res: ResourceView) -> Path:
    """``/var/lib/opensvc/<kind>/<name>/<rid>.last_run`` (``OMC_VAR`` overrides the base)."""
    try:
        return layout.resource_file(res.ref, res.rid, ".last_run")
    except ValueError as exc:  # PathError, RidError
        raise DriverError(str(exc)) from None


def pid_dir(res: ResourceView) -> Path:
    """Where running instances of the task leave a pid file each (for ``max_parallel``)."""
    try:
        return layout.task_pid_dir(res.ref, res.rid)
    except ValueError as exc:
        raise DriverError(str(exc)) from None


def read_last_run(res: ResourceView) -> dict[str, object] | None:
    try:
        data = json.loads(safefs.read_text(last_run_file(res)))
    except (OSError, ValueError):  # missing, unreadable, not root's, not JSON
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(res: ResourceView) -> list[int]:
    """Pids of the live runs; stale pid files are removed on the way."""
    found = []
    directory = pid_dir(res)
    for name in safefs.entries(directory):
        if name.isdigit() and _alive(int(name)):
            found.append(int(name))
        else:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                safefs.remove(directory / name)
    return sorted(found)


def confirm_or_refuse(res: ResourceView, *, confirm: bool) -> None:
    """``confirmation = true`` needs ``--confirm``, or a "yes" typed on a terminal."""
    if not settings.boolean(res, "confirmation", default=False) or confirm:
        return
    if not sys.stdin.isatty():
        raise DriverError(f"{res.rid}: this task needs confirmation: run with --confirm")
    print(f"{res.rid}: run {' '.join(command(res, 'command'))}? type 'yes': ", end="", flush=True)
    if sys.stdin.readline().strip() != "yes":
        raise DriverError(f"{res.rid}: run not confirmed")


class HostTask:
    """A command run on demand or by schedule."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.commands = AppCommands(runner)

    def label(self, res: ResourceView) -> str:
        return " ".join(command(res, "command"))

    def start(self, res: ResourceView, log: ActionLog) -> None:
        """Tasks are not started: they run on ``run``."""

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        if command(res, "stop"):
            self.commands.act(res, "stop", log)

    def status(self, res: ResourceView) -> Probe:
        check = settings.text(res, "check")
        if check not in ("last_run", "last_run_warn"):
            return Probe(status=Status.NA)
        last = read_last_run(res)
        if last is None:
            return Probe(status=Status.NA, messages=("never run",))
        code = int(str(last.get("code", -1)))
        if check == "last_run_warn":
            warnings = (f"last run failed with code {code}",) if code else ()
            return Probe(status=Status.NA, warnings=warnings)
        table = retcodes(res)
        return Probe(status=status_of(code, table))

    def run(self, res: ResourceView, log: ActionLog, *, confirm: bool = False) -> None:
        """Run ``command`` once, under the confirmation and parallelism rules."""
        confirm_or_refuse(res, confirm=confirm)
        limit = settings.integer(res, "max_parallel", default=1)
        busy = running(res)
        if len(busy) >= limit:
            raise DriverError(f"max_parallel={limit} reached: running as pid {busy}")
        mine = pid_dir(res) / str(os.getpid())
        safefs.create_file(mine)
        code = 0
        try:
            self.execute(res, log)
        except CommandError as exc:
            code = exc.returncode
            raise
        except DriverError:
            code = 1
            raise
        finally:
            safefs.remove(mine)
            self._record(res, code)
            if code:
                self._on_error(res, log)

    def execute(self, res: ResourceView, log: ActionLog) -> None:
        """The run itself (the container tasks replace it)."""
        if not command(res, "command"):
            raise DriverError(f"{res.rid}: command is not set")
        self.commands.act(res, "command", log)

    def _record(self, res: ResourceView, code: int) -> None:
        safefs.write_file(last_run_file(res), json.dumps({"time": time.time(), "code": code}))

    def _on_error(self, res: ResourceView, log: ActionLog) -> None:
        if command(res, "on_error"):
            with contextlib.suppress(DriverError):
                self.commands.act(res, "on_error", log)


class PodmanTask(HostTask):
    """A container run to completion (``podman run --rm`` in the foreground)."""

    engine = "podman"

    def label(self, res: ResourceView) -> str:
        return settings.text(res, "image", "run_image") or ""

    def execute(self, res: ResourceView, log: ActionLog) -> None:
        from .container import run_argv

        argv = run_argv(res, engine=self.engine, detach=False)
        run(argv, log=log, runner=self.commands.runner or subprocess_runner)


class DockerTask(PodmanTask):
    engine = "docker"
