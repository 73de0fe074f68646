"""share.nfs: opts and exportfs parsing, argv (FAKE exportfs), and a real run where nfsd exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omc.runtime.drivers import DriverError, Status, share

from .helpers import FakeRunner, RecordingLog, answer, view

EXPORTFS_V = (
    "/srv/data     \t10.0.0.0/24(rw,wdelay,no_root_squash,sec=sys)\n"
    "/srv/a/very/long/path/that/wraps\n"
    "\t\t<world>(ro,wdelay,root_squash,sec=sys)\n"
)


def test_parse_opts() -> None:
    """Clients and their option sets, as written in /etc/exports."""
    assert share.parse_opts("*(ro) host1(rw,no_root_squash) host2") == {
        "*": frozenset({"ro"}),
        "host1": frozenset({"rw", "no_root_squash"}),
        "host2": frozenset(),
    }


def test_parse_opts_rejects_garbage() -> None:
    """An unbalanced client spec is a DriverError."""
    with pytest.raises(DriverError, match="opts"):
        share.parse_opts("host1(rw")


def test_parse_exportfs_including_wrapped_lines() -> None:
    """exportfs -v output, long paths wrapping their client onto the next line."""
    assert [(e.path, e.client) for e in share.parse_exportfs(EXPORTFS_V)] == [
        ("/srv/data", "10.0.0.0/24"),
        ("/srv/a/very/long/path/that/wraps", "<world>"),
    ]


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        ("10.0.0.0/24(rw,no_root_squash)", Status.UP),
        ("10.0.0.0/24(rw,no_root_squash) h2(ro)", Status.WARN),
        ("10.0.0.0/24(ro)", Status.DOWN),
    ],
)
def test_status_from_fake_exportfs(opts: str, expected: Status) -> None:
    """FAKE exportfs: up when every client is exported with at least the configured options."""
    runner = FakeRunner([answer(("exportfs", "-v"), out=EXPORTFS_V)])
    res = view("share.nfs", {"path": "/srv/data", "opts": opts})
    assert share.Nfs(runner=runner).status(res).status is expected


def test_start_stop_argv_from_fake_exportfs() -> None:
    """FAKE exportfs: start exports missing clients with -o, stop unexports present ones."""
    runner = FakeRunner([answer(("exportfs", "-v"), out=EXPORTFS_V)])
    res = view("share.nfs", {"path": "/srv/data", "opts": "10.0.0.0/24(rw) *(ro,sync)"})
    drv = share.Nfs(runner=runner)
    drv.start(res, RecordingLog())
    assert runner.calls[-1] == ("exportfs", "-o", "ro,sync", "*:/srv/data")
    drv.stop(res, RecordingLog())
    assert runner.calls[-1] == ("exportfs", "-u", "10.0.0.0/24:/srv/data")


def _has_nfsd() -> bool:
    return "nfsd" in Path("/proc/filesystems").read_text()


@pytest.mark.skipif(not _has_nfsd(), reason="kernel has no nfsd (not in /proc/filesystems)")
def test_real_export_cycle(tmp_path: Path) -> None:
    """For real, where the kernel has nfsd: export, see it up, unexport."""
    assert shutil.which("exportfs"), "nfs-kernel-server (exportfs) must be installed"
    res = view("share.nfs", {"path": str(tmp_path), "opts": "127.0.0.1(ro)"})
    drv, log = share.Nfs(), RecordingLog()
    drv.start(res, log)
    try:
        assert drv.status(res).status is Status.UP
    finally:
        drv.stop(res, log)
    assert drv.status(res).status is Status.DOWN
