"""Reading journald: the only module that loads libsystemd (sd-journal, through ctypes).

Native units (apps) print to journald, not to ``om``: systemd connects their stdout
and stderr to it (the compiler puts ``systemd-cat --stderr-priority=warning`` in front
of their commands, so the two streams keep their priorities, info and warning). After
a unit's job, the acting ``om`` reads what the unit printed since the action began
(:func:`stream_lines`) and logs it under the action (console, journald with the
action's fields, collector). Before reading it asks journald to take in everything
already written (:func:`synchronize`, the varlink call behind ``journalctl --sync``):
a process that exited before its job completed has written its lines, but journald
may not have read them yet.

No ``journalctl`` process (tens of milliseconds each): sd-journal's C API, loaded
lazily, reads the journal files directly; the varlink call is one request on a unix
socket.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

VARLINK = "/run/systemd/journal/io.systemd.journal"
SD_JOURNAL_LOCAL_ONLY = 1
MAX_LINES = 200


class JournalError(OSError):
    """libsystemd or journald answered with an error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamLine:
    """One line a unit wrote on its stdout or stderr."""

    message: str
    priority: int  # 6 stdout, 4 stderr (systemd-cat's levels in our units)
    pid: int
    usec: int  # journald's realtime timestamp


def synchronize(timeout: float = 2.0, path: str = VARLINK) -> None:
    """``io.systemd.Journal.Synchronize``: returns once journald has processed what was
    sent to it before the call (``journalctl --sync``, without a process)."""
    request = json.dumps({"method": "io.systemd.Journal.Synchronize", "parameters": {}})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request.encode() + b"\0")
        reply = b""
        while not reply.endswith(b"\0"):
            chunk = sock.recv(4096)
            if not chunk:
                raise JournalError("journald closed the varlink connection")
            reply += chunk
    answer = json.loads(reply[:-1])
    if "error" in answer:
        raise JournalError(f"journald: {answer['error']}")


_LIB: list[ctypes.CDLL] = []


def _lib() -> ctypes.CDLL:
    if not _LIB:
        try:
            lib = ctypes.CDLL("libsystemd.so.0", use_errno=True)
        except OSError as exc:
            raise JournalError(f"libsystemd: {exc}") from None
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        lib.sd_journal_open.argtypes = [ctypes.POINTER(vp), ctypes.c_int]
        lib.sd_journal_close.argtypes = [vp]
        lib.sd_journal_add_match.argtypes = [vp, ctypes.c_char_p, sz]
        lib.sd_journal_add_disjunction.argtypes = [vp]
        lib.sd_journal_seek_realtime_usec.argtypes = [vp, ctypes.c_uint64]
        lib.sd_journal_next.argtypes = [vp]
        lib.sd_journal_get_data.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(vp),
                                            ctypes.POINTER(sz)]  # fmt: skip
        lib.sd_journal_get_realtime_usec.argtypes = [vp, ctypes.POINTER(ctypes.c_uint64)]
        _LIB.append(lib)
    return _LIB[0]


def _check(code: int, what: str) -> int:
    if code < 0:
        raise JournalError(-code, f"{what}: {_strerror(-code)}")
    return code


def _strerror(errno: int) -> str:
    import os

    return os.strerror(errno)


@contextlib.contextmanager
def _journal() -> Iterator[ctypes.c_void_p]:
    lib = _lib()
    handle = ctypes.c_void_p()
    _check(lib.sd_journal_open(ctypes.byref(handle), SD_JOURNAL_LOCAL_ONLY), "sd_journal_open")
    try:
        yield handle
    finally:
        lib.sd_journal_close(handle)


def _field(handle: ctypes.c_void_p, name: str) -> str | None:
    data, size = ctypes.c_void_p(), ctypes.c_size_t()
    if _lib().sd_journal_get_data(handle, name.encode(), ctypes.byref(data),
                                  ctypes.byref(size)) < 0:  # fmt: skip
        return None
    raw = ctypes.string_at(data, size.value)
    return raw[len(name) + 1 :].decode("utf-8", "replace")


def stream_matches(unit: str, pids: Iterable[int] = ()) -> list[list[str]]:
    """The sd-journal matches of a unit's stream lines (pure): alternatives (ORed),
    each a list of ``FIELD=value`` (ANDed; one field's values ORed).

    ``_SYSTEMD_UNIT`` alone misses lines: journald learns a stream's unit from its
    writer's cgroup (``/proc/<pid>/cgroup``) when it takes in the stream, and a command
    that exited before (``sh -c 'echo out; exit 1'`` while journald lags behind, a
    loaded machine) leaves lines with ``_PID`` and no unit. The unit's commands' pids,
    which systemd keeps (``ExecStart`` …), find those."""
    alternatives = [["_TRANSPORT=stdout", f"_SYSTEMD_UNIT={unit}"]]
    pids = sorted({pid for pid in pids if pid > 0})
    if pids:
        alternatives.append(["_TRANSPORT=stdout", *(f"_PID={pid}" for pid in pids)])
    return alternatives


def stream_lines(unit: str, since_usec: int, *, pids: Iterable[int] = (),
                 limit: int = MAX_LINES) -> tuple[list[StreamLine], int]:  # fmt: skip
    """What ``unit`` (or its commands' ``pids``: :func:`stream_matches`) wrote on
    stdout/stderr from ``since_usec`` on (journald's realtime clock, microseconds),
    oldest first, at most ``limit`` lines; and how many more there were."""
    lib = _lib()
    lines: list[StreamLine] = []
    more = 0
    with _journal() as handle:
        for index, matches in enumerate(stream_matches(unit, pids)):
            if index:
                _check(lib.sd_journal_add_disjunction(handle), "sd_journal_add_disjunction")
            for match in matches:
                raw = match.encode()
                _check(lib.sd_journal_add_match(handle, raw, len(raw)), "sd_journal_add_match")
        _check(lib.sd_journal_seek_realtime_usec(handle, since_usec), "sd_journal_seek")
        usec = ctypes.c_uint64()
        while _check(lib.sd_journal_next(handle), "sd_journal_next") > 0:
            _check(lib.sd_journal_get_realtime_usec(handle, ctypes.byref(usec)), "realtime")
            if usec.value < since_usec:
                continue
            if len(lines) >= limit:
                more += 1
                continue
            lines.append(StreamLine(
                message=_field(handle, "MESSAGE") or "",
                priority=int(_field(handle, "PRIORITY") or 6),
                pid=int(_field(handle, "_PID") or 0),
                usec=usec.value,
            ))  # fmt: skip
    return lines, more
