"""A real XML-RPC collector for tests and benchmarks (stdlib only, also runs as a script).

It serves v2's action calls (``begin_action``, ``res_action_batch``, ``end_action``)
and records each one it applies, keyed by the sender's ``X-Omc-Idempotency-Key``:
a call whose key it has already applied is acknowledged and not applied again, as a
collector honouring the key would. Modes:

* ``normal``: answers every call;
* ``silent``: accepts connections and never answers (a hung collector);
* ``drop-reply``: applies the first ``drops`` calls, then closes the connection
  without answering (a reply lost on the way back: the sender must retry, the key
  keeps it from counting twice).

"Refusing" is no server on the port, "unreachable" an address nobody owns.

As a script (inside a lab node): ``python3 collector_server.py PORT MODE OUT`` writes
each applied call as a JSON line to OUT.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

KEY_HEADER = "X-Omc-Idempotency-Key"
METHODS = ("begin_action", "res_action_batch", "end_action")


class Collector:
    """A running collector on ``host:port`` (0: any free port); :attr:`calls` are the
    applied calls in order, :attr:`attempts` every call received (duplicates too)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, mode: str = "normal",
                 drops: int = 1, out: Path | None = None) -> None:  # fmt: skip
        self.mode = mode
        self.drops = drops
        self.out = out
        self.calls: list[tuple[str, str, list[Any]]] = []  # (key, method, args)
        self.attempts: list[str] = []  # keys, as received
        self.lock = threading.Lock()
        self.silent: list[socket.socket] = []
        self.key = ""
        if mode == "silent":
            self.sock = socket.create_server((host, port))
            self.port = int(self.sock.getsockname()[1])
            self.thread = threading.Thread(target=self._hold, daemon=True)
        else:
            self.server = SimpleXMLRPCServer((host, port), requestHandler=self._handler(),
                                             allow_none=True, logRequests=False)  # fmt: skip
            for name in METHODS:
                self.server.register_function(self._recorder(name), name)
            self.port = int(self.server.server_address[1])
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed/default/call/xmlrpc"

    def _hold(self) -> None:
        """Accept and keep every connection open, reading nothing."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.silent.append(conn)

    def _handler(self) -> type[SimpleXMLRPCRequestHandler]:
        collector = self

        class Handler(SimpleXMLRPCRequestHandler):
            rpc_paths = ()  # any path

            def log_message(self, format: str, *args: object) -> None:
                """No access log."""

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                collector.key = self.headers.get(KEY_HEADER, "")  # one request at a time
                if collector.mode == "drop-reply" and collector.drops > 0:
                    collector.drops -= 1
                    self.wfile = _Sink()  # the call is applied, its reply goes nowhere
                    super().do_POST()
                    self.close_connection = True
                    return
                super().do_POST()

        return Handler

    def _recorder(self, name: str) -> Any:
        def record(*args: Any) -> bool:
            key = self.key
            with self.lock:
                self.attempts.append(key)
                if key and any(k == key for k, _, _ in self.calls):
                    return True  # already applied: acknowledged, not applied again
                self.calls.append((key, name, list(args)))
                if self.out is not None:
                    with self.out.open("a") as fh:
                        fh.write(json.dumps([key, name, args]) + "\n")
            return True

        return record

    def close(self) -> None:
        if self.mode == "silent":
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(): the port is free
            self.sock.close()
            self.thread.join()
            for conn in self.silent:
                conn.close()
        else:
            self.server.shutdown()
            self.server.server_close()


class _Sink:
    """A write end that drops everything (a reply that never arrives)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        """Nothing to flush."""


if __name__ == "__main__":
    port, mode, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    srv = Collector("0.0.0.0", port, mode=mode, out=out)  # inside a lab node's netns
    srv.thread.join()
