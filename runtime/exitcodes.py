"""Every exit status of ``om`` object commands, in one place (httpie's ``ExitStatus``).

The library raises; only :mod:`omc.runtime.objcli` turns outcomes into codes.
Action codes are om3's (opensvc.md §8). ``om <path> instance status`` exits with
the instance **avail** code; we use v2's encoding (up 0, down 1, …) rather than
om3's bitmask, because it lets a shell write ``om svc0 instance status && …``.
"""

from __future__ import annotations

from enum import IntEnum

from omc.runtime.drivers.base import Status


class ExitStatus(IntEnum):
    """Process exit codes of ``om <selector> …``."""

    OK = 0
    ERROR = 1  # action failed, requirement not met, rollback happened, bad config
    NOT_FOUND = 2  # the selector matched no object
    NO_MATCH = 2  # --rid/--tag/--subset matched no resource (of any selected object)
    INSTANCE_NOT_FOUND = 3  # the object has no units installed on this node
    NOT_RUNNING = 3  # `om executor status`: not running (LSB's status code)
    NOT_SUPPORTED = 4  # the action is not supported
    USAGE = 64  # bad command line (sysexits EX_USAGE; 2 means "not found" in om3)
    INTERNAL = 70  # a bug: unexpected exception (--debug shows the traceback)
    TIMEOUT = 124  # --time ran out (as timeout(1)); the orchestration goes on
    COMMAND_NOT_EXECUTABLE = 126  # `om exec`: the command exists but cannot run (as shells)
    COMMAND_NOT_FOUND = 127  # `om exec`: no such command (as shells)
    INTERRUPTED = 130  # SIGINT (128 + 2), as shells report it


class DriverExit(IntEnum):
    """Exit codes of ``om <path> driver …``, what every driver-backed unit runs: systemd
    reads any non-zero as the unit's failure; the two kinds are told apart for people."""

    DONE = 0  # the resource is in the wanted state (including "already up/down")
    FAILED = 1  # the driver failed (its log says why)
    USAGE = 2  # bad command line, or no unit file for that resource


AVAIL_CODES: dict[Status, int] = {
    Status.UP: 0,
    Status.DOWN: 1,
    Status.WARN: 2,
    Status.NA: 3,
    Status.UNDEF: 5,
    Status.STDBY_UP: 6,
    Status.STDBY_DOWN: 7,
}


def avail_code(avail: Status) -> int:
    """The exit code of ``instance status`` for an avail (v2 encoding)."""
    return AVAIL_CODES[avail]
