"""A config change reaching the node's units: the new units in, the leaving ones stopped first.

Every way a config changes ends here, under the object lock the caller holds
(:func:`omc.runtime.engine.session.object_lock`): ``create``, ``config edit``, and a
config file replaced by hand (or, later, by replication), which the next action
installs before it plans.

Units that leave (a resource removed or renamed, or its type changed) are stopped
*before* their files go. Removing the file of a running unit does not stop it:
systemd keeps it ``not-found active``, om no longer sees it (the model is read from
the unit files), a forking app's stop command never runs, and ``delete`` then finds
nothing active. So the leaving resources are stopped through the model still
installed, as ``om <path> stop --rid <them> --force`` would: their stop triggers and
stop commands (``ExecStop=``, driver stops), in reverse start order, one unit at a
time so that nothing staying is dragged down. Then the object's other leaving units
still active (task and sync units, timers, slices) are stopped. A stop that fails
fails the change with the units left as they were: nothing is ever left running
unseen.

Stopping is chosen over refusing the change until the instance is stopped: a config
must be able to reach a node whose instance runs (``stop`` itself installs the new
config first, and a refusal there would make the instance impossible to stop).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from omc.compiler.contract.node import om_path
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.engine.apply import Applier
from omc.runtime.engine.jobs import Jobs
from omc.runtime.engine.observe import ACTIVE, observe, observed_map
from omc.runtime.engine.plan import Action, Op, Step, plan
from omc.runtime.engine.session import ActionError
from omc.runtime.log import ActionLog, ActionRelay, Sink, action_log
from omc.runtime.objects import install
from omc.runtime.objects import model as model_mod

if TYPE_CHECKING:
    from omc.runtime.adapters.systemd import Systemd

LEAVING = "removed from the config: stop"


def install_units(
    path: ObjectPath,
    *,
    action: str,
    console: Sink | None,
    sd: Callable[[], Systemd] | None = None,
    origin: str = "user",
    sid: str | None = None,
) -> bool:
    """Install the object's units if its config changed, stopping first what leaves;
    returns whether anything changed. ``sd`` gives the systemd connection (by default
    one is opened on first need, and closed)."""
    ensure = functools.partial(install.ensure_units, path)
    return _install(path, ensure, sd, action=action, console=console, origin=origin, sid=sid)


def commit_config(
    path: ObjectPath,
    text: str,
    units: dict[str, str],
    *,
    action: str,
    console: Sink | None,
    sd: Callable[[], Systemd] | None = None,
    origin: str = "user",
    sid: str | None = None,
) -> bool:
    """Install a new config with its compiled ``units``, all or nothing
    (:func:`omc.runtime.objects.install.commit`), stopping first what leaves."""
    commit = functools.partial(install.commit, path, text, units)
    return _install(path, commit, sd, action=action, console=console, origin=origin, sid=sid)


def _install(
    path: ObjectPath,
    do: Callable[..., bool],
    sd: Callable[[], Systemd] | None,
    *,
    action: str,
    console: Sink | None,
    origin: str,
    sid: str | None,
) -> bool:
    """Run ``do``, one of :mod:`install`'s installs, with this module's two steps: stop
    what leaves (logged as the action), and reload systemd."""
    with _connection(sd) as connected:
        return do(
            retire=_retirer(
                path, connected, action=action, console=console, origin=origin, sid=sid
            ),
            reload=lambda gone: reload(connected(), gone),
        )


def _retirer(
    path: ObjectPath,
    connected: Callable[[], Systemd],
    *,
    action: str,
    console: Sink | None,
    origin: str,
    sid: str | None,
) -> Callable[[frozenset[str]], None]:
    def retire_leaving(leaving: frozenset[str]) -> None:
        log = action_log(str(path), action=action, console=console, origin=origin, sid=sid)
        retire(path, leaving, sd=connected(), log=log)

    return retire_leaving


@contextlib.contextmanager
def _connection(sd: Callable[[], Systemd] | None) -> Iterator[Callable[[], Systemd]]:
    """``sd`` itself, or a connection opened on first use and closed on exit."""
    if sd is not None:
        yield sd
        return
    opened: list[Systemd] = []

    def connect() -> Systemd:
        if not opened:
            from omc.runtime.adapters.systemd import Systemd

            opened.append(Systemd.system())
        return opened[0]

    try:
        yield connect
    finally:
        for connection in opened:
            connection.close()


def reload(sd: Systemd, gone: Iterable[str] = ()) -> None:
    """One daemon-reload; then the failed state of units just removed is reset, so they
    do not linger ``not-found failed`` and keep the node ``degraded``."""
    from omc.runtime.adapters.systemd import SystemdError

    sd.daemon_reload()
    for unit in gone:
        with contextlib.suppress(SystemdError):  # not loaded, or not failed
            sd.reset_failed(unit)


def retire(path: ObjectPath, leaving: Collection[str], *, sd: Systemd, log: ActionLog) -> None:
    """Stop what runs among ``leaving`` (unit names still installed); raises
    :class:`ActionError` when something could not be stopped."""
    old = model_mod.load(path)
    if old is None:
        return
    rids = frozenset(r.rid for r in old.resources if r.unit in leaving)
    errors = _stop_resources(old, rids, sd, log) if rids else []
    if not errors:
        errors = _stop_units(sd, sorted(leaving), log)
    if errors:
        raise ActionError(
            f"{path}: config not applied, its units are unchanged: cannot stop what "
            f"leaves it: {'; '.join(errors)}",
            logged=False,
        )


def _stop_resources(
    old: model_mod.ObjectModel, rids: frozenset[str], sd: Systemd, log: ActionLog
) -> list[str]:
    """``stop --rid <rids> --force`` on the installed model; the error lines."""
    states = observe(old, sd=sd, rids=rids)
    planned = plan(old, observed_map(states), Action.STOP, selection=rids, force=True)
    if planned.errors:
        return list(planned.errors)
    acting = planned.jobs
    if not acting:
        return []
    for step in reversed(acting):  # in the order they were configured
        log.info(LEAVING, rid=step.rid)
    with ActionRelay(old.display, log.sid, log.emit_relayed) as relay:
        jobs = Jobs(sd=sd, target=old.target, warn=log.warning)
        applier = Applier(jobs=jobs, model=old, log=log, drain=relay.drain, om=om_path())
        return applier.run(replace(planned, steps=acting))


def _stop_units(sd: Systemd, units: list[str], log: ActionLog) -> list[str]:
    """Stop the leaving units still active that no resource stop covered (task and sync
    units, timers, disabled resources, slices last and deepest first)."""
    states = sd.active_states(units)
    still = [unit for unit in units if states.get(unit) in ACTIVE]
    still.sort(key=lambda unit: (unit.endswith(".slice"), -len(unit)))
    steps = [Step(rid="", unit=unit, op=Op.STOP) for unit in still]
    errors = []
    for finished in Jobs(sd=sd, target="", warn=log.warning).one_by_one(
        steps, "ignore-dependencies"
    ):
        log.debug(f"stop {finished.step.unit} ({LEAVING.partition(':')[0]}): {finished.result}")
        if not finished.done:
            errors.append(
                f"{finished.step.unit}: stop {finished.result} {finished.refusal}".strip()
            )
    return errors
