"""The daemon's pure parts (runtime/cluster/daemon.py): the guard's watchdog period, the
main loop's bookkeeping of instances to observe and of records to publish, the lookup
of a decision's object."""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import pytest
from omc.compiler.contract.paths import ObjectPath, parse_path
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.daemon import Daemon, Local, watchdog_period
from omc.runtime.cluster.decide import Decision, Do
from omc.runtime.cluster.records import Monitor, Status, instance_summary
from omc.runtime.cluster.state import ClusterState


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
    from omc.runtime.adapters.etcd import EtcdError

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


class Txns:
    """etcd's part of a daemon, as :meth:`Daemon._flush` uses it: the puts of each
    transaction, decoded."""

    def __init__(self) -> None:
        self.puts: list[dict[str, str]] = []

    def txn(self, compare: object, success: list[dict[str, Any]], failure: object = ()) -> None:
        puts = [op["request_put"] for op in success]
        self.puts.append({b64decode(p["key"]).decode(): b64decode(p["value"]).decode()
                          for p in puts})  # fmt: skip


def publishing_daemon(paths: list[ObjectPath]) -> tuple[Daemon, Txns]:
    """A daemon object with its bookkeeping and a recording etcd, nothing else."""
    daemon = Daemon.__new__(Daemon)
    daemon.node, daemon.lease, daemon._touched = "n1", 7, set()
    daemon.keys = k.Keys("/omc/t/")
    daemon.state = ClusterState(keys=daemon.keys)
    daemon.local = Local(status={p: Status(avail="up", config={"nodes": ["n1"]}) for p in paths},
                         monitor={p: Monitor() for p in paths})  # fmt: skip
    daemon.etcd = etcd = Txns()  # type: ignore[assignment]
    return daemon, etcd


def test_a_changed_record_is_decoded_once_and_written_with_its_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``_publish`` decodes the changed record for the state, and ``_flush`` makes the
    summary of that decoded record, not of the record decoded again: one decoding per
    changed record. The record and its summary go in one transaction; a change that
    the summary does not show writes the record alone."""
    svc = ObjectPath(name="svc0")
    daemon, etcd = publishing_daemon([svc])
    decoded: list[bytes] = []

    def decode(raw: bytes) -> dict[str, Any]:
        decoded.append(raw)
        return real_decode(raw)

    real_decode = k.decode
    monkeypatch.setattr(k, "decode", decode)
    daemon._publish(svc)
    daemon._flush()
    record = daemon.state.instances[svc]["n1"]
    assert len(decoded) == 1 and k.encode(record) == decoded[0].decode()
    summary = k.encode(instance_summary(record))
    assert etcd.puts == [{daemon.keys.instance(svc, "n1"): k.encode(record),
                          daemon.keys.summary(svc, "n1"): summary}]  # fmt: skip
    assert not daemon.local.pending
    daemon._publish(svc)  # unchanged: nothing
    daemon._flush()
    assert len(etcd.puts) == 1 and len(decoded) == 1
    daemon.local.monitor[svc] = Monitor(monitor_action_at=5.0)  # not in the summary
    daemon._publish(svc)
    daemon._flush()
    assert len(decoded) == 2 and list(etcd.puts[1]) == [daemon.keys.instance(svc, "n1")]


def test_a_decision_is_carried_out_on_the_states_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision names its object as ``str(path)`` does; the steps get the path the
    state holds (parsed from its keys), found without listing every object the state
    knows (once per decision, with 200 objects)."""
    paths = [parse_path(p) for p in ("svc0", "cfg/c1", "ns1/svc/web", "ns1/vol/data")]
    daemon, _ = publishing_daemon([])
    for path in paths:
        daemon.state.instances[path] = {"n1": {"avail": "up"}}
    monkeypatch.setattr(ClusterState, "paths", lambda self: pytest.fail("every path listed"))
    stepped: list[ObjectPath] = []

    def step(path: ObjectPath, step: Do, decision: Decision) -> bool:
        stepped.append(path)
        return True

    monkeypatch.setattr(daemon, "_step", step)
    for path in paths:
        assert daemon._carry_out(Decision(path=str(path), steps=(Do.ACK, Do.DONE)))
    assert stepped == [p for p in paths for _ in range(2)]
    assert all(p in daemon.state.instances for p in stepped)
