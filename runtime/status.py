"""Status aggregation (opensvc.md §6.1): resource statuses → instance avail and overall.

Pure. The merge table is om3's ``status.Add`` (v2 ``MERGE_RULES``), with its two
internal values: "stdby up with up" (shown ``up``) and "stdby up with down"
(shown ``stdby up``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from omc.runtime.drivers.base import Status

_UP_WITH_STDBY = "up+stdby"
_STDBY_WITH_DOWN = "stdby+down"
_Value = Status | str

_RULES: dict[frozenset[_Value], _Value] = {
    frozenset({Status.UP}): Status.UP,
    frozenset({Status.DOWN}): Status.DOWN,
    frozenset({Status.UP, Status.DOWN}): Status.WARN,
    frozenset({Status.UP, Status.STDBY_UP}): _UP_WITH_STDBY,
    frozenset({Status.UP, Status.STDBY_DOWN}): Status.WARN,
    frozenset({Status.DOWN, Status.STDBY_UP}): _STDBY_WITH_DOWN,
    frozenset({Status.DOWN, Status.STDBY_DOWN}): Status.STDBY_DOWN,
    frozenset({Status.STDBY_UP}): Status.STDBY_UP,
    frozenset({Status.STDBY_DOWN}): Status.STDBY_DOWN,
    frozenset({Status.STDBY_UP, Status.STDBY_DOWN}): Status.WARN,
    frozenset({_UP_WITH_STDBY}): _UP_WITH_STDBY,
    frozenset({_UP_WITH_STDBY, Status.UP}): _UP_WITH_STDBY,
    frozenset({_UP_WITH_STDBY, Status.STDBY_UP}): _UP_WITH_STDBY,
    frozenset({_UP_WITH_STDBY, Status.DOWN}): Status.WARN,
    frozenset({_UP_WITH_STDBY, Status.STDBY_DOWN}): Status.WARN,
    frozenset({_STDBY_WITH_DOWN}): _STDBY_WITH_DOWN,
    frozenset({_STDBY_WITH_DOWN, Status.DOWN}): _STDBY_WITH_DOWN,
    frozenset({_STDBY_WITH_DOWN, Status.STDBY_UP}): _STDBY_WITH_DOWN,
    frozenset({_STDBY_WITH_DOWN, Status.UP}): Status.WARN,
    frozenset({_STDBY_WITH_DOWN, Status.STDBY_DOWN}): Status.WARN,
    frozenset({_STDBY_WITH_DOWN, _UP_WITH_STDBY}): Status.WARN,
}
_NEUTRAL = frozenset({Status.NA, Status.UNDEF})


def _add(acc: _Value, value: _Value) -> _Value:
    if value in _NEUTRAL:
        return acc
    if acc in _NEUTRAL:
        return value
    if Status.WARN in (acc, value):
        return Status.WARN
    return _RULES[frozenset({acc, value})]


def merge(statuses: Iterable[Status]) -> Status:
    """The aggregate of resource statuses; ``n/a`` when there is nothing to merge."""
    acc: _Value = Status.NA
    for value in statuses:
        acc = _add(acc, value)
    if acc == _UP_WITH_STDBY:
        return Status.UP
    if acc == _STDBY_WITH_DOWN:
        return Status.STDBY_UP
    return Status(acc)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceStatus:
    """One resource's evaluated status, as aggregation needs it."""

    rid: str
    status: Status
    optional: bool = False
    group: str = ""
    messages: tuple[str, ...] = ()

    @property
    def has_warnings(self) -> bool:
        return any(m.startswith(("warn:", "error:")) for m in self.messages)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStatus:
    avail: Status
    overall: Status


def aggregate(resources: Iterable[ResourceStatus]) -> InstanceStatus:
    """Avail: non-optional, non-sync/task resources. Overall: all, warn on warning logs."""
    items = tuple(resources)
    avail = merge(r.status for r in items if not r.optional and r.group not in ("sync", "task"))
    overall = merge(r.status for r in items)
    if overall is not Status.NA and any(r.has_warnings for r in items):
        overall = Status.WARN
    return InstanceStatus(avail=avail, overall=overall)
