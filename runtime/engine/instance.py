"""Instance actions on one object: observe → plan (pure) → apply, inside a session.

``om <path> instance start|stop|restart|startstandby|shutdown|run|freeze|unfreeze``.
The flow (opensvc.md §4.2): take the object lock, install the units if the config
changed, read the model from them, open the log bracket (:mod:`.session`),
observe, plan, apply, roll back on failure, freeze after a whole-instance stop of
an orchestrated object, check the end state, close the bracket with the instance
status.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omc.compiler.contract.node import om_path
from omc.compiler.contract.paths import ObjectPath
from omc.runtime import safefs
from omc.runtime.drivers.base import Status
from omc.runtime.engine.config_change import install_units
from omc.runtime.engine.observe import observe, observed_map
from omc.runtime.engine.plan import Action, Op, Plan, plan
from omc.runtime.engine.session import WAITLOCK, ActionError, Session, object_lock, session
from omc.runtime.layout import frozen_flag, stopped_flag
from omc.runtime.log import ActionLog, ActionRelay, Sink, action_log, new_sid
from omc.runtime.objects import configs
from omc.runtime.objects import model as model_mod
from omc.runtime.objects.model import InstanceNotFoundError
from omc.runtime.objects.selection import Selector, select_some
from omc.runtime.status import aggregate

if TYPE_CHECKING:
    from omc.runtime.adapters.systemd import Systemd
    from omc.runtime.engine.apply import AbortChecks

STOP_END_STATES = frozenset({Status.DOWN, Status.STDBY_UP, Status.STDBY_DOWN, Status.NA})
START_END_STATES = frozenset({Status.UP, Status.NA})
__all__ = ["ActionError", "Options", "load_model", "run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The action flags of the object CLI."""

    selector: Selector = field(default_factory=Selector)
    force: bool = False
    disable_rollback: bool = False
    dry_run: bool = False
    argv: tuple[str, ...] = ()
    origin: str = "user"
    waitlock: float = WAITLOCK  # seconds to wait for the object lock (--waitlock)


def connect() -> Systemd:
    from omc.runtime.adapters.systemd import Systemd

    return Systemd.system()


