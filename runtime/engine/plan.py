"""The pure planner: model + observed state + action + selection → ordered steps.

Nothing here touches the system (pyinfra, Pacemaker's scheduler): the whole
plan exists before anything runs, ``--dry-run`` prints it, and golden tables
test it ("state in, steps out"). Every no-op step says why.

Semantics (opensvc.md §4): start walks the resources in start order (ip,
volume, disk, fs, share, container, app), stop in reverse; disabled resources
are skipped; ``stop`` leaves standby resources up unless ``--force``;
``shutdown`` stops them; ``startstandby`` starts only them; sync and task
resources are not started by ``start`` (tasks are ``run``). A resource whose
unit is active but whose probe says it is down has drifted and is restarted.
Stop acts on what the probe sees: a resource up while its unit is inactive (started
some other way: by hand, by ``om <path> driver start``) gets a ``driver stop``, its
driver's own stop run by ``om`` (a ``StopUnit`` of an inactive unit does nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from omc.compiler.contract.units import requirements_from_json
from omc.runtime.drivers.base import Status
from omc.runtime.objects.model import ObjectModel, ResourceModel


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What observation found for one resource before an action (the planner's input)."""

    unit_active: bool
    status: Status


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    STARTSTANDBY = "startstandby"
    SHUTDOWN = "shutdown"
    RUN = "run"

    @property
    def starts(self) -> bool:
        return self in (Action.START, Action.STARTSTANDBY, Action.RUN)


