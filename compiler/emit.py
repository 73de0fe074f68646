"""Emission: ``ir.Service`` → ``{unit name: unit text}`` (the only jinja2 importer).

Everything is computed here into plain view models whose values are already
escaped by :mod:`unitsyntax`; the templates in ``omc.unit_templates`` only lay
them out. The mapping is documented, with a worked example, in
``docs/units.md``. In short:

* one ``.target`` per object, pulling the resources in (``Requires=`` the
  non-optional, ``Wants=`` the optional, nothing for disabled ones);
* one unit per resource, in its resource slice: mountable fs → ``.mount``;
  apps → native services running the commands; tasks and syncs → a oneshot
  service (``om … driver run|update``) plus a ``.timer`` when scheduled;
  everything else → a oneshot service calling ``om <path> driver start|stop``;
* the start order (:mod:`order`) as ``After=`` + ``Requires=``/``Wants=``
  between consecutive steps; ``PartOf=`` the target for non-standby units;
* ``pg_*`` caps as slice properties; every level of the process-group tree
  has its slice unit (``opensvc.slice``, object, subsets, resources).

The output is deterministic: same IR, same bytes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING

from . import names, order
from . import unitsyntax as us
from .ir import (
    AppKind,
    AppResource,
    FsResource,
    Group,
    ProcessGroup,
    Resource,
    Service,
    SourceSpan,
    SyncResource,
    TaskResource,
)
from .schedule import TimerSpec, to_timer

if TYPE_CHECKING:
    import jinja2

__all__ = ["EmitError", "emit"]

DEFAULT_TIMEOUT = 3600.0  # om3 DEFAULT.timeout: the bound of every state-changing action
RESTART_WINDOW = "10min"  # StartLimitIntervalSec= for resources with restart > 0
_FLAG_ORDER = ("optional", "standby", "disable", "monitor", "shared", "encap")
_NO_LOOP_TYPES = frozenset({"bind", "none", "tmpfs", "nfs", "nfs4", "cifs", "smbfs", "9pfs"})


class EmitError(ValueError):
    """A resource that cannot be written as a unit; ``span`` points at its section."""

    def __init__(self, span: SourceSpan | None, rid: str, message: str) -> None:
        super().__init__(f"{rid}: {message}")
        self.span = span
        self.rid = rid
        self.message = message


# ---------------------------------------------------------------------------
# View models (plain, escaped strings only)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitView:
    """The ``[Unit]`` section every emitted unit shares."""

    description: str
    source: str
    deps: tuple[tuple[str, str], ...] = ()
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Ctx:
    """What every resource unit needs to know about its object."""

    service: Service
    om: str
    source: str
    target: str
    deps: Mapping[str, tuple[tuple[str, str], ...]]


# ---------------------------------------------------------------------------
# Templates


@functools.cache
def _env() -> jinja2.Environment:
    """One Environment per process; templates are compiled once and cached."""
    import jinja2  # noqa: PLC0415 - lazy: `omc check` and the runtime never render

    def load(name: str) -> str:
        # The shared [Unit] section is inlined at load time: one render per unit.
        files = resources.files("omc.unit_templates")
        text = files.joinpath(name).read_text()
        return text.replace('{% include "_unit.j2" %}\n', files.joinpath("_unit.j2").read_text())

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


@functools.cache
def _template(name: str) -> jinja2.Template:
    return _env().get_template(name)


def _render(name: str, **view: object) -> str:
    return _template(name).render(**view)


# ---------------------------------------------------------------------------
# Small value helpers


def _seconds(value: float) -> str:
    """A systemd time span: ``90s``, ``500ms``."""
    if value == int(value):
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"


def _jsonable(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (frozenset, set)):
        return sorted(_jsonable(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _config_json(pairs: Iterable[tuple[str, object]]) -> str:
    return us.json_value({k: _jsonable(v) for k, v in pairs})


def _hash(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode())
    return digest.hexdigest()[:16]


def _flags(service: Service, res: Resource) -> str:
    optional = res.optional or "noaction" in res.tags
    on = {
        "optional": optional,
        "standby": res.standby,
        "disable": res.disable or service.disable,
        "monitor": res.monitor,
        "shared": res.shared,
        "encap": res.encap or "encap" in res.tags,
    }
    return " ".join(f for f in _FLAG_ORDER if on[f])


def _is_optional(res: Resource) -> bool:
    """Optional for the dependency graph: its failure does not stop the start."""
    return res.optional or "noaction" in res.tags or res.group in (Group.TASK, Group.SYNC)


def _guard(res: Resource, fn: Callable[..., str], *args: object, **kwargs: object) -> str:
    """Call a unitsyntax/names function, turning a refusal into an :class:`EmitError`."""
    try:
        return fn(*args, **kwargs)
    except us.UnitSyntaxError as exc:
        raise EmitError(res.span, res.rid, str(exc)) from exc


# ---------------------------------------------------------------------------
# The dependency graph


def _start_unit(service: Service, res: Resource) -> str | None:
    """The unit that "starts" a resource in the target's graph (None: nothing to start)."""
    if isinstance(res, (TaskResource, SyncResource)):
        if res.schedule is None or to_timer(res.schedule).never:
            return None
        return names.resource_unit(service.path, res.rid, "timer")
    return _main_unit(service, res)


