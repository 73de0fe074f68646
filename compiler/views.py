"""Unit view models: everything emission computes, as plain escaped values.

:mod:`emit` renders these with the templates of ``omc.unit_templates``; this
module holds the mapping itself (see the summary in :mod:`emit` and
``docs/units.md``) and never touches jinja2. Each builder returns a
:data:`Spec`, the template name and its variables, already escaped by
:mod:`unitsyntax`, so the templates stay logic-free.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from . import order
from . import unitsyntax as us
from .contract import names, units
from .contract.units import Key
from .ir import (
    AppKind,
    AppResource,
    DiskResource,
    FsResource,
    Group,
    ObjectPath,
    ProcessGroup,
    Resource,
    Service,
    SourceSpan,
    SyncResource,
    TaskResource,
)
from .records import Record
from .schedule import TimerSpec, to_timer

__all__ = [
    "Context",
    "EmitError",
    "Spec",
    "UnitView",
    "graph",
    "object_environment",
    "resource_slice_unit",
    "resource_units",
    "slices",
    "target_unit",
]

Spec = tuple[str, dict[str, object]]  # (template name, template variables)

DEFAULT_TIMEOUT = 3600.0  # om3 DEFAULT.timeout: the bound of every state-changing action
RESTART_WINDOW = "10min"  # StartLimitIntervalSec= for resources with restart > 0
_FLAG_ORDER = ("optional", "standby", "disable", "monitor", "shared", "encap")
_NO_LOOP_TYPES = frozenset({"bind", "none", "tmpfs", "nfs", "nfs4", "cifs", "smbfs", "9pfs"})
_EXPOSED_REF = re.compile(r"\{(?P<rid>disk#[^.{}\[\]]+)\.exposed_devs(?:\[(?P<index>[0-9]+)\])?\}")


class EmitError(ValueError):
    """A resource that cannot be written as a unit; ``span`` points at its section."""

    def __init__(self, span: SourceSpan | None, rid: str, message: str) -> None:
        super().__init__(f"{rid}: {message}")
        self.span = span
        self.rid = rid
        self.message = message


# ---------------------------------------------------------------------------
# View models (plain, escaped strings only)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class UnitView(Record):
    """The ``[Unit]`` section every emitted unit shares."""

    description: str
    source: str
    deps: tuple[tuple[str, str], ...] = ()
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Context(Record):
    """What every resource unit needs to know about its object."""

    service: Service
    om: str
    source: str
    target: str
    deps: Mapping[str, tuple[tuple[str, str], ...]]
    sets: tuple[order.ResourceSet, ...]
    environment: str  # object_environment(service)
    meta: tuple[tuple[str, str], ...]  # X-OpenSVC-Path and -Id, escaped once
    om_driver: str | None  # us.exec_line((om, path, "driver")), None when it cannot be written


# ---------------------------------------------------------------------------
# Small value helpers


def _spec(template: str, **view: object) -> Spec:
    return (template, view)


def _seconds(value: float) -> str:
    """A systemd time span: ``90s``, ``500ms``."""
    if value == int(value):
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"


_PLAIN = frozenset((str, int, bool))


def _jsonable(value: object) -> object:
    """JSON-friendly form: enums by value, sets sorted, non-finite floats as text."""
    if value is None or value.__class__ in _PLAIN:  # the common case, exact types only
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (frozenset, set)):
        return sorted((_jsonable(v) for v in value), key=str)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _config_json(pairs: Iterable[tuple[str, object]]) -> str:
    """The one-line JSON of a config, values as :func:`_jsonable` writes them.

    json's C encoder writes str, int, bool, None, finite floats, tuples and lists
    as :func:`_jsonable` would, and calls it for the rest (enums, sets, ...): no
    pass over every value first. A non-finite float makes it raise; then the
    values go through :func:`_jsonable` (which writes those as text) first.
    """
    data = dict(pairs)
    try:
        return us.json_value(data, default=_jsonable)
    except ValueError:
        return us.json_value({k: _jsonable(v) for k, v in data.items()})


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


def graph(
    service: Service, sets: tuple[order.ResourceSet, ...]
) -> tuple[dict[str, tuple[tuple[str, str], ...]], list[tuple[str, str]]]:
    """Per rid its dependency lines, and the target's lines."""
    starts = {r.rid: _start_unit(service, r) for r in service.resources}
    startable = frozenset(rid for rid, unit in starts.items() if unit)
    target = names.target(service.path)
    deps: dict[str, tuple[tuple[str, str], ...]] = {}
    target_lines: list[tuple[str, str]] = []
    target_after: list[str] = []
    for edge in order.edges(service, startable=startable, sets=sets):
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