class Op(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    DRIVER_STOP = "driver stop"  # up outside its (inactive) unit: the driver's stop, by om
    SKIP = "skip"

    @property
    def stops(self) -> bool:
        return self in (Op.STOP, Op.DRIVER_STOP)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    rid: str
    unit: str
    op: Op
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What an action will do, in order, and the checks around it."""

    action: Action
    steps: tuple[Step, ...]
    selected: bool  # a --rid/--tag/--subset selection was given
    target_op: Op = Op.SKIP  # the object's target unit
    job_mode: str = "replace"
    freeze: bool = False
    end_check: bool = False
    rollback: bool = False
    errors: tuple[str, ...] = ()

    @property
    def jobs(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.op is not Op.SKIP)

    def render(self) -> str:
        """The ``--dry-run`` text: one line per step, no-ops with their reason."""
        lines = [f"plan {self.action}: job mode {self.job_mode}"]
        for step in self.steps:
            why = f"  ({step.reason})" if step.reason else ""
            lines.append(f"  {step.rid:<16} {step.op:<11} {step.unit}{why}")
        if self.target_op is not Op.SKIP:
            lines.append(f"  {'target':<16} {self.target_op:<11}")
        notes = [n for n, on in (("freeze", self.freeze), ("end state check", self.end_check),
                                 ("rollback on error", self.rollback)) if on]  # fmt: skip
        if notes:
            lines.append("  then: " + ", ".join(notes))
        lines.extend(f"  error: {e}" for e in self.errors)
        return "\n".join(line.rstrip() for line in lines)


UP_STATES = frozenset({Status.UP, Status.STDBY_UP})
DOWN_STATES = frozenset({Status.DOWN, Status.STDBY_DOWN, Status.NA, Status.UNDEF})
_NOT_STARTED_BY_START = frozenset({"sync", "task"})


def _in_scope(res: ResourceModel, action: Action, selection: frozenset[str] | None) -> bool:
    if selection is not None and res.rid not in selection:
        return False
    if action is Action.RUN:
        return res.group == "task"
    if res.group in _NOT_STARTED_BY_START:
        return False
    return action is not Action.STARTSTANDBY or res.standby


def _start_step(res: ResourceModel, seen: Observed) -> Step:
    if res.disabled:
        return Step(rid=res.rid, unit=res.unit, op=Op.SKIP, reason="disabled")
    if seen.unit_active and seen.status in (Status.DOWN, Status.STDBY_DOWN):
        return Step(rid=res.rid, unit=res.unit, op=Op.RESTART, reason=f"unit active, {seen.status}")
    if seen.unit_active:
        return Step(rid=res.rid, unit=res.unit, op=Op.SKIP, reason="already up")
    return Step(rid=res.rid, unit=res.unit, op=Op.START)


def _stop_step(res: ResourceModel, seen: Observed, action: Action, force: bool) -> Step:
    if res.disabled:
        return Step(rid=res.rid, unit=res.unit, op=Op.SKIP, reason="disabled")
    if res.standby and action is Action.STOP and not force:
        return Step(rid=res.rid, unit=res.unit, op=Op.SKIP, reason="standby")
    if not seen.unit_active and seen.status in DOWN_STATES:
        return Step(rid=res.rid, unit=res.unit, op=Op.SKIP, reason="already down")
    if not seen.unit_active:
        return Step(rid=res.rid, unit=res.unit, op=Op.DRIVER_STOP,
                    reason=f"unit inactive, {seen.status}")  # fmt: skip
    return Step(rid=res.rid, unit=res.unit, op=Op.STOP)


def _requirement_errors(
    model: ObjectModel, steps: Iterable[Step], observed: Mapping[str, Observed], key: str
) -> tuple[str, ...]:
    """Requirements on resources this plan does not act on must already be met."""
    acting = {s.rid for s in steps if s.op is not Op.SKIP}
    errors = []
    for rid in sorted(acting):
        for requirement in requirements_from_json(model.resource(rid).config.get(key)):
            req, states = requirement.rid, requirement.states
            if req in acting:
                continue
            seen = observed.get(req)
            status = str(seen.status) if seen else "undef"
            if status not in states:
                wanted = ",".join(sorted(states))
                errors.append(f"{rid}: {key} {req}({wanted}) not met: {req} is {status}")
    return tuple(errors)


def _job_mode(action: Action, steps: tuple[Step, ...], *, selected: bool) -> str:
    """``replace`` for whole-instance actions. A selection starts with
    ``ignore-requirements`` (deps not pulled in); a stop that must leave units up
    (a selection, or standby resources) stops unit by unit with
    ``ignore-dependencies``, so ``Requires=`` cannot propagate the stop; so does a
    stop with driver stops, which must run in their place in the stop order."""
    if action.starts:
        return "ignore-requirements" if selected else "replace"
    keep = any(s.reason == "standby" or s.op is Op.DRIVER_STOP for s in steps)
    return "ignore-dependencies" if selected or keep else "replace"


def plan(
    model: ObjectModel,
    observed: Mapping[str, Observed],
    action: Action,
    *,
    selection: frozenset[str] | None = None,
    force: bool = False,
    disable_rollback: bool = False,
    by_daemon: bool = False,
) -> Plan:
    """The steps of ``action`` on ``model`` given what was observed. A user's whole-instance
    stop of an orchestrated object freezes it (so the daemon does not start it again);
    the daemon's own stops (``by_daemon``) never freeze (opensvc.md §4.2)."""
    default = Observed(unit_active=False, status=Status.UNDEF)
    scoped = [r for r in model.resources if _in_scope(r, action, selection)]
    selected = selection is not None
    if action.starts:
        steps = tuple(_start_step(r, observed.get(r.rid, default)) for r in scoped)
        if action is Action.RUN:
            steps = tuple(
                Step(rid=s.rid, unit=s.unit, op=Op.START) if s.reason == "already up" else s
                for s in steps
            )
        key = "start_requires"
    else:
        steps = tuple(
            _stop_step(r, observed.get(r.rid, default), action, force) for r in reversed(scoped)
        )
        key = "stop_requires"
    whole = not selected and action in (Action.START, Action.STOP, Action.SHUTDOWN)
    return Plan(
        action=action,
        steps=steps,
        selected=selected,
        target_op=(Op.START if action is Action.START else Op.STOP) if whole else Op.SKIP,
        job_mode=_job_mode(action, steps, selected=selected),
        freeze=(
            action is Action.STOP
            and not selected
            and not by_daemon
            and model.orchestrate in ("ha", "start")
        ),
        end_check=whole,
        rollback=action.starts and action is not Action.RUN and model.rollback
        and not disable_rollback,
        errors=_requirement_errors(model, steps, observed, key),
    )  # fmt: skip
