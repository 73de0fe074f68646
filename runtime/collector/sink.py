"""The collector sink: one action's records as v2 XML-RPC calls (opensvc.md §7.2), spooled.

``begin_action`` is queued with the first record, one ``res_action_batch`` row per run
of consecutive lines of the same rid and ``end_action`` with the closing ``<<<`` line.
Every call's last argument is the auth tuple ``(node_uuid, nodename)``. The calls go
to the node's spool (:mod:`.spool`), never to the network: the sender posts them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from omc.runtime.collector.spool import Call, Spool
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
    """A log sink queueing one action's calls for a v2 collector (never blocks on it).

    ``remote``: the local-only lines an action says about the collector itself (the
    spool is full) are not sent here (:meth:`ActionLog.emit_local`).
    """

    remote = True

    def __init__(self, url: str, *, node_uuid: str, spool: Spool | None = None,
                 start_sender: Callable[[Spool], None] | None = None) -> None:  # fmt: skip
        self.url = url
        self.node_uuid = node_uuid
        self.spool = spool or Spool()
        self.start_sender = start_sender
        self.records: list[Record] = []
        self.queued = 0
        self.dropped = 0
        self.failure = ""  # why the spool could not be written, if it could not

    def emit(self, record: Record) -> None:
        if record.level < Level.INFO:
            return
        if not self.records:
            self._queue([self._begin(record)], record)
        self.records.append(record)
        if record.rid is None and record.message.startswith("<<< "):
            self._queue(self._end(record), record)
            self.records = []

    def _queue(self, calls: list[Call], record: Record) -> None:
        try:
            self.dropped += self.spool.append(self.url, calls, node=record.fields.get("NODE", ""))
            self.queued += len(calls)
        except OSError as exc:  # sinks never fail an action; the session reports it
            self.failure = f"{self.spool.directory}: {exc}"

    def _head(self, record: Record) -> list[str]:
        f = record.fields
        return [record.path, f.get("ACTION", ""), f.get("NODE", ""), f.get("SID", "")]

    def _auth(self, record: Record) -> list[str]:
        return [self.node_uuid, record.fields.get("NODE", "")]

    def _begin(self, record: Record) -> Call:
        vals = [*self._head(record), record.fields.get("VERSION", ""), _stamp(record.time),
                record.fields.get("ARGV", ""), "0"]  # fmt: skip
        return Call("begin_action", [BEGIN_VARS, vals, self._auth(record)])

    def _end(self, record: Record) -> list[Call]:
        head = self._head(record)
        calls = []
        rows = rows_for(self.records, head)
        if rows:
            calls.append(Call("res_action_batch", [RES_VARS, rows, self._auth(record)]))
        begin = self.records[0].time
        status = "ok" if record.message.startswith("<<< done") else "err"
        vals = [*head[:3], _stamp(begin), _stamp(record.time), f"{record.time - begin:.3f}",
                status, "0"]  # fmt: skip
        calls.append(Call("end_action", [END_VARS, vals, self._auth(record)]))
        return calls

    def close(self) -> None:
        """Make sure a sender will post what this action queued (it does not wait)."""
        try:
            if not self.queued:
                return
            if self.start_sender is None:
                from omc.runtime.collector.sender import kick

                self.start_sender = kick
            self.start_sender(self.spool)
        finally:
            self.spool.close()


def from_config() -> CollectorSink | None:
    """The collector sink when node.conf (``[node] dbopensvc``) or ``OMC_COLLECTOR`` names
    a collector, else None (the default)."""
    from omc.runtime import nodeconf

    url = nodeconf.load().collector_url
    if not url:
        return None
    return CollectorSink(url, node_uuid=nodeconf.node_uuid(), spool=Spool(keep_open=True))
