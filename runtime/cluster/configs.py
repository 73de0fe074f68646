"""``om <path> create|delete`` on a cluster: the config goes to etcd, the daemons install it.

``create`` compiles the config here first (a config with errors is refused before it
reaches any node, with the same diagnostics as ``omc check``), then stores it with
its scope (``nodes`` + ``drpnodes`` as this node evaluates them; om3's default
``nodes`` is the creating node) and waits for every live node of the scope to
report it, so that ``create`` returning means "installed where it belongs" — or names
the nodes where it does not compile. ``config edit`` and a store's key commands
replace it the same way, only if nobody changed it meanwhile. ``delete`` removes the key
once the object is down everywhere (``--force`` stops it first, through an orchestrated stop).
"""

from __future__ import annotations

import time
from typing import Any

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters.etcd import delete as op_delete
from omc.runtime.adapters.etcd import put as op_put
from omc.runtime.adapters.etcd import when_mod
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.model import DOWN_LIKE
from omc.runtime.cluster.orchestrate import Cluster, OrchestrationError, check_daemon
from omc.runtime.cluster.replicate import EVERY_NODE, config_entry, in_scope
from omc.runtime.cluster.settings import ClusterSettings
from omc.runtime.cluster.state import ClusterState

INSTALL_TIMEOUT = 10.0


def scope_of(units: dict[str, str], path: ObjectPath) -> list[str]:
    """The nodes a compiled config belongs to (its target's ``nodes`` and ``drpnodes``);
    a cfg, sec or usr store belongs to every node (om3: the services of any node may
    read its keys)."""
    from omc.runtime.objects.kv import is_store
    from omc.runtime.objects.model import build

    if is_store(path):
        return [EVERY_NODE]

    config = build(path, units).config
    found: list[str] = []
    for key in ("nodes", "drpnodes"):
        value = config.get(key) or []
        for node in value if isinstance(value, list) else str(value).split():
            if str(node) not in found:
                found.append(str(node))
    return found


def create(
    settings: ClusterSettings, path: ObjectPath, text: str, units: dict[str, str]
) -> list[str]:
    """Store the config; the problems of nodes where it did not install (empty: all good)."""
    cluster = Cluster.open(settings)
    check_daemon(cluster)
    entry = config_entry(text, scope_of(units, path), settings.node)
    cluster.etcd.txn([], [op_put(cluster.state.keys.config(path), k.encode(entry))])
    return _installed(cluster, path, entry)


def update(
    settings: ClusterSettings, path: ObjectPath, text: str, units: dict[str, str], *, base: str
) -> list[str]:
    """Replace the config of an object the cluster holds (``config edit``, a store's key
    changed): stored only if the cluster's config is still ``base``, the text the change
    started from, so that a change made meanwhile on another node is never overwritten
    (one transaction on the key's revision). Returns the problems, as :func:`create`."""
    cluster = Cluster.open(settings)
    check_daemon(cluster)
    key = cluster.state.keys.config(path)
    _, found = cluster.etcd.range(key)
    current = next((kv for kv in found if kv.key == key), None)
    if current is None:
        raise OrchestrationError(f"object {path} is not known to the cluster")
    stored = k.decode(current.value)
    if not isinstance(stored, dict) or stored.get("text") != base:
        origin = stored.get("origin", "another node") if isinstance(stored, dict) else "?"
        raise OrchestrationError(
            f"{path}: its config changed in the cluster meanwhile (last stored by {origin}): "
            "not saved; edit it again"
        )
    entry = config_entry(text, scope_of(units, path), settings.node)
    result = cluster.etcd.txn([when_mod(key, "=", current.mod_revision)],
                              [op_put(key, k.encode(entry))])  # fmt: skip
    if not result.succeeded:
        raise OrchestrationError(f"{path}: its config changed in the cluster meanwhile: not saved")
    return _installed(cluster, path, entry)


def _installed(cluster: Cluster, path: ObjectPath, entry: dict[str, Any]) -> list[str]:
    """Wait for every live node of the config's scope to report it installed (or failed
    there); the problems, one per node."""
    scope = [str(n) for n in entry["scope"]]

    def installed(state: ClusterState) -> bool:
        published = state.instances.get(path, {})
        live = [n for n in state.nodes if in_scope(n, scope)]
        return all(published.get(n, {}).get("config_sha") == entry["sha256"]
                   or published.get(n, {}).get("config_error") for n in live)  # fmt: skip

    try:
        cluster.follow(installed, time.monotonic() + INSTALL_TIMEOUT)
    except OrchestrationError:
        waiting = [n for n in cluster.state.nodes if in_scope(n, scope)
                   and cluster.state.instances.get(path, {}).get(n, {}).get("config_sha")
                   != entry["sha256"]]  # fmt: skip
        return [f"{n}: did not report the config within {INSTALL_TIMEOUT:g}s" for n in waiting]
    published = cluster.state.instances.get(path, {})
    return [f"{n}: {published[n]['config_error']}" for n in sorted(published)
            if in_scope(n, scope) and published[n].get("config_error")]  # fmt: skip


def delete(settings: ClusterSettings, path: ObjectPath) -> None:
    """Remove the object from the cluster; refused while an instance is not down."""
    cluster = Cluster.open(settings)
    check_daemon(cluster)
    if path not in cluster.state.paths():
        raise OrchestrationError(f"object {path} is not known to the cluster")
    up = [n for n, v in cluster.state.instances.get(path, {}).items()
          if n in cluster.state.nodes and v.get("avail") not in DOWN_LIKE]  # fmt: skip
    if up:
        raise OrchestrationError(
            f"{path} is not down on {', '.join(sorted(up))}: `om {path} stop --wait` first, "
            "or delete --force"
        )
    keys = cluster.state.keys
    cluster.etcd.txn([], [op_delete(keys.config(path)), op_delete(keys.intent(path))])

    def gone(state: ClusterState) -> bool:
        return not any(n in state.nodes for n in state.instances.get(path, {}))

    cluster.follow(gone, time.monotonic() + INSTALL_TIMEOUT)
