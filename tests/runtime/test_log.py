"""Action logs: console format, Go durations, journald datagrams, the driver relay."""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
from pathlib import Path

import pytest
from omc.runtime.log import (
    ActionRelay,
    ConsoleSink,
    JournalSink,
    Level,
    Record,
    action_log,
    driver_log,
    go_duration,
    journal_payload,
    record_from_journal,
)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1.603582081, "1.603582081s"),
        (0.211596639, "211.596639ms"),
        (0.0, "0s"),
        (0.000000123, "123ns"),
        (0.0000015, "1.5µs"),
        (2.0, "2s"),
        (62.5, "1m2.5s"),
        (3600.0, "1h0m0s"),
        (0.001, "1ms"),
    ],
)
def test_go_duration(seconds: float, expected: str) -> None:
    """Durations print exactly as Go's time.Duration.String()."""
    assert go_duration(seconds) == expected


def test_console_line_matches_seed() -> None:
    """A resource record prints as `HH:MM:SS.mmm INF svc0: fs#1: message`."""
    rec = Record(time=0.590, level=Level.INFO, path="svc0", rid="fs#1", message="install flag")
    line = rec.console_line()
    assert line[2] == ":" and line[5] == ":" and line[8] == "."
    assert line[12:] == " INF svc0: fs#1: install flag"


def test_console_respects_level() -> None:
    """Debug records are hidden at the default level and shown with --debug."""
    out = io.StringIO()
    log = action_log("svc0", action="start", console=ConsoleSink(out), journal=False)
    log.debug("hidden")
    log.warning("shown")
    assert [ln[13:] for ln in out.getvalue().splitlines()] == ["WRN svc0: shown"]


def test_journal_payload_fields() -> None:
    """Journald gets MESSAGE, PRIORITY, OBJ_PATH, RID and the action's uppercase fields."""
    log = action_log("ns1/svc/web", action="start", sid="s-1", node="n1", journal=False)
    rec = Record(time=1.0, level=Level.WARNING, path="ns1/svc/web", rid="ip#0", message="hi",
                 fields=log.fields)  # fmt: skip
    lines = journal_payload(rec).decode().splitlines()
    assert "MESSAGE=ip#0: hi" in lines
    assert "PRIORITY=4" in lines
    for item in ("OBJ_PATH=ns1/svc/web", "RID=ip#0", "SID=s-1", "NODE=n1", "ACTION=start",
                 "OBJ_KIND=svc", "OBJ_NAME=web", "OBJ_NAMESPACE=ns1", "ORIGIN=user"):  # fmt: skip
        assert item in lines


def test_journal_multiline_value_uses_length_prefix() -> None:
    """A value with a newline is sent in the binary form so it cannot forge a field."""
    rec = Record(time=1.0, level=Level.INFO, path="svc0", message="a\nPRIORITY=0")
    payload = journal_payload(rec)
    msg = b"a\nPRIORITY=0"
    assert b"MESSAGE\n" + struct.pack("<Q", len(msg)) + msg + b"\n" in payload
    assert b"\nPRIORITY=0\n" not in payload.replace(msg, b"")


def test_journal_sink_sends_datagram(tmp_path: Path) -> None:
    """The journal sink writes one datagram per record to the socket."""
    path = tmp_path / "journal.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    sink = JournalSink(str(path))
    sink.emit(Record(time=1.0, level=Level.INFO, path="svc0", message="hello"))
    assert b"MESSAGE=hello\n" in server.recv(65536)
    server.close()


def test_journal_sink_skips_missing_socket(tmp_path: Path) -> None:
    """Without journald the sink silently does nothing."""
    sink = JournalSink(str(tmp_path / "absent"))
    sink.emit(Record(time=1.0, level=Level.INFO, path="svc0", message="x"))
    assert sink.disabled


def test_driver_records_reach_acting_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver's records are printed by the acting om, under its sid, in order."""
    monkeypatch.setenv("OMC_RUN", str(tmp_path))
    out = io.StringIO()
    log = action_log("svc0", action="start", console=ConsoleSink(out), journal=False)
    got: list[Record] = []
    with ActionRelay("svc0", log.sid, got.append) as relay:
        drv = driver_log("svc0", "fs#1")
        drv.info("install flag file /x")
        drv.warning("second")
        relay.drain()
    assert [(r.rid, r.message, r.fields["SID"]) for r in got] == [
        ("fs#1", "install flag file /x", log.sid),
        ("fs#1", "second", log.sid),
    ]
    assert not (tmp_path / "action" / "root_svc_svc0.sock").exists()


