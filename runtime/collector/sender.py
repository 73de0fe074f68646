"""Posting the spool to the collector: the node daemon's thread, or ``om collector send``.

One sender per node at a time, whoever holds ``sender.lock`` in the spool directory:

* the node daemon runs :func:`serve` in a thread of its own for its whole life (no
  fork, a stat of the spool's state file per second while idle);
* without a daemon, an action that queued calls finds the lock free and starts a
  short-lived ``om collector send`` as a transient unit (:func:`kick`), which posts
  until the spool is empty and exits. Before exiting it lets the lock go and looks
  again: a call queued meanwhile is either seen then, or its writer found the lock
  free and started the next sender. Nothing is left behind.

Each call is posted with a timeout (connect and reply: :data:`POST_TIMEOUT`), in
order: a failure is retried after a backoff (1 s doubling to 60 s), never skipped.
A call the collector answers with an XML-RPC fault (it received it and refused it)
is retried too, and set aside in ``rejected/`` after :data:`MAX_REFUSALS` refusals,
so one bad call cannot hold the queue for ever. Every post carries the entry's key
in ``X-Omc-Idempotency-Key``: a retry after a lost reply is the same call twice,
which the collector drops (the reply was lost, not the call).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omc.runtime import safefs
from omc.runtime.collector.spool import Entry, Spool

if TYPE_CHECKING:
    import xmlrpc.client

SENDER_LOCK = "sender.lock"
KEY_HEADER = "X-Omc-Idempotency-Key"
POST_TIMEOUT = 5.0
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
MAX_REFUSALS = 5
POLL = 1.0
UNIT_PREFIX = "omc-collector-send"


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the collector did not answer (down, silent, refusing connections)
    REFUSED = "refused"  # the collector answered with a fault


Post = Callable[[Entry, float], tuple[Outcome, str]]


def _transport(url: str, timeout: float, key: str) -> xmlrpc.client.Transport:
    """xmlrpc's transport with a timeout on connect and on the reply (it has none) and
    the idempotency key header."""
    import xmlrpc.client

    base = xmlrpc.client.SafeTransport if url.startswith("https:") else xmlrpc.client.Transport

    class Bounded(base):  # type: ignore[valid-type, misc]
        def make_connection(self, host: Any) -> Any:
            conn = super().make_connection(host)
            conn.timeout = timeout
            return conn

    return Bounded(headers=[(KEY_HEADER, key)])


def post(entry: Entry, timeout: float) -> tuple[Outcome, str]:
    """One XML-RPC call of the spool, for real."""
    import http.client
    import xmlrpc.client

    transport = _transport(entry.url, timeout, entry.key)
    proxy = xmlrpc.client.ServerProxy(entry.url, transport=transport, allow_none=True)
    try:
        getattr(proxy, entry.method)(*entry.args)
    except xmlrpc.client.Fault as exc:
        return Outcome.REFUSED, f"{entry.method} refused: {exc.faultString}"
    except xmlrpc.client.ProtocolError as exc:
        return Outcome.RETRY, f"{entry.method}: HTTP {exc.errcode} {exc.errmsg}"
    except (OSError, http.client.HTTPException, xmlrpc.client.Error) as exc:
        return Outcome.RETRY, f"{entry.method}: {exc or type(exc).__name__}"
    finally:
        with contextlib.suppress(Exception):
            proxy("close")()
    return Outcome.DELIVERED, ""


class Sender:
    """Drains one spool, in order, with a backoff on failures."""

    def __init__(
        self,
        spool: Spool,
        *,
        post: Post = post,
        timeout: float = POST_TIMEOUT,
        backoff: tuple[float, ...] = BACKOFF,
        warn: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.spool = spool
        self.post = post
        self.timeout = timeout
        self.backoff = backoff
        self.warn = warn
        self.failures = 0
        self.refusals: dict[str, int] = {}

    def drain(self, stop: threading.Event) -> bool:
        """Post every queued call; True once the spool is empty, False when stopped."""
        while not stop.is_set():
            if (dropped := self.spool.newly_dropped()) > 0:
                self.warn(f"collector spool full ({self.spool.bound} calls): {dropped} calls "
                          "dropped since the last report")  # fmt: skip
            entries = self.spool.pending()
            if not entries:
                return True
            self.spool.sync(entries)
            for entry in entries:
                if stop.is_set() or not self._send(entry, stop):
                    break
        return False

    def _send(self, entry: Entry, stop: threading.Event) -> bool:
        """Post one entry; False after a failure (the backoff was waited)."""
        outcome, why = self.post(entry, self.timeout)
        if outcome is Outcome.DELIVERED:
            self.spool.delivered(entry)
            self.failures = 0
            self.refusals.pop(entry.key, None)
            return True
        if outcome is Outcome.REFUSED:
            count = self.refusals.get(entry.key, 0) + 1
            self.refusals[entry.key] = count
            if count >= MAX_REFUSALS:
                self.refusals.pop(entry.key)
                self.spool.reject(entry, why)
                self.warn(f"collector: {why} ({count} times): set aside in rejected/")
                return True
        self.spool.failed(why)
        if self.failures == 0:
            self.warn(f"collector unreachable, calls kept in the spool: {why}")
        delay = self.backoff[min(self.failures, len(self.backoff) - 1)]
        self.failures += 1
        stop.wait(delay)
        return False


@contextlib.contextmanager
def holding(spool: Spool) -> Iterator[bool]:
    """The sender lock if it is free now (True), else nothing (False)."""
    fd = spool.open_lock(SENDER_LOCK)
    try:
        yield safefs.try_lock(fd)
    finally:
        os.close(fd)


def _changed(spool: Spool, last: int) -> int:
    """The state file's mtime (ns): a writer changes it with every call it queues."""
    try:
        return (spool.directory / "state").stat().st_mtime_ns
    except OSError:
        return last


