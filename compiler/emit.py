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
from pathlib import Path
from typing import TYPE_CHECKING

from . import order
from . import unitsyntax as us
from .cachedir import private_cache_dir
from .contract import names
from .contract.units import Key
from .ir import Resource, Service
from .views import (
    Context,
    EmitError,
    Spec,
    graph,
    object_environment,
    om_driver,
    resource_slice_unit,
    resource_units,
    slices,
    target_unit,
)

if TYPE_CHECKING:
    import jinja2

__all__ = ["EmitError", "emit"]


# ---------------------------------------------------------------------------
# Templates


@functools.cache
def _env() -> jinja2.Environment:
    """One Environment per process; templates are compiled once and cached."""
    import jinja2  # lazily: `omc check` and the runtime never render

    # The package's directory, not importlib.resources: that import costs a cold
    # `omc` ~5 ms, and the templates are always plain files beside the package.
    from .. import unit_templates

    files = Path(unit_templates.__file__).parent

    def load(name: str) -> str:
        # The shared [Unit] section is inlined at load time: one render per unit.
        text = (files / name).read_text()
        return text.replace('{% include "_unit.j2" %}\n', (files / "_unit.j2").read_text())

    cache_dir = private_cache_dir()
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        # Compiling the templates is most of a cold `omc compile`'s emission time;
        # jinja2 reuses the code only while the template source's checksum matches.
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache_dir)) if cache_dir else None,
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


def _render(spec: Spec) -> str:
    """``Template.render(**view)`` without its per-call copy of the view.

    A shared context reads the view dict in place (views are built per unit and
    never reused); the templates use no jinja2 globals, so nothing is lost.
    """
    name, view = spec
    template = _template(name)
    return "".join(template.root_render_func(template.new_context(view, shared=True)))


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
    sets = order.resource_sets(service)
    deps, target_deps = graph(service, sets)
    ctx = Context(
        service=service,
        om=om,
        source=source,
        target=names.target(service.path),
        deps=deps,
        sets=sets,
        environment=object_environment(service),
        meta=(
            (Key.PATH, us.raw(str(service.path), setting=Key.PATH)),
            (Key.ID, us.raw(service.id, setting=Key.ID)),
        ),
        om_driver=om_driver(om, service.path),
    )
    specs = {ctx.target: target_unit(ctx, target_deps)}
    specs.update(slices(ctx))
    for rset in _all_in_order(service, sets):
        for res in rset:
            for name, spec in resource_units(ctx, res).items():
                if name in specs:
                    raise EmitError(res.span, res.rid, f"unit {name} is written twice")
                specs[name] = spec
            specs.update(resource_slice_unit(ctx, res))
    return {name: _render(spec) for name, spec in specs.items()}


def _all_in_order(
    service: Service, sets: tuple[order.ResourceSet, ...]
) -> list[tuple[Resource, ...]]:
    """Resources in start order, linked ips included (after the ip sets)."""
    ordered = [s.resources for s in sets]
    seen = {r.rid for s in ordered for r in s}
    rest = tuple(sorted((r for r in service.resources if r.rid not in seen), key=lambda r: r.rid))
    return [*ordered, rest] if rest else ordered
