"""Applying a plan: the abort phase, triggers, the jobs, what each step says, rollback.

The jobs themselves run in :mod:`.jobs` (systemd's job engine orders and
parallelises them); the lines each finished step logs come from :mod:`.narrate`.
This module decides what a finished step means for the action: post triggers,
failures (optional ones only warn), and after a start the check that the units
are still active (a job ``done`` is not "up": Pacemaker's rule, :meth:`Applier.verify`).

Rollback undoes exactly what this action started, in reverse order, one unit
at a time with job mode ``ignore-dependencies`` (so stopping ``ip#0`` does
not drag down a resource that was up before the action).

A ``driver stop`` step (a resource up while its unit is inactive) runs the driver's
stop here, in ``om``, in its place in the stop order: there is no unit job to
enqueue (``StopUnit`` of an inactive unit is a no-op), and starting the unit to stop
it would run an app's start command a second time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from omc.runtime.engine import narrate
from omc.runtime.engine.jobs import Finished, Jobs
from omc.runtime.engine.observe import ACTIVE
from omc.runtime.engine.plan import Op, Plan, Step
from omc.runtime.engine.triggers import TriggerError, triggers
from omc.runtime.engine.triggers import run as run_trigger
from omc.runtime.log import ActionLog
from omc.runtime.objects.model import ObjectModel, ResourceModel

SWITCH = 0.0005  # seconds: the switch interval while abort checks run (AbortChecks)
FRESH = 0.5  # seconds: a check begun before the object lock is kept when this recent
RAN = frozenset({"failed", "timeout"})  # job results after which the unit's command ran


class AbortChecks:
    """The abort phase's checks (§4.2) of one start, each in a thread of its own.

    An ``om`` start begins them on the units it reads before taking the object lock, for
    the resources it may start, so that their waits (an ip's ARP probe, 100 ms without an
    answer) overlap taking the lock, the config check, observing the instance and
    planning, which start nothing; once locked, :meth:`rebase` keeps only the checks of
    resources the locked read finds unchanged, begun less than :data:`FRESH` ago (a lock
    waited for means asking again); :meth:`wait` asks the rest and joins them all,
    before the first job.

    While checks run, the interpreter's switch interval is :data:`SWITCH` instead of
    5 ms: a check makes a dozen system calls before its probe's window opens (ioctls,
    the ARP socket), each one gives the GIL to the main thread observing and planning,
    and each took up to 5 ms to get it back, ~10 ms in all on a lab node; the window
    then opened after most of the work it was meant to overlap."""

    def __init__(self, model: ObjectModel, rids: Iterable[str] = ()) -> None:
        self.model = model
        self.begun = time.monotonic()
        self.answers: dict[threading.Thread, str | None] = {}  # by the thread that asked
        self.threads: dict[str, threading.Thread] = {}
        self._running = 0
        self._interval = 0.0  # the switch interval to restore when the last check ends
        self._lock = threading.Lock()
        self.start(rids)

    def start(self, rids: Iterable[str]) -> None:
        for rid in rids:
            if rid not in self.threads:
                with self._lock:
                    if not self._running:
                        self._interval = sys.getswitchinterval()
                        sys.setswitchinterval(min(SWITCH, self._interval))
                    self._running += 1
                thread = threading.Thread(target=self._ask, args=(rid, self.model), daemon=True)
                self.threads[rid] = thread
                thread.start()

    def _ask(self, rid: str, model: ObjectModel) -> None:
        from omc.runtime import drivers

        asker = threading.current_thread()
        try:
            view = model.resource(rid).view(model.display, model.id)
            self.answers[asker] = drivers.veto(view)
        except LookupError:
            self.answers[asker] = None
        except Exception as exc:  # a broken check vetoes, with its reason
            self.answers[asker] = f"abort check failed: {exc}"
        finally:
            with self._lock:
                self._running -= 1
                if not self._running:
                    sys.setswitchinterval(self._interval)

    def rebase(self, model: ObjectModel) -> None:
        """Go on with ``model``, read under the object lock: a check begun on another read
        is kept only when its resource is the same in both and it is fresh; the others are
        forgotten (their threads end unheard) and asked again on ``model`` when wanted."""
        fresh = time.monotonic() - self.begun <= FRESH
        for rid in list(self.threads):
            try:
                same = fresh and model.resource(rid) == self.model.resource(rid)
            except LookupError:
                same = False
            if not same:
                del self.threads[rid]
        self.model = model

    def wait(self, rids: Iterable[str]) -> dict[str, str | None]:
        """The answers for ``rids`` (started now if they were not), once all are in."""
        wanted = list(rids)
        self.start(wanted)
        for rid in wanted:
            self.threads[rid].join()
        return {rid: self.answers.get(self.threads[rid]) for rid in wanted}


@dataclass(slots=True)
class Applier:
    """Applies one plan's steps to one object and logs what happened."""

    jobs: Jobs
    model: ObjectModel
    log: ActionLog
    drain: Callable[[], None] = lambda: None
    om: str = "om"
    pg_seen: set[str] = field(default_factory=set)
    changed: list[Step] = field(default_factory=list)
    # ActiveState of every unit read by verify(), for the end-state check.
    final_states: dict[str, str] | None = field(default=None, init=False, repr=False)
    # App output read back from journald: from the action's start, each line once.
    since_usec: int = field(default_factory=lambda: time.time_ns() // 1000)
    read_upto: dict[str, int] = field(default_factory=dict)
    checks: AbortChecks | None = None  # the abort checks, when started early

    def run(self, plan: Plan) -> list[str]:
        """Apply the plan; returns the error lines of failed non-optional steps."""
        for step in plan.steps:
            if step.op is Op.SKIP:
                self._say(step, narrate.skipped(step))
        if plan.action.value == "start" and (vetoes := self._vetoes(plan)):
            for veto in vetoes:
                self.log.error(f"abort start: {veto}")
            return vetoes
        if failed := self._guarded(plan.jobs, "pre"):
            self.log.error(f"{plan.action} aborted: {failed}")
            return [failed]
        if plan.action.starts or plan.job_mode != "ignore-dependencies":
            return self._conclude(self.jobs.batch(plan))
        # Stop exactly these units, in order: a stop must not propagate through
        # Requires= to the standby units (or unselected ones) that stay up.
        errors = self._conclude(self._one_by_one(plan.jobs))
        if plan.target_op is not Op.SKIP:
            self.jobs.stop_target()
        return errors

    def _one_by_one(self, steps: Iterable[Step]) -> Iterator[Finished]:
        """Each step in turn: a unit job (``ignore-dependencies``), or a driver stop."""
        for step in steps:
            if step.op is Op.DRIVER_STOP:
                yield self._driver_stop(step)
            else:
                yield from self.jobs.one_by_one((step,), "ignore-dependencies")

    def _driver_stop(self, step: Step) -> Finished:
        """Run the resource's driver stop in this process, logging as the driver does
        when its unit runs it (``noaction`` skips it, as there)."""
        from omc.runtime import drivers

        res = self.model.resource(step.rid)
        self._say(step, narrate.outside_unit(step))
        log = self.log.bind(rid=res.rid, subset=res.subset)
        if "noaction" in res.tags:
            log.info("skip stop: tagged noaction")
            return Finished(step=step, result="done")
        try:
            drivers.get(res.driver).stop(res.view(self.model.display, self.model.id), log)
        except (drivers.DriverError, drivers.UnknownDriverError, OSError) as exc:
            return Finished(step=step, result="failed", refusal=str(exc))
        return Finished(step=step, result="done")

    def _say(self, step: Step, line: narrate.Line) -> None:
        res = self.model.resource(step.rid)
        self.log.log(line.level, line.message, rid=res.rid, subset=res.subset)

    def _conclude(self, finished: Iterable[Finished]) -> list[str]:
        return [error for f in finished if (error := self._finish(f))]

    def _finish(self, finished: Finished) -> str:
        """Log one finished step and run its post triggers; return an error line or ''.

        The job's result decides the step; the unit states are re-read once, after
        every job (:meth:`verify`): a read per step would be one more D-Bus call
        that PID 1 serves while it runs the next units.
        """
        step = finished.step
        res = self.model.resource(step.rid)
        self.drain()  # the driver's own records first: its process has exited
        log = self.log.bind(rid=res.rid, subset=res.subset)
        if finished.done:
            for text in narrate.done(step, res, om=self.om, pg_seen=self.pg_seen):
                log.info(text)
            self._outputs(step, res, log)
            self.changed.append(step)
            if post_failure := self._guarded((step,), "post"):
                self.log.error(post_failure, rid=res.rid)
            return post_failure
        if finished.result == "dependency":
            self.log.info(narrate.not_acted(step), rid=res.rid)
            return ""
        if finished.result in RAN:  # what ran, and what it printed, before why it failed
            for text in narrate.done(step, res, om=self.om, pg_seen=self.pg_seen):
                log.info(text)
            self._outputs(step, res, log)
        line = narrate.failed(step, res, self.jobs.explain(finished))
        self._say(step, line)
        return "" if res.optional else f"{res.rid}: {line.message}"

    def _outputs(self, step: Step, res: ResourceModel, log: ActionLog) -> None:
        """Log what an app's command printed during this action (journald has it: the
        unit runs it behind systemd-cat), stdout at info, stderr at warning, with
        ``CMD`` and ``CMD_PID``; each line once, however often the unit is read."""
        if not narrate.streamed(res):
            return
        from omc.runtime.adapters import journal

        since = max(self.since_usec, self.read_upto.get(res.unit, 0) + 1)
        try:
            journal.synchronize()
        except TimeoutError:  # journald slow to answer (a loaded machine): what it has
            log.debug("journald did not confirm it took everything in: reading what it has")
        except (OSError, ValueError) as exc:  # no journald: nothing to read back
            log.debug(f"output of {res.unit} not read: {exc}")
            return
        try:
            pids = self.jobs.exec_pids(res.unit, step.op)
            lines, more = journal.stream_lines(res.unit, since, pids=pids)
        except (OSError, ValueError) as exc:
            log.debug(f"output of {res.unit} not read: {exc}")
            return
        cmd = narrate.command_of(step, res)
        for line in lines:
            log.log(narrate.output_level(line.priority), line.message, cmd=cmd,
                    cmd_pid=line.pid or None)  # fmt: skip
            self.read_upto[res.unit] = line.usec
        if more:
            log.info(f"{more} more lines: journalctl -u {res.unit}")

    def _vetoes(self, plan: Plan) -> list[str]:
        """The abort phase (§4.2): every resource about to start is asked whether it
        vetoes, all at once (an ip's check waits for ARP answers: N addresses, one wait),
        and no job starts before every answer is in. Checks started earlier, while the
        instance was observed (:class:`AbortChecks`), are not asked again."""
        resources = [self.model.resource(step.rid) for step in plan.jobs]
        checks = self.checks or AbortChecks(self.model)
        reasons = checks.wait(r.rid for r in resources)
        return [f"{r.rid}: {reasons[r.rid]}" for r in resources if reasons.get(r.rid)]

    def _guarded(self, steps: Iterable[Step], when: str) -> str:
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

    def verify(self) -> list[str]:
        """After a start: units that started but are no longer active (a Type=simple app
        whose process exited right after its job completed) are failures too."""
        errors = []
        started = [s for s in self.changed if s.op in (Op.START, Op.RESTART)]
        streamed = [s.unit for s in started if narrate.streamed(self.model.resource(s.rid))]
        if streamed:
            self.jobs.until_exec(streamed)
        # Every unit of the object (started ones included) in one call: the end-state
        # check reuses them.
        states = self.jobs.active_states(r.unit for r in self.model.resources)
        self.final_states = states
        for step in started:
            res = self.model.resource(step.rid)
            if states[step.unit] not in ACTIVE and not res.optional:
                self._outputs(step, res, self.log.bind(rid=res.rid, subset=res.subset))
                message = f"{step.op} failed: {step.unit} is {states[step.unit]}"
                self.log.error(message, rid=res.rid)
                errors.append(f"{res.rid}: {message}")
        return errors

    def rollback(self) -> list[str]:
        """Stop what this action started, in reverse order; returns error lines."""
        started = [s for s in self.changed if s.op in (Op.START, Op.RESTART)]
        self.changed = []
        steps = [Step(rid=s.rid, unit=s.unit, op=Op.STOP) for s in reversed(started)]
        return self._conclude(self.jobs.one_by_one(steps, "ignore-dependencies"))
