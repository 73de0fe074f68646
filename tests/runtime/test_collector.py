"""The collector: actions queue calls in a real on-disk spool; a sender posts them to a
real XML-RPC server (tests/collector_server.py) on loopback, whatever the server does."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.runtime.collector.cli import describe
from omc.runtime.collector.sender import MAX_REFUSALS, Outcome, Sender, holding, send
from omc.runtime.collector.sink import RES_VARS, CollectorSink, rows_for
from omc.runtime.collector.spool import Call, Entry, Spool, entry_name
from omc.runtime.log import Level, Record, action_log

from ..collector_server import Collector

NO_WAIT = (0.0,)  # backoff in tests: retry at once (nothing here depends on timing)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def collector() -> Iterator[Collector]:
    srv = Collector()
    yield srv
    srv.close()


def action(sink: CollectorSink, sid: str, *, lines: int = 2) -> None:
    """One action's records through a logger whose extra sink is ``sink``."""
    log = action_log("svc0", action="start", sid=sid, node="n1", journal=False,
                     extra_sinks=(sink,))  # fmt: skip
    log.info(f">>> do start [om svc0 instance start] (origin user, sid {sid})")
    for i in range(lines):
        log.info(f"line {i}", rid="fs#1")
    log.warning("slow", rid="fs#1")
    log.info("<<< done start [om svc0 instance start] in 1s, instance status is now up")


def sink_for(url: str, spool: Spool, kicked: list[Spool] | None = None) -> CollectorSink:
    starter = kicked.append if kicked is not None else (lambda s: None)
    return CollectorSink(url, node_uuid="uuid-1", spool=spool, start_sender=starter)


def drain(spool: Spool, *, timeout: float = 2.0) -> Sender:
    sender = Sender(spool, timeout=timeout, backoff=NO_WAIT)
    stop = threading.Event()
    assert sender.drain(stop)
    return sender


def test_an_action_queues_its_calls_and_the_sender_posts_them(
    spool: Spool, collector: Collector
) -> None:
    """begin_action, one res_action_batch and end_action, with the auth tuple (uuid, node)."""
    kicked: list[Spool] = []
    sink = sink_for(collector.url, spool, kicked)
    action(sink, "s-1")
    sink.close()
    assert collector.calls == [] and spool.state().pending == 3
    assert kicked == [spool]  # a sender is started; the action does not post
    drain(spool)
    assert [m for _, m, _ in collector.calls] == ["begin_action", "res_action_batch", "end_action"]
    _, _, (_vars, rows, auth) = collector.calls[1]
    assert auth == ["uuid-1", "n1"]
    assert [(r[5], r[9], r[10]) for r in rows] == [("fs#1", "line 0\nline 1\nslow", "warn")]
    assert collector.calls[0][2][1][4] == "0.1.0"  # begin_action's version
    assert spool.state().pending == 0 and spool.state().delivered == 3


def queue_actions(spool: Spool, url: str, count: int = 5) -> list[str]:
    """``count`` actions queued for ``url``; the keys of their calls, in queue order."""
    for n in range(count):
        action(sink_for(url, spool), f"s-{n}")
    return [e.key for e in spool.pending(limit=1000)]


def begun(collector: Collector) -> list[str]:
    return [args[1][3] for _, m, args in collector.calls if m == "begin_action"]


@pytest.mark.parametrize("mode", ["silent", "refusing"])
def test_every_call_is_delivered_once_in_order_when_the_collector_comes_back(
    spool: Spool, mode: str
) -> None:
    """Silent (each post times out) or refusing (nothing listens): the calls stay queued,
    the failure is said once; once a collector answers, each call arrives exactly once,
    in queue order (count and compare)."""
    port = _free_port()
    queued = queue_actions(spool, f"http://127.0.0.1:{port}/feed/default/call/xmlrpc")
    assert len(queued) == 15
    broken = Collector(port=port, mode="silent") if mode == "silent" else None
    warnings: list[str] = []
    sender = Sender(spool, timeout=0.3, backoff=NO_WAIT, warn=warnings.append)
    for _ in range(3):
        assert not sender._send(spool.pending(limit=1)[0], threading.Event())
    assert spool.state().pending == 15 and spool.state().last_error
    assert len(warnings) == 1 and "calls kept in the spool" in warnings[0]
    if broken is not None:
        broken.close()
    back = Collector(port=port)
    try:
        assert sender.drain(threading.Event())
        assert [k for k, _, _ in back.calls] == queued
        assert begun(back) == [f"s-{n}" for n in range(5)]
        assert spool.state().pending == 0
    finally:
        back.close()


