"""Planner golden files: each ``plan_golden/<case>.json`` (state in) has a ``.plan`` (steps out).

``OMC_UPDATE_GOLDEN=1`` rewrites the ``.plan`` files from the current planner.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.drivers.base import Status
from omc.runtime.engine.plan import Action, Observed, plan
from omc.runtime.objects.model import ObjectModel, ResourceModel

CASES = Path(__file__).parent / "plan_golden"


def _model(case: dict[str, object]) -> ObjectModel:
    rows = case["resources"]
    assert isinstance(rows, list)
    resources = tuple(
        ResourceModel(rid=row[0], driver="x", unit=f"{row[0]}.service",
                      flags=frozenset(row[1].split()), config=row[2] if len(row) > 2 else {})
        for row in rows
    )  # fmt: skip
    config = {"orchestrate": case.get("orchestrate", "no")}
    return ObjectModel(path=ObjectPath(name="svc"), target="svc.target", id="i", source="s",
                       config=config, resources=resources, units=())  # fmt: skip


def _run(case: dict[str, object]) -> str:
    seen = case.get("observed", {})
    assert isinstance(seen, dict)
    observed = {rid: Observed(unit_active=v[0], status=Status(v[1])) for rid, v in seen.items()}
    selection = case.get("selection")
    got = plan(_model(case), observed, Action(str(case["action"])),
               selection=frozenset(selection) if isinstance(selection, list) else None,
               force=bool(case.get("force", False)))  # fmt: skip
    return f"# {case['doc']}\n{got.render()}\n"


@pytest.mark.parametrize("name", sorted(p.stem for p in CASES.glob("*.json")))
def test_plan_golden(name: str) -> None:
    """The planner's output for each recorded state matches its golden file."""
    case = json.loads((CASES / f"{name}.json").read_text())
    got = _run(case)
    golden = CASES / f"{name}.plan"
    if os.environ.get("OMC_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()
