"""opensvc.md §7.1's journald fields, syslog without journald, a remote syslog target,
node.conf: real unix and UDP sockets, real subprocesses."""

from __future__ import annotations

import io
import os
import re
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.runtime import VERSION, nodeconf
from omc.runtime.drivers.command import run
from omc.runtime.log import (
    ConsoleSink,
    JournalSink,
    Level,
    Record,
    SyslogSink,
    action_log,
    journal_payload,
    syslog_3164,
    syslog_5424,
    system_sinks,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty config directory whose node.conf the test writes (read afresh)."""
    monkeypatch.setenv("OMC_ETC", str(tmp_path))
    monkeypatch.delenv("OMC_COLLECTOR", raising=False)
    nodeconf.forget()
    yield tmp_path / "node.conf"
    nodeconf.forget()


def fields(record: Record) -> dict[str, str]:
    lines = journal_payload(record).decode().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_every_record_carries_the_reference_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """VERSION, EID, ARGV, CWD, REQUEST_ID (from the daemon's OSVC_REQUEST_ID) join SID,
    ACTION, ORIGIN, NODE, CRM and OBJ_* on every record of an action."""
    monkeypatch.setenv("OSVC_REQUEST_ID", "req-42")
    log = action_log("svc0", action="start", argv="om svc0 instance start", journal=False)
    got = fields(log.record(Level.INFO, "hello", rid="fs#1"))
    assert got["VERSION"] == VERSION
    assert re.fullmatch(r"[0-9a-f-]{36}", got["EID"])
    assert got["ARGV"] == "om svc0 instance start"
    assert got["CWD"] == str(Path.cwd())
    assert got["REQUEST_ID"] == "req-42"
    assert {"SID", "ACTION", "ORIGIN", "NODE", "CRM", "OBJ_PATH", "RID"} <= set(got)


def test_the_exec_id_is_one_per_process_and_the_session_id_is_inherited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two loggers of one process share their EID; OSVC_SESSION_ID becomes the SID (om3)."""
    monkeypatch.setenv("OSVC_SESSION_ID", "AE60FDD4-6629-40EB-A993-4F1380D66516")
    a = action_log("svc0", action="start", journal=False)
    b = action_log("svc0", action="stop", journal=False)
    assert a.fields["EID"] == b.fields["EID"]
    assert a.sid == "ae60fdd4-6629-40eb-a993-4f1380d66516"
    monkeypatch.setenv("OSVC_SESSION_ID", "not-a-uuid")
    assert action_log("svc0", action="x", journal=False).sid != "not-a-uuid"


def test_command_output_lines_carry_cmd_and_cmd_pid() -> None:
    """`run:` names CMD; each output line has CMD and the process's CMD_PID."""
    got: list[Record] = []

    class Keep(ConsoleSink):
        def emit(self, record: Record) -> None:
            got.append(record)

    log = action_log("svc0", action="start", journal=False, console=Keep(io.StringIO()))
    run(["sh", "-c", "echo out; echo err >&2; echo $$"], log=log.bind(rid="app#0"), check=False)
    run_line, out, pid, err = got  # stdout lines, then stderr lines
    assert run_line.message == "run: sh -c 'echo out; echo err >&2; echo $$'"
    assert (out.level, out.message, err.level, err.message) == (
        Level.INFO, "out", Level.WARNING, "err")  # fmt: skip
    assert out.fields["CMD"] == "sh -c 'echo out; echo err >&2; echo $$'"
    assert out.fields["CMD_PID"] == err.fields["CMD_PID"] == pid.message


def test_version_is_the_package_version() -> None:
    """journald's VERSION is pyproject.toml's version."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        assert tomllib.load(fh)["project"]["version"] == VERSION


# --- syslog ---------------------------------------------------------------------------


def record(level: Level = Level.WARNING, message: str = "disk full") -> Record:
    return Record(time=0.0, level=level, path="svc0", rid="fs#1", message=message,
                  fields={"SID": "s-1", "ACTION": "start", "ARGV": 'om svc0 "x y"'})  # fmt: skip


def test_local_syslog_is_rfc3164_with_a_key_value_tail() -> None:
    """What glibc's syslog() sends to /dev/log: <PRI>, the time, om[pid]:, the console
    text, then the fields; quoted where they hold spaces."""
    raw = syslog_3164(record(), facility=3, pid=42).decode()
    assert re.fullmatch(
        r"<28>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d om\[42\]: svc0: fs#1: disk full "
        r'\[OBJ_PATH=svc0 RID=fs#1 SID=s-1 ACTION=start ARGV="om svc0 \\"x y\\""\]',
        raw,
    )


def test_remote_syslog_is_rfc5424_with_structured_data() -> None:
    """RFC 5424 header, the fields as SD-PARAMs of [om@32473 …] with '"', '\\' and ']'
    escaped, the console text as MSG."""
    raw = syslog_5424(record(message="a ] b"), facility=3, pid=42, hostname="n1").decode()
    assert raw.startswith("<28>1 1970-01-01T00:00:00.000000Z n1 om 42 - [om@32473 ")
    assert 'ARGV="om svc0 \\"x y\\""' in raw
    assert raw.endswith("] svc0: fs#1: a ] b")


def test_a_message_cannot_forge_syslog_lines() -> None:
    """Control characters are escaped: one record is one line."""
    raw = syslog_3164(record(message="x\n<11>Jan  1 00:00:00 fake: y"), facility=3, pid=1)
    assert b"\n" not in raw and b"\\n<11>" in raw


@pytest.fixture
def dev_log(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "dev-log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(5)
    yield path, listener
    listener.close()


def test_without_journald_records_go_to_syslog(
    tmp_path: Path, dev_log: tuple[str, socket.socket]
) -> None:
    """No journal socket (or nobody behind it): the record reaches /dev/log instead."""
    path, listener = dev_log
    for journal in (str(tmp_path / "absent"), _dead_socket(tmp_path / "dead")):
        sink = JournalSink(journal, fallback=SyslogSink(facility=3, address=path))
        sink.emit(record())
        assert b"om[" in listener.recv(65536) and sink.disabled


def test_syslog_honours_the_level_of_node_conf(dev_log: tuple[str, socket.socket]) -> None:
    """[syslog] level = warning: info records are not sent."""
    path, listener = dev_log
    sink = SyslogSink(facility=3, level="warning", address=path)
    sink.emit(record(Level.INFO, "quiet"))
    sink.emit(record(Level.ERROR, "loud"))
    assert b"loud" in listener.recv(65536)
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.recv(65536)


def test_node_conf_remote_syslog_target(node_conf: Path) -> None:
    """[syslog] host/port add a UDP sink in RFC 5424 next to journald."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    node_conf.write_text(f"[syslog]\nhost = 127.0.0.1\nport = {receiver.getsockname()[1]}\n"
                         "facility = local3\n")  # fmt: skip
    sinks = system_sinks()
    assert isinstance(sinks[0], JournalSink) and len(sinks) == 2
    sinks[1].emit(record())
    data = receiver.recv(65536).decode()
    receiver.close()
    assert data.startswith(f"<{19 * 8 + 4}>1 ") and "[om@32473 OBJ_PATH=" in data


def test_node_conf_keywords(node_conf: Path) -> None:
    """om3's names and defaults: a port alone means localhost, dbopensvc gets v2's path,
    OMC_COLLECTOR overrides it."""
    assert nodeconf.read("").syslog.remote is False
    conf = nodeconf.read("[syslog]\nport = 5514\n[node]\ndbopensvc = collector.example\n")
    assert (conf.syslog.host, conf.syslog.port, conf.syslog.facility) == ("localhost", 5514, 3)
    assert conf.collector_url == "https://collector.example/feed/default/call/xmlrpc"
    assert nodeconf.xmlrpc_url("http://c:8000/x/y") == "http://c:8000/x/y"
    os.environ["OMC_COLLECTOR"] = "http://other/rpc"
    try:
        assert conf.collector_url == "http://other/rpc"
    finally:
        del os.environ["OMC_COLLECTOR"]


def test_the_node_uuid_is_never_empty(tmp_path: Path, node_conf: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """node.conf's uuid when set, else one generated once, kept 0600 and reused."""
    monkeypatch.setenv("OMC_VAR", str(tmp_path / "var"))
    first = nodeconf.node_uuid()
    assert re.fullmatch(r"[0-9a-f-]{36}", first) and nodeconf.node_uuid() == first
    assert (tmp_path / "var" / "node" / "uuid").stat().st_mode & 0o777 == 0o600
    node_conf.write_text("[node]\nuuid = 11111111-2222-3333-4444-555555555555\n")
    nodeconf.forget()
    assert nodeconf.node_uuid() == "11111111-2222-3333-4444-555555555555"


def _dead_socket(path: Path) -> str:
    """A socket file nobody listens on (journald stopped, its socket left behind)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    return str(path)