def object_environment(service: Service) -> str:
    """The OPENSVC_* assignments shared by every unit of an object (computed once)."""
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
        ]
    )


def _environment(ctx: Context, res: Resource) -> str:
    return f"{ctx.environment} {us.environment([('OPENSVC_RID', res.rid)])}"


def _unit_view(ctx: Context, res: Resource, *, deps: tuple[tuple[str, str], ...]) -> UnitView:
    service = ctx.service
    config = _config_json(res.config)
    flags = _flags(service, res)
    try:  # what _guard does, once for the four values
        raw = (
            (Key.RID, us.raw(res.rid, setting=Key.RID)),
            (Key.DRIVER, us.raw(res.driver, setting=Key.DRIVER)),
            (Key.TAGS, us.raw(" ".join(sorted(res.tags)), setting=Key.TAGS)),
            (Key.SUBSET, us.raw(res.subset or "", setting=Key.SUBSET)),
        )
    except us.UnitSyntaxError as exc:
        raise EmitError(res.span, res.rid, str(exc)) from exc
    meta = (
        *ctx.meta,
        *raw,
        (Key.FLAGS, flags),
        (Key.HASH, _hash(res.driver, flags, res.subset or "", config)),
        (Key.CONFIG, config),
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
    if start is None or stop is None:  # the object's timeout: a scan of its config
        default = _object_timeout(service)
        start = default if start is None else start
        stop = default if stop is None else stop
    return [(keys[0], _seconds(start)), (keys[1], _seconds(stop))]


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


def om_driver(om: str, path: ObjectPath) -> str | None:
    """The start of every ``<om> <path> driver ...`` command line of an object, written
    once (None when it cannot be: each unit then reports the error as its own)."""
    try:
        return us.exec_line((om, str(path), "driver"))
    except us.UnitSyntaxError:
        return None


def _om(ctx: Context, res: Resource, *words: str) -> str:
    """``us.exec_line((om, path, "driver", *words, "--rid", rid))``, its common
    start quoted once per object (:func:`om_driver`)."""
    if ctx.om_driver is None:
        argv = (ctx.om, str(ctx.service.path), "driver", *words, "--rid", res.rid)
        return _guard(res, us.exec_line, argv)
    rest = _guard(res, us.exec_words, (*words, "--rid", res.rid))
    return f"{ctx.om_driver} {rest}"


def _slice(ctx: Context, res: Resource) -> str:
    return _guard(res, names.resource_slice, ctx.service.path, res.rid, res.subset)


def _driver_unit(ctx: Context, res: Resource) -> Spec:
    return _spec(
        "driver.service.j2",
        unit=_unit_view(ctx, res, deps=ctx.deps.get(res.rid, ())),
        slice=_slice(ctx, res),
        environment=_environment(ctx, res),
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


def _secrets_delivery(ctx: Context, res: AppResource) -> tuple[list[str], list[str], list[str]]:
    """``EnvironmentFile=``, ``ExecStartPre=`` and ``ExecStopPost=`` of an app that takes
    keys from cfg/sec objects (docs/units.md, "Secrets"): just before each start, ``om …
    driver env`` (``+``: as root, whatever ``User=``) resolves them into a root-only file
    the unit reads for its commands; the file goes when the unit stops. Values never
    appear in the unit, its properties (``systemctl show``) or a command line."""
    if not res.kv_refs and not (res.configs_environment or res.secrets_environment):
        return [], [], []
    unit = names.resource_unit(ctx.service.path, res.rid, "service")
    file = _guard(res, names.env_file, unit)
    return (
        [_guard(res, us.plain, f"-{file}", setting="EnvironmentFile")],
        [f"+{_om(ctx, res, 'env')}"],
        [f"-+{_guard(res, us.exec_line, ('rm', '-f', file), setting='ExecStopPost')}"],
    )


def _app_unit(ctx: Context, res: AppResource) -> Spec:
    start = res.start or ("/bin/true",)
    env_lines = []
    if res.environment:
        env_lines.append(_guard(res, us.environment, res.environment))
    env_lines.append(_environment(ctx, res))
    env_files, start_pre, stop_post = _secrets_delivery(ctx, res)
    settings = _app_settings(res)
    settings += _timeouts(ctx.service, res, keys=("TimeoutStartSec", "TimeoutStopSec"))
    limit, restart = _restart(res)
    settings += restart
    forking = res.kind is AppKind.FORKING or res.start is None
    return _spec(
        "app.service.j2",
        unit=_unit_view(ctx, res, deps=(*ctx.deps.get(res.rid, ()), *limit)),
        type="forking" if forking else "exec",
        remain_after_exit=forking,
        slice=_slice(ctx, res),
        environment=env_lines,
        environment_files=env_files,
        exec_start_pre=start_pre,
        exec_start=_streamed(res, start, "ExecStart"),
        exec_stop=[_streamed(res, res.stop, "ExecStop")] if res.stop else [],
        exec_stop_post=stop_post,
        settings=settings,
    )


def _streamed(res: AppResource, argv: tuple[str, ...], setting: str) -> str:
    """An app command's ``Exec*=`` line: the command checked as written, then run behind
    systemd-cat so its stdout and stderr reach journald as info and warning
    (:func:`units.stream_argv`)."""
    _guard(res, us.exec_line, argv, setting=setting)
    return _guard(res, us.exec_line, units.stream_argv(argv), setting=setting)


def _mount_options(res: FsResource, dev: str) -> str:
    options = [o for o in (res.mnt_opt or "").split(",") if o]
    is_file = dev.startswith("/") and not dev.startswith(("/dev/", f"{names.EXPOSED_DEV_ROOT}/"))
    if res.fs_type == "bind" and "bind" not in options:
        options.insert(0, "bind")
    elif is_file and res.fs_type not in _NO_LOOP_TYPES and "loop" not in options:
        options.append("loop")
    return ",".join(options)


def _exposed_dev(service: Service, res: FsResource) -> tuple[DiskResource, int] | None:
    """The disk and device index ``dev = {disk#x.exposed_devs[n]}`` names, if it publishes them.

    ``{disk#x.exposed_devs}`` without an index fits a single value: index 0 when
    the disk exposes exactly one device. Anything else stays a run-time reference.
    """
    found = _EXPOSED_REF.fullmatch((res.dev or "").strip())
    if found is None:
        return None
    disk = next((r for r in service.resources if r.rid == found["rid"]), None)
    if not isinstance(disk, DiskResource) or disk.driver not in names.EXPOSING_DRIVERS:
        return None
    count = len(disk.devs) if disk.driver == "disk.raw" else 1
    if found["index"] is None:
        return (disk, 0) if count == 1 else None
    index = int(found["index"])
    if index >= count:
        raise EmitError(res.span, res.rid, f"{res.dev}: {disk.rid} exposes {count} device(s)")
    return disk, index


def _mount_source(ctx: Context, res: FsResource) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``What=``, and the ordering on the disk whose published device it is."""
    exposed = _exposed_dev(ctx.service, res)
    if exposed is None:
        return res.dev or (res.fs_type if res.fs_type in ("tmpfs",) else "none"), ()
    disk, index = exposed
    what = _guard(res, names.exposed_dev_path, ctx.service.path, disk.rid, index)
    unit = _main_unit(ctx.service, disk)
    return what, (("After", unit), ("Requires", unit))


def _mount_unit(ctx: Context, res: FsResource) -> Spec:
    assert res.mnt is not None
    where = "/" + "/".join(p for p in res.mnt.split("/") if p)
    what, on_disk = _mount_source(ctx, res)
    chain = ctx.deps.get(res.rid, ())
    deps = (
        ("Conflicts", "umount.target"),
        ("Before", "umount.target"),
        *chain,
        *(line for line in on_disk if line not in chain),
    )
    start, _stop = _timeouts(ctx.service, res, keys=("TimeoutSec", "-"))
    return _spec(
        "mount.j2",
        unit=_unit_view(ctx, res, deps=(("DefaultDependencies", "no"), *deps)),
        what=_guard(res, us.plain, what, setting="What"),
        where=_guard(res, us.plain, where, setting="Where"),
        type="none"
        if res.fs_type == "bind"
        else _guard(res, us.plain, res.fs_type, setting="Type"),
        options=_guard(res, us.plain, _mount_options(res, what), setting="Options"),
        slice=_slice(ctx, res),
        settings=[start],
    )


def _job_units(ctx: Context, res: TaskResource | SyncResource) -> dict[str, Spec]:
    """A task/sync: a oneshot service running the driver, and a timer if scheduled."""
    path = ctx.service.path
    service_name = names.resource_unit(path, res.rid, "service")
    verb = "run" if isinstance(res, TaskResource) else "update"
    timeout = res.timeout if res.timeout is not None else res.start_timeout
    if timeout is None:
        timeout = _object_timeout(ctx.service)
    settings = [("TimeoutStartSec", _seconds(timeout))]
    out: dict[str, Spec] = {
        service_name: _spec(
            "job.service.j2",
            unit=_unit_view(ctx, res, deps=()),
            slice=_slice(ctx, res),
            environment=_environment(ctx, res),
            exec_start=_om(ctx, res, verb),
            settings=settings,
        )
    }
    spec = to_timer(res.schedule) if res.schedule is not None else TimerSpec()
    if not spec.never:
        out[names.resource_unit(path, res.rid, "timer")] = _timer_unit(ctx, res, spec, service_name)
    return out


def _timer_unit(ctx: Context, res: Resource, spec: TimerSpec, service_name: str) -> Spec:
    settings = []
    if spec.on_active_sec is not None:
        settings.append(("OnActiveSec", _seconds(spec.on_active_sec)))
    if spec.on_unit_active_sec is not None:
        settings.append(("OnUnitActiveSec", _seconds(spec.on_unit_active_sec)))
    if spec.randomized_delay_sec:
        settings.append(("RandomizedDelaySec", _seconds(spec.randomized_delay_sec)))
    return _spec(
        "job.timer.j2",
        unit=_unit_view(ctx, res, deps=ctx.deps.get(res.rid, ())),
        notes=[us.text(n) for n in spec.notes],
        service=service_name,
        on_calendar=spec.on_calendar,
        settings=settings,
    )


def resource_units(ctx: Context, res: Resource) -> dict[str, Spec]:
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


def _slice_unit(ctx: Context, *, what: str, pg: ProcessGroup) -> Spec:
    path = str(ctx.service.path)
    return _spec(
        "slice.j2",
        unit=UnitView(
            description=us.text(f"OpenSVC {path} {what}"),
            source=ctx.source,
            meta=((Key.PATH, us.raw(path, setting=Key.PATH)),),
        ),
        props=_pg_props(pg),
    )


def _root_slice() -> Spec:
    """``opensvc.slice``: shared by every object, so identical bytes whoever writes it."""
    return _spec("root.slice.j2", unit=UnitView(description="OpenSVC objects", source="", meta=()))


def slices(ctx: Context) -> dict[str, Spec]:
    """The root, object and subset slices (resource slices come with their resource)."""
    service = ctx.service
    out = {
        names.ROOT_SLICE: _root_slice(),
        names.object_slice(service.path): _slice_unit(ctx, what="process group", pg=service.pg),
    }
    declared = {(s.group, s.name): s for s in service.subsets}
    used = {(r.group, r.subset) for r in service.resources if r.subset}
    for group, name in sorted(set(declared) | used, key=lambda k: (order.RANK[k[0]], k[1])):
        sub = declared.get((group, name))
        sname = names.subset_slice(service.path, name)
        if sname not in out:
            pg = sub.pg if sub else ProcessGroup()
            out[sname] = _slice_unit(ctx, what=f"subset#{group}:{name}", pg=pg)
    return out


def target_unit(ctx: Context, target_deps: list[tuple[str, str]]) -> Spec:
    service = ctx.service
    config = _config_json(service.config)
    sets = [
        {
            "group": str(s.group),
            "subset": s.subset,
            "parallel": s.parallel,
            "rids": [r.rid for r in s.resources],
        }
        for s in ctx.sets
    ]
    set_json = us.json_value(sets)
    meta = (
        (Key.PATH, us.raw(str(service.path), setting=Key.PATH)),
        (Key.ID, us.raw(service.id, setting=Key.ID)),
        (Key.NODE, us.raw(service.node, setting=Key.NODE)),
        (Key.FLAGS, "disable" if service.disable else ""),
        (Key.HASH, _hash(config, set_json)),
        (Key.CONFIG, config),
        (Key.ORDER, set_json),
    )
    return _spec(
        "target.j2",
        unit=UnitView(
            description=us.text(f"OpenSVC {service.path.kind} {service.path}"),
            source=ctx.source,
            deps=tuple(target_deps),
            meta=meta,
        ),
    )


def resource_slice_unit(ctx: Context, res: Resource) -> dict[str, Spec]:
    """The slice unit of one resource (its ``pg_*`` caps as properties)."""
    return {_slice(ctx, res): _slice_unit(ctx, what=res.rid, pg=res.pg)}
