"""``print status`` / ``instance status``: observe one object and render it.

Fast path (≤ 0.15 s): units read from files, all ``ActiveState`` in one
``systemctl list-units``, probes in-process, no D-Bus import, no compile.
"""

from __future__ import annotations

import socket

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.engine.observe import ResourceState, label, observe
from omc.runtime.exitcodes import avail_code
from omc.runtime.layout import frozen_flag, is_set, stopped_dir
from omc.runtime.objects import model as model_mod
from omc.runtime.objects.model import InstanceNotFoundError
from omc.runtime.safefs import UnsafePathError, entries
from omc.runtime.status import aggregate
from omc.runtime.views.render import InstanceView, ResourceRow, flags, render_tree, to_json


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


def view(path: ObjectPath) -> InstanceView:
    """Observe an object and build what ``print status`` shows."""
    model = model_mod.load(path)
    if model is None:
        raise InstanceNotFoundError(f"{path}: no instance on this node (no units installed)")
    states = observe(model)
    stopped = _stopped(path)
    agg = aggregate(s.summary() for s in states.values())
    return InstanceView(
        path=str(path),
        node=socket.gethostname(),
        avail=agg.avail,
        overall=agg.overall,
        frozen=is_set(frozen_flag(path)),
        resources=tuple(_row(model, states[r.rid], stopped) for r in model.resources),
        parallel=model.parallel,
        extra={"units": {st.res.unit: st.unit_state for st in states.values()}},
    )


def show(path: ObjectPath, *, as_json: bool) -> tuple[str, int]:
    """The rendered status and the avail exit code."""
    found = view(path)
    text = to_json(found) if as_json else render_tree(found)
    return text, avail_code(found.avail)
