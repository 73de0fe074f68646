"""What an action says about each resource, as OpenSVC says it (pure).

The seed's log lines (actions-seed.txt): ``applied pg <cgroup>`` for each slice level
of an app or container (once per action), ``run: <om> exec --pg <cgroup> -- <cmd>``
for the commands a native unit runs (the unit runs them in that slice via
``Slice=``, which is what ``om exec --pg`` does: the line shows the equivalent).
``<cmd>`` is the argv the resource's config gives (``X-OpenSVC-Config``), shell-quoted:
what the user wrote and what runs, not the unit file's escaped text (``%%``, ``$$``,
C quoting);
``mount <what> <where>`` for mounts, ``already up``/``already down`` for no-ops.
Driver-backed units log for themselves (their records come through the relay); what
apps print is read back from journald after their job (stdout at info, stderr at
warning: :func:`output_level`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from omc.compiler.contract.names import slice_cgroups
from omc.compiler.contract.units import STREAM_PREFIX, without_stream
from omc.runtime.drivers.base import DriverError
from omc.runtime.drivers.settings import command as app_command
from omc.runtime.engine.plan import Op, Step
from omc.runtime.log import Level
from omc.runtime.objects.model import ResourceModel

PG_GROUPS = frozenset({"app", "container"})


@dataclass(frozen=True, slots=True)
class Line:
    level: Level
    message: str


def skipped(step: Step) -> Line:
    """A no-op step: ``already up``/``already down`` as OpenSVC logs them, else why (debug)."""
    if step.reason in ("already up", "already down"):
        return Line(Level.INFO, step.reason)
    return Line(Level.DEBUG, f"skip: {step.reason}")


def exec_display(line: str) -> str:
    """An ``ExecStart=`` value as a command line: special prefixes (``-@:+!``) and the
    systemd-cat words apps run behind (:func:`~omc.compiler.contract.units.stream_argv`)
    dropped."""
    return without_stream(line.lstrip("-@:+!"))


def streamed(res: ResourceModel) -> bool:
    """Whether the unit's commands print to journald streams the action reads back."""
    return any(line.lstrip("-@:+!").startswith(STREAM_PREFIX)
               for line in (*res.exec_start, *res.exec_stop))  # fmt: skip


def output_level(priority: int) -> Level:
    """A stream line's level: stdout at info, stderr at warning (systemd-cat's priorities
    in our units), anything worse at error."""
    if priority <= 3:
        return Level.ERROR
    return Level.WARNING if priority <= 5 else Level.INFO


def command_of(step: Step, res: ResourceModel) -> str:
    """The command a step's job ran, as ``run:`` shows it (journald's ``CMD``)."""
    shown = _commands(res, step.op in (Op.START, Op.RESTART))
    return shown[0] if shown else ""


def command(res: ResourceModel, text: str, *, om: str) -> str:
    """The command as OpenSVC logs it: ``<om> exec --pg <cgroup> -- <cmd>``."""
    cgroups = slice_cgroups(res.slice)
    if not cgroups or " exec --pg " in text:
        return text
    return f"{om} exec --pg {cgroups[-1]} -- {text}"


def done(step: Step, res: ResourceModel, *, om: str, pg_seen: set[str]) -> list[str]:
    """The lines of a step whose job is done; ``pg_seen`` (the cgroups already announced
    in this action) is updated."""
    if step.op is Op.DRIVER_STOP:
        return []  # the driver ran in om and logged its own lines
    lines = []
    starting = step.op in (Op.START, Op.RESTART)
    if starting and res.group in PG_GROUPS:
        for cgroup in slice_cgroups(res.slice):
            if cgroup not in pg_seen:
                pg_seen.add(cgroup)
                lines.append(f"applied pg {cgroup}")
    if res.unit.endswith(".mount"):
        verb = "mount" if starting else "umount"
        lines.append(f"{verb} {res.what} {res.where}".rstrip())
    elif res.group in PG_GROUPS:
        lines += [f"run: {command(res, text, om=om)}" for text in _commands(res, starting)]
    return lines


def outside_unit(step: Step) -> Line:
    """Why a stop runs the driver itself: the resource is up but its unit is not (the
    driver's own lines follow)."""
    return Line(Level.INFO, "up outside its unit: driver stop")


def _commands(res: ResourceModel, starting: bool) -> list[str]:
    """The commands a native unit ran for this step, shell-quoted. An app's come from its
    config (the argv the compiler wrote into ``ExecStart=``/``ExecStop=``); the unit's own
    line (the ``/bin/true`` of an app without ``start``) is shown when the config has
    none. Driver units log for themselves."""
    lines = res.exec_start if starting else res.exec_stop
    if not lines or any(" driver " in line for line in lines):
        return []
    if res.group == "app":
        try:
            argv = app_command(res.view("", ""), "start" if starting else "stop")
        except DriverError:
            argv = ()
        if argv:
            return [shlex.join(argv)]
    return [exec_display(line) for line in lines]


def not_acted(step: Step) -> str:
    """A job cancelled because one it depends on failed: the failure is told there."""
    return f"not {step.op}ed: a dependency failed"


def failed(step: Step, res: ResourceModel, detail: str) -> Line:
    """A failed step: an error, or a warning for an optional resource (which does not
    fail the action)."""
    message = f"{step.op} failed: {detail}"
    if res.optional:
        return Line(Level.WARNING, f"{message} (optional, ignored)")
    return Line(Level.ERROR, message)