def test_a_lost_reply_is_retried_and_not_applied_twice(spool: Spool) -> None:
    """The collector applies a call but its reply is lost (4 times): the sender posts it
    again with the same key, the collector acknowledges without applying it again."""
    lossy = Collector(mode="drop-reply", drops=4)
    try:
        queued = queue_actions(spool, lossy.url)
        assert Sender(spool, timeout=2.0, backoff=NO_WAIT).drain(threading.Event())
        assert [k for k, _, _ in lossy.calls] == queued
        assert len(lossy.attempts) == len(queued) + 4
    finally:
        lossy.close()


def test_the_bound_is_honoured_and_overflow_reported(spool: Spool, collector: Collector) -> None:
    """A full spool keeps what it has, drops new calls, counts them; the sender says so once."""
    small = Spool(spool.directory, bound=5)
    sink = sink_for(collector.url, small)
    action(sink, "s-1")  # 3 calls
    action(sink, "s-2")  # 3 more: two fit
    assert small.state().pending == 5
    assert sink.dropped == 1 and small.state().dropped == 1
    warnings: list[str] = []
    sender = Sender(small, backoff=NO_WAIT, warn=warnings.append)
    assert sender.drain(threading.Event())
    assert warnings == ["collector spool full (5 calls): 1 calls dropped since the last report"]
    assert [m for _, m, _ in collector.calls][-2:] == ["begin_action", "res_action_batch"]
    assert "1 dropped (spool full" in describe(small.state())
    assert sender.drain(threading.Event()) and len(warnings) == 1  # reported once


def test_the_session_reports_a_full_spool_on_the_console_not_to_the_collector(
    tmp_path: Path,
) -> None:
    """The warning line goes to the console (and journald), never into the full spool."""
    from omc.runtime.engine.session import _close
    from omc.runtime.log import ConsoleSink

    full = Spool(tmp_path / "spool", bound=0)
    sink = sink_for("http://127.0.0.1:9/", full)
    lines: list[str] = []

    class Console(ConsoleSink):
        def emit(self, record: Record) -> None:
            lines.append(record.console_line())

    log = action_log("svc0", action="start", journal=False, console=Console(),
                     extra_sinks=(sink,))  # fmt: skip
    log.info(">>> do start")
    _close(sink, log)
    assert "WRN svc0: collector spool full: 1 calls of this action dropped" in lines[-1]
    assert full.state().pending == 0 and full.state().dropped == 1


def test_a_refused_call_is_set_aside_after_repeated_faults(spool: Spool) -> None:
    """An XML-RPC fault is retried, then the call goes to rejected/ and the queue moves on."""
    spool.append("http://x/", [Call("bad", []), Call("good", [])], node="n1")
    posted: list[str] = []

    def post(entry: Entry, timeout: float) -> tuple[Outcome, str]:
        posted.append(entry.method)
        if entry.method == "bad":
            return Outcome.REFUSED, "bad refused: no such method"
        return Outcome.DELIVERED, ""

    sender = Sender(spool, post=post, backoff=NO_WAIT)
    assert sender.drain(threading.Event())
    assert posted == ["bad"] * MAX_REFUSALS + ["good"]
    assert spool.state().rejected == 1
    assert [p.name for p in (spool.directory / "rejected").iterdir()] == [entry_name(0)]


