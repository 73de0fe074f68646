"""``om <path> sync update|full [--target nodes|drp|drpnodes|local]`` and ``om <path> update``.

The seed's spellings (actions-seed.txt): "Sync All" is ``om <path> update``, "Sync
Nodes" ``sync update --target nodes``, "Sync DRP" ``sync update --target drp``;
om3's ``drpnodes`` and ``local`` are accepted too. Every selected sync resource
(``--rid``/``--tag``/``--subset``, default all of them but the disabled) runs its
driver's ``update`` (or ``full``) here, in rid order, inside an action session (the
object lock, the ``>>> do``/``<<< done`` bracket, the origin): the same frame as
instance actions. The driver itself refuses to copy from a node where the instance
is not up (no-op, logged), as om3 does, to protect the active copy. Scheduled syncs
are the sync units' timers (docs/units.md); this is the on-demand path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.drivers.base import Status
from omc.runtime.drivers.sync import UP_GROUPS
from omc.runtime.engine.instance import load_model
from omc.runtime.engine.observe import Looking, ResourceState, begin_observe, observe
from omc.runtime.engine.session import WAITLOCK, ActionError, session
from omc.runtime.log import Sink
from omc.runtime.objects.model import ObjectModel, ResourceModel
from omc.runtime.objects.selection import Selector, select_some
from omc.runtime.status import aggregate

TARGET_WORDS = {"nodes": "nodes", "drp": "drpnodes", "drpnodes": "drpnodes", "local": "local"}
VERBS = ("update", "full")
SIDE_GROUPS = ("sync", "task")  # not part of an instance's avail


def not_up_of(states: Mapping[str, ResourceState]) -> list[str]:
    """What keeps this node from being the sending one: its ip, disk, fs, share or
    container resources that are not up (om3: "not sufficiently started") (pure)."""
    bad = []
    for rid, st in sorted(states.items()):
        res = st.res
        if res.group not in UP_GROUPS or res.disabled or res.optional:
            continue
        if st.status not in (Status.UP, Status.STDBY_UP, Status.NA):
            bad.append(f"{rid} is {st.status}")
    return bad


def target_of(word: str | None) -> str | None:
    """The driver's target for a ``--target`` word (None: every configured target)."""
    if word is None:
        return None
    if word not in TARGET_WORDS:
        raise ActionError(
            f"unknown sync target {word!r}: expected nodes, drp, drpnodes or local", logged=False
        )
    return TARGET_WORDS[word]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPlan:
    """The sync resources an action runs, in rid order (pure)."""

    resources: tuple[ResourceModel, ...]


def plan_syncs(model: ObjectModel, selection: frozenset[str] | None) -> SyncPlan:
    """The selected, enabled sync resources (no selection: all of them)."""
    chosen = tuple(
        r
        for r in model.resources
        if r.group == "sync" and not r.disabled and (selection is None or r.rid in selection)
    )
    return SyncPlan(resources=tuple(sorted(chosen, key=lambda r: r.rid)))


def run(
    path: ObjectPath,
    verb: str,
    *,
    target: str | None,
    selector: Selector,
    argv: Sequence[str],
    console: Sink | None,
    origin: str = "user",
    waitlock: float = WAITLOCK,
) -> None:
    """Run ``verb`` (update, full) on the object's selected sync resources; raises
    ActionError (already logged) when one that is not optional failed."""
    from omc.runtime import drivers

    wanted = target_of(target)
    model = load_model(path, None)
    selectable = (r.selectable for r in model.resources)
    todo = plan_syncs(model, select_some(selectable, selector, owner=str(path)))
    local: dict[str, ResourceState] = {}
    counted = frozenset(r.rid for r in model.resources if r.group not in SIDE_GROUPS)
    look: Looking | None = None  # taken once, by not_up(), before the copies

    def avail() -> str:
        """The instance's avail: a sync changes no local resource, so the one look taken
        before copying serves the closing line too (sync and task resources do not count
        in avail: they are not looked at). Its unit states, read by systemctl, are
        waited for here, at the end: the copy does not wait for them."""
        if not local:
            local.update(look.finish() if look is not None else observe(model, rids=counted))
        return str(aggregate(s.summary() for s in local.values()).avail)

    def not_up() -> list[str]:
        """The resources keeping this node from sending (see :func:`not_up_of`), from
        the driver probes alone when they tell (no wait for systemctl)."""
        nonlocal look
        look = begin_observe(model, rids=counted)
        known = look.known(UP_GROUPS)
        if known is None:
            avail()
            known = local
        return not_up_of(known)

    with session(path, f"sync {verb}", argv=argv, origin=origin, console=console,
                 avail=avail, waitlock=waitlock) as frame:  # fmt: skip
        if not todo.resources:
            frame.log.info("no sync resource selected")
        failed = []
        refusals = not_up()
        for res in todo.resources:
            bound = frame.log.bind(rid=res.rid, subset=res.subset)
            try:
                method = getattr(drivers.get(res.driver), verb)
                method(res.view(model.display, model.id), bound, target=wanted, not_up=refusals)
            except (drivers.DriverError, drivers.UnknownDriverError, OSError) as exc:
                if res.optional:
                    bound.warning(f"{verb} failed: {exc} (optional, ignored)")
                else:
                    bound.error(f"{verb} failed: {exc}")
                    failed.append(res.rid)
        if failed:
            frame.conclude(avail(), failed=True)
            raise ActionError(f"sync {verb} failed: {', '.join(failed)}", logged=True)
        frame.conclude(avail(), failed=False)
