"""Read a resource back from its installed unit file: the ``X-OpenSVC-*`` keys.

The driver entry point runs on every oneshot start and stop, so this module
imports nothing heavy: no compiler, no D-Bus. It reads one file and decodes
one line of JSON (``X-OpenSVC-Config=``, see docs/design.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from omc.compiler.contract.paths import rid_error
from omc.compiler.contract.units import Key, search_path

from .base import DriverError, ResourceView


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """Every ``key=value`` of a unit file by section, repeated keys kept in order (list
    settings like ``After=`` repeat), backslash continuations joined. The one unit-file
    reader of the runtime: the model and the driver entry point both read through it."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = sections.setdefault("", {})
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_keys(text: str, section: str = "Unit") -> dict[str, str]:
    """The ``key=value`` pairs of one section (last value wins, as systemd reads them)."""
    return {k: v[-1] for k, v in unit_sections(text).get(section, {}).items()}


def decode_config(value: str, *, unit: str) -> dict[str, object]:
    """The JSON of ``X-OpenSVC-Config=``, written raw (``unitsyntax.json_value``): the one
    decoder of it (the model reads it through here too)."""
    try:
        data = json.loads(value or "{}")
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise DriverError(f"{unit}: X-OpenSVC-Config is not a JSON object: {value[:80]!r}")
    return {str(k): v for k, v in data.items()}


def _cgroup_unit() -> str | None:
    """The service this process runs in, when systemd started it (ExecStart of the unit)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, cgroup = parts
        if controllers in ("", "name=systemd"):
            last = cgroup.rsplit("/", 1)[-1]
            if last.endswith(".service"):
                return last
    return None


def _named_unit(path: str, rid: str) -> str | None:
    """The unit name by the contract's naming rule (None for a path or rid it refuses)."""
    from omc.compiler.contract.names import resource_unit
    from omc.compiler.contract.paths import parse_path

    try:
        return resource_unit(parse_path(path), rid, "service")
    except ValueError:  # PathError, UnitSyntaxError
        return None


def _find(name: str) -> Path | None:
    for directory in search_path():
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _scan(path: str, rid: str) -> Iterator[Path]:
    """Last resort: every unit file declaring this path and rid (a mountable fs is a
    ``.mount`` named from its mount point, so only a scan finds it by rid)."""
    want = (f"{Key.PATH}={path}", f"{Key.RID}={rid}")
    for directory in search_path():
        if not directory.is_dir():
            continue
        found = [*directory.glob("*.service"), *directory.glob("*.mount")]
        for candidate in sorted(found):
            try:
                text = candidate.read_text()
            except OSError:
                continue
            if all(w in text.splitlines() for w in want):
                yield candidate


def locate(path: str, rid: str, unit: str | None = None) -> Path:
    """The unit file of resource ``rid`` of object ``path``."""
    names = [unit] if unit else [n for n in (_cgroup_unit(), _named_unit(path, rid)) if n]
    for name in names:
        found = _find(name)
        if found is not None and (unit or _declares(found, path, rid)):
            return found
    for found in _scan(path, rid):
        return found
    where = ", ".join(str(d) for d in search_path())
    raise DriverError(f"no unit file for {path} {rid} in {where}")


def _declares(file: Path, path: str, rid: str) -> bool:
    keys = unit_keys(file.read_text())
    return keys.get(Key.PATH) == path and keys.get(Key.RID) == rid


def _object_id(text: str) -> str:
    """``OPENSVC_ID`` from the environment (systemd sets it) or the unit's Environment=."""
    if os.environ.get("OPENSVC_ID"):
        return os.environ["OPENSVC_ID"]
    for line in unit_keys(text, "Service").get("Environment", "").split():
        key, _, value = line.strip('"').partition("=")
        if key == "OPENSVC_ID":
            return value
    return ""


def view_from_text(text: str, *, unit: str) -> ResourceView:
    """Build the :class:`ResourceView` a unit file describes."""
    keys = unit_keys(text)
    missing = [k for k in (Key.PATH, Key.RID, Key.DRIVER) if k not in keys]
    if missing:
        raise DriverError(f"{unit}: not an omc resource unit (missing {', '.join(missing)})")
    if why := rid_error(keys[Key.RID]):
        raise DriverError(f"{unit}: {why}")
    return ResourceView(
        path=keys[Key.PATH],
        rid=keys[Key.RID],
        driver=keys[Key.DRIVER],
        config=decode_config(keys.get(Key.CONFIG, ""), unit=unit),
        tags=frozenset(keys.get(Key.TAGS, "").split()),
        subset=keys.get(Key.SUBSET) or None,
        flags=frozenset(keys.get(Key.FLAGS, "").split()),
        unit=unit,
        object_id=_object_id(text),
    )


def load(path: str, rid: str, unit: str | None = None) -> ResourceView:
    """Find and read the unit of ``rid``; the entry point's only source of settings."""
    file = locate(path, rid, unit)
    try:
        text = file.read_text()
    except OSError as exc:
        raise DriverError(f"cannot read {file}: {exc.strerror}") from None
    return view_from_text(text, unit=file.name)


def _object_files(path: str, pattern: str) -> Iterator[tuple[Path, str]]:
    """Unit files of one object (first one wins per name, as systemd's search path does)."""
    seen: set[str] = set()
    want = f"{Key.PATH}={path}"
    for directory in search_path():
        if not directory.is_dir():
            continue
        for candidate in sorted(directory.glob(pattern)):
            if candidate.name in seen:
                continue
            try:
                text = candidate.read_text()
            except OSError:
                continue
            if want in text.splitlines():
                seen.add(candidate.name)
                yield candidate, text


def object_views(path: str) -> list[ResourceView]:
    """Every resource of an object, from its service and mount units."""
    views = []
    for pattern in ("*.service", "*.mount"):
        for file, text in _object_files(path, pattern):
            if Key.RID in unit_keys(text):
                views.append(view_from_text(text, unit=file.name))
    return sorted(views, key=lambda v: v.rid)


def driver_views(prefix: str) -> list[ResourceView]:
    """Every installed resource (of every object) whose driver starts with ``prefix``."""
    seen: set[str] = set()
    views = []
    for directory in search_path():
        if not directory.is_dir():
            continue
        for candidate in sorted(directory.glob("*.service")):
            if candidate.name in seen:
                continue
            seen.add(candidate.name)
            try:
                text = candidate.read_text()
            except OSError:
                continue
            keys = unit_keys(text)
            if Key.RID in keys and keys.get(Key.DRIVER, "").startswith(prefix):
                views.append(view_from_text(text, unit=candidate.name))
    return views


def service_config(path: str) -> dict[str, object]:
    """The object-level keywords, from the target unit's ``X-OpenSVC-Config``."""
    for file, text in _object_files(path, "*.target"):
        return decode_config(unit_keys(text).get(Key.CONFIG, ""), unit=file.name)
    raise DriverError(f"no target unit for {path} in {', '.join(map(str, search_path()))}")