def _main_unit(service: Service, res: Resource) -> str:
    if isinstance(res, FsResource) and res.is_mountable:
        if not res.mnt:
            raise EmitError(res.span, res.rid, "a mountable fs needs 'mnt'")
        return _guard(res, names.mount_unit, res.mnt)
    return _guard(res, names.resource_unit, service.path, res.rid, "service")


def _graph(
    service: Service,
) -> tuple[dict[str, tuple[tuple[str, str], ...]], list[tuple[str, str]]]:
    """Per rid its dependency lines, and the target's lines."""
    starts = {r.rid: _start_unit(service, r) for r in service.resources}
    startable = frozenset(rid for rid, unit in starts.items() if unit)
    target = names.target(service.path)
    deps: dict[str, tuple[tuple[str, str], ...]] = {}
    target_lines: list[tuple[str, str]] = []
    target_after: list[str] = []
    for edge in order.edges(service, startable=startable):
        res = edge.resource
        unit = starts[res.rid]
        assert unit is not None
        lines: list[tuple[str, str]] = []
        if not res.standby:
            lines.append(("PartOf", target))
        for prev in edge.after:
            prev_unit = starts[prev.rid]
            assert prev_unit is not None
            lines.append(("After", prev_unit))
            lines.append(("Wants" if _is_optional(prev) else "Requires", prev_unit))
        deps[res.rid] = tuple(lines)
        target_lines.append(("Wants" if _is_optional(res) else "Requires", unit))
        target_after.append(unit)
    target_lines.extend(("After", u) for u in target_after)
    return deps, target_lines


# ---------------------------------------------------------------------------
# Units


def _environment(service: Service, res: Resource) -> str:
    path = service.path
    return us.environment(
        [
            ("OPENSVC_ID", service.id),
            ("OPENSVC_PATH", str(path)),
            ("OPENSVC_NAME", str(path)),
            ("OPENSVC_SVCPATH", str(path)),
            ("OPENSVC_SVCNAME", path.name),
            ("OPENSVC_KIND", str(path.kind)),
            ("OPENSVC_NAMESPACE", path.namespace),
            ("OPENSVC_RID", res.rid),
        ]
    )


def _unit_view(ctx: _Ctx, res: Resource, *, deps: tuple[tuple[str, str], ...]) -> UnitView:
    service = ctx.service
    config = _config_json(res.config)
    flags = _flags(service, res)
    meta = (
        ("X-OpenSVC-Path", us.raw(str(service.path), setting="X-OpenSVC-Path")),
        ("X-OpenSVC-Id", _guard(res, us.raw, service.id, setting="X-OpenSVC-Id")),
        ("X-OpenSVC-Rid", _guard(res, us.raw, res.rid, setting="X-OpenSVC-Rid")),
        ("X-OpenSVC-Driver", _guard(res, us.raw, res.driver, setting="X-OpenSVC-Driver")),
        ("X-OpenSVC-Tags", _guard(res, us.raw, " ".join(sorted(res.tags)), setting="X-Tags")),
        ("X-OpenSVC-Subset", _guard(res, us.raw, res.subset or "", setting="X-OpenSVC-Subset")),
        ("X-OpenSVC-Flags", flags),
        ("X-OpenSVC-Hash", _hash(res.driver, flags, res.subset or "", config)),
        ("X-OpenSVC-Config", config),
    )
    return UnitView(
        description=us.text(f"OpenSVC {service.path} {res.rid} ({res.driver})"),
        source=ctx.source,
        deps=deps,
        meta=meta,
    )


