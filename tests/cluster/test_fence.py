"""The self-fencing stop's deadline (``fence.wait_all``), with real processes: it is asked
again while the stops run, so that a lease refreshed meanwhile moves it."""

from __future__ import annotations

import subprocess
import time

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.cluster import fence

SLOW, FAST = ObjectPath(name="slow"), ObjectPath(name="fast")


def _stops(slow: float) -> dict[ObjectPath, subprocess.Popen[bytes]]:
    """Two 'stops': one that ends at once, one that takes ``slow`` seconds."""
    return {FAST: subprocess.Popen(["true"]), SLOW: subprocess.Popen(["sleep", str(slow)])}


def test_a_stop_past_a_fixed_deadline_is_not_stopped() -> None:
    """The deadline passes while the slow one runs: it is reported (split action)."""
    end = time.monotonic() + 0.2
    running = _stops(2.0)
    try:
        assert fence.wait_all(running, lambda: end) == [SLOW]
    finally:
        running[SLOW].kill()
        running[SLOW].wait()


def test_a_deadline_that_moves_waits_for_the_stop() -> None:
    """A refresh succeeds while the slow one runs (the deadline moves past its end): all
    stopped, no split action."""
    start = time.monotonic()
    running = _stops(0.6)

    def deadline() -> float:  # a refresh at +0.1 s proves the lease for 2 s more
        return start + (0.2 if time.monotonic() - start < 0.1 else 2.0)

    assert fence.wait_all(running, deadline) == []


def test_a_stop_that_fails_is_reported() -> None:
    """An ``instance stop`` exiting non-zero did not stop: reported before the deadline."""
    running = {FAST: subprocess.Popen(["false"])}
    end = time.monotonic() + 5.0
    assert fence.wait_all(running, lambda: end) == [FAST]
    assert time.monotonic() < end


def test_the_watchdog_is_pinged_while_the_stops_run() -> None:
    """A stop may outlast ``WatchdogSec``: the wait calls ``tick`` (the daemon's watchdog
    ping) all along, so systemd does not kill the daemon, and its stops, mid-fence."""
    ticks: list[float] = []
    running = _stops(0.5)
    end = time.monotonic() + 5.0
    assert fence.wait_all(running, lambda: end, lambda: ticks.append(time.monotonic())) == []
    assert len(ticks) >= 2  # at each look while the slow one ran, not once at the end
