"""``print status`` / ``instance status``: observe one object and render it.

Fast path (≤ 0.15 s): units read from files, all ``ActiveState`` in one
``systemctl list-units``, probes in-process, no D-Bus import, no compile.

On a cluster node (``cluster.conf`` has an ``[etcd]`` section), ``print status``
also reads the cluster's state from etcd, once, bounded by :data:`ETCD_TIMEOUT`
per endpoint, for the cluster part (:mod:`.cluster`). When etcd cannot be read
the local instance is shown alone, noted ``no-monitor``, and a warning says why.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.engine.observe import ResourceState, label, observe
from omc.runtime.exitcodes import avail_code
from omc.runtime.layout import frozen_flag, is_set, stopped_dir
from omc.runtime.objects import model as model_mod
from omc.runtime.objects.model import InstanceNotFoundError
from omc.runtime.safefs import UnsafePathError, entries
from omc.runtime.status import aggregate
from omc.runtime.views.render import InstanceView, ResourceRow, flags, render_tree, to_data, to_json

if TYPE_CHECKING:
    from omc.runtime.views.cluster import ClusterView

ETCD_TIMEOUT = 1.0  # seconds per etcd endpoint: print status must not hang on a lost member


def _stopped(path: ObjectPath) -> frozenset[str]:
    """The rids with a stopped flag (one directory listing, not one lookup per resource)."""
    try:
        return frozenset(entries(stopped_dir(path)))
    except UnsafePathError:
        return frozenset()


def _row(model: model_mod.ObjectModel, st: ResourceState, stopped: frozenset[str]) -> ResourceRow:
    res = st.res
    restart = res.config.get("restart", 0)
    return ResourceRow(
        rid=res.rid,
        flags=flags(
            running=res.group == "task" and st.unit_state in ("active", "activating"),
            monitor="monitor" in res.flags,
            disabled=res.disabled,
            optional=res.optional,
            encap="encap" in res.flags,
            standby=res.standby,
            restart=int(str(restart)) if str(restart).isdigit() else 0,
            stopped=res.rid in stopped,
        ),
        status=st.status,
        label=label(model, res),
        messages=st.probe.messages,
        subset=res.subset_key,
    )


def view(path: ObjectPath, *, cluster: bool = False) -> InstanceView:
    """Observe an object and build what ``print status`` shows; ``cluster``: with the
    cluster part when this node is in a cluster."""
    model = model_mod.load(path)
    if model is None:
        raise InstanceNotFoundError(f"{path}: no instance on this node (no units installed)")
    states = observe(model)
    stopped = _stopped(path)
    agg = aggregate(s.summary() for s in states.values())
    found = InstanceView(
        path=str(path),
        node=socket.gethostname(),
        avail=agg.avail,
        overall=agg.overall,
        frozen=is_set(frozen_flag(path)),
        resources=tuple(_row(model, states[r.rid], stopped) for r in model.resources),
        parallel=model.parallel,
        extra={"units": {st.res.unit: st.unit_state for st in states.values()}},
    )
    if cluster and _in_cluster():
        part = _cluster_part(found, model)
        return replace(found, node=part.local.node if part.local else found.node, cluster=part)
    return found


def _in_cluster() -> bool:
    from omc.runtime.cluster.settings import configured

    return configured()


def _cluster_part(found: InstanceView, model: model_mod.ObjectModel) -> ClusterView:
    """The object across the cluster, from one bounded read of etcd."""
    from omc.compiler.contract.node import node_name
    from omc.runtime import safefs
    from omc.runtime.cluster.model import config_from_json
    from omc.runtime.cluster.orchestrate import Cluster, OrchestrationError
    from omc.runtime.cluster.records import orchestration_config
    from omc.runtime.cluster.settings import SettingsError, load
    from omc.runtime.layout import node_frozen_flag
    from omc.runtime.views.cluster import Local, cluster_view, unreachable

    config = config_from_json({**orchestration_config(model.config), "path": found.path})
    local = Local(node=node_name(), avail=str(found.avail), overall=str(found.overall),
                  frozen=found.frozen, node_frozen=safefs.is_file(node_frozen_flag()),
                  config=config)  # fmt: skip
    name = ""
    try:
        settings = load()
        name = settings.name
        client = Cluster.open(replace(settings, timeout=min(settings.timeout, ETCD_TIMEOUT)))
    except (SettingsError, OrchestrationError) as exc:
        return unreachable(name, str(exc), local)
    return cluster_view(client.snapshot(), replace(local, node=settings.node), name=name)


def show(path: ObjectPath, *, fmt: str = "text", cluster: bool = False) -> tuple[str, int]:
    """The rendered status (``text``, ``json`` or ``yaml``) and the avail exit code."""
    found = view(path, cluster=cluster)
    if found.cluster is not None and found.cluster.error:
        print(f"om: warning: {path}: cluster state unavailable, showing this node only: "
              f"{found.cluster.error}", file=sys.stderr)  # fmt: skip
    if fmt == "json":
        text = to_json(found)
    elif fmt == "yaml":
        from omc.runtime.views.yaml import dump

        text = dump(to_data(found))
    else:
        text = render_tree(found)
    return text, avail_code(found.avail)