def test_an_entry_left_torn_by_a_power_cut_is_set_aside(spool: Spool, collector: Collector) -> None:
    """An unreadable entry is moved to damaged/ and counted; the others are delivered."""
    spool.append(collector.url, [Call("begin_action", [[], [], []])] * 3, node="n1")
    (spool.directory / entry_name(1)).write_bytes(b"")  # what a crash before fsync leaves
    drain(spool)
    assert len(collector.calls) == 2
    assert spool.state().damaged == 1
    assert [p.name for p in (spool.directory / "damaged").iterdir()] == [entry_name(1)]


def test_a_lost_state_is_rebuilt_from_the_entries(spool: Spool, collector: Collector) -> None:
    """A torn state file: the queue is read back from the entries, in order, and new calls
    are numbered after them."""
    spool.append(collector.url, [Call("begin_action", [1]), Call("begin_action", [2])], node="n1")
    (spool.directory / "state").write_text("{torn")
    spool.append(collector.url, [Call("end_action", [3])], node="n1")
    drain(spool)
    assert [a for _, _, a in collector.calls] == [[1], [2], [3]]
    assert "rebuilt" in spool.state().last_error or spool.state().delivered == 3


def _append_many(directory: str, tag: int, count: int) -> None:
    spool = Spool(Path(directory))
    for i in range(count):
        spool.append("http://x/", [Call("m", [tag, i])], node="n1")


def test_concurrent_writers_get_numbers_without_holes_and_keep_their_order(spool: Spool) -> None:
    """Four processes queueing at once: every call is there once, each writer's in order."""
    spool.append("http://x/", [Call("m", [-1, 0])], node="n1")  # create the directory
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(spool.directory), t, 50))
             for t in range(4)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    entries = spool.pending(limit=1000)
    assert [e.seq for e in entries] == list(range(201))
    for tag in range(4):
        assert [e.args[1] for e in entries if e.args[0] == tag] == list(range(50))
    assert len({e.key for e in entries}) == 201


def test_the_spool_is_root_only_whatever_the_umask(spool: Spool) -> None:
    """Directory 0700, entries and state 0600: action logs are not for other users."""
    old = os.umask(0)
    try:
        spool.append("http://x/", [Call("m", [])], node="n1")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in spool.directory.iterdir()}
    assert stat.S_IMODE(spool.directory.stat().st_mode) == 0o700
    assert modes == {entry_name(0): 0o600, "state": 0o600}


def test_one_sender_at_a_time(spool: Spool, collector: Collector) -> None:
    """`om collector send` leaves at once while another sender holds the lock, and drains
    the spool once it is free."""
    spool.append(collector.url, [Call("begin_action", [1])], node="n1")
    with holding(spool) as mine:
        assert mine
        send(spool)
        assert collector.calls == []
    send(spool)
    assert len(collector.calls) == 1 and spool.empty()


def test_rows_group_consecutive_rids() -> None:
    """A rid that logs again after another rid starts a new row; errors mark it err."""
    recs = [Record(time=float(i), level=lvl, path="s", rid=rid, message=m)
            for i, (rid, lvl, m) in enumerate([("a", Level.INFO, "1"), ("b", Level.ERROR, "2"),
                                                ("a", Level.INFO, "3")])]  # fmt: skip
    rows = rows_for(recs, ["s", "start", "n1", "sid"])
    assert [(r[5], r[9], r[10]) for r in rows] == [("a", "1", "ok"), ("b", "2", "err"),
                                                   ("a", "3", "ok")]  # fmt: skip
    assert len(rows[0]) == len(RES_VARS)


def test_entries_are_json_with_their_key(spool: Spool) -> None:
    """Each entry names its URL, call and a node-scoped random key."""
    spool.append("http://c/", [Call("begin_action", ["a"])], node="n1")
    data = json.loads((spool.directory / entry_name(0)).read_text())
    assert data["url"] == "http://c/" and data["method"] == "begin_action"
    assert data["key"].startswith("n1:") and len(data["key"]) == 3 + 24


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
