"""The service model read back from installed units (the ``X-OpenSVC-*`` keys).

The runtime never re-compiles to learn what a service is: the units installed
for this node *are* the model (docs/design.md, "Unit contract"). Reading them
is a directory scan plus a few small file reads — fast enough for every
``print status``, and always consistent with what systemd itself runs.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omc.compiler.contract.paths import ObjectPath, group_rank
from omc.compiler.contract.units import UNIT_SUFFIXES, Flag, Key, search_path
from omc.runtime.drivers import unitfile
from omc.runtime.drivers.base import DriverError, ResourceView
from omc.runtime.objects.selection import Selectable


class InstanceNotFoundError(Exception):
    """No units are installed for the object on this node (exit code 3)."""


class ModelError(Exception):
    """Installed units that cannot be read as a service model; the message names the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitFile:
    """The keys of one unit file the runtime cares about (last value wins, lists kept)."""

    name: str
    keys: Mapping[str, tuple[str, ...]]

    def get(self, key: str, default: str = "") -> str:
        values = self.keys.get(key)
        return values[-1] if values else default


def parse_unit(name: str, text: str) -> UnitFile:
    """The keys of all sections of a unit file, values in order (section names dropped:
    the keys the runtime reads are distinct across sections)."""
    keys: dict[str, list[str]] = {}
    for entries in unitfile.unit_sections(text).values():
        for key, values in entries.items():
            keys.setdefault(key, []).extend(values)
    return UnitFile(name=name, keys={k: tuple(v) for k, v in keys.items()})


