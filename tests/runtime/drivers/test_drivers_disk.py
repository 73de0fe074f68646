"""disk drivers: disk.loop for real on this host (a temp file); vg, md, raw logic.

LVM logical volumes need device-mapper and mdadm is not installed: vg and md
are tested here against a FAKE command runner (argv built, outputs parsed),
which proves the logic only, not LVM or md themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omc.runtime import drivers
from omc.runtime.drivers import Status, disk

from .helpers import FakeRunner, RecordingLog, answer, view


def test_loop_real_cycle(tmp_path: Path) -> None:
    """start creates the file of `size`, attaches it, publishes it; stop unpublishes, detaches."""
    image = tmp_path / "disk.img"
    res = view("disk.loop", {"file": str(image), "size": "8m"}, rid="disk#0")
    drv, log = disk.Loop(root=tmp_path), RecordingLog()
    link = tmp_path / "run/opensvc/dev/root/svc/svc0/disk.0.0"
    assert drv.status(res).status is Status.DOWN
    drv.start(res, log)
    try:
        assert image.stat().st_size == 8 << 20
        probe = drv.status(res)
        assert probe.status is Status.UP
        (dev,) = probe.messages
        assert Path(dev).is_block_device()
        assert str(link.readlink()) == dev
        assert link.is_block_device()
        link.unlink()
        drv.start(res, log)  # already up: publishes again
        assert str(link.readlink()) == dev
    finally:
        drv.stop(res, log)
    assert not link.is_symlink()
    drv.stop(res, log)
    assert drv.status(res).status is Status.DOWN
    assert log.messages[0] == f"create file {image} of {8 << 20} bytes"
    assert log.messages[1] == f"run: losetup --find --show {image}"
    assert f"already up: {image} is attached to {dev}" in log.messages
    assert log.messages.count(f"publish {dev} as {link}") == 2
    assert f"unpublish {link}" in log.messages
    assert f"run: losetup --detach {dev}" in log.messages
    assert log.messages[-1] == f"already down: {image} is not attached"


def test_loop_missing_file_without_size_is_an_error(tmp_path: Path) -> None:
    """A missing file and no size to create it: refuse, saying so."""
    res = view("disk.loop", {"file": str(tmp_path / "nope")})
    with pytest.raises(drivers.DriverError, match="no size"):
        drivers.get("disk.loop").start(res, RecordingLog())


def test_vg_argv_with_loop_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE runner: an inactive vg is activated with vgchange -ay and the lab's device filter."""
    monkeypatch.setenv("OMC_LVM_LOOP_ONLY", "1")
    runner = FakeRunner([answer(("lvs",), out="  -wi-------\n")])
    drv = disk.Vg(runner=runner)
    res = view("disk.vg", {"name": "vg0"})
    assert drv.status(res).status is Status.DOWN
    drv.start(res, RecordingLog())
    assert runner.calls[-1] == ("vgchange", "--config", disk.LVM_LOOP_FILTER, "-ay", "vg0")


@pytest.mark.parametrize(
    ("vgs_rc", "lvs", "expected"),
    [
        (5, "", Status.DOWN),
        (0, "  -wi-a-----\n  -wi-a-----\n", Status.UP),
        (0, "  -wi-a-----\n  -wi-------\n", Status.WARN),
        (0, "", Status.UP),
    ],
)
def test_vg_status_table(vgs_rc: int, lvs: str, expected: Status) -> None:
    """FAKE runner: vg status from vgs existence and the lv_attr activation flags."""
    runner = FakeRunner([answer(("vgs",), rc=vgs_rc), answer(("lvs",), out=lvs)])
    assert disk.Vg(runner=runner).status(view("disk.vg", {"vgname": "vg0"})).status is expected


SCAN = "ARRAY /dev/md/data metadata=1.2 name=n1:data UUID=1c2d:aa:bb:cc\n"


