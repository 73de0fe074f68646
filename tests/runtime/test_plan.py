"""The planner: observed state + action + selection in, ordered steps out."""

from __future__ import annotations

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.drivers.base import Status
from omc.runtime.engine.plan import Action, Observed, Op, plan
from omc.runtime.objects.model import ObjectModel, ResourceModel

UP = Observed(unit_active=True, status=Status.UP)
DOWN = Observed(unit_active=False, status=Status.DOWN)
DRIFT = Observed(unit_active=True, status=Status.DOWN)
OUTSIDE = Observed(unit_active=False, status=Status.UP)  # up, started without its unit


def _res(rid: str, *flags: str, **config: object) -> ResourceModel:
    return ResourceModel(rid=rid, driver="x", unit=f"{rid}.service", flags=frozenset(flags),
                         config=config)  # fmt: skip


def _model(*resources: ResourceModel, orchestrate: str = "no") -> ObjectModel:
    order = {"ip": 0, "disk": 2, "fs": 3, "app": 6, "task": 8, "sync": 7}
    ordered = sorted(resources, key=lambda r: (order[r.group], r.rid))
    config: dict[str, object] = {"orchestrate": orchestrate}
    return ObjectModel(path=ObjectPath(name="svc0"), target="t.target", id="i", source="s",
                       config=config, resources=tuple(ordered), units=())  # fmt: skip


SVC = _model(_res("ip#0"), _res("fs#1"), _res("app#0"), _res("app#sb", "standby"),
             _res("fs#off", "disable"), _res("task#t"), _res("sync#s"))  # fmt: skip


def _ops(p: object) -> list[tuple[str, str]]:
    return [(s.rid, str(s.op) if s.op is not Op.SKIP else f"skip:{s.reason}") for s in p.steps]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("action", "observed", "force", "expected"),
    [
        (Action.START, {}, False,
         [("ip#0", "start"), ("fs#1", "start"), ("fs#off", "skip:disabled"),
          ("app#0", "start"), ("app#sb", "start")]),
        (Action.START, {"ip#0": UP, "fs#1": UP, "app#0": UP, "app#sb": UP}, False,
         [("ip#0", "skip:already up"), ("fs#1", "skip:already up"), ("fs#off", "skip:disabled"),
          ("app#0", "skip:already up"), ("app#sb", "skip:already up")]),
        (Action.START, {"ip#0": DRIFT, "fs#1": UP}, False,
         [("ip#0", "restart"), ("fs#1", "skip:already up"), ("fs#off", "skip:disabled"),
          ("app#0", "start"), ("app#sb", "start")]),
        (Action.STOP, {"ip#0": UP, "fs#1": UP, "app#0": UP, "app#sb": UP}, False,
         [("app#sb", "skip:standby"), ("app#0", "stop"), ("fs#off", "skip:disabled"),
          ("fs#1", "stop"), ("ip#0", "stop")]),
        (Action.STOP, {"ip#0": UP, "fs#1": UP, "app#0": UP, "app#sb": UP}, True,
         [("app#sb", "stop"), ("app#0", "stop"), ("fs#off", "skip:disabled"),
          ("fs#1", "stop"), ("ip#0", "stop")]),
        (Action.STOP, {"ip#0": UP}, False,
         [("app#sb", "skip:standby"), ("app#0", "skip:already down"), ("fs#off", "skip:disabled"),
          ("fs#1", "skip:already down"), ("ip#0", "stop")]),
        (Action.STOP, {"ip#0": UP, "fs#1": OUTSIDE, "app#sb": OUTSIDE}, False,
         [("app#sb", "skip:standby"), ("app#0", "skip:already down"), ("fs#off", "skip:disabled"),
          ("fs#1", "driver stop"), ("ip#0", "stop")]),
        (Action.SHUTDOWN, {"app#sb": OUTSIDE}, False,
         [("app#sb", "driver stop"), ("app#0", "skip:already down"), ("fs#off", "skip:disabled"),
          ("fs#1", "skip:already down"), ("ip#0", "skip:already down")]),
        (Action.SHUTDOWN, {"app#sb": UP}, False,
         [("app#sb", "stop"), ("app#0", "skip:already down"), ("fs#off", "skip:disabled"),
          ("fs#1", "skip:already down"), ("ip#0", "skip:already down")]),
        (Action.STARTSTANDBY, {}, False, [("app#sb", "start")]),
        (Action.RUN, {"task#t": UP}, False, [("task#t", "start")]),
    ],
)  # fmt: skip
def test_plan_table(
    action: Action, observed: dict[str, Observed], force: bool, expected: list[tuple[str, str]]
) -> None:
    """Each action walks the resources in (reverse) start order with the expected ops."""
    assert _ops(plan(SVC, observed, action, force=force)) == expected


def test_driver_stops_run_one_by_one_in_stop_order() -> None:
    """A stop with a driver stop enqueues unit by unit (ignore-dependencies), so the driver
    stop runs in its place between the unit stops; the target still stops at the end."""
    p = plan(SVC, {"ip#0": UP, "fs#1": OUTSIDE, "app#0": UP}, Action.STOP)
    assert (p.job_mode, p.target_op, p.end_check) == ("ignore-dependencies", Op.STOP, True)
    assert [s.reason for s in p.steps if s.op is Op.DRIVER_STOP] == ["unit inactive, up"]


def test_selection_acts_on_selected_only() -> None:
    """A selection acts on exactly the selected rids, ignoring requirements, with no target job."""
    p = plan(SVC, {}, Action.START, selection=frozenset({"fs#1", "app#0"}))
    assert _ops(p) == [("fs#1", "start"), ("app#0", "start")]
    assert (p.job_mode, p.target_op, p.end_check, p.freeze) == (
        "ignore-requirements", Op.SKIP, False, False)  # fmt: skip


@pytest.mark.parametrize(
    ("orchestrate", "selection", "freeze"),
    [("ha", None, True), ("start", None, True), ("no", None, False),
     ("ha", frozenset({"ip#0"}), False)],
)  # fmt: skip
def test_stop_freezes_orchestrated_instances(
    orchestrate: str, selection: frozenset[str] | None, freeze: bool
) -> None:
    """Stop freezes when orchestrate is ha or start and there is no selection."""
    model = _model(_res("ip#0"), orchestrate=orchestrate)
    assert plan(model, {}, Action.STOP, selection=selection).freeze is freeze


@pytest.mark.parametrize(
    ("disable_rollback", "config", "expected"),
    [(False, {}, True), (True, {}, False), (False, {"rollback": False}, False)],
)
def test_rollback_switches(
    disable_rollback: bool, config: dict[str, object], expected: bool
) -> None:
    """Rollback is on unless --disable-rollback or DEFAULT.rollback=false."""
    model = ObjectModel(path=ObjectPath(name="s"), target="t", id="", source="", config=config,
                        resources=(_res("ip#0"),), units=())  # fmt: skip
    assert plan(model, {}, Action.START, disable_rollback=disable_rollback).rollback is expected


def test_unmet_start_requires_is_an_error() -> None:
    """A start requirement on a resource not started by this action must already hold."""
    requires = [{"rid": "ip#0", "states": ["up"]}]
    model = _model(_res("ip#0"), _res("app#0", start_requires=requires))
    p = plan(model, {"ip#0": DOWN}, Action.START, selection=frozenset({"app#0"}))
    assert p.errors == ("app#0: start_requires ip#0(up) not met: ip#0 is down",)
    assert plan(model, {}, Action.START).errors == ()


def test_dry_run_render_says_why() -> None:
    """The dry-run text lists every step, no-ops with their reason."""
    text = plan(SVC, {"ip#0": UP}, Action.START).render()
    assert "ip#0             skip        ip#0.service  (already up)" in text
    assert "rollback on error" in text
