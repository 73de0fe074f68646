"""The chaos run (issue #12): ``bench/chaos.py`` for a couple of minutes, its invariants.

Slow (about 2.5 minutes on a 2-core VM; part of ``make test``): random node kills,
partitions, daemon kills and app kills over 7 failover and 3 flex services. The script
checks everything
itself from the host (``runtime/lab/observe.py``) and reports as JSON; this test runs it
as a user would and reads that report. Its figures (recovery times, availability) are
only printed: the time target belongs to ``make bench``, which runs it longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_chaos_run_keeps_the_invariants(tmp_path: Path) -> None:
    """Two minutes of random faults: never two actives of a failover service, every fault
    recovered from, no orchestration left stuck."""
    out = tmp_path / "chaos.json"
    argv = [sys.executable, str(ROOT / "bench" / "chaos.py"), "--duration", "120",
            "--seed", str(os.getpid()), "--json", str(out), "--no-write"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    print(proc.stdout)
    assert report["faults"], "no fault was injected"
    assert sum(report["double_active"].values()) == 0, report["double_active"]
    assert [f for f in report["faults"] if f["recovery"] is None] == []
    assert report["stuck_orchestrations"] == []
    assert report["broken"] == []
    assert proc.returncode == 0, proc.stderr[-3000:]
