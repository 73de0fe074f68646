"""The daemon's pure parts (runtime/cluster/daemon.py): the guard's watchdog period, the
main loop's bookkeeping of instances to observe."""

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


def test_instances_not_observed_when_etcd_fails_stay_dirty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The main loop observes the instances whose units signalled, and publishes each;
    etcd failing on the second (an outage: the loop waits, then turns again) leaves the
    second and third dirty for the next turn, not forgotten until the 5-minute resync.
    A daemon object without its I/O: only the bookkeeping is under test."""
    from omc.compiler.contract.paths import ObjectPath
    from omc.runtime.adapters.etcd import EtcdError
    from omc.runtime.cluster.daemon import Daemon, Local

    a, b, c = (ObjectPath(name=n) for n in ("a", "b", "c"))
    daemon = Daemon.__new__(Daemon)
    daemon.local = Local(status=dict.fromkeys((a, b, c)), dirty={a, b, c})  # type: ignore[arg-type]
    published: list[ObjectPath] = []

    def publish(path: ObjectPath) -> None:
        if path == b and b not in published:
            published.append(b)
            raise EtcdError("no etcd endpoint answered")
        published.append(path)

    monkeypatch.setattr(daemon, "_observe", lambda path: None)
    monkeypatch.setattr(daemon, "_rearm", lambda path: None)
    monkeypatch.setattr(daemon, "_publish", publish)
    with pytest.raises(EtcdError):
        daemon._observe_dirty()
    assert daemon.local.dirty == {b, c}
    daemon._observe_dirty()  # etcd back
    assert published == [a, b, b, c] and not daemon.local.dirty
