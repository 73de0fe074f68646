"""Executing a plan over systemd: enqueue the jobs, follow them, log per resource, roll back.

systemd's job engine does the ordering and the parallelism from the unit
graph (``After=``/``Requires=`` written by the compiler): all jobs of a start
are enqueued at once (a whole-object action as one transaction, through the
object's target), then waited for in plan order, so the console shows the
resources in start order while independent units run concurrently. A job
``done`` is not "up": the units' states are re-read, in one call after the
jobs, before a start is called a success (Pacemaker's rule, :meth:`Applier.verify`).

Rollback undoes exactly what this action started, in reverse order, one unit
at a time with job mode ``ignore-dependencies`` (so stopping ``ip#0`` does
not drag down a resource that was up before the action).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omc.runtime.log import ActionLog
from omc.runtime.model import ObjectModel, ResourceModel
from omc.runtime.observe import ACTIVE
from omc.runtime.plan import Op, Plan, Step
from omc.runtime.systemd import SystemdError  # cheap: pydbus is imported on connect
from omc.runtime.triggers import TriggerError, triggers
from omc.runtime.triggers import run as run_trigger

if TYPE_CHECKING:
    from omc.runtime.systemd import Systemd

_METHODS = {Op.START: "StartUnit", Op.STOP: "StopUnit", Op.RESTART: "RestartUnit"}
_PG_GROUPS = frozenset({"app", "container"})


class ApplyError(Exception):
    """A non-optional step failed; the message is the action's error line."""


def slice_cgroups(slice_unit: str) -> tuple[str, ...]:
    """Cgroup paths of a slice and its parents, outermost first, without the root slice.

    ``opensvc-svc.svc0-app.0.slice`` → ``/opensvc.slice/opensvc-svc.svc0.slice`` and
    ``/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice`` (as the
    seed's "applied pg" lines). Escaped dashes (``\\x2d``) never split a level.
    """
    if not slice_unit.endswith(".slice") or slice_unit == "-.slice":
        return ()
    parts = slice_unit.removesuffix(".slice").split("-")
    levels = ["-".join(parts[: i + 1]) + ".slice" for i in range(len(parts))]
    paths = ["/" + "/".join(levels[: i + 1]) for i in range(len(levels))]
    return tuple(paths[1:])


def exec_display(line: str) -> str:
    """An ``ExecStart=`` value as a command line: special prefixes (``-@:+!``) dropped."""
    return line.lstrip("-@:+!")