def _timeouts(service: Service, res: Resource, *, keys: tuple[str, str]) -> list[tuple[str, str]]:
    start = res.start_timeout
    stop = res.stop_timeout
    if isinstance(res, AppResource) and res.timeout is not None:
        start = res.timeout if start is None else start
        stop = res.timeout if stop is None else stop
    start = start if start is not None else service.start_timeout
    stop = stop if stop is not None else service.stop_timeout
    default = _object_timeout(service)
    return [
        (keys[0], _seconds(start if start is not None else default)),
        (keys[1], _seconds(stop if stop is not None else default)),
    ]


def _object_timeout(service: Service) -> float:
    """``DEFAULT.timeout`` (om3 default 1h): the bound of every state-changing action."""
    for key, value in service.config:
        if key == "timeout" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return DEFAULT_TIMEOUT


def _restart(res: Resource) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """om3 ``restart``: attempts after a failure; standby resources get at least 2.

    Returns the ``[Unit]`` (start limit) and ``[Service]`` settings.
    """
    count = max(res.restart, 2) if (res.standby and res.restart) else res.restart
    if count <= 0:
        return [], []
    unit = [("StartLimitIntervalSec", RESTART_WINDOW), ("StartLimitBurst", str(count + 1))]
    return unit, [("Restart", "on-failure"), ("RestartSec", _seconds(res.restart_delay))]


def _om(ctx: _Ctx, res: Resource, *words: str) -> str:
    argv = (ctx.om, str(ctx.service.path), "driver", *words, "--rid", res.rid)
    return _guard(res, us.exec_line, argv)


def _slice(ctx: _Ctx, res: Resource) -> str:
    return _guard(res, names.resource_slice, ctx.service.path, res.rid, res.subset)


def _driver_unit(ctx: _Ctx, res: Resource) -> str:
    return _render(
        "driver.service.j2",
        unit=_unit_view(ctx, res, deps=ctx.deps.get(res.rid, ())),
        slice=_slice(ctx, res),
        environment=_environment(ctx.service, res),
        exec_start=_om(ctx, res, "start"),
        exec_stop=_om(ctx, res, "stop"),
        settings=_timeouts(ctx.service, res, keys=("TimeoutStartSec", "TimeoutStopSec")),
    )


def _app_settings(res: AppResource) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if res.user:
        out.append(("User", _guard(res, us.plain, res.user, setting="User")))
    if res.user_group:
        out.append(("Group", _guard(res, us.plain, res.user_group, setting="Group")))
    if res.cwd:
        if not res.cwd.startswith("/"):
            raise EmitError(res.span, res.rid, f"cwd {res.cwd!r} must be an absolute path")
        out.append(("WorkingDirectory", _guard(res, us.plain, res.cwd, setting="cwd")))
    if res.umask is not None:
        out.append(("UMask", f"{res.umask:04o}"))
    for key, value in res.limits:
        if not key.startswith("Limit") or not key[5:].isalpha():
            raise EmitError(res.span, res.rid, f"unknown resource limit {key!r}")
        out.append((key, str(int(value))))
    return out


def _app_unit(ctx: _Ctx, res: AppResource) -> str:
    start = res.start or ("/bin/true",)
    env_lines = []
    if res.environment:
        env_lines.append(_guard(res, us.environment, res.environment))
    env_lines.append(_environment(ctx.service, res))
    env_files = []
    if res.configs_environment or res.secrets_environment:
        unit = names.resource_unit(ctx.service.path, res.rid, "service")
        env_files.append(f"-/run/opensvc/env/{unit}.env")
    settings = _app_settings(res)
    settings += _timeouts(ctx.service, res, keys=("TimeoutStartSec", "TimeoutStopSec"))
    limit, restart = _restart(res)
    settings += restart
    forking = res.kind is AppKind.FORKING or res.start is None
    return _render(
        "app.service.j2",
        unit=_unit_view(ctx, res, deps=(*ctx.deps.get(res.rid, ()), *limit)),
        type="forking" if forking else "exec",
        remain_after_exit=forking,
        slice=_slice(ctx, res),
        environment=env_lines,
        environment_files=env_files,
        exec_start=_guard(res, us.exec_line, start),
        exec_stop=[_guard(res, us.exec_line, res.stop, setting="ExecStop")] if res.stop else [],
        settings=settings,
    )


