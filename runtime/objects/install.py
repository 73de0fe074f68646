"""Compile an object's config through the one pipeline and install its units.

Units go to ``/etc/systemd/system`` by default (the contract's ``unit_dir()``):
object configs are persistent, so are their units, and HA units carry no
``[Install]`` section, so nothing starts them at boot but ``om``.

Units are recompiled only when the config changed: the sha256 of the config
text (and of ``cluster.conf``, whose values the units embed) is kept in
``<var>/<object>/config.sha256`` with the ``om`` path written into them; the
install is atomic (``omc.compiler.install``) and ONE ``daemon-reload`` follows,
only when a unit file actually changed. A config with errors never reaches the
unit directory: the last good units stay.

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
from omc.runtime.layout import object_var_dir
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


def _hash_file(path: ObjectPath) -> Path:
    return object_var_dir(path) / "config.sha256"


def _digest(text: str, *, private: bool) -> str:
    """The marker of installed units: what they were compiled from (config, cluster
    values, the ``om`` path written into them) and their mode (the config's privacy)."""
    import hashlib  # not on the status path

    digest = hashlib.sha256((text + "\0" + cluster_text()).encode()).hexdigest()
    return f"{digest} {om_path()} {'0600' if private else '0644'}"


def ensure_units(path: ObjectPath, *, reload: Callable[[], None]) -> bool:
    """Recompile and install the object's units if its config changed; reload once if so.

    Returns whether anything changed. A config with errors raises and leaves
    the last good units in place.
    """
    config = load_config(path)
    text = config.text
    digest = _digest(text, private=config.private)
    marker = _hash_file(path)
    with contextlib.suppress(OSError):
        if marker.read_text() == digest:
            return False
    from omc.compiler.install import install  # only when the config changed

    compiled = compile_config(path, text, filename=str(config_file(path)))
    if not compiled.ok:
        raise ConfigError(compiled.diagnostics.rstrip() or f"{path}: config has errors")
    report = install(compiled.units, directory=unit_dir(), object_path=str(path),
                     private=config.private)  # fmt: skip
    if report.changed:
        reload()
    _stage_marker(marker, digest).replace(marker)
    return report.changed


def _stage_marker(marker: Path, digest: str) -> Path:
    """The marker written beside its final name (renamed over it to commit)."""
    staged = marker.with_name(f".{marker.name}.tmp")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(digest)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise StoreError(f"cannot write {marker}: {exc.strerror}") from None
    return staged


def commit(
    path: ObjectPath, text: str, units: dict[str, str], *, reload: Callable[[], None]
) -> bool:
    """Install a new config, its compiled ``units`` and their marker: all or nothing.

    Everything that needs room is written first (the marker and the config beside their
    final names, the units into a staging directory by ``compiler.install``); only
    renames follow, and a failure among them puts the previous units back. Returns
    whether the units changed (``reload`` has then run once).
    """
    from omc.compiler.install import InstallError, install, installed_units

    marker = _hash_file(path)
    staged_marker = _stage_marker(marker, _digest(text, private=True))  # om writes configs 0600
    staged_config: Path | None = None
    try:
        staged_config = stage_config(path, text)
        previous = installed_units(unit_dir(), str(path))
        try:
            report = install(units, directory=unit_dir(), object_path=str(path), private=True)
        except InstallError as exc:
            raise StoreError(str(exc)) from None
        try:
            staged_marker.replace(marker)  # a marker ahead of its config only forces a recompile
            staged_config.replace(config_file(path))
        except OSError as exc:
            install(previous, directory=unit_dir(), object_path=str(path), private=True)
            raise StoreError(f"cannot install {config_file(path)}: {exc.strerror}") from None
    finally:
        staged_marker.unlink(missing_ok=True)
        if staged_config is not None:
            staged_config.unlink(missing_ok=True)
    if report.changed:
        reload()
    return report.changed


def remove_units(path: ObjectPath, *, reload: Callable[[], None]) -> bool:
    """Uninstall every unit of the object (``delete``)."""
    from omc.compiler.install import install

    report = install({}, directory=unit_dir(), object_path=str(path))
    with contextlib.suppress(FileNotFoundError):
        _hash_file(path).unlink()
    if report.changed:
        reload()
    return report.changed
