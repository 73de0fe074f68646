"""Instance actions on one object: observe → plan (pure) → apply, bracketed by the action log.

``om <path> instance start|stop|restart|startstandby|shutdown|run|freeze|unfreeze``.
The flow (opensvc.md §4.2): install the units if the config changed, read the
model from them, observe, plan, log ``>>> do …``, apply, roll back on failure,
freeze after a whole-instance stop of an orchestrated object, check the end
state, log ``<<< done … in <duration>, instance status is now <avail>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omc.runtime import model as model_mod
from omc.runtime import store
from omc.runtime.drivers.base import Status
from omc.runtime.log import ActionLog, ActionRelay, Sink, action_log, go_duration
from omc.runtime.model import InstanceNotFoundError
from omc.runtime.observe import observe, observed_map
from omc.runtime.paths import ObjectPath, flat, frozen_flag, run_dir, stopped_flag
from omc.runtime.plan import Action, Op, Plan, plan
from omc.runtime.selection import Selector, select
from omc.runtime.status import aggregate

if TYPE_CHECKING:
    from omc.runtime.collector import CollectorSink
    from omc.runtime.systemd import Systemd

STOP_END_STATES = frozenset({Status.DOWN, Status.STDBY_UP, Status.STDBY_DOWN, Status.NA})
START_END_STATES = frozenset({Status.UP, Status.NA})


class ActionError(Exception):
    """The action failed (exit code 1); ``logged`` when the action log already said why."""

    def __init__(self, message: str, *, logged: bool = True) -> None:
        super().__init__(message)
        self.logged = logged


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The action flags of the object CLI."""

    selector: Selector = field(default_factory=Selector)
    force: bool = False
    disable_rollback: bool = False
    dry_run: bool = False
    argv: tuple[str, ...] = ()
    origin: str = "user"


@contextlib.contextmanager
def object_lock(path: ObjectPath) -> Iterator[None]:
    """The per-object action lock (§4.7): one state-changing action at a time."""
    lock = run_dir() / "lock" / f"{flat(path)}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def connect() -> Systemd:
    from omc.runtime.systemd import Systemd

    return Systemd.system()


def connect_soon() -> Callable[[], Systemd]:
    """Connect to the system bus in a thread when pydbus is already imported (a node
    agent's worker): the handshake with dbus-daemon runs in C without the GIL, so it
    overlaps the config check and the model load. The returned call waits for it."""
    import sys
    import threading

    if "pydbus" not in sys.modules:
        sd = connect()  # importing gi in a thread would only contend for the GIL
        return lambda: sd
    box: list[Systemd | Exception] = []

    def work() -> None:
        try:
            sd = connect()
            sd.subscribe()  # before any job: the first enqueue then waits for nothing
            box.append(sd)
        except Exception as exc:  # handed to the waiting caller
            box.append(exc)

    thread = threading.Thread(target=work, name="connect", daemon=True)
    thread.start()

    def wait() -> Systemd:
        thread.join()
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    return wait


def load_model(path: ObjectPath, reload: Callable[[], None] | None) -> model_mod.ObjectModel:
    """Install the units if the config changed (one daemon-reload), then read the model."""
    if reload is not None and store.config_file_exists(path):
        store.ensure_units(path, reload=reload)
    found = model_mod.load(path)
    if found is None:
        raise InstanceNotFoundError(f"{path}: no instance on this node (no units installed)")
    return found


def freeze(path: ObjectPath, log: ActionLog, *, on: bool) -> None:
    flag = frozen_flag(path)
    if on:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
        log.info("instance frozen")
    else:
        with contextlib.suppress(FileNotFoundError):
            flag.unlink()
        log.info("instance unfrozen")


def run(path: ObjectPath, verb: str, opts: Options, *, console: Sink | None) -> Plan | None:
    """Run one instance action; raises ActionError when it failed (after logging why)."""
    if verb in ("freeze", "unfreeze"):
        log = action_log(str(path), action=verb, console=console, origin=opts.origin)
        freeze(path, log, on=verb == "freeze")
        return None
    sd = connect_soon()
    try:
        with object_lock(path):
            return _run(sd, path, verb, opts, console)
    finally:
        sd().close()


def _plans(verb: str) -> tuple[Action, ...]:
    if verb == "restart":
        return (Action.STOP, Action.START)
    return (Action(verb),)


