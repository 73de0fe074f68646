"""The whole pipeline in one call: config text → units + every diagnostic.

``omc compile``, the generator, the runtime and the tests all need the same
thing: the units of a config, or the reasons there are none. Front end
(:func:`api.compile_text`) and emission (:func:`emit.emit`) are separate
stages; an :class:`emit.EmitError` (a value the front end let through but no
unit can express) becomes one more error diagnostic with its span, so callers
handle exactly one failure channel and never see a traceback for bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .api import Result, compile_text
from .diagnostics import Diagnostic, Severity, Span
from .records import Record

KINDS = {k.value: k for k in ir.Kind}


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
) -> Build:
    """Compile and emit one config for ``node``; ``om`` goes into ``ExecStart=`` lines."""
    result = compile_text(text, filename=filename, node=node, path=path, env=env, cluster=cluster)
    if not result.ok or result.service is None:
        return Build(path=result.path, diagnostics=result.diagnostics, result=result)
    from .emit import EmitError, emit

    try:
        units = emit(result.service, om=om)
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


def path_from_location(file: Path) -> ir.ObjectPath | None:
    """The path an om3 layout location implies (``…/namespaces/<ns>/<kind>/<name>.conf``,
    ``…/<kind>/<name>.conf``), or None when the location says nothing."""
    parts = file.absolute().parts
    if len(parts) >= 4 and parts[-4] == "namespaces" and parts[-2] in KINDS:
        return ir.ObjectPath(namespace=parts[-3], kind=KINDS[parts[-2]], name=file.stem)
    if len(parts) >= 2 and parts[-2] in KINDS:
        return ir.ObjectPath(kind=KINDS[parts[-2]], name=file.stem)
    return None