def decode_config(value: str, *, where: str) -> dict[str, object]:
    """``X-OpenSVC-Config=`` one-line JSON, decoded as the driver entry point does."""
    try:
        return unitfile.decode_config(value, unit=where)
    except DriverError as exc:
        raise ModelError(str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceModel:
    """One resource as installed: identity, flags and its unit."""

    rid: str
    driver: str
    unit: str
    tags: frozenset[str] = frozenset()
    subset: str | None = None
    flags: frozenset[str] = frozenset()
    config: Mapping[str, object] = field(default_factory=dict)
    exec_start: tuple[str, ...] = ()
    exec_stop: tuple[str, ...] = ()
    slice: str = ""
    what: str = ""  # mount units: What= and Where=
    where: str = ""

    @property
    def group(self) -> str:
        return self.rid.split("#", 1)[0]

    @property
    def rank(self) -> int:
        return group_rank(self.group)

    @property
    def optional(self) -> bool:
        return Flag.OPTIONAL in self.flags

    @property
    def standby(self) -> bool:
        return Flag.STANDBY in self.flags

    @property
    def disabled(self) -> bool:
        return Flag.DISABLE in self.flags

    @property
    def subset_key(self) -> str | None:
        """``<group>:<name>`` as subsets are named (``subset#app:workers``)."""
        return f"{self.group}:{self.subset}" if self.subset else None

    @property
    def selectable(self) -> Selectable:
        return Selectable(rid=self.rid, tags=self.tags, subset=self.subset)

    def view(self, path: str, object_id: str) -> ResourceView:
        """What the drivers' ``status()`` gets."""
        return ResourceView(
            path=path, rid=self.rid, driver=self.driver, config=self.config, tags=self.tags,
            subset=self.subset, flags=self.flags, unit=self.unit, object_id=object_id,
        )  # fmt: skip


def _sort_key(res: ResourceModel) -> tuple[int, str, str]:
    """Start order: driver groups (§2.2), then rid order inside a group."""
    return (res.rank, res.subset or "", res.rid)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectModel:
    """One object's installed units, resources sorted in start order."""

    path: ObjectPath
    target: str
    id: str
    source: str
    config: Mapping[str, object]
    resources: tuple[ResourceModel, ...]
    units: tuple[str, ...]
    parallel: frozenset[str] = frozenset()  # subsets ("<group>:<name>") run in parallel

    @property
    def display(self) -> str:
        return str(self.path)

    @property
    def orchestrate(self) -> str:
        """``no``, ``ha`` or ``start``."""
        return str(self.config.get("orchestrate", "no"))

    @property
    def rollback(self) -> bool:
        value = self.config.get("rollback", True)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")

    @property
    def disabled(self) -> bool:
        value = self.config.get("disable", False)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")

    def resource(self, rid: str) -> ResourceModel:
        for res in self.resources:
            if res.rid == rid:
                return res
        raise KeyError(rid)


def _resource(unit: UnitFile) -> ResourceModel:
    exec_start = unit.keys.get("ExecStart", ())
    exec_stop = unit.keys.get("ExecStop", ())
    return ResourceModel(
        rid=unit.get(Key.RID),
        driver=unit.get(Key.DRIVER),
        unit=unit.name,
        tags=frozenset(unit.get(Key.TAGS).split()),
        subset=unit.get(Key.SUBSET) or None,
        flags=frozenset(unit.get(Key.FLAGS).split()),
        config=decode_config(unit.get(Key.CONFIG), where=unit.name),
        exec_start=tuple(v for v in exec_start if v),
        exec_stop=tuple(v for v in exec_stop if v),
        slice=unit.get("Slice"),
        what=unit.get("What"),
        where=unit.get("Where"),
    )


def object_units(
    display: str, dirs: tuple[Path, ...] | None = None, stem: str = ""
) -> dict[str, str]:
    """The text of every unit declaring ``X-OpenSVC-Path=<display>``, first dir wins.

    ``stem`` (``opensvc-svc.svc0``, the compiler's prefix of the object's unit names)
    spares reading other objects' units: only names starting with it, and mount
    units (named from their mount point), can be the object's; the marker decides.
    """
    marker = f"{Key.PATH}={display}\n".encode()
    prefixes = (f"{stem}.", f"{stem}-") if stem else ("",)
    found: dict[str, str] = {}
    for directory in dirs or search_path():
        listing = _listing(directory)
        if listing is None:
            continue
        names = (*listing.starting(stem), *listing.mounts) if stem else listing.names
        for name in names:
            if name in found or (not name.startswith(prefixes) and not name.endswith(".mount")):
                continue
            try:
                data = (directory / name).read_bytes()
            except OSError:
                continue
            if marker in data:
                found[name] = data.decode("utf-8", "replace")
    return found


@dataclass(frozen=True, slots=True)
class _Listing:
    """The unit files of one directory: names sorted (the units of an object, which
    share its stem, are then a contiguous range), and the mount units apart."""

    mtime_ns: int
    names: tuple[str, ...]
    mounts: tuple[str, ...]

    def starting(self, stem: str) -> tuple[str, ...]:
        """The names that start with ``stem`` (a range of the sorted names)."""
        low = bisect.bisect_left(self.names, stem)
        high = bisect.bisect_left(self.names, stem + "\U0010ffff", lo=low)
        return self.names[low:high]


_LISTINGS: dict[Path, _Listing] = {}
RACY_NS = 1_000_000_000  # a directory changed this recently is listed again each time


def _listing(directory: Path) -> _Listing | None:
    """The directory's unit files, listed again only when its mtime moved (an entry was
    added, removed or renamed; a unit's content is read afresh every time). Scanning
    every directory once per object made the daemon's full re-observation quadratic:
    200 objects read ~1,400 entries each (60 objects in a lab node: 0.51 s of CPU with a
    full scan per object, 0.33 s with the listing kept)."""
    try:
        mtime = directory.stat().st_mtime_ns
    except OSError:
        return None
    known = _LISTINGS.get(directory)
    if known is not None and known.mtime_ns == mtime:
        return known
    try:
        names = sorted(e.name for e in os.scandir(directory) if e.name.endswith(UNIT_SUFFIXES))
    except OSError:
        return None
    listing = _Listing(mtime, tuple(names), tuple(n for n in names if n.endswith(".mount")))
    # An mtime is the kernel's coarse clock: an entry added within the same tick as the
    # listing leaves it as it was. Kept only once the directory is a second old (git's
    # "racy" index entries), so such an entry is always seen on the next load.
    if time.time_ns() - mtime > RACY_NS:
        _LISTINGS[directory] = listing
    return listing


def load(path: ObjectPath, dirs: tuple[Path, ...] | None = None) -> ObjectModel | None:
    """The model of an object from its installed units; None when nothing is installed."""
    from omc.compiler.contract.names import object_stem  # imports unitsyntax: not at start-up

    texts = object_units(str(path), dirs, stem=object_stem(path))
    if not texts:
        return None
    return build(path, texts)


def build(path: ObjectPath, texts: Mapping[str, str]) -> ObjectModel:
    """Pure: unit texts → model (tested with hand-written units)."""
    # Slices carry no resource keys: their names are enough (half the files of an object).
    units = [
        UnitFile(name=name, keys={}) if name.endswith(".slice") else parse_unit(name, text)
        for name, text in sorted(texts.items())
    ]
    targets = [u for u in units if u.name.endswith(".target")]
    if not targets:
        raise ModelError(f"{path}: installed units have no target")
    target = targets[0]
    order = _order(target)
    position = {rid: i for i, rid in enumerate(r for s in order for r in s.get("rids", ()))}
    resources = sorted(
        (_resource(u) for u in units if u.get(Key.RID) and not u.name.endswith(".timer")),
        key=lambda r: (position.get(r.rid, len(position)), *_sort_key(r)),
    )
    parallel = frozenset(
        f"{s.get('group')}:{s.get('subset')}"
        for s in order
        if s.get("parallel") and s.get("subset")
    )
    return ObjectModel(
        path=path,
        target=target.name,
        id=target.get(Key.ID),
        source=target.get("SourcePath"),
        config=decode_config(target.get(Key.CONFIG), where=target.name),
        resources=tuple(resources),
        units=tuple(u.name for u in units),
        parallel=parallel,
    )


def _order(target: UnitFile) -> list[dict[str, Any]]:
    """The compiler's resource sets in start order (``X-OpenSVC-Order``), if present."""
    try:
        data = json.loads(target.get(Key.ORDER) or "[]")
    except json.JSONDecodeError:
        return []
    return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []
