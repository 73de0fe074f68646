"""The compile pipeline, in one place: config text → ``ir.Service`` → units + diagnostics.

:func:`build` is the one entry point of everything that wants units: ``omc``
(its CLI and its generator mode), the runtime (``om <path> create``, ``config
edit``, the recompile before an action) and the cluster daemon. It runs the
front end (:func:`compile_text`: parse, evaluate, lower) then emission, and turns
an :class:`emit.EmitError` (a value the front end let through but no unit can
express) into one more positioned error diagnostic, so callers handle exactly
one failure channel and never see a traceback for bad input.
:func:`compile_text` and :func:`compile_file` (the front end alone) are for the
tests and the benchmarks of the stages.

Object path defaults (when ``path`` is not given):

* ``name`` is the file stem (``/etc/opensvc/web.conf`` → ``web``);
* ``namespace`` is ``root``;
* ``kind`` is inferred from the content, first match wins:

  ====================================================  ======
  content                                               kind
  ====================================================  ======
  ``DEFAULT.kind`` (pool templates write it)             its value
  a ``[data]`` section with ``crypt:`` values            sec
  a ``[data]`` section                                   cfg
  ``DEFAULT.grant`` set                                  usr
  ``DEFAULT.pool`` or ``DEFAULT.size`` set, no ``app``,
  ``container``, ``ip``, ``task`` or ``sync`` resource   vol
  anything else                                          svc
  ====================================================  ======

  and, before the content, the file location: a parent directory named
  ``cfg``/``sec``/``usr``/``vol`` (om3 layout ``<etc>/<kind>/<name>.conf``)
  wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import ir
from .diagnostics import Collector, Diagnostic, Severity, Span
from .parse import DEFAULT, Document, parse
from .records import Record

if TYPE_CHECKING:
    from .kvstore import Store


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Result(Record):
    """What a compilation produced. ``service`` is None on errors and for cfg/sec/usr."""

    path: ir.ObjectPath
    service: ir.Service | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when no diagnostic has error severity."""
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def compile_text(
    text: str,
    *,
    filename: str,
    node: str,
    path: ir.ObjectPath | None = None,
    env: Mapping[str, str] | None = None,
    cluster: Mapping[str, str] | None = None,
) -> Result:
    """Parse, validate and evaluate one config for ``node``.

    ``env`` overrides ``[env]`` keys (like ``om create --env k=v``);
    ``cluster`` provides ``{clustername}``-style references (``clustername``,
    ``clusterid``, ``clusternodes``, ``dns``).
    """
    from .lower import lower

    diags = Collector(file=filename)
    document = parse(text, filename=filename, diags=diags)
    if path is None:
        path = default_path(filename, document)
    _check_path(path, diags)
    service = None
    if document.sections or not diags.has_errors:
        service = lower(
            document,
            path=path,
            node=node,
            source=_absolute(filename),
            env=env or {},
            cluster=cluster or {},
            diags=diags,
        )
    if diags.has_errors or path.kind in (ir.Kind.CFG, ir.Kind.SEC, ir.Kind.USR):
        service = None
    return Result(path=path, service=service, diagnostics=diags.freeze())


def compile_file(
    file: Path,
    *,
    node: str,
    path: ir.ObjectPath | None = None,
    env: Mapping[str, str] | None = None,
    cluster: Mapping[str, str] | None = None,
) -> Result:
    """:func:`compile_text` on a file; an unreadable file is a diagnostic, not an exception."""
    from .contract.node import ConfigFileError, read_config_file

    try:
        text = read_config_file(file).text
    except ConfigFileError as exc:
        diag = Diagnostic(severity=Severity.ERROR, span=None, message=str(exc),
                          code="unreadable-file", file=str(file))  # fmt: skip
        guess = path or ir.ObjectPath(name=file.stem)
        return Result(path=guess, service=None, diagnostics=(diag,))
    return compile_text(text, filename=str(file), node=node, path=path, env=env, cluster=cluster)


_KIND_DIRS = {"cfg": ir.Kind.CFG, "sec": ir.Kind.SEC, "usr": ir.Kind.USR, "vol": ir.Kind.VOL}
_SERVICE_GROUPS = ("app#", "container#", "ip#", "task#", "sync#")


def default_path(filename: str, document: Document) -> ir.ObjectPath:
    """The object path of a file given no explicit one (rule table in the module doc)."""
    file = Path(filename)
    return ir.ObjectPath(name=file.stem, kind=infer_kind(file, document))


def infer_kind(file: Path, document: Document) -> ir.Kind:
    """Kind from the directory (om3 layout), ``DEFAULT.kind``, else from the content."""
    by_dir = _KIND_DIRS.get(file.parent.name)
    if by_dir is not None:
        return by_dir
    default = document.section(DEFAULT)
    declared = [e.value.strip() for e in default.entries if e.key == "kind"] if default else []
    if declared and declared[-1] in ir.Kind.__members__.values():
        return ir.Kind(declared[-1])
    data = document.section("data")
    if data is not None:
        crypt = any(e.value.startswith("crypt:") for e in data.entries)
        return ir.Kind.SEC if crypt else ir.Kind.CFG
    keys = document.default_keys()
    if "grant" in keys:
        return ir.Kind.USR
    sections = document.section_names()
    has_service_resources = any(s.startswith(_SERVICE_GROUPS) for s in sections)
    if keys & {"pool", "size"} and not has_service_resources:
        return ir.Kind.VOL
    return ir.Kind.SVC