def _mount_options(res: FsResource) -> str:
    options = [o for o in (res.mnt_opt or "").split(",") if o]
    dev = res.dev or ""
    is_file = dev.startswith("/") and not dev.startswith("/dev/")
    if res.fs_type == "bind" and "bind" not in options:
        options.insert(0, "bind")
    elif is_file and res.fs_type not in _NO_LOOP_TYPES and "loop" not in options:
        options.append("loop")
    return ",".join(options)


def _mount_unit(ctx: _Ctx, res: FsResource) -> str:
    assert res.mnt is not None
    where = "/" + "/".join(p for p in res.mnt.split("/") if p)
    deps = (
        ("Conflicts", "umount.target"),
        ("Before", "umount.target"),
        *ctx.deps.get(res.rid, ()),
    )
    what = res.dev or (res.fs_type if res.fs_type in ("tmpfs",) else "none")
    start, _stop = _timeouts(ctx.service, res, keys=("TimeoutSec", "-"))
    return _render(
        "mount.j2",
        unit=_unit_view(ctx, res, deps=(("DefaultDependencies", "no"), *deps)),
        what=_guard(res, us.plain, what, setting="What"),
        where=_guard(res, us.plain, where, setting="Where"),
        type="none"
        if res.fs_type == "bind"
        else _guard(res, us.plain, res.fs_type, setting="Type"),
        options=_guard(res, us.plain, _mount_options(res), setting="Options"),
        slice=_slice(ctx, res),
        settings=[start],
    )


def _job_units(ctx: _Ctx, res: TaskResource | SyncResource) -> dict[str, str]:
    """A task/sync: a oneshot service running the driver, and a timer if scheduled."""
    path = ctx.service.path
    service_name = names.resource_unit(path, res.rid, "service")
    verb = "run" if isinstance(res, TaskResource) else "update"
    timeout = res.timeout if res.timeout is not None else res.start_timeout
    if timeout is None:
        timeout = _object_timeout(ctx.service)
    settings = [("TimeoutStartSec", _seconds(timeout))]
    out = {
        service_name: _render(
            "job.service.j2",
            unit=_unit_view(ctx, res, deps=()),
            slice=_slice(ctx, res),
            environment=_environment(ctx.service, res),
            exec_start=_om(ctx, res, verb),
            settings=settings,
        )
    }
    spec = to_timer(res.schedule) if res.schedule is not None else TimerSpec()
    if not spec.never:
        out[names.resource_unit(path, res.rid, "timer")] = _timer_unit(ctx, res, spec, service_name)
    return out


def _timer_unit(ctx: _Ctx, res: Resource, spec: TimerSpec, service_name: str) -> str:
    settings = []
    if spec.on_active_sec is not None:
        settings.append(("OnActiveSec", _seconds(spec.on_active_sec)))
    if spec.on_unit_active_sec is not None:
        settings.append(("OnUnitActiveSec", _seconds(spec.on_unit_active_sec)))
    if spec.randomized_delay_sec:
        settings.append(("RandomizedDelaySec", _seconds(spec.randomized_delay_sec)))
    return _render(
        "job.timer.j2",
        unit=_unit_view(ctx, res, deps=ctx.deps.get(res.rid, ())),
        notes=[us.text(n) for n in spec.notes],
        service=service_name,
        on_calendar=spec.on_calendar,
        settings=settings,
    )


def _resource_units(ctx: _Ctx, res: Resource) -> dict[str, str]:
    if isinstance(res, (TaskResource, SyncResource)):
        return _job_units(ctx, res)
    name = _main_unit(ctx.service, res)
    if isinstance(res, FsResource) and res.is_mountable:
        return {name: _mount_unit(ctx, res)}
    if isinstance(res, AppResource):
        return {name: _app_unit(ctx, res)}
    return {name: _driver_unit(ctx, res)}


# ---------------------------------------------------------------------------
# Slices and target


def _pg_props(pg: ProcessGroup) -> list[tuple[str, str]]:
    props = [
        ("CPUQuota", pg.cpu_quota),
        ("CPUWeight", pg.cpu_weight),
        ("AllowedCPUs", pg.allowed_cpus),
        ("AllowedMemoryNodes", pg.allowed_mems),
        ("MemoryMax", pg.memory_max),
        ("MemorySwapMax", pg.memory_swap_max),
        ("IOWeight", pg.io_weight),
    ]
    return [(k, us.plain(str(v), setting=k, specifiers=False)) for k, v in props if v is not None]


