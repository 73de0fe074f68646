"""Install the units of one object into a unit directory, atomically.

Why this is more than ``write_text``: systemd may read the directory at any
moment (a ``daemon-reload`` by someone else), and a service half written is
worse than an old one. So every changed unit of an object is first written
and fsynced in a private temporary directory *inside* the target directory
(same file system, hidden by its leading dot, never read by systemd), then
renamed over its final name, then units of the same object that the new
output no longer has are removed, then the directory itself is fsynced.

Ownership is read from the files, not guessed from names: a unit belongs to
object ``P`` when its ``[Unit]`` section has the line ``X-OpenSVC-Path=P``
(mount units are named after their mount point, so a name prefix cannot tell).
Files of other objects, and files without that line, are never removed; a unit
without that line that we write ourselves (``opensvc.slice``, identical for every
object) is compared with the file on disk, so re-installing reports it unchanged.

The caller decides *whether* to install: a config with errors must never
reach :func:`install`, so its last good units stay in place (Podman Quadlet
deletes the unit on a typo; we keep it).

**Modes.** A unit is never more readable than the config it embeds
(``X-OpenSVC-Config`` carries every evaluated keyword): the units of a ``private``
config (not world-readable, as every config ``om`` writes) are 0600, slices
(which name the object and nothing else) stay 0644; systemd reads units as root.
A unit whose text is unchanged but whose mode is not the wanted one is rewritten.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .contract.units import Key
from .records import Record

UNIT_SUFFIXES = frozenset(
    (".service", ".mount", ".target", ".slice", ".timer", ".socket", ".path", ".automount", ".swap")
)
PATH_KEY = f"{Key.PATH}="
PUBLIC, PRIVATE = 0o644, 0o600


def unit_mode(name: str, *, private: bool) -> int:
    """0600 for a private config's units that carry its keywords, else 0644 (slices)."""
    return PRIVATE if private and not name.endswith(".slice") else PUBLIC


class InstallError(Exception):
    """A unit directory could not be read or written; the message names the file."""


class Change(StrEnum):
    """What happened to one unit file."""

    CREATED = "created"
    UPDATED = "updated"
    REMOVED = "removed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class UnitChange(Record):
    unit: str
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class InstallReport(Record):
    """The outcome of one object's install: one entry per unit, new ones first."""

    object_path: str
    directory: Path
    changes: tuple[UnitChange, ...]

    @property
    def changed(self) -> bool:
        """True when a ``daemon-reload`` is needed."""
        return any(c.change is not Change.UNCHANGED for c in self.changes)


def owner_of(text: str) -> str | None:
    """The object path a unit file declares with ``X-OpenSVC-Path=``, if any."""
    for line in text.splitlines():
        if line.startswith(PATH_KEY):
            return line[len(PATH_KEY) :].strip()
    return None


def scan(directory: Path) -> dict[str, dict[str, str]]:
    """Every omc-owned unit of ``directory``: object path -> {unit name: text}.

    One pass over the directory, so installing many objects reads each file once.
    A missing directory is empty.
    """
    owned: dict[str, dict[str, str]] = {}
    for entry in _unit_entries(directory):
        text = _read(Path(entry.path))
        owner = owner_of(text)
        if owner is not None:
            owned.setdefault(owner, {})[entry.name] = text
    return owned


def installed_units(directory: Path, object_path: str) -> dict[str, str]:
    """The units of one object currently in ``directory``."""
    return scan(directory).get(object_path, {})


def plan(units: Mapping[str, str], installed: Mapping[str, str]) -> tuple[UnitChange, ...]:
    """Compare the new units with the installed ones (pure): what install would do."""
    changes = [
        UnitChange(
            unit=name,
            change=(
                Change.CREATED
                if name not in installed
                else Change.UNCHANGED
                if installed[name] == text
                else Change.UPDATED
            ),
        )
        for name, text in units.items()
    ]
    changes += [
        UnitChange(unit=name, change=Change.REMOVED)
        for name in sorted(installed)
        if name not in units
    ]
    return tuple(changes)