def check_kv_refs(service: ir.Service, etc: Path) -> tuple[Diagnostic, ...]:
    """A warning for each ``*_environment`` reference whose object or key is missing
    under ``etc``: nothing is read at compile time, but the start would fail."""
    found: list[Diagnostic] = []
    stores: dict[ir.ObjectPath, Store | str] = {}
    for res in service.resources:
        for ref in res.kv_refs:
            obj = ir.ObjectPath(namespace=service.path.namespace, kind=ref.kind, name=ref.name)
            store = stores.get(obj)
            if store is None:
                store = stores[obj] = _store(obj, etc)
            why = store if isinstance(store, str) else _missing(store, obj, ref)
            if not why:
                continue
            span = ref.span
            what = f"{ref.var}={obj.name}/{ref.key}" if ref.var else f"{obj.name}/{ref.key}"
            found.append(Diagnostic(
                severity=Severity.WARNING, code="missing-key",
                span=Span(file=span.file, line=span.line, column=span.column) if span else None,
                message=f"{ref.keyword} of [{res.rid}]: {what}: {why}",
                hint=f"add it (om {obj} add --key …): a start fails without it",
            ))  # fmt: skip
    return tuple(found)


def _position(diag: Diagnostic) -> tuple[int, int]:
    return (diag.span.line, diag.span.column) if diag.span else (0, 0)


def _missing(store: Store, obj: ir.ObjectPath, ref: ir.KvRef) -> str:
    if ref.var is not None:
        return "" if store.has(ref.key) else f"{obj} has no key {ref.key!r}"
    return "" if store.matching(ref.key) else f"{obj} has no key matching {ref.key!r}"


def _store(obj: ir.ObjectPath, etc: Path) -> Store | str:
    """The key store of ``obj`` under ``etc``, or why it cannot be read."""
    from .contract.node import ConfigFileError, config_file, read_config_file
    from .kvstore import read

    file = config_file(obj, etc)
    try:
        return read(read_config_file(file).text, filename=str(file))
    except ConfigFileError as exc:
        return f"object {obj} does not exist (no {file})" if exc.missing else str(exc)


def _check_path(path: ir.ObjectPath, diags: Collector) -> None:
    """An object name or namespace ``om`` would refuse (the contract's rule, the one
    ``parse_path`` applies) is an error: such units could never be acted on."""
    from .contract.paths import name_error

    for value, what in ((path.name, "name"), (path.namespace, "namespace")):
        if what == "namespace" and value == "root":
            continue
        if why := name_error(value, what):
            diags.error(
                None, f"{why}; om refuses this object", code="invalid-name",
                hint="rename the file (the object name is the file name without .conf)",
            )  # fmt: skip


def _absolute(filename: str) -> str:
    """The ``SourcePath=`` of a config: absolute and normalised (systemd ignores, with a
    warning on every unit, a path holding ``..`` or ``.``).

    ``os.path.abspath`` normalises the text only; ``Path.resolve()`` would also follow
    symlinks, writing where a link points today instead of the path the admin named
    (``/etc/opensvc`` a link to a shared mount stays ``/etc/opensvc/…``).
    """
    if filename.startswith("<"):
        return filename
    return os.path.abspath(filename)  # noqa: PTH100 (resolve() follows symlinks: above)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Build(Record):
    """A compiled object: its path, units (empty when not ok) and diagnostics."""

    path: ir.ObjectPath
    units: Mapping[str, str] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    result: Result | None = None

    @property
    def ok(self) -> bool:
        """No error diagnostic: the units may be installed."""
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def build(
    text: str,
    *,
    filename: str,
    node: str,
    om: str,
    path: ir.ObjectPath | None = None,
    cluster: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    stores: Path | None = None,
) -> Build:
    """Compile and emit one config for ``node``; ``om`` goes into ``ExecStart=`` lines.

    ``stores``: the config directory where the cfg/sec objects the service takes keys
    from live (``configs_environment``, ``secrets_environment``); a missing object or
    key is then a warning (the start would fail). None: not checked (no node at hand).
    """
    result = compile_text(text, filename=filename, node=node, path=path, env=env, cluster=cluster)
    if not result.ok or result.service is None:
        return Build(path=result.path, diagnostics=result.diagnostics, result=result)
    service = result.service
    if stores is not None:
        found = (*result.diagnostics, *check_kv_refs(service, stores))
        result = replace(result, diagnostics=tuple(sorted(found, key=_position)))
    from .emit import EmitError, emit

    try:
        units = emit(service, om=om)
    except EmitError as exc:
        span = exc.span
        diag = Diagnostic(
            severity=Severity.ERROR,
            span=Span(file=filename, line=span.line, column=span.column) if span else None,
            message=f"cannot express [{exc.rid}] as a unit: {exc.message}",
            code="emit-error",
        )
        return Build(path=result.path, diagnostics=(*result.diagnostics, diag), result=result)
    return Build(path=result.path, units=units, diagnostics=result.diagnostics, result=result)