def _slice_unit(ctx: _Ctx, *, what: str, pg: ProcessGroup) -> str:
    path = str(ctx.service.path)
    return _render(
        "slice.j2",
        unit=UnitView(
            description=us.text(f"OpenSVC {path} {what}"),
            source=ctx.source,
            meta=(("X-OpenSVC-Path", us.raw(path, setting="X-OpenSVC-Path")),),
        ),
        props=_pg_props(pg),
    )


def _root_slice() -> str:
    """``opensvc.slice``: shared by every object, so identical bytes whoever writes it."""
    return _render(
        "root.slice.j2", unit=UnitView(description="OpenSVC objects", source="", meta=())
    )


def _slices(ctx: _Ctx) -> dict[str, str]:
    """The root, object and subset slices (resource slices come with their resource)."""
    service = ctx.service
    out = {
        names.ROOT_SLICE: _root_slice(),
        names.object_slice(service.path): _slice_unit(ctx, what="process group", pg=service.pg),
    }
    declared = {(s.group, s.name): s for s in service.subsets}
    used = {(r.group, r.subset) for r in service.resources if r.subset}
    for group, name in sorted(set(declared) | used, key=lambda k: (k[0].rank, k[1])):
        sub = declared.get((group, name))
        sname = names.subset_slice(service.path, name)
        if sname not in out:
            pg = sub.pg if sub else ProcessGroup()
            out[sname] = _slice_unit(ctx, what=f"subset#{group}:{name}", pg=pg)
    return out


def _target_unit(ctx: _Ctx, target_deps: list[tuple[str, str]]) -> str:
    service = ctx.service
    config = _config_json(service.config)
    sets = [
        {
            "group": str(s.group),
            "subset": s.subset,
            "parallel": s.parallel,
            "rids": [r.rid for r in s.resources],
        }
        for s in order.resource_sets(service)
    ]
    set_json = us.json_value(sets)
    meta = (
        ("X-OpenSVC-Path", us.raw(str(service.path), setting="X-OpenSVC-Path")),
        ("X-OpenSVC-Id", us.raw(service.id, setting="X-OpenSVC-Id")),
        ("X-OpenSVC-Node", us.raw(service.node, setting="X-OpenSVC-Node")),
        ("X-OpenSVC-Flags", "disable" if service.disable else ""),
        ("X-OpenSVC-Hash", _hash(config, set_json)),
        ("X-OpenSVC-Config", config),
        ("X-OpenSVC-Order", set_json),
    )
    return _render(
        "target.j2",
        unit=UnitView(
            description=us.text(f"OpenSVC {service.path.kind} {service.path}"),
            source=ctx.source,
            deps=tuple(target_deps),
            meta=meta,
        ),
    )


# ---------------------------------------------------------------------------
# Entry point


def emit(service: Service, *, om: str) -> dict[str, str]:
    """Every unit of ``service``; see :func:`_emit`. Raises :class:`EmitError`."""
    try:
        return _emit(service, om=om)
    except us.UnitSyntaxError as exc:  # object-level values (id, source, node)
        raise EmitError(None, "DEFAULT", str(exc)) from exc


def _emit(service: Service, *, om: str) -> dict[str, str]:
    """Every unit of ``service`` (target, slices, resource units), in a stable order.

    ``om`` is the absolute path of the ``om`` executable written into the
    ``ExecStart=`` lines of driver units. Raises :class:`EmitError` for a
    resource that cannot be expressed (a relative program path, a line break
    in a path …); the front end's validation makes that rare.
    """
    if not om.startswith("/"):
        raise ValueError(f"om must be an absolute path, got {om!r}")
    source = us.plain(service.source, setting="SourcePath")
    deps, target_deps = _graph(service)
    ctx = _Ctx(service=service, om=om, source=source, target=names.target(service.path), deps=deps)
    units = {ctx.target: _target_unit(ctx, target_deps)}
    units.update(_slices(ctx))
    for rset in _all_in_order(service):
        for res in rset:
            for name, text in _resource_units(ctx, res).items():
                if name in units:
                    raise EmitError(res.span, res.rid, f"unit {name} is written twice")
                units[name] = text
            units[_slice(ctx, res)] = _slice_unit(ctx, what=res.rid, pg=res.pg)
    return units


def _all_in_order(service: Service) -> list[tuple[Resource, ...]]:
    """Resources in start order, linked ips included (after the ip sets)."""
    sets = [s.resources for s in order.resource_sets(service)]
    seen = {r.rid for s in sets for r in s}
    rest = tuple(sorted((r for r in service.resources if r.rid not in seen), key=lambda r: r.rid))
    return [*sets, rest] if rest else sets
