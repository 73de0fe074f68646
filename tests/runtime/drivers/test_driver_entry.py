"""The driver entry point and unit reader: argv, unit files, and real runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omc.runtime.drivers import DriverError, ResourceView, unitfile
from omc.runtime.drivers import entry as driver_entry

DEV = str(Path(__file__).resolve().parents[3] / ".dev")


def unit_text(rid: str, driver: str, config: dict[str, object], *, path: str = "svc0") -> str:
    """A resource unit as the emitter writes it (the keys the entry point reads)."""
    return (
        f"[Unit]\nDescription=x\nX-OpenSVC-Path={path}\nX-OpenSVC-Rid={rid}\n"
        f"X-OpenSVC-Driver={driver}\nX-OpenSVC-Tags=a b\nX-OpenSVC-Subset=\n"
        f"X-OpenSVC-Flags=standby\nX-OpenSVC-Config={json.dumps(config)}\n\n"
        '[Service]\nType=oneshot\nEnvironment="OPENSVC_ID=abc" OPENSVC_RID=x\n'
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["start", "--rid", "fs#1"], driver_entry.Request(action="start", rid="fs#1")),
        (["stop", "--rid=fs#1", "--unit", "u.service"],
         driver_entry.Request(action="stop", rid="fs#1", unit="u.service")),
        (["update", "--rid", "sync#0", "--target", "nodes"],
         driver_entry.Request(action="update", rid="sync#0", target="nodes")),
        (["run", "--confirm", "--rid", "task#0"],
         driver_entry.Request(action="run", rid="task#0", confirm=True)),
    ],
)  # fmt: skip
def test_parse(argv: list[str], expected: driver_entry.Request) -> None:
    """The entry point's arguments."""
    assert driver_entry.parse(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [[], ["boot", "--rid", "x"], ["start"], ["start", "--rid"], ["start", "-x"],
     ["start", "--rid", "fs#1/../../../etc/x"], ["stop", "--rid=fs#.."], ["start", "--rid", "x"]],
)  # fmt: skip
def test_parse_rejects(argv: list[str]) -> None:
    """Anything else is a usage error, a rid outside the grammar included (it comes from argv)."""
    with pytest.raises(driver_entry.UsageError):
        driver_entry.parse(argv)


def test_view_from_unit_text() -> None:
    """Every X-OpenSVC key lands in the ResourceView, the id from Environment=."""
    text = unit_text("fs#1", "fs.flag", {"type": "flag", "n": [1, "a"]})
    assert unitfile.view_from_text(text, unit="u.service") == ResourceView(
        path="svc0", rid="fs#1", driver="fs.flag", config={"type": "flag", "n": [1, "a"]},
        tags=frozenset({"a", "b"}), subset=None, flags=frozenset({"standby"}),
        unit="u.service", object_id=os.environ.get("OPENSVC_ID", "abc"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Unit]\nX-OpenSVC-Path=svc0\n", "missing X-OpenSVC-Rid"),
        (unit_text("fs#1", "fs.flag", {}).replace("{}", "[1]"), "not a JSON object"),
        (unit_text("fs#x/../../victim", "fs.flag", {}), "invalid resource id"),
    ],
)
def test_bad_units_are_clear_errors(text: str, message: str) -> None:
    """A unit that is not ours, or a broken config, is a DriverError naming the unit."""
    with pytest.raises(DriverError, match=message):
        unitfile.view_from_text(text, unit="u.service")


def test_unit_sections_keep_repeated_keys_in_order() -> None:
    """List settings repeat: every value is kept, per section, in file order."""
    text = "# c\n[Unit]\nAfter=a\nAfter=b\n; x\n[Service]\nExecStart=/bin/a \\\n  b\n"
    assert unitfile.unit_sections(text) == {
        "": {},
        "Unit": {"After": ["a", "b"]},
        "Service": {"ExecStart": ["/bin/a  b"]},
    }


def test_unit_keys_join_continuations() -> None:
    """systemd joins a line ending in a backslash with the next one."""
    assert unitfile.unit_keys("[Unit]\nA=1 \\\n 2\n[Service]\nA=3\n") == {"A": "1  2"}


def _om_driver(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from omc.runtime.drivers.entry import main;"
        "sys.exit(main(sys.argv[1], sys.argv[2:]))"
    )
    env = {
        **os.environ, "PYTHONPATH": DEV, "OMC_UNIT_DIR": str(tmp / "units"),
        "OMC_FLAG_DIR": str(tmp / "shm"), "OMC_RUN": str(tmp / "run"),
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=False
    )


def test_real_entry_point_round_trip(tmp_path: Path) -> None:
    """For real, in a subprocess: the unit found by its compiled name drives fs.flag."""
    units = tmp_path / "units"
    units.mkdir()
    (units / "opensvc-svc.svc0-fs.1.service").write_text(unit_text("fs#1", "fs.flag", {}))
    flag = tmp_path / "shm/svc/svc0/fs#1.flag"
    assert _om_driver(tmp_path, "svc0", "start", "--rid", "fs#1").returncode == 0
    assert flag.exists()
    status = _om_driver(tmp_path, "svc0", "status", "--rid", "fs#1")
    assert status.stdout == "stdby up\n"
    assert _om_driver(tmp_path, "svc0", "stop", "--rid", "fs#1").returncode == 0
    assert not flag.exists()


def test_real_entry_point_errors(tmp_path: Path) -> None:
    """No unit: exit 2 with a one-line error; a failing driver: exit 1."""
    (tmp_path / "units").mkdir()
    missing = _om_driver(tmp_path, "svc0", "start", "--rid", "fs#9")
    assert (missing.returncode, missing.stderr.splitlines()[0][:30]) == (
        2, "om: error: no unit file for sv",
    )  # fmt: skip
    unit = unit_text("disk#0", "disk.loop", {"file": str(tmp_path / "none")})
    (tmp_path / "units/opensvc-svc.svc0-disk.0.service").write_text(unit)
    assert _om_driver(tmp_path, "svc0", "start", "--rid", "disk#0").returncode == 1
    assert "Traceback" not in missing.stderr


def test_real_os_errors_are_one_line(tmp_path: Path) -> None:
    """An OS error inside a driver (unwritable flag dir) is exit 1 and one logged line."""
    (tmp_path / "units").mkdir()
    (tmp_path / "units/opensvc-svc.svc0-fs.1.service").write_text(unit_text("fs#1", "fs.flag", {}))
    (tmp_path / "shm").write_text("a file where the flag directory should be")
    done = _om_driver(tmp_path, "svc0", "start", "--rid", "fs#1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr


def test_real_entry_point_finds_a_mount_unit_by_rid(tmp_path: Path) -> None:
    """A mountable fs is a .mount named from its mount point: status still finds it by rid."""
    units = tmp_path / "units"
    units.mkdir()
    config = {"dev": str(tmp_path / "disk.img"), "mnt": str(tmp_path / "mnt"), "type": "ext4"}
    (units / "srv-data.mount").write_text(unit_text("fs#0", "fs.ext4", config))
    status = _om_driver(tmp_path, "svc0", "status", "--rid", "fs#0")
    assert (status.returncode, status.stdout) == (0, "stdby down\n"), status.stderr
