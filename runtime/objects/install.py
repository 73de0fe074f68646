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

``create`` and ``config edit`` go through :func:`commit`: the config, its units and the
marker are installed all together or not at all (a full ``/var`` or ``/etc`` fails the
command, naming the file, before anything changed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omc.compiler.contract.node import (
    cluster_settings,
    cluster_text,
    config_file,
    etc_dir,
    node_name,
    om_path,
)
from omc.compiler.contract.paths import ObjectPath
from omc.compiler.contract.units import unit_dir
from omc.runtime import safefs
from omc.runtime.layout import config_hash_file
from omc.runtime.objects.configs import ConfigError, StoreError, load_config, stage_config


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
                   cluster=cluster_settings(), stores=etc_dir())  # fmt: skip
    rendered = render_text(result.diagnostics, text) if result.diagnostics else ""
    return Compiled(units=dict(result.units), diagnostics=rendered, ok=result.ok)


Reload = Callable[[tuple[str, ...]], None]
"""One daemon-reload, told the names of the units just removed."""

Retire = Callable[[frozenset[str]], None]
"""Stop what still runs of the units a new config drops, while their files are there."""


def _digest(text: str, *, private: bool) -> str:
    """The marker of installed units: what they were compiled from (config, cluster
    values, the ``om`` path written into them) and their mode (the config's privacy)."""
    import hashlib  # not on the status path

    digest = hashlib.sha256((text + "\0" + cluster_text()).encode()).hexdigest()
    return f"{digest} {om_path()} {'0600' if private else '0644'}"


def ensure_units(path: ObjectPath, *, reload: Reload, retire: Retire) -> bool:
    """Recompile and install the object's units if its config changed; reload once if so.

    ``retire`` gets the installed units the new config no longer has, while their
    files are still there; when it raises, nothing is installed. Returns whether
    anything changed. A config with errors raises and leaves the last good units
    in place.
    """
    config = load_config(path)
    text = config.text
    digest = _digest(text, private=config.private)
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
                     installed=installed, private=config.private)  # fmt: skip
    if report.changed:
        reload(tuple(sorted(leaving)))
    safefs.write_file(marker, digest)
    return report.changed


def _stage_marker(marker: Path, digest: str) -> Path:
    """The marker written beside its final name (renamed over it to commit)."""
    staged = marker.with_name(f".{marker.name}.tmp")
    try:
        safefs.write_file(staged, digest)
    except OSError as exc:  # UnsafePathError says it all; others by their strerror
        raise StoreError(f"cannot write {marker}: {exc.strerror or exc}") from None
    return staged


def commit(
    path: ObjectPath, text: str, units: dict[str, str], *, reload: Reload, retire: Retire
) -> bool:
    """Install a new config, its compiled ``units`` and their marker: all or nothing.

    Everything that needs room is written first (the marker and the config beside their
    final names, the units into a staging directory by ``compiler.install``); then
    ``retire`` stops what the new config drops, and only renames follow: a failure among
    them puts the previous units back. Returns whether the units changed (``reload`` has
    then run once).
    """
    from omc.compiler.install import InstallError, install, installed_units

    marker = config_hash_file(path)
    staged_marker = _stage_marker(marker, _digest(text, private=True))  # om writes configs 0600
    staged_config: Path | None = None
    directory = unit_dir()
    try:
        staged_config = stage_config(path, text)
        previous = installed_units(directory, str(path))
        leaving = frozenset(previous) - frozenset(units)
        if leaving:
            retire(leaving)
        try:
            report = install(units, directory=directory, object_path=str(path),
                             installed=previous, private=True)  # fmt: skip
        except InstallError as exc:
            raise StoreError(str(exc)) from None
        try:
            staged_marker.replace(marker)  # a marker ahead of its config only recompiles
            staged_config.replace(config_file(path))
        except OSError as exc:
            install(previous, directory=directory, object_path=str(path), private=True)
            raise StoreError(f"cannot install {config_file(path)}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            safefs.remove(staged_marker)
            if staged_config is not None:
                safefs.remove(staged_config)
    if report.changed:
        reload(tuple(sorted(leaving)))
    return report.changed


def remove_units(path: ObjectPath, *, reload: Reload) -> bool:
    """Uninstall every unit of the object (``delete``)."""
    from omc.compiler.install import install

    report = install({}, directory=unit_dir(), object_path=str(path))
    safefs.remove(config_hash_file(path))
    if report.changed:
        reload(tuple(c.unit for c in report.changes))
    return report.changed
