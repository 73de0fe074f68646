"""The collector sink posts v2 XML-RPC action calls to a real local XML-RPC server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest
from omc.runtime.collector import RES_VARS, CollectorSink, rows_for
from omc.runtime.log import Level, Record, action_log


class _Quiet(SimpleXMLRPCRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, tuple[object, ...]]]]]:
    calls: list[tuple[str, tuple[object, ...]]] = []
    srv = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=_Quiet, allow_none=True,
                             logRequests=False)  # fmt: skip

    def recorder(name: str) -> Callable[..., bool]:
        def record(*args: object) -> bool:
            calls.append((name, args))
            return True

        return record

    for name in ("begin_action", "res_action_batch", "end_action"):
        srv.register_function(recorder(name), name)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", calls
    srv.shutdown()
    srv.server_close()


def test_action_is_posted(server: tuple[str, list[tuple[str, tuple[object, ...]]]]) -> None:
    """begin_action, one res_action_batch and end_action reach the collector, in order."""
    url, calls = server
    sink = CollectorSink(url, node_uuid="uuid-1")
    log = action_log("svc0", action="start", sid="s-1", node="n1", journal=False,
                     extra_sinks=(sink,))  # fmt: skip
    log.info(">>> do start [om svc0 instance start] (origin user, sid s-1)")
    log.info("install flag file /x", rid="fs#1")
    log.warning("slow", rid="fs#1")
    log.info("run: touch /y", rid="app#0")
    log.info("<<< done start [om svc0 instance start] in 1s, instance status is now up")
    sink.close()
    assert [name for name, _ in calls] == ["begin_action", "res_action_batch", "end_action"]
    _, (_vars, rows, auth) = calls[1]
    assert auth == ["uuid-1", "n1"]
    assert [(r[5], r[9], r[10]) for r in rows] == [  # type: ignore[attr-defined]
        ("fs#1", "install flag file /x\nslow", "warn"),
        ("app#0", "run: touch /y", "ok"),
    ]
    assert calls[2][1][1][6] == "ok"  # type: ignore[index]


def test_dead_collector_does_not_fail_the_action() -> None:
    """A collector that does not answer is ignored (the queue is dropped on close)."""
    sink = CollectorSink("http://127.0.0.1:9/", timeout=2.0)
    sink.emit(Record(time=1.0, level=Level.INFO, path="svc0", message="<<< done x"))
    sink.close()


def test_rows_group_consecutive_rids() -> None:
    """A rid that logs again after another rid starts a new row; errors mark it err."""
    recs = [Record(time=float(i), level=lvl, path="s", rid=rid, message=m)
            for i, (rid, lvl, m) in enumerate([("a", Level.INFO, "1"), ("b", Level.ERROR, "2"),
                                                ("a", Level.INFO, "3")])]  # fmt: skip
    rows = rows_for(recs, ["s", "start", "n1", "sid"])
    assert [(r[5], r[9], r[10]) for r in rows] == [("a", "1", "ok"), ("b", "2", "err"),
                                                   ("a", "3", "ok")]  # fmt: skip
    assert len(rows[0]) == len(RES_VARS)
