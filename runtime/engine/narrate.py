"""What an action says about each resource, as OpenSVC says it (pure).

The seed's log lines (actions-seed.txt): ``applied pg <cgroup>`` for each slice level
of an app or container (once per action), ``run: <om> exec --pg <cgroup> -- <cmd>``
for the commands a native unit runs (the unit runs them in that slice via
``Slice=``, which is what ``om exec --pg`` does: the line shows the equivalent),
``mount <what> <where>`` for mounts, ``already up``/``already down`` for no-ops.
Driver-backed units log for themselves (their records come through the relay); what
apps print is read back from journald after their job (stdout at info, stderr at
warning: :func:`output_level`).
"""

from __future__ import annotations

from dataclasses import dataclass

from omc.compiler.contract.names import slice_cgroups
from omc.compiler.contract.units import STREAM_PREFIX, without_stream
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
    lines = res.exec_start if step.op in (Op.START, Op.RESTART) else res.exec_stop
    return exec_display(lines[0]) if lines else ""


def command(res: ResourceModel, text: str, *, om: str) -> str:
    """The command as OpenSVC logs it: ``<om> exec --pg <cgroup> -- <cmd>``."""
    cgroups = slice_cgroups(res.slice)
    if not cgroups or " exec --pg " in text:
        return text
    return f"{om} exec --pg {cgroups[-1]} -- {text}"


def done(step: Step, res: ResourceModel, *, om: str, pg_seen: set[str]) -> list[str]:
    """The lines of a step whose job is done; ``pg_seen`` (the cgroups already announced
    in this action) is updated."""
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
        lines += [
            f"run: {command(res, exec_display(exec_line), om=om)}"
            for exec_line in (res.exec_start if starting else res.exec_stop)
            if " driver " not in exec_line  # driver units log for themselves
        ]
    return lines


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
