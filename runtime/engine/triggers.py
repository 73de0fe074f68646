"""Resource triggers: ``[blocking_](pre|post)_(start|stop)`` commands (opensvc.md §2.1, §7.1).

Units carry no trigger (the compiler keeps them in ``X-OpenSVC-Config``), so
the acting ``om`` runs them: pre triggers of the resources it is about to act
on, in plan order, before any job is enqueued (a failing *blocking* pre
trigger aborts the action before anything changed); post triggers right after
the resource's job completed. Non-blocking failures are logged, not fatal.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from omc.runtime.log import ActionLog


class TriggerError(Exception):
    """A blocking trigger failed; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    rid: str
    when: str  # pre | post
    action: str  # start | stop
    blocking: bool
    argv: tuple[str, ...]

    @property
    def title(self) -> str:
        kind = "blocking" if self.blocking else "non-blocking"
        return f"trigger {kind} {self.when} {self.action}"


def _argv(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(shlex.split(str(value))) if value else ()


def triggers(rid: str, config: Mapping[str, object], when: str, action: str) -> tuple[Trigger, ...]:
    """The triggers of one resource for one moment, blocking first (pure)."""
    found = []
    for blocking in (True, False):
        key = f"{'blocking_' if blocking else ''}{when}_{action}"
        argv = _argv(config.get(key))
        if argv:
            found.append(Trigger(rid=rid, when=when, action=action, blocking=blocking, argv=argv))
    return tuple(found)


def run(trigger: Trigger, log: ActionLog, env: Mapping[str, str]) -> None:
    """Run one trigger; stdout is logged at info, stderr at error (with ``CMD`` and
    ``CMD_PID``); blocking failures raise."""
    from omc.runtime.drivers.command import Completed, capture

    cmd = shlex.join(trigger.argv)
    log.info(f"{trigger.title}: {cmd}", rid=trigger.rid, cmd=cmd)
    try:
        proc = capture(trigger.argv, env={**os.environ, **env}, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = Completed(argv=trigger.argv, returncode=127, stderr=str(exc))
    pid = proc.pid or None
    for line in proc.stdout.splitlines():
        log.info(line, rid=trigger.rid, cmd=cmd, cmd_pid=pid)
    for line in proc.stderr.splitlines():
        log.error(line, rid=trigger.rid, cmd=cmd, cmd_pid=pid)
    if proc.returncode != 0:
        message = f"{trigger.title} exited {proc.returncode}"
        if trigger.blocking:
            raise TriggerError(f"{trigger.rid}: {message}")
        log.warning(f"{message} (non-blocking, ignored)", rid=trigger.rid)
