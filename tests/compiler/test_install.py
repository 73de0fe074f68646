"""Atomic install of one object's units: change report, stale removal, ownership."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from omc.compiler import install as install_module
from omc.compiler.install import (
    Change,
    InstallError,
    install,
    owner_of,
    plan,
    scan,
    unit_diff,
)


def unit(path: str, body: str = "") -> str:
    """A minimal unit text owned by ``path``."""
    return f"[Unit]\nX-OpenSVC-Path={path}\n{body}"


def test_first_install_creates_every_unit(tmp_path: Path) -> None:
    """Installing into an empty directory reports every unit as created."""
    units = {"a.service": unit("svc0"), "svc0.target": unit("svc0")}
    report = install(units, directory=tmp_path, object_path="svc0")
    assert [(c.unit, c.change) for c in report.changes] == [
        ("a.service", Change.CREATED),
        ("svc0.target", Change.CREATED),
    ]
    assert report.changed
    assert {p.name for p in tmp_path.iterdir()} == set(units)
    assert (tmp_path / "a.service").read_text() == units["a.service"]


def test_second_identical_install_changes_nothing(tmp_path: Path) -> None:
    """Re-installing the same units reports unchanged and leaves the files untouched."""
    units = {"a.service": unit("svc0")}
    install(units, directory=tmp_path, object_path="svc0")
    before = (tmp_path / "a.service").stat().st_ino
    report = install(units, directory=tmp_path, object_path="svc0")
    assert [c.change for c in report.changes] == [Change.UNCHANGED]
    assert not report.changed
    assert (tmp_path / "a.service").stat().st_ino == before


def test_changed_unit_is_updated_and_stale_unit_removed(tmp_path: Path) -> None:
    """A modified unit is updated; a unit the object no longer has is removed."""
    install({"a.service": unit("svc0"), "b.service": unit("svc0")}, directory=tmp_path,
            object_path="svc0")  # fmt: skip
    report = install({"a.service": unit("svc0", "Description=x\n")}, directory=tmp_path,
                     object_path="svc0")  # fmt: skip
    assert {c.unit: c.change for c in report.changes} == {
        "a.service": Change.UPDATED,
        "b.service": Change.REMOVED,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.service"]


def test_units_of_other_objects_and_foreign_files_are_never_touched(tmp_path: Path) -> None:
    """Only files declaring ``X-OpenSVC-Path=<this object>`` can be removed."""
    (tmp_path / "other.service").write_text(unit("svc1"))
    (tmp_path / "svc0-lookalike.service").write_text("[Unit]\nDescription=svc0\n")
    (tmp_path / "notes.txt").write_text(unit("svc0"))
    (tmp_path / "prefix.service").write_text(unit("svc0x"))
    report = install({}, directory=tmp_path, object_path="svc0")
    assert report.changes == ()
    assert len(list(tmp_path.iterdir())) == 4


def test_no_staging_directory_is_left_behind(tmp_path: Path) -> None:
    """The temporary staging directory inside DIR is removed after the swap."""
    install({"a.service": unit("svc0")}, directory=tmp_path, object_path="svc0")
    assert [p.name for p in tmp_path.iterdir()] == ["a.service"]


def test_installed_files_are_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    """Unit files get mode 0644 even under a restrictive umask."""
    old = os.umask(0o077)
    try:
        install({"a.service": unit("svc0")}, directory=tmp_path, object_path="svc0")
    finally:
        os.umask(old)
    assert (tmp_path / "a.service").stat().st_mode & 0o777 == 0o644


def test_missing_directory_is_created(tmp_path: Path) -> None:
    """``-o`` may name a directory that does not exist yet."""
    target = tmp_path / "deep" / "units"
    install({"a.service": unit("svc0")}, directory=target, object_path="svc0")
    assert (target / "a.service").is_file()


@pytest.mark.parametrize(
    "name", ["", "../evil.service", ".hidden.service", "a/b.service", "notaunit.txt", "x\0.service"]
)
def test_unsafe_unit_names_are_refused(tmp_path: Path, name: str) -> None:
    """A unit name that could escape the directory or hide from systemd is an error."""
    with pytest.raises(InstallError):
        install({name: unit("svc0")}, directory=tmp_path, object_path="svc0")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_raises_install_error(tmp_path: Path) -> None:
    """A directory that cannot be created is an InstallError naming it, not an OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InstallError, match="file"):
        install({"a.service": unit("svc0")}, directory=blocker / "units", object_path="svc0")


def test_scan_groups_units_by_owner(tmp_path: Path) -> None:
    """One directory pass maps each object path to its unit files."""
    (tmp_path / "a.service").write_text(unit("svc0"))
    (tmp_path / "b.mount").write_text(unit("ns1/svc/web"))
    (tmp_path / "c.service").write_text("[Unit]\n")
    assert scan(tmp_path) == {
        "svc0": {"a.service": unit("svc0")},
        "ns1/svc/web": {"b.mount": unit("ns1/svc/web")},
    }