def install(
    units: Mapping[str, str],
    *,
    directory: Path,
    object_path: str,
    installed: Mapping[str, str] | None = None,
    private: bool = False,
) -> InstallReport:
    """Make ``directory`` hold exactly ``units`` for ``object_path``; report what changed.

    ``installed`` (the object's current units, from :func:`scan`) saves a directory
    scan when the caller installs many objects; by default the directory is scanned.
    ``private``: the config is not world-readable, nor must its units be (module doc).
    """
    for name in units:
        check_unit_name(name)
    if installed is None:
        installed = installed_units(directory, object_path)
    changes = _with_modes(plan(units, with_unowned(directory, units, installed)),
                          directory, private=private)  # fmt: skip
    writes = [c.unit for c in changes if c.change in (Change.CREATED, Change.UPDATED)]
    removals = [c.unit for c in changes if c.change is Change.REMOVED]
    if writes or removals:
        modes = {name: unit_mode(name, private=private) for name in writes}
        _apply(directory, {name: units[name] for name in writes}, removals, modes)
    return InstallReport(object_path=object_path, directory=directory, changes=changes)


def _with_modes(
    changes: tuple[UnitChange, ...], directory: Path, *, private: bool
) -> tuple[UnitChange, ...]:
    """An unchanged unit whose mode is not :func:`unit_mode`'s is to be rewritten."""
    return tuple(
        UnitChange(unit=c.unit, change=Change.UPDATED)
        if c.change is Change.UNCHANGED and _mode(directory / c.unit) not in (
            None, unit_mode(c.unit, private=private),
        )
        else c
        for c in changes
    )  # fmt: skip


def _mode(file: Path) -> int | None:
    try:
        return stat.S_IMODE(file.lstat().st_mode)
    except OSError:
        return None


def write_units(directory: Path, units: Mapping[str, str], *, private: bool = False) -> None:
    """Write units into a directory known to be fresh (a generator's output dir).

    Raw ``os`` calls relative to one directory descriptor: the generator writes
    thousands of small files at boot, and per-file ``pathlib`` overhead showed.
    """
    for name in units:
        check_unit_name(name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name, text in units.items():
                mode = unit_mode(name, private=private)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                fd = os.open(name, flags, mode, dir_fd=dir_fd)
                try:
                    os.fchmod(fd, mode)  # whatever the umask (and an older file's mode)
                    data = memoryview(text.encode("utf-8"))
                    while data:
                        data = data[os.write(fd, data) :]
                finally:
                    os.close(fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise InstallError(f"cannot write units into {directory}: {exc.strerror}") from exc


def unit_diff(units: Mapping[str, str], installed: Mapping[str, str], *, directory: Path) -> str:
    """A unified diff, unit by unit, from what is installed to what would be installed."""
    import difflib

    chunks: list[str] = []
    for name in sorted(set(units) | set(installed)):
        old, new = installed.get(name), units.get(name)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=str(directory / name) if old is not None else "/dev/null",
                tofile=str(directory / name) if new is not None else "/dev/null",
            )
        )
    return "".join(chunks)


def check_unit_name(name: str) -> None:
    """Refuse names that would escape the directory or hide from systemd."""
    if not name or "/" in name or "\0" in name or name.startswith("."):
        raise InstallError(f"refusing to write unit with unsafe name {name!r}")
    if "." + name.rpartition(".")[2] not in UNIT_SUFFIXES:
        raise InstallError(f"refusing to write {name!r}: not a unit file name")


def _apply(
    directory: Path, writes: Mapping[str, str], removals: Iterable[str], modes: Mapping[str, int]
) -> None:
    """Stage, fsync, rename, remove, fsync the directory: the atomic part."""
    import shutil
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".omc-", dir=directory))
    except OSError as exc:
        raise InstallError(f"cannot write into {directory}: {exc.strerror}") from exc
    try:
        for name, text in writes.items():
            _write_synced(staging / name, text, modes[name])
        for name in writes:
            (staging / name).replace(directory / name)
        for name in removals:
            (directory / name).unlink(missing_ok=True)
        _fsync_dir(directory)
    except OSError as exc:
        raise InstallError(f"cannot install units into {directory}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_synced(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, mode)  # whatever the umask
        file.write(text.encode("utf-8"))
        file.flush()
        os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def with_unowned(
    directory: Path, units: Mapping[str, str], installed: Mapping[str, str]
) -> dict[str, str]:
    """``installed`` plus the current text of units we write that no object owns
    (``opensvc.slice``, shared by all), so they compare as unchanged."""
    found = dict(installed)
    for name in units:
        path = directory / name
        if name not in installed and path.is_file():
            found[name] = _read(path)
    return found


def _unit_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return sorted(
                (
                    e
                    for e in it
                    if not e.name.startswith(".")
                    and Path(e.name).suffix in UNIT_SUFFIXES
                    and e.is_file(follow_symlinks=False)
                ),
                key=lambda e: e.name,
            )
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InstallError(f"cannot read {directory}: {exc.strerror}") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from exc
