"""The abort phase asks every resource about to start at once (an ip's ARP check waits
for answers: N addresses must cost one wait, not N)."""

from __future__ import annotations

import dataclasses
import sys
import threading

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime import drivers
from omc.runtime.drivers.base import ResourceView, Status
from omc.runtime.engine.apply import FRESH, SWITCH, AbortChecks, Applier
from omc.runtime.engine.plan import Action, Observed, plan
from omc.runtime.log import action_log
from omc.runtime.objects.model import ObjectModel, ResourceModel

DOWN = Observed(unit_active=False, status=Status.DOWN)


def model(*rids: str) -> ObjectModel:
    resources = tuple(ResourceModel(rid=r, driver="ip.host", unit=f"{r}.service", config={})
                      for r in rids)  # fmt: skip
    return ObjectModel(path=ObjectPath(name="svc0"), target="t.target", id="i", source="s",
                       config={"orchestrate": "no"}, resources=resources, units=())  # fmt: skip


def test_the_vetoes_are_asked_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three checks that each wait for the others succeed together; one vetoes."""
    barrier = threading.Barrier(3, timeout=10)

    def veto(view: ResourceView) -> str | None:
        barrier.wait()  # sequential checks would never get past it
        return "10.0.0.9 is alive" if view.rid == "ip#2" else None

    monkeypatch.setattr(drivers, "veto", veto)
    m = model("ip#0", "ip#1", "ip#2")
    p = plan(m, dict.fromkeys(("ip#0", "ip#1", "ip#2"), DOWN), Action.START)
    log = action_log("svc0", action="start", journal=False)
    applier = Applier(jobs=None, model=m, log=log)  # type: ignore[arg-type]
    assert applier._vetoes(p) == ["ip#2: 10.0.0.9 is alive"]


def test_a_broken_check_vetoes_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """An abort check that raises stops the start, saying why, instead of a traceback."""

    def veto(view: ResourceView) -> str | None:
        raise OSError("raw socket: operation not permitted")

    monkeypatch.setattr(drivers, "veto", veto)
    m = model("ip#0")
    p = plan(m, {"ip#0": DOWN}, Action.START)
    applier = Applier(jobs=None, model=m, log=action_log("svc0", action="start", journal=False))  # type: ignore[arg-type]
    assert applier._vetoes(p) == ["ip#0: abort check failed: raw socket: operation not permitted"]


def test_checks_begun_early_are_joined_not_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start's checks begun before planning (ip#0) are waited for, not asked twice; a
    resource the plan starts that was not begun (ip#1) is asked in the abort phase."""
    asked: list[str] = []
    release = threading.Event()

    def veto(view: ResourceView) -> str | None:
        asked.append(view.rid)
        release.wait(10)
        return "10.0.0.9 is alive" if view.rid == "ip#0" else None

    monkeypatch.setattr(drivers, "veto", veto)
    m = model("ip#0", "ip#1")
    checks = AbortChecks(m, ["ip#0"])
    threading.Timer(0.2, release.set).start()  # the early check is still waiting
    p = plan(m, dict.fromkeys(("ip#0", "ip#1"), DOWN), Action.START)
    log = action_log("svc0", action="start", journal=False)
    applier = Applier(jobs=None, model=m, log=log, checks=checks)  # type: ignore[arg-type]
    assert applier._vetoes(p) == ["ip#0: 10.0.0.9 is alive"]
    assert sorted(asked) == ["ip#0", "ip#1"]


def test_checks_run_with_a_short_switch_interval_then_restore_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While checks run, a thread gets the GIL back within SWITCH of a system call (its
    probe's window opens early); the interpreter's interval is back once the last ends,
    a broken check included."""
    seen: list[float] = []
    release = threading.Event()

    def veto(view: ResourceView) -> str | None:
        release.wait(10)
        seen.append(sys.getswitchinterval())
        if view.rid == "ip#1":
            raise OSError("broken")
        return None

    monkeypatch.setattr(drivers, "veto", veto)
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        checks = AbortChecks(model("ip#0", "ip#1"), ["ip#0"])
        checks.start(["ip#1"])
        release.set()
        checks.wait(["ip#0", "ip#1"])
        assert seen == [SWITCH, SWITCH]
        assert sys.getswitchinterval() == 0.004
    finally:
        sys.setswitchinterval(before)


def test_checks_begun_before_the_lock_are_kept_only_when_still_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rebased on the model read under the lock: an unchanged resource's check is kept
    (asked once), a changed one's is asked again on the new model, and all are asked
    again when the lock took longer than FRESH."""
    asked: list[tuple[str, object]] = []

    def veto(view: ResourceView) -> str | None:
        asked.append((view.rid, str(view.config.get("name", ""))))
        return f"{view.config.get('name')} is alive" if view.config.get("name") else None

    monkeypatch.setattr(drivers, "veto", veto)
    before = model("ip#0", "ip#1")
    changed = ResourceModel(rid="ip#1", driver="ip.host", unit="ip#1.service",
                            config={"name": "10.0.0.9"})  # fmt: skip
    after = dataclasses.replace(before, resources=(before.resources[0], changed))
    checks = AbortChecks(before, ["ip#0", "ip#1"])
    checks.rebase(after)
    assert checks.wait(["ip#0", "ip#1"]) == {"ip#0": None, "ip#1": "10.0.0.9 is alive"}
    assert sorted(asked) == [("ip#0", ""), ("ip#1", ""), ("ip#1", "10.0.0.9")]
    asked.clear()
    late = AbortChecks(before, ["ip#0"])
    late.begun -= FRESH + 1
    late.rebase(before)
    assert late.wait(["ip#0"]) == {"ip#0": None}
    assert asked == [("ip#0", ""), ("ip#0", "")]
