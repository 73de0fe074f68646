"""The guard thread's watchdog period (runtime/cluster/daemon.py): pure arithmetic."""

from __future__ import annotations

import pytest
from omc.runtime.cluster.daemon import watchdog_period


def test_the_watchdog_is_pinged_four_times_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd asks for a ping at least every half of WatchdogSec; a quarter leaves room
    for a loaded machine."""
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_period(3.0) == 0.75


def test_systemds_shorter_watchdog_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit edited by hand (WatchdogSec below cluster.conf's watchdog) is still pinged
    in time: systemd's $WATCHDOG_USEC says what it enforces."""
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert watchdog_period(3.0) == 0.5
    monkeypatch.setenv("WATCHDOG_USEC", "9000000")
    assert watchdog_period(3.0) == 0.75