@dataclass(slots=True)
class Applier:
    """Runs one plan's jobs on one systemd connection and logs what happened."""

    sd: Systemd
    model: ObjectModel
    log: ActionLog
    drain: Callable[[], None] = lambda: None
    timeout: float | None = None
    om: str = "om"
    pg_logged: set[str] = field(default_factory=set)
    changed: list[Step] = field(default_factory=list)
    # ActiveState of every unit read by verify(), for the end-state check.
    final_states: dict[str, str] | None = field(default=None, init=False, repr=False)

    def _wait(self, job: str) -> str:
        return self.sd._wait_jobs([job], self.timeout)[job]

    def run(self, plan: Plan) -> list[str]:
        """Run the plan's jobs; returns the error lines of failed non-optional steps."""
        for step in plan.steps:
            if step.op is Op.SKIP:
                self._log_skip(step)
        if plan.action.value == "start" and (vetoes := self._vetoes(plan)):
            for veto in vetoes:
                self.log.error(f"abort start: {veto}")
            return vetoes
        if failed := self._guarded(plan.jobs, "pre"):
            self.log.error(f"{plan.action} aborted: {failed}")
            return [failed]
        if plan.action.starts or plan.job_mode != "ignore-dependencies":
            return self._run_batch(plan)
        # Stop exactly these units, in order: a stop must not propagate through
        # Requires= to the standby units (or unselected ones) that stay up.
        errors = self._run_sequential(plan.jobs, "ignore-dependencies")
        if plan.target_op is not Op.SKIP:
            self._wait(self.sd.enqueue("StopUnit", self.model.target, "ignore-dependencies"))
        return errors

    def _log_skip(self, step: Step) -> None:
        res = self.model.resource(step.rid)
        if step.reason == "already up":
            self.log.info("already up", rid=res.rid, subset=res.subset)
        elif step.reason == "already down":
            self.log.info("already down", rid=res.rid, subset=res.subset)
        else:
            self.log.debug(f"skip: {step.reason}", rid=res.rid)

    def _run_batch(self, plan: Plan) -> list[str]:
        whole = self._one_transaction(plan)
        target_job, jobs = self._target_transaction(plan) if whole else (None, {})
        queued: list[tuple[Step, str | None, str]] = []
        for step in plan.jobs:
            if step.unit in jobs:
                queued.append((step, jobs[step.unit], ""))
                continue
            try:
                job = self.sd.enqueue(_METHODS[step.op], step.unit, plan.job_mode)
                queued.append((step, job, ""))
            except SystemdError as exc:  # the transaction was refused
                queued.append((step, None, str(exc)))
        if not whole and plan.target_op is not Op.SKIP:
            # After the steps: its job then also waits for what they propagate (a
            # restart of ip#0 restarts the units that require it).
            target_job = self._enqueue_target(plan.target_op)
        errors = []
        for queued_step, queued_job, err in queued:
            if error := self._finish(queued_step, queued_job, err):
                errors.append(error)
        if target_job is not None:
            self._wait(target_job)
        return errors

    def _target_transaction(self, plan: Plan) -> tuple[str | None, dict[str, str]]:
        """For a whole-object start or stop: enqueue the object's target job and find
        the jobs its transaction gave the steps' units, as ``systemctl start|stop
        <target>`` does: one transaction instead of one per unit, which PID 1 also
        spends time on while the units run. The target pulls in, or stops through
        ``PartOf=``, exactly the units such a plan acts on; a step the transaction
        gave no job (drift: a unit already in the wanted state) is enqueued on its
        own after."""
        self.sd.forget(s.unit for s in plan.jobs)
        job = self._enqueue_target(plan.target_op)
        return job, (self.sd.jobs_of(s.unit for s in plan.jobs) if job else {})

    @staticmethod
    def _one_transaction(plan: Plan) -> bool:
        """A whole-object start or stop where every step does what the target does."""
        op = plan.target_op
        if op is Op.SKIP or plan.selected or plan.job_mode != "replace":
            return False
        return all(s.op is op for s in plan.jobs)

    def _enqueue_target(self, op: Op) -> str | None:
        try:
            return self.sd.enqueue(_METHODS[op], self.model.target, "replace")
        except SystemdError as exc:  # a refused target job is reported, not fatal
            self.log.warning(f"{self.model.target}: {exc}")
            return None

    def _run_sequential(self, steps: tuple[Step, ...], mode: str) -> list[str]:
        errors = []
        for step in steps:
            try:
                job, err = self.sd.enqueue(_METHODS[step.op], step.unit, mode), ""
            except SystemdError as exc:
                job, err = None, str(exc)
            if error := self._finish(step, job, err):
                errors.append(error)
        return errors

    def _finish(self, step: Step, job: str | None, enqueue_error: str) -> str:
        """Wait for one job, log the resource's lines; return an error line or ''.

        The job's result decides the step; the unit states are re-read once, after
        every job (:meth:`verify`): a read per step would be one more D-Bus call
        that PID 1 serves while it runs the next units.
        """
        res = self.model.resource(step.rid)
        result = self._wait(job) if job is not None else "refused"
        self.drain()
        if result == "done":
            self._log_done(step, res)
            self.changed.append(step)
            if failed := self._guarded((step,), "post"):
                self.log.error(failed, rid=res.rid)
            return failed
        if result == "dependency":
            self.log.info(f"not {step.op}ed: a dependency failed", rid=res.rid)
            return ""
        state = self.sd.state(step.unit)  # the full state (slow), only to explain a failure
        detail = enqueue_error or (
            f"job {result}, {step.unit} is {state.active_state}/{state.sub_state}"
            + (f" ({state.result})" if state.result and state.result != "success" else "")
        )
        message = f"{step.op} failed: {detail}"
        if res.optional:
            self.log.warning(f"{message} (optional, ignored)", rid=res.rid)
            return ""
        self.log.error(message, rid=res.rid)
        return f"{res.rid}: {message}"

    def _log_done(self, step: Step, res: ResourceModel) -> None:
        log = self.log.bind(rid=res.rid, subset=res.subset)
        starting = step.op in (Op.START, Op.RESTART)
        if starting and res.group in _PG_GROUPS:
            for cgroup in slice_cgroups(res.slice):
                if cgroup not in self.pg_logged:
                    self.pg_logged.add(cgroup)
                    log.info(f"applied pg {cgroup}")
        lines = res.exec_start if starting else res.exec_stop
        if res.unit.endswith(".mount"):
            verb = "mount" if starting else "umount"
            log.info(f"{verb} {res.what} {res.where}".rstrip())
        elif res.group in ("app", "container"):
            for line in lines:
                if " driver " not in line:  # driver units log for themselves
                    log.info(f"run: {self._command(res, exec_display(line))}")

    def _vetoes(self, plan: Plan) -> list[str]:
        """The abort phase (§4.2): ask each resource about to start whether it vetoes."""
        from omc.runtime import drivers

        found = []
        for step in plan.jobs:
            res = self.model.resource(step.rid)
            try:
                reason = drivers.veto(res.view(self.model.display, self.model.id))
            except LookupError:
                reason = None
            if reason:
                found.append(f"{res.rid}: {reason}")
        return found

    def _guarded(self, steps: tuple[Step, ...], when: str) -> str:
        """Run the triggers of ``steps``; the failure of a blocking one as a message, or ''."""
        try:
            for step in steps:
                self._triggers(step, when)
        except TriggerError as exc:
            return str(exc)
        return ""

    def _triggers(self, step: Step, when: str) -> None:
        """Run the resource's pre/post triggers of this step; blocking failures raise."""
        res = self.model.resource(step.rid)
        action = "start" if step.op in (Op.START, Op.RESTART) else "stop"
        env = {"OPENSVC_RID": res.rid, "OPENSVC_PATH": self.model.display,
               "OPENSVC_ID": self.model.id, "OPENSVC_SID": self.log.sid,
               "OPENSVC_ACTION": action}  # fmt: skip
        for trigger in triggers(res.rid, res.config, when, action):
            run_trigger(trigger, self.log, env)

    def _command(self, res: ResourceModel, command: str) -> str:
        """The command as OpenSVC logs it: ``<om> exec --pg <cgroup> -- <cmd>``.

        The unit runs the command directly in its slice (``Slice=``), which is
        exactly what ``om exec --pg`` would do; the log shows the equivalent.
        """
        cgroups = slice_cgroups(res.slice)
        if not cgroups or " exec --pg " in command:
            return command
        return f"{self.om} exec --pg {cgroups[-1]} -- {command}"

    def verify(self) -> list[str]:
        """After a start: units that started but are no longer active (a Type=simple app
        whose process exited right after its job completed) are failures too."""
        errors = []
        started = [s for s in self.changed if s.op is not Op.STOP]
        # Every unit of the object (started ones included) in one call: the end-state
        # check reuses them.
        states = self.sd.active_states([r.unit for r in self.model.resources])
        self.final_states = states
        for step in started:
            res = self.model.resource(step.rid)
            if states[step.unit] not in ACTIVE and not res.optional:
                message = f"{step.op} failed: {step.unit} is {states[step.unit]}"
                self.log.error(message, rid=res.rid)
                errors.append(f"{res.rid}: {message}")
        return errors

    def rollback(self) -> list[str]:
        """Stop what this action started, in reverse order; returns error lines."""
        started = [s for s in self.changed if s.op in (Op.START, Op.RESTART)]
        self.changed = []
        steps = tuple(Step(rid=s.rid, unit=s.unit, op=Op.STOP) for s in reversed(started))
        return self._run_sequential(steps, "ignore-dependencies")
