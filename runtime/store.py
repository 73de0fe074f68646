"""Object configs in ``/etc/opensvc`` and the units compiled from them.

``OMC_ETC`` and ``OMC_UNIT_DIR`` override the two directories (tests, and
several lab nodes sharing one file system). Units go to ``/etc/systemd/system``
by default: object configs are persistent, so are their units, and HA units
carry no ``[Install]`` section, so nothing starts them at boot but ``om``.

Units are recompiled only when the config changed: the sha256 of the config
text is kept in ``<var>/<object>/config.sha256`` next to the units'
fingerprint; the install is atomic (``omc.compiler.install``) and ONE
``daemon-reload`` follows, only when a unit file actually changed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from omc.runtime.model import unit_dir
from omc.runtime.paths import (
    KINDS,
    ObjectPath,
    PathError,
    config_file,
    etc_dir,
    fqn,
    object_var_dir,
    parse_path,
)

_GLOB = frozenset("*?[")
_NOT_OBJECTS = frozenset({"cluster.conf", "node.conf", "namespace.conf"})


class StoreError(Exception):
    """A config cannot be read, written or compiled; the message says which and why."""


class ConfigError(StoreError):
    """The config has errors; the message is the rendered diagnostics (file:line:col …)."""


class NotFoundError(StoreError):
    """The selector matched no object (exit code 2)."""


def list_objects() -> list[ObjectPath]:
    """Every object with a config file, in path order (om3 layout, §1.1)."""
    etc = etc_dir()
    found: list[ObjectPath] = []
    for file in _conf_files(etc):
        rel = file.relative_to(etc).with_suffix("").parts
        with contextlib.suppress(PathError):
            if len(rel) == 1:
                found.append(parse_path(rel[0]))
            elif len(rel) == 2 and rel[0] in KINDS:
                found.append(parse_path("/".join(rel)))
            elif len(rel) == 4 and rel[0] == "namespaces":
                found.append(parse_path("/".join(rel[1:])))
    return sorted(found, key=fqn)


def _conf_files(etc: Path) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        for entry in etc.iterdir():
            if entry.is_file() and entry.suffix == ".conf" and entry.name not in _NOT_OBJECTS:
                yield entry
            elif entry.is_dir() and entry.name in KINDS:
                yield from sorted(entry.glob("*.conf"))
        yield from sorted((etc / "namespaces").glob("*/*/*.conf"))


def _term_matches(term: str, path: ObjectPath) -> bool:
    negate = term.startswith("!")
    term = term.removeprefix("!")
    if "**" in term:
        hit = fnmatch.fnmatchcase(fqn(path), term)
    elif term == "*":
        hit = path.kind == "svc"
    else:
        parts = term.split("/")
        pattern = {1: f"root/svc/{term}", 2: f"root/{term}"}.get(len(parts), term)
        hit = fnmatch.fnmatchcase(fqn(path), pattern)
    return hit != negate


def select_objects(expr: str, objects: list[ObjectPath] | None = None) -> list[ObjectPath]:
    """om3 object selectors (§1.9): globs, ``,`` union, ``+`` intersection, ``!`` negation.

    An expression without glob characters is an exact path that must exist.
    """
    if not any(c in expr for c in _GLOB | {",", "+", "!"}):
        wanted = parse_path(expr)
        exists = config_file(wanted).is_file() if objects is None else wanted in objects
        if not exists:
            raise NotFoundError(f"object {expr} not found (no {config_file(wanted)})")
        return [wanted]
    known = list_objects() if objects is None else objects
    chosen = [
        p
        for p in known
        if any(all(_term_matches(t, p) for t in u.split("+") if t) for u in expr.split(","))
    ]
    if not chosen:
        raise NotFoundError(f"no object matches {expr!r}")
    return chosen


def config_file_exists(path: ObjectPath) -> bool:
    return config_file(path).is_file()


def read_config(path: ObjectPath) -> str:
    try:
        return config_file(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"object {path} not found (no {config_file(path)})") from None
    except OSError as exc:
        raise StoreError(f"cannot read {config_file(path)}: {exc.strerror}") from None


def write_config(path: ObjectPath, text: str) -> Path:
    """Atomic write (temp file + rename) of an object's config."""
    import tempfile  # not on the status path

    target = config_file(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).replace(target)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror}") from None
    return target


@dataclass(frozen=True, slots=True, kw_only=True)
class Compiled:
    """What compiling an object's config gave: units, or diagnostics text."""

    units: dict[str, str]
    diagnostics: str
    ok: bool


def om_executable() -> str:
    """The ``om`` written into ExecStart lines: the one beside the running interpreter."""
    return os.environ.get("OMC_OM", str(Path(sys.executable).parent / "om"))


def compile_config(path: ObjectPath, text: str, *, filename: str) -> Compiled:
    """Compile a config text for this node into unit texts (never raises on bad input)."""
    from omc.compiler.api import compile_text
    from omc.compiler.cli import cluster_settings, default_node
    from omc.compiler.diagnostics import render_text
    from omc.compiler.emit import emit
    from omc.compiler.ir import Kind
    from omc.compiler.ir import ObjectPath as IrPath

    node = default_node()  # the same node name and cluster references as `omc` uses
    ir_path = IrPath(namespace=path.namespace, kind=Kind(path.kind), name=path.name)
    cluster = cluster_settings(etc_dir())
    result = compile_text(text, filename=filename, node=node, path=ir_path, cluster=cluster)
    rendered = render_text(result.diagnostics, text) if result.diagnostics else ""
    if not result.ok or result.service is None:
        return Compiled(units={}, diagnostics=rendered, ok=False)
    return Compiled(units=emit(result.service, om=om_executable()), diagnostics=rendered, ok=True)


def _hash_file(path: ObjectPath) -> Path:
    return object_var_dir(path) / "config.sha256"


def ensure_units(path: ObjectPath, *, reload: Callable[[], None]) -> bool:
    """Recompile and install the object's units if its config changed; reload once if so.

    Returns whether anything changed. A config with errors raises and leaves
    the last good units in place.
    """
    import hashlib  # not on the status path

    text = read_config(path)
    cluster_conf = etc_dir() / "cluster.conf"  # {clustername} & co. come from it
    cluster_text = cluster_conf.read_text() if cluster_conf.is_file() else ""
    digest = hashlib.sha256((text + "\0" + cluster_text).encode()).hexdigest()
    digest += " " + om_executable()
    marker = _hash_file(path)
    with contextlib.suppress(OSError):
        if marker.read_text() == digest:
            return False
    from omc.compiler.install import install  # only when the config changed

    compiled = compile_config(path, text, filename=str(config_file(path)))
    if not compiled.ok:
        raise ConfigError(compiled.diagnostics.rstrip() or f"{path}: config has errors")
    report = install(compiled.units, directory=unit_dir(), object_path=str(path))
    if report.changed:
        reload()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(digest)
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