def connect_soon() -> Callable[[], Systemd]:
    """Connect to the system bus in a thread when pydbus is already imported (a node
    executor's worker): the handshake with dbus-daemon runs in C without the GIL, so it
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


def load_model(path: ObjectPath, install: Callable[[], object] | None) -> model_mod.ObjectModel:
    """Run ``install`` (the config change, when the config changed: see
    :mod:`.config_change`), then read the model from the units."""
    if install is not None and configs.config_file_exists(path):
        install()
    found = model_mod.load(path)
    if found is None:
        raise InstanceNotFoundError(f"{path}: no instance on this node (no units installed)")
    return found


def freeze(path: ObjectPath, log: ActionLog, *, on: bool) -> None:
    if on:
        safefs.create_file(frozen_flag(path))
        log.info("instance frozen")
    else:
        safefs.remove(frozen_flag(path))
        log.info("instance unfrozen")


def run(path: ObjectPath, verb: str, opts: Options, *, console: Sink | None) -> Plan | None:
    """Run one instance action; raises ActionError when it failed (after logging why)."""
    if verb in ("freeze", "unfreeze"):
        log = action_log(str(path), action=verb, console=console, origin=opts.origin)
        freeze(path, log, on=verb == "freeze")
        return None
    connected = connect_soon()
    sid = new_sid()  # the lock names its holder by the action's sid
    begun = None if opts.dry_run else checks_before_lock(path, verb, opts.selector)
    try:
        with object_lock(path, action=verb, sid=sid, wait=opts.waitlock):
            # --dry-run plans on the installed units: installing a changed config may
            # stop resources that leave it.
            change = functools.partial(install_units, path, action=verb, console=console,
                                       sd=connected, origin=opts.origin, sid=sid)  # fmt: skip
            model = load_model(path, None if opts.dry_run else change)
            if model.disabled and verb != "shutdown":
                raise ActionError(f"{path}: object instance is disabled", logged=False)
            selectable = (r.selectable for r in model.resources)
            selection = select_some(selectable, opts.selector, owner=str(path))
            checks = None if opts.dry_run else early_checks(model, verb, selection, begun)
            sd = connected()

            def avail() -> str:
                return _avail(sd, model)

            with session(path, verb, argv=opts.argv, origin=opts.origin, console=console,
                         avail=avail, lock=False, bracket=not opts.dry_run,
                         sid=sid) as frame:  # fmt: skip
                return _run(sd, model, selection, frame, opts=opts, checks=checks)
    finally:
        connected().close()


def early_checks(model: model_mod.ObjectModel, verb: str, selection: frozenset[str] | None,
                 begun: AbortChecks | None = None) -> AbortChecks | None:  # fmt: skip
    """A start's abort checks, begun now for the selected resources that have one, so
    that their waits overlap observing and planning (nothing starts before they are all
    in: :meth:`Applier._vetoes`); None for any other action. ``begun``: the checks
    begun before the object lock (:func:`checks_before_lock`), kept where still valid."""
    if _plans(verb) != (Action.START,) or model.disabled:
        return None
    from omc.runtime import drivers
    from omc.runtime.engine.apply import AbortChecks

    chosen = (r for r in model.resources if selection is None or r.rid in selection)
    rids = [r.rid for r in chosen if drivers.has_veto(r.driver)]
    if not rids:
        return None
    if begun is None:
        return AbortChecks(model, rids)
    begun.rebase(model)
    begun.start(rids)
    return begun


def checks_before_lock(path: ObjectPath, verb: str, selector: Selector) -> AbortChecks | None:
    """A start's abort checks begun on the installed units before the object lock, so
    that their waits (an ip's ARP probe) also overlap taking the lock and the config
    check; they start nothing. None when the units cannot be read or select nothing:
    the checks then begin once locked. Under the lock, :func:`early_checks` keeps those
    whose resource did not change, when begun a moment before (:meth:`AbortChecks.rebase`)."""
    if _plans(verb) != (Action.START,):
        return None
    try:
        found = model_mod.load(path)
        if found is None:
            return None
        selection = select_some((r.selectable for r in found.resources), selector,
                                owner=str(path))  # fmt: skip
    except Exception:  # anything unusual: the read under the lock decides, and says why
        return None
    return early_checks(found, verb, selection)


def _plans(verb: str) -> tuple[Action, ...]:
    if verb == "restart":
        return (Action.STOP, Action.START)
    return (Action(verb),)


def _avail(sd: Systemd, model: model_mod.ObjectModel, states: dict[str, str] | None = None) -> str:
    observed = observe(model, sd=sd, unit_states=states)
    return str(aggregate(s.summary() for s in observed.values()).avail)


def _run(
    sd: Systemd,
    model: model_mod.ObjectModel,
    selection: frozenset[str] | None,
    frame: Session,
    *,
    opts: Options,
    checks: AbortChecks | None = None,
) -> Plan:
    last: Plan | None = None
    end_states: dict[str, str] | None = None
    with ActionRelay(model.display, frame.log.sid, frame.log.emit_relayed) as relay:
        for action in _plans(frame.verb):
            states = observe(model, sd=sd)
            last = plan(model, observed_map(states), action, selection=selection,
                        force=opts.force, disable_rollback=opts.disable_rollback,
                        by_daemon=opts.origin.startswith("daemon"))  # fmt: skip
            if opts.dry_run:
                print(last.render())
                continue
            end_states = _apply(sd, model, last, frame.log, relay, checks=checks)
    assert last is not None
    if not opts.dry_run:
        _conclude(sd, model, last, frame, end_states)
    return last


def _apply(
    sd: Systemd,
    model: model_mod.ObjectModel,
    p: Plan,
    log: ActionLog,
    relay: ActionRelay,
    *,
    checks: AbortChecks | None = None,
) -> dict[str, str] | None:
    """Run one plan; returns the units' ActiveStates when verify() read them all last
    (a successful start: nothing changes them before the end-state check)."""
    from omc.runtime.engine.apply import Applier
    from omc.runtime.engine.jobs import Jobs

    for error in p.errors:
        log.error(error)
    if p.errors:
        raise ActionError(f"{p.action} aborted: requirements not met")
    jobs = Jobs(sd=sd, target=model.target, warn=log.warning)
    applier = Applier(jobs=jobs, model=model, log=log, drain=relay.drain, om=om_path(),
                      checks=checks)  # fmt: skip
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
        if p.selected and step.op.stops and ok:
            safefs.create_file(stopped_flag(path, step.rid))
        elif step.op in (Op.START, Op.RESTART):
            safefs.remove(stopped_flag(path, step.rid))


def _conclude(
    sd: Systemd,
    model: model_mod.ObjectModel,
    p: Plan,
    frame: Session,
    unit_states: dict[str, str] | None,
) -> None:
    """Close the bracket with the end state; a wrong end state fails the action (§4.2)."""
    avail = _avail(sd, model, unit_states)
    expected = START_END_STATES if p.action.starts else STOP_END_STATES
    if p.end_check and avail not in expected:
        why = f"the {frame.verb} action returned no error but end avail status is {avail}"
        frame.conclude(avail, failed=True, why=why)
        raise ActionError(f"{frame.verb}: end avail status is {avail}")
    frame.conclude(avail, failed=False)