def test_md_arrays_parse() -> None:
    """mdadm --detail --scan lines map uuids to devices."""
    assert disk.md_arrays(SCAN) == {"1c2d:aa:bb:cc": "/dev/md/data"}


def test_md_start_stop_argv(tmp_path: Path) -> None:
    """FAKE runner: assemble by uuid when absent; stop the device when present."""
    absent = FakeRunner([answer(("mdadm", "--detail"), out="")])
    res = view("disk.md", {"uuid": "1c2d:aa:bb:cc", "name": "data"})
    disk.Md(runner=absent, root=tmp_path).start(res, RecordingLog())
    assemble = ("mdadm", "--assemble", "/dev/md/data", "--scan", "--uuid=1c2d:aa:bb:cc")
    assert absent.calls[1] == assemble
    present = FakeRunner([answer(("mdadm", "--detail"), out=SCAN)])
    disk.Md(runner=present, root=tmp_path).stop(res, RecordingLog())
    assert present.calls[-1] == ("mdadm", "--stop", "/dev/md/data")


def test_raw_real_device_nodes(tmp_path: Path) -> None:
    """disk.raw mirrors /dev/null as a node under tmp, removes it on stop."""
    dst = tmp_path / "raw" / "null0"
    res = view("disk.raw", {"devs": f"/dev/null:{dst}", "perm": "0640"})
    drv, log = disk.Raw(root=tmp_path), RecordingLog()
    assert drv.status(res).status is Status.DOWN
    drv.start(res, log)
    assert dst.stat().st_rdev == Path("/dev/null").stat().st_rdev
    assert drv.status(res).status is Status.UP
    drv.stop(res, log)
    assert not dst.exists()
    assert drv.status(res).status is Status.DOWN


def test_raw_missing_source_is_down() -> None:
    """A missing source device is down, and start refuses."""
    res = view("disk.raw", {"devs": "/dev/does-not-exist"})
    assert drivers.get("disk.raw").status(res).status is Status.DOWN
    with pytest.raises(drivers.DriverError, match="missing devices"):
        drivers.get("disk.raw").start(res, RecordingLog())


def test_raw_publishes_each_device_and_drops_stale_links(tmp_path: Path) -> None:
    """disk.raw publishes devs in order; fewer devs drop the extra links; stop removes all."""
    drv, log = disk.Raw(root=tmp_path), RecordingLog()
    base = tmp_path / "run/opensvc/dev/ns1/svc/web"
    two = view("disk.raw", {"devs": "/dev/null /dev/zero"}, rid="disk#1", path="ns1/svc/web")
    drv.start(two, log)
    assert [str((base / f"disk.1.{i}").readlink()) for i in (0, 1)] == ["/dev/null", "/dev/zero"]
    drv.start(view("disk.raw", {"devs": "/dev/zero"}, rid="disk#1", path="ns1/svc/web"), log)
    assert sorted(p.name for p in base.iterdir()) == ["disk.1.0"]
    assert str((base / "disk.1.0").readlink()) == "/dev/zero"
    other = view("disk.raw", {"devs": "/dev/null"}, rid="disk#1.5", path="ns1/svc/web")
    drv.start(other, log)
    drv.stop(two, log)
    assert sorted(p.name for p in base.iterdir()) == ["disk.1.5.0"]


def test_md_publishes_the_assembled_array(tmp_path: Path) -> None:
    """FAKE runner: an assembled md array is published as device 0."""
    present = FakeRunner([answer(("mdadm", "--detail"), out=SCAN)])
    res = view("disk.md", {"uuid": "1c2d:aa:bb:cc"}, rid="disk#0")
    disk.Md(runner=present, root=tmp_path).start(res, RecordingLog())
    link = tmp_path / "run/opensvc/dev/root/svc/svc0/disk.0.0"
    assert str(link.readlink()) == "/dev/md/data"
    disk.Md(runner=present, root=tmp_path).stop(res, RecordingLog())
    assert not link.is_symlink()
