"""sync.rsync: options, argv, targets, status ages, and a real local rsync with no-op rules."""

from __future__ import annotations

import json
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
    monkeypatch.setenv("OMC_RUN", str(tmp_path / "run"))
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
    """ssh transport writes node:dst; the lab's module rsync://node/module/dst; the
    cluster's daemons rsync://<me>@node:port/omc/dst with this node's password file."""
    monkeypatch.setenv("OMC_SSH_KEY", "/k")
    res = view("sync.rsync", {"src": "/srv/a/ /srv/b", "dst": "/srv/copy", "reset_options": True})
    ssh = sync.rsync_argv(res, "n2")
    assert ssh[:2] == ("rsync", "-e")
    assert ssh[2].startswith("ssh -o BatchMode=yes ")
    assert ssh[2].endswith(" -i /k")
    assert ssh[3:] == ("/srv/a/", "/srv/b", "n2:/srv/copy")
    daemon = sync.rsync_argv(res, "n2", via=sync.Route(module="root"))
    assert daemon == ("rsync", "/srv/a/", "/srv/b", "rsync://n2/root/srv/copy")
    cluster = sync.Route(module="omc", port=1873, user="n1", password_file="/p")
    assert sync.rsync_argv(res, "n2", via=cluster) == (
        "rsync", "--password-file=/p", "/srv/a/", "/srv/b",
        "rsync://n1@n2:1873/omc/srv/copy",
    )  # fmt: skip