def test_stale_sid_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sid file left by a crashed om (no listener) neither relays nor lends its sid."""
    monkeypatch.setenv("OMC_RUN", str(tmp_path))
    (tmp_path / "action").mkdir()
    (tmp_path / "action" / "root_svc_svc0.sid").write_text("stale-sid\n")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "action" / "root_svc_svc0.sock"))
    dead.close()
    log = driver_log("svc0", "fs#1")
    assert log.sid != "stale-sid"


def test_record_from_journal_round_trip() -> None:
    """A journald JSON entry of ours reads back as the console line it was."""
    entry = ('{"OBJ_PATH":"svc0","RID":"fs#1","MESSAGE":"fs#1: install flag file /x",'
             '"PRIORITY":"6","__REALTIME_TIMESTAMP":"1700000000590000"}')  # fmt: skip
    rec = record_from_journal(entry)
    assert rec is not None
    assert rec.console_line()[12:] == " INF svc0: fs#1: install flag file /x"
    assert record_from_journal('{"MESSAGE":"not ours"}') is None


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("\x1b[2J\x1b]0;owned\x07", r"\x1b[2J\x1b]0;owned\x07"),
        ("fake\r12:00:00.000 INF svc0: done", r"fake\r12:00:00.000 INF svc0: done"),
        ("two\nlines\tand a tab", r"two\nlines\tand a tab"),
        ("\x7f\x9b6n é ✓", r"\x7f\x9b6n é ✓"),
    ],
)
def test_console_lines_show_control_characters_escaped(message: str, shown: str) -> None:
    """ESC, CR, LF, TAB, DEL and C1 controls never reach a console raw; other text is kept."""
    line = Record(time=0.0, level=Level.INFO, path="svc0", rid="fs#1", message=message)
    assert line.console_line()[13:] == f"INF svc0: fs#1: {shown}"


def test_record_from_journal_reads_byte_array_fields() -> None:
    """journald hands a message with control characters as bytes: ``om logs`` still shows it."""
    raw = list(b"fs#1: \x1b[31mred")
    entry = ('{"OBJ_PATH":"svc0","RID":"fs#1","MESSAGE":' + str(raw) +
             ',"PRIORITY":"6","__REALTIME_TIMESTAMP":"1700000000590000"}')  # fmt: skip
    rec = record_from_journal(entry)
    assert rec is not None and rec.message == "\x1b[31mred"
    assert rec.console_line().endswith(r"INF svc0: fs#1: \x1b[31mred")


def test_relay_socket_is_root_only_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """umask 000: the relay's directory is 0700, its socket and sid file 0600."""
    monkeypatch.setenv("OMC_RUN", str(tmp_path / "run"))
    old = os.umask(0)
    try:
        with ActionRelay("svc0", "sid", lambda _: None) as relay:
            made = (tmp_path / "run", relay.sock_path.parent, relay.sock_path, relay.sid_path)
            modes = [stat.S_IMODE(p.stat().st_mode) for p in made]
    finally:
        os.umask(old)
    assert modes == [0o755, 0o700, 0o600, 0o600]


def test_relay_drops_datagrams_from_other_uids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A datagram whose sender is not root is dropped, and the first drop is reported."""
    monkeypatch.setenv("OMC_RUN", str(tmp_path))
    got: list[Record] = []
    with ActionRelay("svc0", "sid", got.append) as relay:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.connect(str(relay.sock_path))
        pid = os.fork()
        if pid == 0:  # the child becomes another user, keeping the connected socket
            try:
                os.setgid(4242)
                os.setuid(4242)
                for text in ("forged 1", "forged 2"):
                    sender.send(Record(time=0.0, level=Level.INFO, path="svc0", message=text)
                                .to_json().encode())  # fmt: skip
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        sender.send(
            Record(time=0.0, level=Level.INFO, path="svc0", message="root").to_json().encode()
        )
        relay.drain()
    assert [(r.level, r.message) for r in got] == [
        (Level.WARNING, f"dropped a log record sent by uid 4242 (pid {pid}): "
                        "the relay takes records from root only"),
        (Level.INFO, "root"),
    ]  # fmt: skip
