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

Import-light on purpose: this module is on the hot path of every ``om`` call.
"""

from __future__ import annotations

import contextlib
import json
import os
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

from omc.compiler.contract.paths import parse_path
from omc.runtime.layout import run_dir

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
        return f"{stamp}.{millis:03d} {self.level.tag} {prefix}{self.message}"

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
    """Sends records to journald; silently skipped when the socket is absent."""

    def __init__(self, socket_path: str = JOURNAL_SOCKET) -> None:
        self.socket_path = socket_path
        self.sock: socket.socket | None = None
        self.disabled = not Path(socket_path).exists()

    def emit(self, record: Record) -> None:
        if self.disabled:
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

    def bind(self, *, rid: str | None = None, subset: str | None = None) -> ActionLog:
        """A logger for one resource (the console shows ``<path>: <rid>: …``)."""
        extra = dict(self.fields)
        if subset is not None:
            extra["SUBSET"] = subset
        return replace(self, rid=rid if rid is not None else self.rid, fields=extra)

    def log(self, level: Level, msg: str, *, rid: str | None = None, **fields: object) -> None:
        merged = dict(self.fields)
        merged.update({k.upper(): str(v) for k, v in fields.items() if v is not None})
        record = Record(
            time=time.time(), level=level, path=self.path, rid=rid or self.rid,
            message=msg, fields=merged,
        )  # fmt: skip
        self.emit(record)

    def emit(self, record: Record) -> None:
        for sink in self.sinks:
            sink.emit(record)

    def emit_relayed(self, record: Record) -> None:
        """A driver's record: everywhere but journald, which the driver wrote to itself."""
        for sink in self.sinks:
            if not isinstance(sink, JournalSink):
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
    console: Sink | None = None,
    journal: bool = True,
    extra_sinks: tuple[Sink, ...] = (),
) -> ActionLog:
    """The logger of an ``om`` action: console (unless None) + journald + extra sinks."""
    fields = {
        "SID": sid or new_sid(),
        "ACTION": action,
        "ORIGIN": origin,
        "NODE": node or socket.gethostname(),
        "CRM": "true",
        **_path_fields(path),
    }
    sinks: list[Sink] = []
    if console is not None:
        sinks.append(console)
    if journal:
        sinks.append(JournalSink())
    sinks.extend(extra_sinks)
    return ActionLog(path=path, sinks=tuple(sinks), fields=fields)


def new_sid() -> str:
    """A random UUID4 (without importing ``uuid``, which pulls ``platform`` in)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def relay_files(path: str) -> tuple[Path, Path]:
    """The acting ``om``'s relay socket and sid file for an object."""
    base = run_dir() / "action"
    try:
        name = parse_path(path).flat
    except ValueError:
        name = path.replace("/", "_")
    return base / f"{name}.sock", base / f"{name}.sid"


def driver_log(path: str, rid: str, *, action: str = "", unit: str = "") -> ActionLog:
    """The logger of a driver process started by systemd on behalf of an ``om`` action.

    Records always go to journald (with the acting command's sid when one is
    running) and, when an acting ``om`` listens, to its relay socket, so they
    appear on its console in arrival order. Run by hand on a terminal (no
    relay), they also go to the console. ``OBJECT_SYSTEMD_UNIT=<unit>`` makes
    ``journalctl -u <unit>`` find them even when a node executor's worker, outside
    the unit's cgroup, ran the driver (journald honours it from root).
    """
    sock_path, sid_path = relay_files(path)
    sid: str | None = None
    extra: tuple[Sink, ...] = ()
    with contextlib.suppress(OSError):
        sid = sid_path.read_text().strip() or None
        extra = (RelaySink(sock_path),)
    if not extra:
        sid = None  # a sid file without a listener is stale (the acting om is gone)
    console: Sink | None = None
    if not extra and sys.stderr.isatty():
        console = ConsoleSink(sys.stderr)
    log = action_log(
        path,
        action=action or os.environ.get("OPENSVC_ACTION", "driver"),
        sid=sid or os.environ.get("OPENSVC_SID"),
        console=console,
        extra_sinks=extra,
    )
    if unit:
        log = replace(log, fields={**log.fields, "OBJECT_SYSTEMD_UNIT": unit})
    return log.bind(rid=rid)


class ActionRelay:
    """Acting side: receives driver records and hands them to ``on_record`` in arrival order.

    Binds ``<run>/action/<object>.sock`` and writes the sid file, so drivers
    started by systemd for this action find both. Use as a context manager;
    the files are removed on exit.
    """

    def __init__(self, path: str, sid: str, on_record: Callable[[Record], None]) -> None:
        self.sock_path, self.sid_path = relay_files(path)
        self.sid = sid
        self.on_record = on_record
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.marker = threading.Event()

    def __enter__(self) -> ActionRelay:
        self.sock_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sid_path.write_text(self.sid + "\n")
        self.thread = threading.Thread(target=self._loop, name="om-log-relay", daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if data == b"":
                self.marker.set()
                if self.stopping:
                    return
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.on_record(Record.from_json(data.decode("utf-8", "replace")))

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
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if self.sock is not None:
            self.sock.close()


_PRIORITY_LEVEL = {7: Level.DEBUG, 6: Level.INFO, 5: Level.INFO, 4: Level.WARNING}


def record_from_journal(line: str) -> Record | None:
    """A record back from one ``journalctl -o json`` line (None if it is not one of ours)."""
    try:
        entry = json.loads(line)
        path = entry["OBJ_PATH"]
        stamp = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        message = entry["MESSAGE"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(message, str) or not isinstance(path, str):
        return None
    rid = entry.get("RID")
    if isinstance(rid, str) and message.startswith(f"{rid}: "):
        message = message[len(rid) + 2 :]
    level = _PRIORITY_LEVEL.get(int(entry.get("PRIORITY", 6)), Level.ERROR)
    return Record(time=stamp, level=level, path=path, rid=rid if isinstance(rid, str) else None,
                  message=message)  # fmt: skip


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
