"""Object configs on this node: list, select, read and write them (om3's layout, §1.1).

Where configs live and how they are found is the contract's
(:mod:`omc.compiler.contract.node`, ``OMC_ETC`` overrides ``/etc/opensvc``); this
module adds what ``om`` does with them: object selector expressions (§1.9) and
atomic writes. Compiling a config and installing its units is
:mod:`omc.runtime.objects.install`.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from omc.compiler.contract.node import (
    ConfigFile,
    ConfigFileError,
    config_file,
    discover,
    read_config_file,
)
from omc.compiler.contract.paths import Kind, ObjectPath, parse_path

_GLOB = frozenset("*?[")


class StoreError(Exception):
    """A config cannot be read, written or compiled; the message says which and why."""


class ConfigError(StoreError):
    """The config has errors; the message is the rendered diagnostics (file:line:col …)."""


class NotFoundError(StoreError):
    """The selector matched no object (exit code 2)."""


def list_objects() -> list[ObjectPath]:
    """Every object with a config file, in path order."""
    found, _ = discover()
    return [path for _, path in found]


def _term_matches(term: str, path: ObjectPath) -> bool:
    negate = term.startswith("!")
    term = term.removeprefix("!")
    if "**" in term:
        hit = fnmatch.fnmatchcase(path.fqn, term)
    elif term == "*":
        hit = path.kind is Kind.SVC
    else:
        parts = term.split("/")
        pattern = {1: f"root/svc/{term}", 2: f"root/{term}"}.get(len(parts), term)
        hit = fnmatch.fnmatchcase(path.fqn, pattern)
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
    """The object's config text (bounded, a regular file, UTF-8: ``read_config_file``)."""
    return load_config(path).text


def load_config(path: ObjectPath) -> ConfigFile:
    """The object's config text and whether its mode keeps it private (so are its units)."""
    try:
        return read_config_file(config_file(path), errors="strict")
    except ConfigFileError as exc:
        if exc.missing:
            raise NotFoundError(f"object {path} not found (no {config_file(path)})") from None
        raise StoreError(str(exc)) from None


def stage_config(path: ObjectPath, text: str) -> Path:
    """Write ``text`` to a temporary file beside the object's config (0600, fsynced):
    renaming it over the config is the commit (``install.commit``), unlinking it the
    abort. A full or read-only file system fails here, before anything changed."""
    import tempfile  # not on the status path

    from omc.runtime import safefs  # root's directories, 0755 whatever the umask

    target = config_file(path)
    try:
        safefs.ensure_dir(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:  # UnsafePathError says it all; others by their strerror
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror}") from None
    return Path(tmp)


def write_config(path: ObjectPath, text: str) -> Path:
    """Atomic write (temp file + rename) of an object's config."""
    staged = stage_config(path, text)
    target = config_file(path)
    try:
        staged.replace(target)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror}") from None
    return target


def remove_config(path: ObjectPath) -> bool:
    """Remove an object's config file (the cluster deleted it); False when absent."""
    try:
        config_file(path).unlink()
    except FileNotFoundError:
        return False
    return True
