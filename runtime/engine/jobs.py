"""Running a plan's systemd jobs: enqueue, follow, report each step as it finishes.

systemd's job engine does the ordering and the parallelism from the unit graph
(``After=``/``Requires=`` written by the compiler): all jobs of a start are
enqueued at once (a whole-object action as one transaction, through the object's
target), then waited for in plan order, so the caller can narrate the resources
in start order while independent units run concurrently. What a finished job
means for the action (log lines, triggers, failure) is not decided here: this
module only reports :class:`Finished` events (``apply`` and ``narrate`` do the rest).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omc.runtime.adapters.systemd import SystemdError  # cheap: pydbus is imported on connect
from omc.runtime.engine.plan import Op, Plan, Step

EXEC_BOUND = 2.0  # seconds: systemd-cat's start-up, even on a loaded machine

if TYPE_CHECKING:
    from omc.runtime.adapters.systemd import Systemd

METHODS = {Op.START: "StartUnit", Op.STOP: "StopUnit", Op.RESTART: "RestartUnit"}
# The commands (a service's properties) each job runs.
EXEC_OF = {
    Op.START: ("ExecStartPre", "ExecStart"),
    Op.STOP: ("ExecStop", "ExecStopPost"),
    Op.RESTART: ("ExecStop", "ExecStopPost", "ExecStartPre", "ExecStart"),
}
REFUSED = "refused"  # the job was never enqueued (systemd refused the transaction)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """One step's job is over: systemd's job result (``done``, ``failed``, ``timeout``,
    ``canceled``, ``dependency``, ``skipped``), or :data:`REFUSED` with the reason."""

    step: Step
    result: str
    refusal: str = ""

    @property
    def done(self) -> bool:
        return self.result == "done"


@dataclass(slots=True)
class Jobs:
    """The jobs of one object's action on one systemd connection."""

    sd: Systemd
    target: str  # the object's target unit
    warn: Callable[[str], None]  # a refused target job is reported, not fatal
    timeout: float | None = None

    def wait(self, job: str) -> str:
        return self.sd.wait([job], self.timeout)[job]

    def batch(self, plan: Plan) -> Iterator[Finished]:
        """Enqueue every job of ``plan`` at once (one transaction through the target when
        the whole object moves), then report them in plan order as they finish."""
        self._clear_start_limits(plan)
        whole = _one_transaction(plan)
        target_job: str | None = None
        jobs: dict[str, str] = {}
        if whole:
            target_job, jobs = self._target_transaction(plan)
        queued: list[tuple[Step, str | None, str]] = []
        for step in plan.jobs:
            if step.unit in jobs:
                queued.append((step, jobs[step.unit], ""))
                continue
            try:
                job = self.sd.enqueue(METHODS[step.op], step.unit, plan.job_mode)
                queued.append((step, job, ""))
            except SystemdError as exc:  # the transaction was refused
                queued.append((step, None, str(exc)))
        if not whole and plan.target_op is not Op.SKIP:
            # After the steps: its job then also waits for what they propagate (a
            # restart of ip#0 restarts the units that require it).
            target_job = self._enqueue_target(plan.target_op)
        for step, queued_job, refusal in queued:
            yield self._finished(step, queued_job, refusal)
        if target_job is not None:
            self.wait(target_job)

    def _clear_start_limits(self, plan: Plan) -> None:
        """Before a start of the whole object (a user's, the daemon's orchestration),
        reset the failed state and the start rate counter of the units it starts
        (``systemctl reset-failed``). ``restart = N`` is ``StartLimitBurst=N+1`` within 10
        minutes, which bounds systemd's own restarts but counts every start: an app that
        crashed that often refused the object's next start for the rest of the window
        ("Start request repeated too quickly"; the chaos run saw a flex object stay below
        its target, its start failing on the only node left). A selection (``--rid``: the
        daemon's resource restarts) keeps the count: those restarts are what ``restart``
        bounds, before the monitor action."""
        if plan.selected:
            return
        for step in plan.jobs:
            if step.op is not Op.STOP:
                with contextlib.suppress(SystemdError):
                    self.sd.reset_failed(step.unit)

    def one_by_one(self, steps: Iterable[Step], mode: str) -> Iterator[Finished]:
        """Each step's job enqueued after the previous one finished (a stop that must
        not propagate through ``Requires=``, a rollback)."""
        for step in steps:
            try:
                job, refusal = self.sd.enqueue(METHODS[step.op], step.unit, mode), ""
            except SystemdError as exc:
                job, refusal = None, str(exc)
            yield self._finished(step, job, refusal)

    def stop_target(self) -> None:
        self.wait(self.sd.enqueue("StopUnit", self.target, "ignore-dependencies"))

    def _finished(self, step: Step, job: str | None, refusal: str) -> Finished:
        if job is None:
            return Finished(step=step, result=REFUSED, refusal=refusal)
        return Finished(step=step, result=self.wait(job))

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

    def _enqueue_target(self, op: Op) -> str | None:
        try:
            return self.sd.enqueue(METHODS[op], self.target, "replace")
        except SystemdError as exc:
            self.warn(f"{self.target}: {exc}")
            return None

    def explain(self, finished: Finished) -> str:
        """Why a step failed, for its error line (reads the unit's full state: slow, only
        for failures)."""
        if finished.refusal:
            return finished.refusal
        state = self.sd.state(finished.step.unit)
        result = f" ({state.result})" if state.result and state.result != "success" else ""
        return (
            f"job {finished.result}, {finished.step.unit} is "
            f"{state.active_state}/{state.sub_state}{result}"
        )

    def active_states(self, units: Iterable[str]) -> dict[str, str]:
        return self.sd.active_states(list(units))

    def exec_pids(self, unit: str, op: Op) -> list[int]:
        """The pids of the last runs of the unit's commands that ``op`` runs (journald's
        lines of a process that exited early name its pid, not always its unit:
        :func:`.journal.stream_matches`); none when systemd does not say (the unit's own
        lines are read all the same)."""
        try:
            return self.sd.exec_pids(unit, EXEC_OF.get(op, ()))
        except SystemdError:
            return []

    def until_exec(self, units: Iterable[str], *, bound: float = EXEC_BOUND) -> None:
        """Wait (at most ``bound`` seconds) until each unit's main process is no longer
        ``systemd-cat``: a ``Type=exec`` job completes once systemd-cat is exec'd, and
        only then does it connect to journald and exec the app's command, so a command
        that exits at once would otherwise still look active to the start's check. One
        ``Get`` of the main pid per unit: a forking app's is 0 once its job is done, and
        reading each unit's whole state cost ~8 ms a unit (160 ms for 20 apps)."""
        import time
        from pathlib import Path

        from omc.compiler.contract.units import SYSTEMD_CAT

        pids = [pid for pid in (self.sd.main_pid(u) for u in units) if pid > 0]
        deadline = time.monotonic() + bound
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    if str(Path(f"/proc/{pid}/exe").readlink()) != SYSTEMD_CAT:
                        break
                except OSError:
                    break  # gone already
                time.sleep(0.002)


def _one_transaction(plan: Plan) -> bool:
    """A whole-object start or stop where every step does what the target does."""
    op = plan.target_op
    if op is Op.SKIP or plan.selected or plan.job_mode != "replace":
        return False
    return all(s.op is op for s in plan.jobs)
