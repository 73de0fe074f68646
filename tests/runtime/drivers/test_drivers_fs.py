"""fs.flag, fs.directory and the mount probe, for real on this host (temp dirs only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omc.runtime import drivers
from omc.runtime.drivers import ResourceView, Status, disk, fs

from .helpers import FakeRunner, RecordingLog, answer, view


@pytest.fixture(autouse=True)
def flag_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMC_FLAG_DIR", str(tmp_path / "shm"))
    return tmp_path / "shm"


@pytest.mark.parametrize(
    ("path", "rid", "expected"),
    [
        ("svc0", "fs#1", "svc/svc0/fs#1.flag"),
        ("ns1/svc/web", "fs#flag", "namespaces/ns1/svc/web/fs#flag.flag"),
        ("vol/v1", "fs#0", "vol/v1/fs#0.flag"),
    ],
)
def test_flag_file_layout(flag_dir: Path, path: str, rid: str, expected: str) -> None:
    """The flag file sits at <base>/<kind>/<name>/<rid>.flag, as the seed log shows."""
    assert fs.flag_file(view("fs.flag", {}, path=path, rid=rid)) == flag_dir / expected


def test_flag_default_base_is_dev_shm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OMC_FLAG_DIR the base is exactly /dev/shm/opensvc."""
    monkeypatch.delenv("OMC_FLAG_DIR")
    got = fs.flag_file(view("fs.flag", {}, rid="fs#1"))
    assert got == Path("/dev/shm/opensvc/svc/svc0/fs#1.flag")


def test_flag_start_stop_cycle(flag_dir: Path) -> None:
    """start installs, a second start says already up, stop uninstalls, status follows."""
    res, log = view("fs.flag", {}, rid="fs#1"), RecordingLog()
    drv = drivers.get("fs.flag")
    flag = flag_dir / "svc/svc0/fs#1.flag"
    assert drv.status(res).status is Status.DOWN
    drv.start(res, log)
    drv.start(res, log)
    assert flag.exists()
    assert drv.status(res).status is Status.UP
    drv.stop(res, log)
    drv.stop(res, log)
    assert not flag.exists()
    assert log.messages == [
        f"install flag file {flag}",
        f"flag file {flag} is already installed",
        f"uninstall flag file {flag}",
        f"flag file {flag} is already uninstalled",
    ]


def test_flag_drift_is_seen(flag_dir: Path) -> None:
    """Deleting the flag file by hand turns the status down."""
    res = view("fs.flag", {}, rid="fs#1")
    drivers.get("fs.flag").start(res, RecordingLog())
    fs.flag_file(res).unlink()
    assert drivers.evaluate(res).status is Status.DOWN


def test_directory_created_with_mode(tmp_path: Path) -> None:
    """fs.directory creates the path with perm; it is n/a when as configured, and stop keeps it."""
    target = tmp_path / "a" / "b"
    res = view("fs.directory", {"path": str(target), "perm": 0o750, "user": "root"})
    drv, log = drivers.get("fs.directory"), RecordingLog()
    assert drv.status(res).status is Status.DOWN
    drv.start(res, log)
    assert target.is_dir()
    assert oct(target.stat().st_mode & 0o7777) == "0o750"
    drv.stop(res, log)
    assert drv.status(res) == drivers.Probe(status=Status.NA)
    assert log.messages == [f"create directory {target}", f"set {target} mode to 0750"]


def test_directory_mode_drift_is_warn(tmp_path: Path) -> None:
    """A mode changed by hand is warn, with the expected and actual modes."""
    res = view("fs.directory", {"path": str(tmp_path), "perm": "0700"})
    tmp_path.chmod(0o755)
    probe = drivers.get("fs.directory").status(res)
    assert (probe.status, probe.warnings) == (Status.WARN, ("mode should be 0700 but is 0755",))


def test_directory_unknown_user_is_a_clear_error(tmp_path: Path) -> None:
    """An unknown user is a DriverError naming it, not a KeyError."""
    res = view("fs.directory", {"path": str(tmp_path / "d"), "user": "no-such-user-x"})
    with pytest.raises(drivers.DriverError, match="no-such-user-x"):
        drivers.get("fs.directory").start(res, RecordingLog())


MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "40 22 7:3 / /srv/my\\040data rw - ext4 /dev/loop3 rw\n"
    "41 22 0:50 / /mnt/t rw - tmpfs tmpfs rw\n"
)


def test_parse_mountinfo_unescapes_targets() -> None:
    """mountinfo's octal escapes are undone and the optional fields skipped."""
    entries = fs.parse_mountinfo(MOUNTINFO)
    assert [(e.devno, e.target, e.fstype, e.source) for e in entries] == [
        ("8:1", "/", "ext4", "/dev/sda1"),
        ("7:3", "/srv/my data", "ext4", "/dev/loop3"),
        ("0:50", "/mnt/t", "tmpfs", "tmpfs"),
    ]