def _run(
    connected: Callable[[], Systemd], path: ObjectPath, verb: str, opts: Options,
    console: Sink | None,
) -> Plan:  # fmt: skip
    model = load_model(path, lambda: connected().daemon_reload())
    sd = connected()
    selection = select((r.selectable for r in model.resources), opts.selector)
    if model.disabled and verb != "shutdown":
        raise ActionError(f"{path}: object instance is disabled", logged=False)
    collector = _collector()
    extra = (collector,) if collector is not None else ()
    log = action_log(str(path), action=verb, console=console, origin=opts.origin,
                     extra_sinks=extra)  # fmt: skip
    try:
        return _run_logged(sd, model, selection, verb, opts=opts, log=log)
    finally:
        if collector is not None:
            collector.close()


def _collector() -> CollectorSink | None:
    if not os.environ.get("OMC_COLLECTOR"):
        return None
    from omc.runtime.collector import from_environment

    return from_environment()


def _run_logged(
    sd: Systemd,
    model: model_mod.ObjectModel,
    selection: frozenset[str] | None,
    verb: str,
    *,
    opts: Options,
    log: ActionLog,
) -> Plan:
    argv = "om " + " ".join(opts.argv)
    started = time.monotonic()
    last: Plan | None = None
    end_states: dict[str, str] | None = None
    if not opts.dry_run:
        log.info(f">>> do {verb} [{argv}] (origin {opts.origin}, sid {log.sid})", argv=argv)
    try:
        with ActionRelay(model.display, log.sid, log.emit_relayed) as relay:
            for action in _plans(verb):
                states = observe(model, sd=sd)
                last = plan(model, observed_map(states), action, selection=selection,
                            force=opts.force, disable_rollback=opts.disable_rollback)  # fmt: skip
                if opts.dry_run:
                    print(last.render())
                    continue
                end_states = _apply(sd, model, last, log, relay)
    except ActionError:
        if last is not None and not opts.dry_run:
            _conclude(sd, model, last, log, verb=verb, argv=argv, started=started, failed=True)
        raise
    assert last is not None
    if not opts.dry_run:
        _conclude(sd, model, last, log, verb=verb, argv=argv, started=started, failed=False,
                  unit_states=end_states)  # fmt: skip
    return last


def _apply(
    sd: Systemd, model: model_mod.ObjectModel, p: Plan, log: ActionLog, relay: ActionRelay
) -> dict[str, str] | None:
    """Run one plan; returns the units' ActiveStates when verify() read them all last
    (a successful start: nothing changes them before the end-state check)."""
    from omc.runtime.apply import Applier

    for error in p.errors:
        log.error(error)
    if p.errors:
        raise ActionError(f"{p.action} aborted: requirements not met")
    applier = Applier(sd=sd, model=model, log=log, drain=relay.drain, om=store.om_executable())
    errors = applier.run(p)
    if not errors and p.action in (Action.START, Action.STARTSTANDBY):
        errors = applier.verify()
    _flags(model.path, p, ok=not errors)
    if not errors:
        if p.freeze:
            freeze(model.path, log, on=True)
        return applier.final_states
    if p.rollback and applier.changed:
        log.info("rollback")
        applier.rollback()
        relay.drain()
    elif p.action.starts:
        why = "no resource activated" if p.rollback else "disabled"
        log.info(f"skip rollback: {why}")
    raise ActionError(f"{p.action} failed: " + "; ".join(errors))


def _flags(path: ObjectPath, p: Plan, *, ok: bool) -> None:
    """Selection stops leave a "stopped" flag on each resource; starts clear it."""
    for step in p.jobs:
        flag = stopped_flag(path, step.rid)
        if p.selected and step.op is Op.STOP and ok:
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()
        elif step.op in (Op.START, Op.RESTART):
            with contextlib.suppress(FileNotFoundError):
                flag.unlink()


def _conclude(
    sd: Systemd,
    model: model_mod.ObjectModel,
    p: Plan,
    log: ActionLog,
    *,
    verb: str,
    argv: str,
    started: float,
    failed: bool,
    unit_states: dict[str, str] | None = None,
) -> None:
    observed = observe(model, sd=sd, unit_states=unit_states)
    avail = aggregate(s.summary() for s in observed.values()).avail
    duration = go_duration(time.monotonic() - started)
    if failed:
        log.error(f"<<< failed {verb} [{argv}] in {duration}, instance status is now {avail}")
        return
    expected = START_END_STATES if p.action.starts else STOP_END_STATES
    if p.end_check and avail not in expected:
        log.error(f"the {verb} action returned no error but end avail status is {avail}")
        log.error(f"<<< failed {verb} [{argv}] in {duration}, instance status is now {avail}")
        raise ActionError(f"{verb}: end avail status is {avail}")
    log.info(f"<<< done {verb} [{argv}] in {duration}, instance status is now {avail}",
             duration=duration)  # fmt: skip
