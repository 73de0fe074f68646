"""Optional collector sink: v2 XML-RPC action logging (opensvc.md §7.2), off by default.

Enabled by ``OMC_COLLECTOR=<url>`` (e.g. ``https://dbopensvc/feed/default/call/xmlrpc``).
Records are queued and posted by a background thread, so a slow or dead collector never
slows an action: ``begin_action`` on the first record, one ``res_action_batch`` row per run
of consecutive lines of the same rid, ``end_action`` on the closing ``<<<`` line.
Every call's last argument is the auth tuple ``(node_uuid, nodename)``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any

from omc.runtime.log import Level, Record

BEGIN_VARS = ["svcname", "action", "hostname", "sid", "version", "begin", "status_log", "cron"]
RES_VARS = ["svcname", "action", "hostname", "sid", "pid", "rid", "subset", "begin", "end",
            "status_log", "status", "cron"]  # fmt: skip
END_VARS = ["svcname", "action", "hostname", "begin", "end", "time", "status", "cron"]
MAX_LOG = 10000


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@dataclass(slots=True)
class _Batch:
    rid: str
    subset: str
    begin: float
    end: float
    lines: list[str] = field(default_factory=list)
    status: str = "ok"

    def row(self, head: list[str]) -> list[str]:
        log = "\n".join(self.lines)[:MAX_LOG]
        return [*head, str(os.getpid()), self.rid, self.subset, _stamp(self.begin),
                _stamp(self.end), log, self.status, "0"]  # fmt: skip


def rows_for(records: list[Record], head: list[str]) -> list[list[str]]:
    """``res_action_batch`` rows: one per run of consecutive records of one rid (pure)."""
    batches: list[_Batch] = []
    for rec in records:
        if not rec.rid:
            continue
        if not batches or batches[-1].rid != rec.rid:
            subset = rec.fields.get("SUBSET", "")
            batches.append(_Batch(rid=rec.rid, subset=subset, begin=rec.time, end=rec.time))
        batch = batches[-1]
        batch.end = rec.time
        batch.lines.append(rec.message)
        if rec.level is Level.ERROR:
            batch.status = "err"
        elif rec.level is Level.WARNING and batch.status == "ok":
            batch.status = "warn"
    return [b.row(head) for b in batches]


class CollectorSink:
    """A log sink posting one action's records to a v2 collector, asynchronously."""

    def __init__(self, url: str, *, node_uuid: str = "", timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self.node_uuid = node_uuid
        self.records: list[Record] = []
        self.calls: queue.Queue[tuple[str, list[Any]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._post_loop, name="om-collector", daemon=True)
        self.thread.start()

    def emit(self, record: Record) -> None:
        if record.level < Level.INFO:
            return
        if not self.records:
            self._begin(record)
        self.records.append(record)
        if record.rid is None and record.message.startswith("<<< "):
            self._end(record)

    def _head(self, record: Record) -> list[str]:
        f = record.fields
        return [record.path, f.get("ACTION", ""), f.get("NODE", ""), f.get("SID", "")]

    def _auth(self, record: Record) -> list[str]:
        return [self.node_uuid, record.fields.get("NODE", "")]

    def _begin(self, record: Record) -> None:
        vals = [*self._head(record), "omc", _stamp(record.time), record.fields.get("ARGV", ""),
                "0"]  # fmt: skip
        self.calls.put(("begin_action", [BEGIN_VARS, vals, self._auth(record)]))

    def _end(self, record: Record) -> None:
        head = self._head(record)
        rows = rows_for(self.records, head)
        if rows:
            self.calls.put(("res_action_batch", [RES_VARS, rows, self._auth(record)]))
        begin = self.records[0].time
        status = "ok" if record.message.startswith("<<< done") else "err"
        vals = [*head[:3], _stamp(begin), _stamp(record.time), f"{record.time - begin:.3f}",
                status, "0"]  # fmt: skip
        self.calls.put(("end_action", [END_VARS, vals, self._auth(record)]))
        self.records = []

    def _post_loop(self) -> None:
        proxy = xmlrpc.client.ServerProxy(self.url, allow_none=True)
        while (call := self.calls.get()) is not None:
            method, args = call
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                getattr(proxy, method)(*args)
            self.calls.task_done()
        self.calls.task_done()

    def close(self) -> None:
        """Flush the queue (bounded by the timeout) and stop the thread."""
        self.calls.put(None)
        self.thread.join(self.timeout)


def from_environment() -> CollectorSink | None:
    """The collector sink if ``OMC_COLLECTOR`` names a URL, else None (the default)."""
    url = os.environ.get("OMC_COLLECTOR", "")
    return CollectorSink(url, node_uuid=os.environ.get("OMC_NODE_UUID", "")) if url else None
