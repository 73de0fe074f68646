"""Start order: resource sets and the dependency edges that realise them.

OpenSVC starts resources set by set (opensvc.md §2.2): driver groups in the
order ip, volume, disk, fs, share, container, app, sync, task; inside a group
the default set, then named subsets in alphanumeric order; inside a set the
resources one after the other in rid string order (``fs#10`` < ``fs#2``),
except apps with a sequence number (``start = 10``), which come first by
number. A ``parallel`` subset starts its members together. Linked ip
resources (ip.netns with ``netns = container#x``) start right after their
container. Stop is the exact reverse, which systemd derives from
the same ``After=`` edges.

This module is pure: it turns an ``ir.Service`` into :class:`ResourceSet`
values and, per resource, the resources it must come after. Emission turns
those into ``After=``/``Requires=``/``Wants=``; the runtime may use the sets to
display and plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import AppResource, Group, IpResource, Resource, Service, Subset
from .records import Record

__all__ = ["Edges", "ResourceSet", "active", "edges", "resource_sets"]

_LINKED_IP = frozenset({"ip.netns"})
RANK = {group: i for i, group in enumerate(Group)}  # start order of the driver groups


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ResourceSet(Record):
    """One step of the start order: a group's default set or one of its subsets."""

    group: Group
    subset: str | None
    parallel: bool
    resources: tuple[Resource, ...]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Edges(Record):
    """What one resource waits for: the resources of the previous step."""

    resource: Resource
    after: tuple[Resource, ...]


def active(service: Service, res: Resource) -> bool:
    """Part of the start graph: not disabled (resource or object) and not encapsulated."""
    return not (service.disable or res.disable or res.encap or "encap" in res.tags)


def _sort_key(res: Resource) -> tuple[int, int, str]:
    if isinstance(res, AppResource) and res.sequence is not None:
        return (0, res.sequence, res.rid)
    return (1, 0, res.rid)


def _linked_container(res: Resource, rids: frozenset[str]) -> str | None:
    """The container a linked ip starts right after, if any."""
    if isinstance(res, IpResource) and res.driver in _LINKED_IP and res.netns in rids:
        return res.netns
    return None


def resource_sets(service: Service) -> tuple[ResourceSet, ...]:
    """Every resource set in start order (linked ips excluded: see :func:`edges`)."""
    rids = frozenset(r.rid for r in service.resources)
    subsets = {(s.group, s.name): s for s in service.subsets}
    buckets: dict[tuple[int, int, str], list[Resource]] = {}
    for res in service.resources:
        if _linked_container(res, rids):
            continue
        key = (RANK[res.group], 0 if res.subset is None else 1, res.subset or "")
        buckets.setdefault(key, []).append(res)
    out = []
    for key in sorted(buckets):
        members = sorted(buckets[key], key=_sort_key)
        group = members[0].group
        name = key[2] or None
        spec = subsets.get((group, name)) if name else None
        out.append(
            ResourceSet(
                group=group,
                subset=name,
                parallel=bool(spec and spec.parallel),
                resources=tuple(members),
            )
        )
    return tuple(out)


def subset_spec(service: Service, group: Group, name: str) -> Subset | None:
    """The ``[subset#group:name]`` section of a set, if written."""
    for s in service.subsets:
        if s.group is group and s.name == name:
            return s
    return None


def edges(
    service: Service,
    *,
    startable: frozenset[str] | None = None,
    sets: tuple[ResourceSet, ...] | None = None,
) -> tuple[Edges, ...]:
    """For every active, startable resource, the resources it must start after.

    ``startable`` restricts the graph to rids that have something to start
    (tasks and syncs without a schedule have nothing); inactive resources are
    left out and the chain links to the previous active one.
    """
    rids = frozenset(r.rid for r in service.resources)
    linked: dict[str, list[Resource]] = {}
    for res in sorted(service.resources, key=lambda r: r.rid):
        container = _linked_container(res, rids)
        if container:
            linked.setdefault(container, []).append(res)

    def ok(res: Resource) -> bool:
        return active(service, res) and (startable is None or res.rid in startable)

    out: list[Edges] = []
    tail: tuple[Resource, ...] = ()

    def chain(res: Resource) -> None:
        nonlocal tail
        if ok(res):
            out.append(Edges(resource=res, after=tail))
            tail = (res,)
        for ip in linked.get(res.rid, ()):
            chain(ip)

    for rset in sets if sets is not None else resource_sets(service):
        if not rset.parallel:
            for res in rset.resources:
                chain(res)
            continue
        members = [r for r in rset.resources if ok(r)]
        out.extend(Edges(resource=r, after=tail) for r in members)
        if members:
            tail = tuple(members)
        for res in rset.resources:
            for ip in linked.get(res.rid, ()):
                chain(ip)
    return tuple(out)
