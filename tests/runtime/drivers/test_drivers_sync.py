"""sync.rsync: options, argv, targets, status ages, and a real local rsync with no-op rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omc.runtime.drivers import DriverError, Status, sync

from .helpers import RecordingLog, view


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    units = tmp_path / "units"
    units.mkdir()
    monkeypatch.setenv("OMC_UNIT_DIR", str(units))
    monkeypatch.setenv("OMC_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("OMC_FLAG_DIR", str(tmp_path / "shm"))
    target = {"nodes": ["n1", "n2"], "drpnodes": ["d1"]}
    (units / "opensvc-svc.svc0.target").write_text(
        f"[Unit]\nX-OpenSVC-Path=svc0\nX-OpenSVC-Config={json.dumps(target)}\n"
    )
    return units


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30m", 1800), ("1d", 86400), ("1h30m", 5400)]
)
def test_duration(text: str, seconds: float) -> None:
    """Durations in OpenSVC notation."""
    assert sync.duration(text) == seconds


def test_options_merge_and_reset() -> None:
    """options are added to the defaults, or replace them with reset_options."""
    merged = view("sync.rsync", {"options": "--exclude=*.tmp -v", "bwlimit": "1m", "timeout": "1m"})
    assert sync.rsync_options(merged) == [
        *sync.DEFAULT_OPTIONS, "--exclude=*.tmp", "-v", "--bwlimit=1m", "--timeout=60",
    ]  # fmt: skip
    reset = view("sync.rsync", {"options": "-a", "reset_options": True})
    assert sync.rsync_options(reset) == ["-a"]


def test_argv_ssh_and_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """ssh transport writes node:dst; the daemon module writes rsync://node/module/dst."""
    monkeypatch.setenv("OMC_SSH_KEY", "/k")
    res = view("sync.rsync", {"src": "/srv/a/ /srv/b", "dst": "/srv/copy", "reset_options": True})
    ssh = sync.rsync_argv(res, "n2", module=None)
    assert ssh[:2] == ("rsync", "-e")
    assert ssh[2].startswith("ssh -o BatchMode=yes ")
    assert ssh[2].endswith(" -i /k")
    assert ssh[3:] == ("/srv/a/", "/srv/b", "n2:/srv/copy")
    daemon = sync.rsync_argv(res, "n2", module="root")
    assert daemon == ("rsync", "/srv/a/", "/srv/b", "rsync://n2/root/srv/copy")


@pytest.mark.parametrize(
    ("target", "want", "expected"),
    [
        ([], None, ["n2", "d1"]),
        (["nodes"], None, ["n2"]),
        (["nodes", "drpnodes"], "drpnodes", ["d1"]),
        (["local"], None, [None]),
    ],
)
def test_target_nodes(target: list[str], want: str | None, expected: list[str | None]) -> None:
    """Peers come from the object's nodes/drpnodes, without the local node."""
    res = view("sync.rsync", {"src": "/a", "dst": "/b", "target": target})
    assert sync.target_nodes(res, want, local="n1") == expected


def test_unknown_target_is_an_error() -> None:
    """--target drp (the book's spelling) is refused with the valid ones."""
    res = view("sync.rsync", {"src": "/a", "dst": "/b"})
    with pytest.raises(DriverError, match="unknown sync target 'drp'"):
        sync.target_nodes(res, "drp", local="n1")


def test_real_local_sync_and_status(tmp_path: Path) -> None:
    """For real: target=local copies src to dst; status goes from never synced to up."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f.txt").write_text("data")
    res = view("sync.rsync", {"src": f"{src}/", "dst": str(dst), "target": "local"}, rid="sync#0")
    drv, log = sync.Rsync(), RecordingLog()
    assert drv.status(res) == sync.Probe(status=Status.WARN, warnings=("local never synced",))
    drv.update(res, log)
    assert (dst / "f.txt").read_text() == "data"
    assert drv.status(res).status is Status.UP
    assert log.messages[0].startswith("run: rsync -HAXpogDtrlvx --stats --delete --force ")
    stamp = sync.stamp_file(res, None)
    os.utime(stamp, (0, 0))
    assert drv.status(res).warnings == ("local last sync is too old",)


def test_noop_when_instance_not_up(env: Path, tmp_path: Path) -> None:
    """A down fs.flag of the same object makes update a logged no-op, copying nothing."""
    (env / "opensvc-svc.svc0-fs.1.service").write_text(
        "[Unit]\nX-OpenSVC-Path=svc0\nX-OpenSVC-Rid=fs#1\nX-OpenSVC-Driver=fs.flag\n"
        "X-OpenSVC-Config={}\n"
    )
    dst = tmp_path / "dst"
    res = view("sync.rsync", {"src": f"{tmp_path}/", "dst": str(dst), "target": "local"})
    log = RecordingLog()
    sync.Rsync().update(res, log)
    assert log.messages == ["no-op: the local instance is not up (fs#1 is down)"]
    assert not dst.exists()
