"""Compile an object's config through the one pipeline and install its units.

Units go to ``/etc/systemd/system`` by default (the contract's ``unit_dir()``):
object configs are persistent, so are their units, and HA units carry no
``[Install]`` section, so nothing starts them at boot but ``om``.

Units are recompiled only when the config changed: the sha256 of the config
text (and of ``cluster.conf``, whose values the units embed) is kept in
``<var>/<object>/config.sha256`` with the ``om`` path written into them; the
install is atomic (``omc.compiler.install``) and ONE ``daemon-reload`` follows,
only when a unit file actually changed. A config with errors never reaches the
unit directory: the last good units stay. Units that leave are handed to the
caller's ``retire`` before their files go (the engine stops what still runs:
:mod:`omc.runtime.engine.config_change`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from omc.compiler.contract.node import (
    cluster_settings,
    cluster_text,
    config_file,
    node_name,
    om_path,
)
from omc.compiler.contract.paths import ObjectPath
from omc.compiler.contract.units import unit_dir
from omc.runtime import safefs
from omc.runtime.layout import config_hash_file
from omc.runtime.objects.configs import ConfigError, read_config


@dataclass(frozen=True, slots=True, kw_only=True)
class Compiled:
    """What compiling an object's config gave: units, or diagnostics text."""

    units: dict[str, str]
    diagnostics: str
    ok: bool


def compile_config(path: ObjectPath, text: str, *, filename: str) -> Compiled:
    """Compile a config text for this node into unit texts (never raises on bad input):
    the same pipeline, node name and cluster values as ``omc`` uses."""
    from omc.compiler.diagnostics import render_text
    from omc.compiler.pipeline import build

    result = build(text, filename=filename, node=node_name(), om=om_path(), path=path,
                   cluster=cluster_settings())  # fmt: skip
    rendered = render_text(result.diagnostics, text) if result.diagnostics else ""
    return Compiled(units=dict(result.units), diagnostics=rendered, ok=result.ok)


Reload = Callable[[tuple[str, ...]], None]
"""One daemon-reload, told the names of the units just removed."""


def ensure_units(
    path: ObjectPath, *, reload: Reload, retire: Callable[[frozenset[str]], None]
) -> bool:
    """Recompile and install the object's units if its config changed; reload once if so.

    ``retire`` gets the installed units the new config no longer has, while their
    files are still there; when it raises, nothing is installed. Returns whether
    anything changed. A config with errors raises and leaves the last good units
    in place.
    """
    import hashlib  # not on the status path

    text = read_config(path)
    digest = hashlib.sha256((text + "\0" + cluster_text()).encode()).hexdigest()
    digest += " " + om_path()
    marker = config_hash_file(path)
    with contextlib.suppress(OSError):
        if safefs.read_text(marker) == digest:
            return False
    from omc.compiler.install import install, installed_units  # only when the config changed

    compiled = compile_config(path, text, filename=str(config_file(path)))
    if not compiled.ok:
        raise ConfigError(compiled.diagnostics.rstrip() or f"{path}: config has errors")
    directory = unit_dir()
    installed = installed_units(directory, str(path))
    leaving = frozenset(installed) - frozenset(compiled.units)
    if leaving:
        retire(leaving)
    report = install(compiled.units, directory=directory, object_path=str(path),
                     installed=installed)  # fmt: skip
    if report.changed:
        reload(tuple(sorted(leaving)))
    safefs.write_file(marker, digest)
    return report.changed


def remove_units(path: ObjectPath, *, reload: Reload) -> bool:
    """Uninstall every unit of the object (``delete``)."""
    from omc.compiler.install import install

    report = install({}, directory=unit_dir(), object_path=str(path))
    safefs.remove(config_hash_file(path))
    if report.changed:
        reload(tuple(c.unit for c in report.changes))
    return report.changed
