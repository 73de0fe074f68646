"""Action logs: one record, several sinks (console, journald, relay, collector).

The console line is OpenSVC's (opensvc.md §7.1)::

    10:51:52.061 INF svc0: fs#1: install flag file /dev/shm/opensvc/svc/svc0/fs#1.flag

Journald gets the same record with structured fields (``OBJ_PATH``, ``RID``,
``SID`` …) over the native protocol: one datagram to
``/run/systemd/journal/socket``, no library. Drivers run in another process
(the oneshot units run ``om <path> driver start --rid <rid>``); their records
reach the console of the ``om`` action that started them through a per-object
unix datagram socket (:class:`ActionRelay` on the acting side,
:func:`driver_log` on the driver side). The sid file next to it lets the
driver log under the acting command's session id.

Who may write on root's console: the relay socket and sid file live in a
root-only directory (``/run/opensvc/action``, 0700, see :mod:`omc.runtime.layout`),
and the relay reads each datagram's sender credentials (``SO_PASSCRED``): it takes
records from root (and from the user running ``om``, the same person) only, and
says once per action that it dropped others. Drivers run as root (systemd runs
the units' ``om … driver`` commands), so nothing legitimate is dropped. Every
console line has its control characters made visible (:func:`printable`): a
record's text, whoever wrote it, cannot move the cursor or rewrite earlier lines.

Import-light on purpose: this module is on the hot path of every ``om`` call.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Protocol, TextIO

from omc.compiler.contract.node import node_name
from omc.compiler.contract.paths import PathError, parse_path
from omc.runtime import layout, safefs

JOURNAL_SOCKET = "/run/systemd/journal/socket"


class Level(IntEnum):
    """Console levels, with the zerolog abbreviations om3 prints."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARNING = 3
    ERROR = 4

    @property
    def tag(self) -> str:
        return ("TRC", "DBG", "INF", "WRN", "ERR")[self]

    @property
    def priority(self) -> int:
        """syslog priority for journald's ``PRIORITY=``."""
        return (7, 7, 6, 4, 3)[self]


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One log line with its context; what every sink receives."""

    time: float
    level: Level
    path: str
    message: str
    rid: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    def console_line(self) -> str:
        """``HH:MM:SS.mmm LVL <path>: [<rid>: ]<message>``."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time))
        millis = int(self.time * 1000) % 1000
        prefix = f"{self.path}: {self.rid}: " if self.rid else f"{self.path}: "
        return printable(f"{stamp}.{millis:03d} {self.level.tag} {prefix}{self.message}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "time": self.time,
                "level": int(self.level),
                "path": self.path,
                "rid": self.rid,
                "message": self.message,
                "fields": dict(self.fields),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        return cls(
            time=float(data["time"]),
            level=Level(int(data["level"])),
            path=str(data["path"]),
            rid=data.get("rid"),
            message=str(data["message"]),
            fields={str(k): str(v) for k, v in dict(data.get("fields", {})).items()},
        )


# C0 controls, DEL and C1 controls (ESC, CR, CSI …): shown as escapes, never sent raw.
_VISIBLE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_VISIBLE.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\r``, ``\\n``):
    what a console line may contain, whoever wrote the record."""
    return text.translate(_VISIBLE)


class Sink(Protocol):
    """Where records go. Sinks never raise: logging must not fail an action."""

    def emit(self, record: Record) -> None: ...


class ConsoleSink:
    """Writes console lines to a stream (stdout for actions, like the seed shows)."""

    def __init__(self, stream: TextIO | None = None, *, level: Level = Level.INFO) -> None:
        self.stream = stream
        self.level = level
        self.lock = threading.Lock()

    def emit(self, record: Record) -> None:
        if record.level < self.level:
            return
        stream = self.stream or sys.stdout
        with self.lock, contextlib.suppress(OSError, ValueError):
            stream.write(record.console_line() + "\n")
            stream.flush()


def _journal_field(key: str, value: str) -> bytes:
    """Native protocol: ``KEY=value\\n``, or the length-prefixed form for multi-line values."""
    raw = value.encode("utf-8", "replace")
    if b"\n" not in raw:
        return key.encode() + b"=" + raw + b"\n"
    return key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"


def journal_payload(record: Record) -> bytes:
    """The datagram journald receives for a record (pure, tested)."""
    items: dict[str, str] = {
        "MESSAGE": f"{record.rid}: {record.message}" if record.rid else record.message,
        "PRIORITY": str(record.level.priority),
        "SYSLOG_IDENTIFIER": "om",
        "OBJ_PATH": record.path,
    }
    if record.rid:
        items["RID"] = record.rid
    for key, value in record.fields.items():
        if value != "":
            items[key.upper()] = value
    return b"".join(_journal_field(k, v) for k, v in items.items())


class JournalSink:
    """Sends records to journald; without journald (no socket, or nobody behind it),
    to ``fallback`` (the local syslog, as om3 does), else nowhere.

    ``own_records``: a process sends its own records here; relayed records (a driver's)
    were sent by their writer already (:meth:`ActionLog.emit_relayed`).
    """

    own_records = True

    def __init__(self, socket_path: str = JOURNAL_SOCKET, *, fallback: Sink | None = None) -> None:
        self.socket_path = socket_path
        self.sock: socket.socket | None = None
        self.fallback = fallback
        self.disabled = not Path(socket_path).exists()

    def emit(self, record: Record) -> None:
        if self.disabled:
            if self.fallback is not None:
                self.fallback.emit(record)
            return
        payload = journal_payload(record)
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                self.sock.sendto(payload, self.socket_path)
            except OSError as exc:
                if exc.errno != 90:  # EMSGSIZE: hand the payload over in a memfd
                    raise
                self._send_memfd(payload)
        except OSError:
            self.disabled = True
            if self.fallback is not None:
                self.fallback.emit(record)

    def _send_memfd(self, payload: bytes) -> None:
        fd = os.memfd_create("om-journal", os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, payload)
            assert self.sock is not None
            self.sock.sendmsg(
                [],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))],
                0,
                self.socket_path,
            )
        finally:
            os.close(fd)


# --- syslog (opensvc.md §7.1: "journald, or syslog when journald is unavailable") ------

DEV_LOG = "/dev/log"
SYSLOG_LEVELS = {"debug": Level.DEBUG, "info": Level.INFO, "warning": Level.WARNING,
                 "error": Level.ERROR, "critical": Level.ERROR + 1}  # fmt: skip
SD_ID = "om@32473"  # RFC 5424 SD-ID: a name @ an enterprise number (32473: RFC 5612's example)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _syslog_items(record: Record) -> list[tuple[str, str]]:
    """The record's structured fields, journald's names (MESSAGE, PRIORITY aside)."""
    items = [("OBJ_PATH", record.path)]
    if record.rid:
        items.append(("RID", record.rid))
    items += [(k.upper(), v) for k, v in record.fields.items() if v != ""]
    return items


def _kv(value: str) -> str:
    """A key=value tail's value: bare when it is one plain word, else quoted."""
    if value and all(c.isalnum() or c in "-_.:/#@,+=" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def syslog_3164(record: Record, *, facility: int, pid: int) -> bytes:
    """The local syslog datagram glibc's ``syslog()`` sends to ``/dev/log`` (RFC 3164
    without the hostname, which the daemon adds), the fields as a ``key=value`` tail:
    ``<30>Mar  1 10:51:52 om[123]: svc0: fs#1: message [OBJ_PATH=svc0 RID=fs#1 …]`` (pure)."""
    t = time.localtime(record.time)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    pri = facility * 8 + record.level.priority
    prefix = f"{record.path}: {record.rid}: " if record.rid else f"{record.path}: "
    tail = " ".join(f"{k}={_kv(v)}" for k, v in _syslog_items(record))
    return f"<{pri}>{stamp} om[{pid}]: {printable(prefix + record.message)} [{tail}]".encode()


def _sd_value(value: str) -> str:
    """RFC 5424 §6.3.3: ``"``, ``\\`` and ``]`` escaped in a PARAM-VALUE."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_5424(record: Record, *, facility: int, pid: int, hostname: str) -> bytes:
    """An RFC 5424 message for a remote collector, the fields as SD-PARAMs of
    ``[om@32473 …]`` (names are journald's, valid SD-NAMEs) (pure)."""
    pri = facility * 8 + record.level.priority
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.time))
    stamp += f".{int(record.time * 1e6) % 1_000_000:06d}Z"
    params = " ".join(f'{k}="{_sd_value(v)}"' for k, v in _syslog_items(record))
    prefix = f"{record.path}: {record.rid}: " if record.rid else f"{record.path}: "
    header = f"<{pri}>1 {stamp} {hostname or '-'} om {pid} - [{SD_ID} {params}]"
    return f"{header} {printable(prefix + record.message)}".encode()


class SyslogSink:
    """Records to a syslog daemon: the local one (``/dev/log``, RFC 3164, what local
    daemons parse) or a remote one (UDP, RFC 5424 with structured data), from the
    level ``[syslog] level`` of node.conf up. Never raises: syslog is best effort."""

    own_records = True

    def __init__(self, *, facility: int, level: str = "info", address: str | tuple[str, int]
                 = DEV_LOG) -> None:  # fmt: skip
        self.facility = facility
        self.min_level = SYSLOG_LEVELS.get(level, Level.INFO)
        self.address = address
        self.sock: socket.socket | None = None
        self.hostname = socket.gethostname()

    def emit(self, record: Record) -> None:
        if record.level < self.min_level:
            return
        pid = os.getpid()
        try:
            if isinstance(self.address, str):
                payload = syslog_3164(record, facility=self.facility, pid=pid)
                if self.sock is None:
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            else:
                payload = syslog_5424(record, facility=self.facility, pid=pid,
                                      hostname=self.hostname)  # fmt: skip
                if self.sock is None:
                    self.sock = socket.socket(_family(self.address[0]), socket.SOCK_DGRAM)
            self.sock.sendto(payload, self.address)
        except OSError:
            return


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def system_sinks() -> list[Sink]:
    """journald (syslog's ``/dev/log`` without it), and the remote syslog of node.conf."""
    from omc.runtime import nodeconf

    conf = nodeconf.load().syslog
    local = SyslogSink(facility=conf.facility, level=conf.level)
    sinks: list[Sink] = [JournalSink(fallback=local)]
    if conf.remote:
        sinks.append(SyslogSink(facility=conf.facility, level=conf.level,
                                address=(conf.host, conf.port)))  # fmt: skip
    return sinks


class RelaySink:
    """Driver side: sends records as JSON datagrams to the acting ``om``'s relay socket."""

    def __init__(self, socket_path: Path) -> None:
        """Connects at once: raises OSError when nobody listens (a stale socket file)."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.connect(str(socket_path))
        except OSError:
            self.sock.close()
            raise

    def emit(self, record: Record) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(record.to_json().encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionLog:
    """The logger of one action on one object; ``bind`` adds rid/subset context.

    ``fields`` are journald fields common to every record (``SID``, ``ACTION``,
    ``ORIGIN``, ``NODE``, ``OBJ_KIND`` …), computed once in :func:`action_log`.
    """

    path: str
    sinks: tuple[Sink, ...]
    rid: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def sid(self) -> str:
        return self.fields.get("SID", "")

    @property
    def relayed(self) -> bool:
        """A driver's logger whose records an acting ``om`` receives (its relay)."""
        return any(isinstance(sink, RelaySink) for sink in self.sinks)

    def bind(self, *, rid: str | None = None, subset: str | None = None) -> ActionLog:
        """A logger for one resource (the console shows ``<path>: <rid>: …``)."""
        extra = dict(self.fields)
        if subset is not None:
            extra["SUBSET"] = subset
        return replace(self, rid=rid if rid is not None else self.rid, fields=extra)

    def record(self, level: Level, msg: str, *, rid: str | None = None, **fields: object) -> Record:
        """A record of this logger (its context, ``fields`` uppercased on top)."""
        merged = dict(self.fields)
        merged.update({k.upper(): str(v) for k, v in fields.items() if v is not None})
        return Record(time=time.time(), level=level, path=self.path, rid=rid or self.rid,
                      message=msg, fields=merged)  # fmt: skip

    def log(self, level: Level, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.emit(self.record(level, msg, rid=rid, **fields))

    def emit(self, record: Record) -> None:
        for sink in self.sinks:
            sink.emit(record)

    def emit_relayed(self, record: Record) -> None:
        """A driver's record: everywhere but journald and syslog, where the driver
        process sent it itself (sinks marked ``own_records``)."""
        for sink in self.sinks:
            if not getattr(sink, "own_records", False):
                sink.emit(record)

    def emit_local(self, record: Record) -> None:
        """A record about a remote sink (the collector's spool is full): everywhere but
        to such sinks (marked ``remote``)."""
        for sink in self.sinks:
            if not getattr(sink, "remote", False):
                sink.emit(record)

    def trace(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.log(Level.TRACE, msg, rid=rid, **fields)

    def debug(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.log(Level.DEBUG, msg, rid=rid, **fields)

    def info(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.log(Level.INFO, msg, rid=rid, **fields)

    def warning(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.log(Level.WARNING, msg, rid=rid, **fields)

    def error(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self.log(Level.ERROR, msg, rid=rid, **fields)


def _path_fields(path: str) -> dict[str, str]:
    try:
        p = parse_path(path)
    except ValueError:
        return {}
    return {"OBJ_KIND": str(p.kind), "OBJ_NAME": p.name, "OBJ_NAMESPACE": p.namespace}


def action_log(
    path: str,
    *,
    action: str,
    sid: str | None = None,
    origin: str = "user",
    node: str | None = None,
    argv: str | None = None,
    console: Sink | None = None,
    journal: bool = True,
    extra_sinks: tuple[Sink, ...] = (),
) -> ActionLog:
    """The logger of an ``om`` action: console (unless None) + journald (or syslog) +
    extra sinks. Every record carries opensvc.md §7.1's fields: ``SID`` (the caller's
    ``OSVC_SESSION_ID`` when it passes one, as om3), ``EID`` (this process's exec
    id), ``ACTION``, ``ORIGIN``, ``NODE``, ``VERSION``, ``ARGV``, ``CWD``, ``CRM``,
    ``REQUEST_ID`` (``OSVC_REQUEST_ID``: the daemon's request behind the action) and
    the object's ``OBJ_*``."""
    from omc.runtime import VERSION

    fields = {
        "SID": sid or _env_uuid("OSVC_SESSION_ID") or new_sid(),
        "EID": exec_id(),
        "ACTION": action,
        "ORIGIN": origin,
        "NODE": node or node_name(),
        "VERSION": VERSION,
        "ARGV": " ".join(["om", *sys.argv[1:]]) if argv is None else argv,
        "CWD": _cwd(),
        "CRM": "true",
        "REQUEST_ID": os.environ.get("OSVC_REQUEST_ID", "")[:64],
        **_path_fields(path),
    }
    sinks: list[Sink] = []
    if console is not None:
        sinks.append(console)
    if journal:
        sinks.extend(system_sinks())
    sinks.extend(extra_sinks)
    return ActionLog(path=path, sinks=tuple(sinks), fields=fields)


_EXEC_IDS: dict[int, str] = {}


def exec_id() -> str:
    """This process's exec id (om3's ``EID``): one per process, so records of a driver
    are told apart from the acting ``om``'s under the same ``SID``. Keyed by pid: a
    node executor's worker is a fork of a process that may have asked already."""
    pid = os.getpid()
    if pid not in _EXEC_IDS:
        _EXEC_IDS[pid] = new_sid()
    return _EXEC_IDS[pid]


def _env_uuid(name: str) -> str | None:
    value = os.environ.get(name, "").strip().lower()
    return value if _SID.match(value) else None


def _cwd() -> str:
    try:
        return str(Path.cwd())
    except OSError:  # removed under us
        return ""


def new_sid() -> str:
    """A random UUID4 (without importing ``uuid``, which pulls ``platform`` in)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def relay_files(path: str) -> tuple[Path, Path] | None:
    """The acting ``om``'s relay socket and sid file for an object (None: not a path)."""
    try:
        return layout.relay_files(parse_path(path))
    except PathError:
        return None


_SID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _relay(path: str) -> tuple[str | None, RelaySink | None]:
    """The acting ``om``'s sid and a sink to its relay, when one listens in root's
    directory (a stale sid file without a listener is ignored)."""
    files = relay_files(path)
    if files is None:
        return None, None
    sock_path, sid_path = files
    try:
        sid = safefs.read_text(sid_path).strip()
        sink = RelaySink(sock_path)
    except OSError:  # none, stale, or not root's (UnsafePathError)
        return None, None
    return (sid if _SID.match(sid) else None), sink


def driver_log(path: str, rid: str, *, action: str = "", unit: str = "") -> ActionLog:
    """The logger of a driver process started by systemd on behalf of an ``om`` action.

    Records always go to journald (with the acting command's sid when one is
    running) and, when an acting ``om`` listens, to its relay socket, so they
    appear on its console in arrival order. Run by hand on a terminal (no
    relay), they also go to the console. ``OBJECT_SYSTEMD_UNIT=<unit>`` makes
    ``journalctl -u <unit>`` find them even when a node executor's worker, outside
    the unit's cgroup, ran the driver (journald honours it from root).
    """
    sid, relay = _relay(path)
    console: Sink | None = None
    if relay is None and sys.stderr.isatty():
        console = ConsoleSink(sys.stderr)
    log = action_log(
        path,
        action=action or os.environ.get("OPENSVC_ACTION", "driver"),
        sid=sid or os.environ.get("OPENSVC_SID"),
        console=console,
        extra_sinks=() if relay is None else (relay,),
    )
    if unit:
        log = replace(log, fields={**log.fields, "OBJECT_SYSTEMD_UNIT": unit})
    return log.bind(rid=rid)


_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ActionRelay:
    """Acting side: receives driver records and hands them to ``on_record`` in arrival order.

    Binds ``<run>/action/<object>.sock`` (0600, in a 0700 root directory) and writes
    the sid file, so drivers started by systemd for this action find both. Takes
    records from root and from the user running ``om`` only (the kernel's
    ``SCM_CREDENTIALS`` of each datagram); the first one dropped is reported on the
    console. Use as a context manager; the files are removed on exit.
    """

    def __init__(self, path: str, sid: str, on_record: Callable[[Record], None]) -> None:
        files = relay_files(path)
        if files is None:
            raise PathError(f"invalid object path {path!r}")
        self.path = path
        self.sock_path, self.sid_path = files
        self.sid = sid
        self.on_record = on_record
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.marker = threading.Event()
        self.dropped = 0
        self.senders = frozenset((0, os.geteuid()))

    def __enter__(self) -> ActionRelay:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        safefs.bind_socket(self.sock, self.sock_path, mode=0o600, dir_mode=layout.ACTION_DIR_MODE)
        safefs.write_file(self.sid_path, self.sid + "\n", mode=0o600,
                          dir_mode=layout.ACTION_DIR_MODE)  # fmt: skip
        self.thread = threading.Thread(target=self._loop, name="om-log-relay", daemon=True)
        self.thread.start()
        return self

    def _receive(self) -> tuple[bytes, tuple[int, int, int] | None]:
        """One datagram and its sender's (pid, uid, gid), None when it came without."""
        assert self.sock is not None
        data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(_CREDS.size))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, gid = _CREDS.unpack(payload[: _CREDS.size])
                return data, (pid, uid, gid)
        return data, None

    def _loop(self) -> None:
        while True:
            try:
                data, creds = self._receive()
            except OSError:
                return
            if creds is None or creds[1] not in self.senders:
                self._drop(creds)
                continue
            if data == b"":
                self.marker.set()
                if self.stopping:
                    return
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.on_record(Record.from_json(data.decode("utf-8", "replace")))

    def _drop(self, creds: tuple[int, int, int] | None) -> None:
        """Say (once) that records from someone else were dropped: they are not the drivers'."""
        self.dropped += 1
        if self.dropped > 1:
            return
        who = (
            "a sender without credentials" if creds is None else f"uid {creds[1]} (pid {creds[0]})"
        )
        self.on_record(Record(time=time.time(), level=Level.WARNING, path=self.path, fields={},
                              message=f"dropped a log record sent by {who}: "
                              "the relay takes records from root only"))  # fmt: skip

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until every datagram already queued has been handed over.

        A driver has exited by the time its job completes, so its records are
        queued already: an empty datagram sent now is received after them.
        """
        if self.sock is None or self.thread is None or not self.thread.is_alive():
            return
        self.marker.clear()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
            s.sendto(b"", str(self.sock_path))
        self.marker.wait(timeout)

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        self.drain()
        for p in (self.sid_path, self.sock_path):
            with contextlib.suppress(OSError):
                safefs.remove(p)
        if self.sock is not None:
            self.sock.close()


_PRIORITY_LEVEL = {7: Level.DEBUG, 6: Level.INFO, 5: Level.INFO, 4: Level.WARNING}


def _journal_text(value: object) -> str | None:
    """A field of ``journalctl -o json``: a string, or an array of bytes when journald
    found control characters in it (what a hostile record is made of)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    return None


def record_from_journal(line: str) -> Record | None:
    """A record back from one ``journalctl -o json`` line (None if it is not one of ours)."""
    try:
        entry = json.loads(line)
        path = _journal_text(entry["OBJ_PATH"])
        stamp = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        message = _journal_text(entry["MESSAGE"])
    except (ValueError, KeyError, TypeError):
        return None
    if message is None or path is None:
        return None
    rid = _journal_text(entry.get("RID"))
    if rid is not None and message.startswith(f"{rid}: "):
        message = message[len(rid) + 2 :]
    level = _PRIORITY_LEVEL.get(int(entry.get("PRIORITY", 6)), Level.ERROR)
    return Record(time=stamp, level=level, path=path, rid=rid, message=message)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (``1.603582081s``, ``211.596639ms``, ``1m2.5s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_frac(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_frac(rest, 1_000_000_000)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


def _frac(value: int, unit: int) -> str:
    """``value/unit`` with the fraction's trailing zeros trimmed, as Go prints it."""
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """Monotonic stopwatch: ``with timed() as elapsed: …; elapsed()``."""
    start = time.monotonic()
    yield lambda: time.monotonic() - start