def test_the_transport_needs_no_setting_in_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab's module when OMC_RSYNC_MODULE says so; else what the node daemon
    provisioned (transport.json); else ssh."""
    from omc.runtime.cluster.syncs import Transport

    assert sync.route() == sync.SSH
    file = tmp_path / "var" / "node" / "sync" / "transport.json"
    file.parent.mkdir(parents=True)
    file.write_text(Transport(kind="rsyncd", port=1873, module="omc", user="n1",
                              password_file="/p").to_json())  # fmt: skip
    assert sync.route() == sync.Route(module="omc", port=1873, user="n1", password_file="/p",
                                      records=True)  # fmt: skip
    file.write_text(Transport(kind="ssh").to_json())
    assert sync.route() == sync.SSH
    monkeypatch.setenv("OMC_RSYNC_MODULE", "root")
    assert sync.route() == sync.Route(module="root")


def test_the_stamp_goes_to_the_same_path_on_the_peer() -> None:
    """After a copy, the receiver gets the stamp named after itself, directories made."""
    via = sync.Route(module="omc", port=1873, user="n1", password_file="/p")
    stamp = Path("/var/lib/opensvc/svc/svc0/sync#0.last_sync.n2")
    assert sync.stamp_argv(stamp, "n2", via=via) == (
        "rsync", "-t", "--mkpath", "--password-file=/p", str(stamp),
        "rsync://n1@n2:1873/omc/var/lib/opensvc/svc/svc0/sync#0.last_sync.n2")  # fmt: skip


def test_status_on_the_sending_and_the_receiving_side() -> None:
    """Sender: one line per target never synced or too old. Receiver: its own copy's
    age and origin (it never names its peers as never synced)."""
    now, hour = 100_000.0, 3600.0
    fresh, old = sync.Stamp(source="n1", time=now - 60), sync.Stamp(source="n1", time=0.0)
    assert sync.sent({"n2": fresh, "d1": fresh}, hour, now=now).status is Status.UP
    warn = sync.sent({"n2": None, "d1": old}, hour, now=now)
    assert warn.status is Status.WARN
    assert warn.warnings[0] == "n2 never synced"
    assert (
        warn.warnings[1].startswith("d1 last sync is too old, at ")
        and "(>1h ago)" in warn.warnings[1]
    )
    got = sync.received(fresh, hour, now=now)
    assert got.status is Status.UP and got.messages[0].startswith("received from n1 at ")
    assert sync.received(None, hour, now=now).warnings == ("no sync received yet",)
    stale = sync.received(old, hour, now=now)
    assert stale.status is Status.WARN and "received from n1 is too old" in stale.warnings[0]


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
    assert log.messages[0].startswith(
        "run: rsync -HAXpogDtrlvx --stats --delete --force --delay-updates --delete-delay "
    )
    assert "f.txt" not in log.messages  # -v's file list is counted, not logged line by line
    assert "rsync listed 3 paths (0 deleted), not logged one by one" in log.messages  # ./ f.txt
    # and "created directory <dst>"
    assert any(m.startswith("Number of regular files transferred: 1") for m in log.messages)
    stamp = sync.stamp_file(res, None)
    stamp.write_text(json.dumps({"from": "n1", "to": "n1", "time": 0.0}))
    assert drv.status(res).warnings[0].startswith("local last sync is too old, at ")


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


def test_the_receiver_records_each_copy_it_takes_in(env: Path, tmp_path: Path) -> None:
    """The cluster rsync daemon's post-xfer exec: a successful copy into a sync resource's
    dst writes that resource's stamp of this node, naming the sender; nothing else does."""
    config = json.dumps({"src": "/data/", "dst": "/srv/copy/", "target": ["nodes"]})
    (env / "opensvc-svc.svc0-sync.0.service").write_text(
        "[Unit]\nX-OpenSVC-Path=svc0\nX-OpenSVC-Rid=sync#0\nX-OpenSVC-Driver=sync.rsync\n"
        f"X-OpenSVC-Config={config}\n"
    )
    notes = tmp_path / "run" / "rsyncd"
    notes.mkdir(parents=True)
    copy = {"RSYNC_EXIT_STATUS": "0", "RSYNC_USER_NAME": "n1", "RSYNC_MODULE_NAME": "omc",
            "RSYNC_PID": "42"}  # fmt: skip
    for request, bad in (("omc/srv/copy", {"RSYNC_EXIT_STATUS": "23"}),
                         ("omc/srv/copy", {"RSYNC_USER_NAME": "../n1"}),
                         ("omc/srv/other", {}), ("omc/srv/copy", {"RSYNC_MODULE_NAME": "root"}),
                         ("omc/srv/copy", {"RSYNC_PID": "../42"})):  # fmt: skip
        (notes / "42").write_text(request)  # what the pre-xfer hook notes
        assert sync.record_received({**copy, **bad}, local="n2", now=5.0) == []
    (notes / "42").write_text("omc/srv/copy")
    [stamp] = sync.record_received(copy, local="n2", now=5.0)
    assert not (notes / "42").exists()
    assert stamp == tmp_path / "var" / "svc" / "svc0" / "sync#0.last_sync.n2"
    res = view("sync.rsync", json.loads(config), rid="sync#0")
    assert sync.read_stamp(res, "n2") == sync.Stamp(source="n1", time=5.0)


def test_transfer_summary_counts_the_file_list_and_keeps_the_stats() -> None:
    """-v's per-path lines become one count (deletions too); --stats and the closing lines
    stay as rsync printed them; no file list, no count line."""
    out = (
        "sending incremental file list\ny\nd/\nd/x\ndeleting old\n\n"
        "Number of files: 4 (reg: 2, dir: 2)\nTotal bytes received: 56\n\n"
        "sent 211 bytes  received 56 bytes  534.00 bytes/sec\ntotal size is 4  speedup is 0.01\n"
    )
    assert sync.transfer_summary(out) == [
        "rsync listed 4 paths (1 deleted), not logged one by one",
        "Number of files: 4 (reg: 2, dir: 2)",
        "Total bytes received: 56",
        "sent 211 bytes  received 56 bytes  534.00 bytes/sec",
        "total size is 4  speedup is 0.01",
    ]
    assert sync.transfer_summary("sending incremental file list\n\nsent 9 bytes") == [
        "sent 9 bytes"
    ]
    assert sync.transfer_summary("") == []
