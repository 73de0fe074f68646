"""One-off requests to node daemons: ``om <path> clear [--node N]``.

A node's monitor record is written only by that node's daemon, so the CLI asks:
it puts ``requests/<node>/<id>`` = ``{"do": "clear", "path": <fqn>}`` for each node
with an instance (or the one named), and the daemon resets the instance's monitor
state to ``idle`` (opensvc.md §5.5: the daemon then retries the plan if the
intent is still set) and deletes the request.
"""

from __future__ import annotations

import time

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters.etcd import put as op_put
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.orchestrate import Cluster, OrchestrationError, check_daemon
from omc.runtime.cluster.settings import ClusterSettings
from omc.runtime.cluster.state import ClusterState
from omc.runtime.log import new_sid

REQUEST_TIMEOUT = 5.0


def clear(settings: ClusterSettings, path: ObjectPath, *, node: str | None = None) -> None:
    """Reset the monitor state of ``path``'s instances (on ``node`` only, if given)."""
    cluster = Cluster.open(settings)
    check_daemon(cluster)
    published = cluster.state.instances.get(path, {})
    nodes = [n for n in published if n in cluster.state.nodes and (node is None or n == node)]
    if not nodes:
        where = f" on {node}" if node else ""
        raise OrchestrationError(f"{path} has no live instance{where} to clear")
    keys = cluster.state.keys
    ids = {n: new_sid() for n in nodes}
    ops = [op_put(keys.request(n, rid), k.encode({"do": "clear", "path": path.fqn}))
           for n, rid in ids.items()]  # fmt: skip
    cluster.etcd.txn([], ops)
    for n, rid in ids.items():  # seen as pending until the daemon deletes it
        cluster.state.requests.setdefault(n, {})[rid] = {"do": "clear", "path": path.fqn}

    def carried_out(state: ClusterState) -> bool:
        return not any(rid in state.requests.get(n, {}) for n, rid in ids.items())

    cluster.follow(carried_out, time.monotonic() + REQUEST_TIMEOUT)
