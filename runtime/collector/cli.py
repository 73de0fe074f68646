"""``om collector send|status``: the short-lived sender and the spool's state."""

from __future__ import annotations

import signal
import sys
import threading
import time

from omc.runtime.collector.spool import Spool, State
from omc.runtime.exitcodes import ExitStatus

USAGE = "usage: om collector send | status"


def describe(state: State, *, now: float | None = None) -> str:
    """One line for ``om collector status`` and ``om daemon status`` (pure)."""
    now = time.time() if now is None else now
    parts = [f"{state.pending} calls pending", f"{state.delivered} delivered"]
    if state.dropped:
        parts.append(f"{state.dropped} dropped (spool full, last {_ago(now, state.dropped_at)})")
    if state.rejected:
        parts.append(f"{state.rejected} rejected")
    if state.damaged:
        parts.append(f"{state.damaged} damaged")
    line = "collector spool: " + ", ".join(parts)
    if state.last_error:
        line += f"; last error {_ago(now, state.error_at)}: {state.last_error}"
    return line


def _ago(now: float, then: float) -> str:
    seconds = max(0, int(now - then))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def status_line() -> str:
    """The spool's state, or why it cannot be read (never raises)."""
    try:
        return describe(Spool().state())
    except FileNotFoundError:
        return "collector spool: empty (never used)"
    except OSError as exc:
        return f"collector spool: unreadable: {exc}"


def main(argv: list[str]) -> int:
    if argv == ["status"]:
        print(status_line())
        return ExitStatus.OK
    if argv == ["send"]:
        from omc.runtime.collector.sender import send
        from omc.runtime.log import action_log

        log = action_log("node", action="collector send", console=None)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        send(stop=stop, warn=log.warning)
        return ExitStatus.OK
    print(USAGE, file=sys.stderr)
    return ExitStatus.USAGE