def test_mount_probe_on_real_tmpfs(tmp_path: Path) -> None:
    """A tmpfs mounted by hand is up; with another expected device it is warn; gone is down."""
    mnt = tmp_path / "m"
    mnt.mkdir()
    drv = fs.Mount()
    res = view("fs.tmpfs", {"mnt": str(mnt), "dev": "tmpfs"})
    assert drv.status(res).status is Status.DOWN
    log = RecordingLog()
    drv.start(res, log)
    try:
        assert drv.status(res).status is Status.UP
        other = view("fs.tmpfs", {"mnt": str(mnt), "dev": str(tmp_path)})
        assert drv.status(other).status is Status.WARN
        drv.start(res, log)
    finally:
        drv.stop(res, log)
        drv.stop(res, log)
    assert drv.status(res).status is Status.DOWN
    assert log.messages == [
        f"run: mount -t tmpfs tmpfs {mnt}",
        f"already up: {mnt} is mounted",
        f"run: umount {mnt}",
        f"already down: {mnt} is not mounted",
    ]


def test_mount_argv_adds_loop_for_image_files(tmp_path: Path) -> None:
    """An image file as dev gets the loop option appended to mnt_opt."""
    image = tmp_path / "img"
    image.write_bytes(b"")
    res = view("fs.ext4", {"mnt": "/srv/x", "dev": str(image), "mnt_opt": "noatime"})
    argv = fs.Mount(runner=FakeRunner()).mount_argv(res)
    assert argv == ("mount", "-t", "ext4", "-o", "noatime,loop", str(image), "/srv/x")


def test_device_matches_block_device_by_number() -> None:
    """A block device matches the mount entry carrying its major:minor, and no other."""
    dev = Path("/dev") / sorted(p.name for p in Path("/sys/block").iterdir())[0]
    st = dev.stat()
    mine = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    entry = fs.MountEntry(devno=mine, target="/x", fstype="ext4", source="/dev/other")
    assert fs.device_matches(str(dev), entry)
    assert not fs.device_matches(
        str(dev), fs.MountEntry(devno="999:999", target="/x", fstype="ext4", source="/dev/other")
    )


@pytest.fixture
def failover_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An object target declaring two nodes, failover, in a private unit dir."""
    units = tmp_path / "units"
    units.mkdir()
    monkeypatch.setenv("OMC_UNIT_DIR", str(units))
    monkeypatch.setenv("OMC_NODE", "n1")
    (units / "opensvc-svc.svc0.target").write_text(
        '[Unit]\nX-OpenSVC-Path=svc0\nX-OpenSVC-Config={"nodes":["n1","n2"],"topology":"failover"}\n'
    )
    return units


def test_flag_peer_found_over_ssh(failover_units: Path) -> None:
    """FAKE ssh: the peer whose `test -f <flag> -a -O <flag>` (a file of root's) exits 0 holds
    the flag; we never ask ourselves."""
    runner = FakeRunner([answer(("ssh",), rc=0)])
    res = view("fs.flag", {}, rid="fs#1")
    assert fs.flag_peer(res, runner=runner) == "n2"
    (call,) = runner.calls
    flag = str(fs.flag_file(res))
    assert call[-7:] == ("n2", "test", "-f", flag, "-a", "-O", flag)


def test_flag_peer_unreachable_is_no_veto(failover_units: Path) -> None:
    """FAKE ssh: an unreachable peer (255) does not veto."""
    runner = FakeRunner([answer(("ssh",), rc=255)])
    assert fs.flag_peer(view("fs.flag", {}, rid="fs#1"), runner=runner) is None


def test_flag_veto_skipped_when_flag_is_local(failover_units: Path) -> None:
    """A flag already installed here never vetoes (the start is a no-op anyway)."""
    res = view("fs.flag", {}, rid="fs#1")
    drivers.get("fs.flag").start(res, RecordingLog())
    assert drivers.veto(res) is None


def test_veto_ignores_disabled_resources() -> None:
    """Disabled resources never veto."""
    res = view("fs.flag", {}, rid="fs#1", flags=frozenset({"disable"}))
    assert drivers.veto(res) is None


def test_resolve_dev_prefers_the_published_disk_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """{disk#x.exposed_devs[n]} resolves to the link the disk published, when it exists."""
    link = tmp_path / "disk.0.1"
    link.symlink_to("/dev/null")
    asked: list[tuple[str, int]] = []

    def published(res: ResourceView, index: int, root: Path = Path("/")) -> Path:
        asked.append((res.rid, index))
        return link

    monkeypatch.setattr(disk, "published", published)
    res = view("fs.ext4", {"dev": "{disk#0.exposed_devs[1]}", "mnt": "/srv/x"}, rid="fs#0")
    assert fs.resolve_dev(res) == str(link)
    assert asked == [("disk#0", 1)]


def test_flag_peer_skips_the_peers_the_daemon_names_down(
    failover_units: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAKE ssh: a peer in OMC_PEERS_DOWN (no lease, as the daemon sees it) is not asked,
    so a takeover does not wait out the connect timeout to the node it replaces."""
    monkeypatch.setenv("OMC_PEERS_DOWN", "n2")
    runner = FakeRunner([answer(("ssh",), rc=0)])
    assert fs.flag_peer(view("fs.flag", {}, rid="fs#1"), runner=runner) is None
    assert runner.calls == []
