"""The decision step, Pacemaker-style: each ``decide_golden/<case>.json`` (a cluster
snapshot) has a ``<case>.plan.json`` (every live node's next steps, and each object's
avail, placement and leaders as decide sees them). A case may set ``boot`` (the
daemons just started) and ``max_parallel`` (node.max_parallel, default 10).

``OMC_UPDATE_GOLDEN=1`` rewrites the ``.plan.json`` files from the current code; review
the diff: it is the behaviour change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from omc.runtime.cluster.decide import (
    MAX_PARALLEL,
    Decision,
    decide_all,
    leaders,
    object_avail,
    placement_state,
)
from omc.runtime.cluster.model import snapshot_from_json

CASES = Path(__file__).parent / "decide_golden"


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """The golden output of one case."""
    snap = snapshot_from_json(case["snapshot"])
    plans = decide_all(
        snap,
        boot=bool(case.get("boot", False)),
        max_parallel=int(case.get("max_parallel", MAX_PARALLEL)),
    )
    return {
        "doc": case["doc"],
        "nodes": {
            name: {d.path: _steps(d) for d in plan.decisions} for name, plan in plans.items()
        },
        "objects": {
            path: (
                f"{object_avail(view, snap)}, placement {placement_state(view, snap)}, "
                f"leaders [{' '.join(leaders(view, snap))}]"
            )
            for path, view in sorted(snap.objects.items())
        },
    }


def _steps(decision: Decision) -> str:
    """``take, start: <reason>``; or ``(wait) <reason>``; or ``-`` when there is nothing
    to do."""
    if decision.steps:
        rids = f" ({' '.join(decision.rids)})" if decision.rids else ""
        why = f": {decision.reason}" if decision.reason else ""
        return ", ".join(decision.steps) + rids + why
    return f"(wait) {decision.reason}" if decision.reason else "-"


def _names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in CASES.glob("*.json")
                  if not p.name.endswith(".plan.json"))  # fmt: skip


@pytest.mark.parametrize("name", _names())
def test_decide_golden(name: str) -> None:
    """decide's plan for each recorded cluster snapshot matches its golden file."""
    case = json.loads((CASES / f"{name}.json").read_text())
    got = json.dumps(run_case(case), indent=1, sort_keys=True) + "\n"
    golden = CASES / f"{name}.plan.json"
    if os.environ.get("OMC_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()


def test_there_are_enough_cases() -> None:
    """The golden table covers the orchestrator broadly (at least 45 cases)."""
    assert len(_names()) >= 45