def test_scan_of_missing_directory_is_empty(tmp_path: Path) -> None:
    """Nothing installed yet is not an error."""
    assert scan(tmp_path / "nope") == {}


@pytest.mark.parametrize(
    ("text", "owner"),
    [
        ("[Unit]\nX-OpenSVC-Path=svc0\n", "svc0"),
        ("[Unit]\nX-OpenSVC-Path=ns1/svc/web  \n", "ns1/svc/web"),
        ("[Unit]\nDescription=X-OpenSVC-Path=svc0\n", None),
        ("", None),
    ],
)
def test_owner_is_read_from_the_path_line(text: str, owner: str | None) -> None:
    """Ownership is the value of a line starting with ``X-OpenSVC-Path=``."""
    assert owner_of(text) == owner


def test_plan_lists_new_units_in_order_then_removals_sorted() -> None:
    """The change report keeps the emitter's order, removals last."""
    changes = plan({"z.service": "1", "a.service": "2"}, {"a.service": "2", "m.service": "x"})
    assert [(c.unit, c.change) for c in changes] == [
        ("z.service", Change.CREATED),
        ("a.service", Change.UNCHANGED),
        ("m.service", Change.REMOVED),
    ]


def test_unit_diff_shows_only_changed_units(tmp_path: Path) -> None:
    """The diff names changed, new and removed units; identical units are silent."""
    text = unit_diff(
        {"a.service": "x\n", "b.service": "new\n", "same.service": "s\n"},
        {"a.service": "y\n", "gone.service": "old\n", "same.service": "s\n"},
        directory=tmp_path,
    )
    assert f"--- {tmp_path}/a.service" in text
    assert "-y\n+x\n" in text
    assert f"+++ {tmp_path}/b.service" in text
    assert f"--- {tmp_path}/gone.service\n+++ /dev/null" in text
    assert "same.service" not in text


def test_shared_unowned_unit_is_compared_with_the_file_on_disk(tmp_path: Path) -> None:
    """`opensvc.slice` (no owner) written by two objects is created once, then unchanged."""
    shared = "[Unit]\nDescription=OpenSVC objects\n"
    first = install({"opensvc.slice": shared}, directory=tmp_path, object_path="svc0")
    second = install({"opensvc.slice": shared}, directory=tmp_path, object_path="svc1")
    assert [c.change for c in first.changes] == [Change.CREATED]
    assert [c.change for c in second.changes] == [Change.UNCHANGED]
    assert install({}, directory=tmp_path, object_path="svc0").changes == ()
    assert (tmp_path / "opensvc.slice").is_file()


def test_a_failure_while_staging_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every unit is staged before any rename: a write error leaves the old units intact."""
    old = {"a.service": unit("svc0", "Description=old\n"), "b.service": unit("svc0")}
    install(old, directory=tmp_path, object_path="svc0")
    new = {"a.service": unit("svc0", "Description=new\n"), "c.service": unit("svc0")}
    real = install_module._write_synced
    calls: list[Path] = []

    def flaky(path: Path, text: str, mode: int) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, text, mode)

    monkeypatch.setattr(install_module, "_write_synced", flaky)
    with pytest.raises(InstallError, match="No space left on device"):
        install(new, directory=tmp_path, object_path="svc0")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == old


def test_units_of_a_private_config_are_root_only_slices_stay_public(tmp_path: Path) -> None:
    """private: 0600 for units that embed the config, 0644 for slices, whatever the umask."""
    units = {"a.service": unit("svc0"), "a.target": unit("svc0"), "a.slice": unit("svc0")}
    old = os.umask(0)
    try:
        install(units, directory=tmp_path, object_path="svc0", private=True)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.service": 0o600, "a.target": 0o600, "a.slice": 0o644}


def test_a_unit_with_the_wrong_mode_is_rewritten_even_if_its_text_is_the_same(
    tmp_path: Path,
) -> None:
    """Units installed 0644 before a config became private are tightened (reported updated)."""
    units = {"a.service": unit("svc0")}
    install(units, directory=tmp_path, object_path="svc0")
    assert stat.S_IMODE((tmp_path / "a.service").stat().st_mode) == 0o644
    report = install(units, directory=tmp_path, object_path="svc0", private=True)
    assert [(c.unit, c.change) for c in report.changes] == [("a.service", Change.UPDATED)]
    assert stat.S_IMODE((tmp_path / "a.service").stat().st_mode) == 0o600
    again = install(units, directory=tmp_path, object_path="svc0", private=True)
    assert not again.changed
