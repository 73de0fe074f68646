"""The cost of an instance summary, offline: what a daemon spends per changed record.

A daemon publishes an instance record when it changes, with its summary (what ``om
mon`` reads, :func:`omc.runtime.cluster.records.instance_summary`). This times, with
``timeit`` over one realistic record (a 3-node failover service with four resources,
started here, as ``records.instance_record`` builds it, after the JSON round trip the
daemon's state holds):

* ``summary``: ``instance_summary`` of the decoded record;
* ``decode``: ``keys.decode`` of the encoded record (what ``_publish`` does for the
  state, and ``_flush`` did again for the summary);
* ``instance``, ``config``: the decoders ``om mon`` and the daemon's views call
  (``model._instance`` uncached, ``model.config_from_json``);
* ``publish``: a daemon's whole path for one changed record, ``Daemon._publish`` then
  ``Daemon._flush`` (encoding, decoding, the summary, the transaction's operations),
  on a daemon object without I/O (its etcd takes the transaction and does nothing).

Best of 25 repeats, µs per call. Prints one line per measure; run it with
``PYTHONPATH=<another tree>`` (its ``.dev`` folder) to time another version.
Usage: ``.venv/bin/python bench/summary.py [NUMBER]`` (calls per repeat, 2000).
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / ".dev"))  # appended: a PYTHONPATH tree comes first

from omc.runtime.cluster import keys as k  # noqa: E402
from omc.runtime.cluster import model, records  # noqa: E402


def realistic() -> tuple[records.Status, records.Monitor]:
    """A started failover service's status and monitor, as its node has them."""
    resources = {
        rid: {"status": "up", "restart": 0, "restart_delay": 0.5, "monitor": False,
              "standby": False, "disabled": False, "stopped": False}
        for rid in ("ip#1", "fs#data", "app#web", "app#worker")
    }  # fmt: skip
    config = {"nodes": ["n1", "n2", "n3"], "topology": "failover", "orchestrate": "ha",
              "placement": "nodes order", "flex_min": 1, "flex_max": 3, "flex_target": 1,
              "priority": 50, "hard_affinity": [], "hard_anti_affinity": [],
              "monitor_action": ["none"], "stonith": False}  # fmt: skip
    status = records.Status(avail="up", overall="up", resources=resources, config=config,
                            config_sha="ab" * 32)  # fmt: skip
    monitor = records.Monitor(oid="6f1c2d3e-0000-4000-8000-000000000001", done=True,
                              local_expect="started", last_started=1764740000.25,
                              took_over=1764740000.0, took_over_why="placed on n1")  # fmt: skip
    return status, monitor


def realistic_record() -> dict[str, Any]:
    """That service's record, after the JSON round trip (as the daemon's state holds it)."""
    return k.decode(k.encode(records.instance_record(*realistic())).encode())


def publishing() -> Callable[[], None]:
    """``_publish`` and ``_flush`` of that service's record, changed since the last call."""
    from omc.compiler.contract.paths import ObjectPath
    from omc.runtime.cluster.daemon import Daemon, Local
    from omc.runtime.cluster.state import ClusterState

    class NoEtcd:
        def txn(self, *_: object) -> None:
            pass

    path = ObjectPath(name="svc0")
    status, monitor = realistic()
    daemon = Daemon.__new__(Daemon)
    daemon.node, daemon.lease, daemon._touched = "n1", 7, set()
    daemon.keys = k.Keys("/omc/bench/")
    daemon.state = ClusterState(keys=daemon.keys)
    daemon.etcd = NoEtcd()  # type: ignore[assignment]
    daemon.local = Local(status={path: status}, monitor={path: monitor})

    def publish() -> None:
        daemon.local.monitor[path] = monitor.but(last_started=time.time())
        daemon._publish(path)
        daemon._flush()

    return publish


def main() -> int:
    number = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    record = realistic_record()
    raw = k.encode(record).encode()
    config = {**record["config"], "path": "svc0"}
    print(f"records: {records.__file__}")
    cases = {
        "summary": lambda: records.instance_summary(record),
        "decode": lambda: k.decode(raw),
        "instance": lambda: model._instance("n1", record),
        "config": lambda: model.config_from_json(config),
        "publish": publishing(),
    }
    for name, call in cases.items():
        best = min(timeit.repeat(call, number=number, repeat=25)) / number
        print(f"{name}: {best * 1e6:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
