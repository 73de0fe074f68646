"""Value shaping shared by lowering: pg_* caps as systemd values, JSON-friendly configs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import ir
from .diagnostics import Collector, Span


def process_group(
    values: Mapping[str, Any], diags: Collector, spans: Mapping[str, Span | None]
) -> ir.ProcessGroup:
    """pg_* keywords → systemd slice values (systemd's own v1 → v2 weight conversions)."""
    if _PG_KEYS.isdisjoint(values):  # most sections set none: one shared empty record
        return _NO_CAPS
    shares = values.get("pg_cpu_shares")
    blkio = values.get("pg_blkio_weight")
    mem = values.get("pg_mem_limit")
    vmem = values.get("pg_vmem_limit")
    for name in ("pg_mem_oom_control", "pg_mem_swappiness"):
        if values.get(name) is not None:
            diags.warning(
                spans.get(name), f"'{name}' has no cgroup v2 equivalent; ignored", code="pg-ignored"
            )
    return ir.ProcessGroup(
        cpu_quota=_cpu_quota(values.get("pg_cpu_quota"), diags, spans.get("pg_cpu_quota")),
        cpu_weight=_clamp(1 + (shares - 2) * 9999 // 262142, 1, 10000) if shares else None,
        allowed_cpus=values.get("pg_cpus") or None,
        allowed_mems=values.get("pg_mems") or None,
        memory_max=mem if isinstance(mem, int) else None,
        memory_swap_max=max(vmem - mem, 0)
        if isinstance(vmem, int) and isinstance(mem, int)
        else None,
        io_weight=_clamp(blkio * 100 // 500, 1, 10000) if blkio else None,
    )


_PG_KEYS = frozenset(
    (
        "pg_cpu_shares",
        "pg_blkio_weight",
        "pg_mem_limit",
        "pg_vmem_limit",
        "pg_mem_oom_control",
        "pg_mem_swappiness",
        "pg_cpu_quota",
        "pg_cpus",
        "pg_mems",
    )
)  # every key process_group reads
_NO_CAPS = ir.ProcessGroup()


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _cpu_quota(raw: str | None, diags: Collector, span: Span | None) -> str | None:
    """``50%`` / ``50%@1`` → 50%; ``50%@all`` → 50% of every cpu; ``-1`` → unlimited."""
    if raw is None or not raw.strip() or raw.strip() == "-1":
        return None
    text = raw.strip()
    percent, _, scope = text.partition("@")
    number = percent.rstrip("%")
    try:
        value = float(number)
    except ValueError:
        diags.error(
            span,
            f"invalid pg_cpu_quota {text!r}",
            code="invalid-value",
            hint="use <n>%[@all|@<ncpu>], e.g. 50%@all",
        )
        return None
    cpus = (os.cpu_count() or 1) if scope == "all" else int(scope) if scope.isdigit() else 1
    return f"{value * cpus:g}%"


_PLAIN = frozenset((str, int, bool, float, type(None)))


def jsonable(value: Any) -> Any:
    """IR values → JSON-friendly ones (tuples stay tuples: json.dumps writes lists)."""
    if value.__class__ in _PLAIN:  # the common case, exact types only
        return value
    if isinstance(value, ir.Schedule):
        return value.raw
    if isinstance(value, ir.Requirement):
        return value.to_json()
    if isinstance(value, tuple):
        return tuple(jsonable(v) for v in value)
    return value


def jsonable_config(
    values: Mapping[str, Any], *, special: frozenset[str] | None = None
) -> tuple[tuple[str, object], ...]:
    """``values`` sorted by name, JSON-friendly.

    :func:`jsonable` changes only schedules and requirements: when the caller
    knows the names that can hold one (``special``) and none is set, the sorted
    items are the answer as they are (a resource has some 25 values).
    """
    items = sorted(values.items())
    if special is not None and special.isdisjoint(values):
        return tuple(items)
    plain = _PLAIN
    return tuple((k, v if v.__class__ in plain else jsonable(v)) for k, v in items)