def serve(stop: threading.Event, warn: Callable[[str], None], spool: Spool | None = None) -> None:
    """The node daemon's sender thread: holds the lock while it runs (a transient sender
    still at work keeps it until it is done) and drains the spool whenever it changed."""
    spool = spool or Spool()
    sender = Sender(spool, warn=warn)
    seen = -1
    while not stop.is_set():
        try:
            with holding(spool) as mine:
                while mine and not stop.is_set():
                    now = _changed(spool, seen)
                    if now != seen and sender.drain(stop):
                        seen = now
                    stop.wait(POLL)
        except OSError as exc:
            warn(f"collector spool: {exc}")
        stop.wait(POLL)


def send(spool: Spool | None = None, *, stop: threading.Event | None = None,
         warn: Callable[[str], None] = lambda _: None) -> None:  # fmt: skip
    """``om collector send``: post until the spool is empty, unless another sender runs."""
    spool = spool or Spool()
    stop = stop or threading.Event()
    sender = Sender(spool, warn=warn)
    while not stop.is_set():
        with holding(spool) as mine:
            if not mine:
                return
            sender.drain(stop)
        if spool.empty():  # looked at after the lock went: see the module docstring
            return


def kick(spool: Spool) -> None:
    """After an action queued calls: start a sender unless one holds the lock."""
    try:
        with holding(spool) as free:
            if not free:
                return
    except OSError:
        return
    _spawn(spool.directory)


def _spawn(directory: Path) -> None:
    """``om collector send`` as a transient unit (outside the action's cgroup, which a
    unit's stop would kill), or detached where systemd does not run. Spawned, not
    waited for: the action is over by the time the sender has anything to say."""
    from omc.compiler.contract.node import om_path

    argv = [om_path(), "collector", "send"]
    env = dict(os.environ)
    if Path("/run/systemd/system").is_dir():
        unit = f"{UNIT_PREFIX}-{os.getpid()}-{time.monotonic_ns()}.service"
        keep = [f"--setenv={k}={env[k]}" for k in ("OMC_VAR", "OMC_ETC") if k in env]
        argv = ["systemd-run", "--quiet", "--no-block", "--collect", f"--unit={unit}",
                *keep, *argv]  # fmt: skip
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    with contextlib.suppress(OSError):
        os.posix_spawnp(argv[0], argv, env, file_actions=null, setsid=True)
