"""``om <path> driver <action> --rid <rid> [--unit NAME]``: what oneshot units run.

systemd runs this for every driver-backed resource (docs/design.md), so it is
on the hot path of every start: it imports only the driver protocol, the unit
reader, the logger and the one driver family it needs, never D-Bus, nor the
compiler but for the key-store reader (``compiler/kvstore.py``) of a resource that
takes cfg/sec keys. Settings come from the resource's own unit file
(``X-OpenSVC-Config=``).

``run`` (tasks) takes ``--confirm``; ``update``/``full`` (syncs) take ``--target``;
``abort`` prints the start veto (``abort! <reason>``) and exits 1, or exits 0.
``env`` (an app unit's ``ExecStartPre=+``) writes the root-only environment file of
the unit from its ``configs_environment``/``secrets_environment`` (docs/units.md,
"Secrets"), or fails naming the missing object or key.
Exit codes: 0 done (including "already up/down"), 1 the driver failed,
2 bad usage or no such resource unit. ``status`` prints
``<status>`` and the probe messages, one per line, and exits 0.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from omc.compiler.contract.paths import rid_error
from omc.runtime import drivers
from omc.runtime.drivers import unitfile
from omc.runtime.exitcodes import DriverExit

USAGE = (
    "usage: om <path> driver start|stop|status|abort|run|update|full|env --rid <rid>"
    " [--unit <unit name>] [--target nodes|drpnodes|local] [--confirm]"
)
ACTIONS = ("start", "stop", "status", "abort", "run", "update", "full", "env")
_VALUED = ("--rid", "--unit", "--target")
_FLAGS = ("--confirm",)


class UsageError(ValueError):
    """The command line is not ``driver <action> --rid <rid> …``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    action: str
    rid: str
    unit: str | None = None
    target: str | None = None
    confirm: bool = False


def parse(argv: list[str]) -> Request:
    """Parse the arguments after ``driver`` (pure; argparse costs more than this needs)."""
    if not argv or argv[0] not in ACTIONS:
        raise UsageError(f"expected an action among {', '.join(ACTIONS)}")
    options: dict[str, str] = {}
    rest = argv[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        key, eq, value = word.partition("=")
        if key in _FLAGS and not eq:
            options[key] = "1"
            continue
        if key not in _VALUED:
            raise UsageError(f"unexpected argument {word!r}")
        if not eq:
            if not rest:
                raise UsageError(f"{key} needs a value")
            value, rest = rest[0], rest[1:]
        options[key] = value
    if not options.get("--rid"):
        raise UsageError("--rid is required")
    why = rid_error(options["--rid"])  # argv: checked before it names a unit or a file
    if why:
        raise UsageError(why)
    return Request(
        action=argv[0],
        rid=options["--rid"],
        unit=options.get("--unit"),
        target=options.get("--target"),
        confirm="--confirm" in options,
    )


def main(path: str, argv: list[str]) -> int:
    """Run one driver action on one resource; the only place drivers' errors become exits."""
    try:
        request = parse(argv)
    except UsageError as exc:
        print(f"om: error: {exc}\n{USAGE}", file=sys.stderr)
        return DriverExit.USAGE
    try:
        res = unitfile.load(path, request.rid, request.unit)
    except drivers.DriverError as exc:
        print(f"om: error: {exc}", file=sys.stderr)
        return DriverExit.USAGE
    if request.action == "abort":
        reason = drivers.veto(res)
        if reason:
            print(f"abort! {reason}")
        return DriverExit.FAILED if reason else DriverExit.DONE
    if request.action == "status":
        probe = drivers.evaluate(res)
        print(
            "\n".join((str(probe.status), *probe.messages, *(f"warn: {w}" for w in probe.warnings)))
        )
        return DriverExit.DONE
    if request.action == "env":
        return _env(res)
    return _act(res, request)


def _env(res: drivers.ResourceView) -> int:
    """Resolve the unit's kv references into its environment file (root only, 0600)."""
    from pathlib import Path

    from omc.compiler.contract.names import env_file
    from omc.runtime.log import driver_log
    from omc.runtime.objects import kv
    from omc.runtime.objects.configs import StoreError

    log = driver_log(res.path, res.rid, action="start", unit=res.unit)
    try:
        variables = kv.environment(res.ref.namespace, res.config)
    except kv.KvReferenceError as exc:
        log.error(f"cannot start: {exc}")
        return DriverExit.FAILED
    try:
        kv.write_env_file(Path(env_file(res.unit)), variables)
    except (OSError, ValueError, StoreError) as exc:
        log.error(f"cannot write the environment file of {res.unit}: {exc}")
        return DriverExit.FAILED
    log.debug(f"environment file written: {len(variables)} variable(s) from cfg/sec objects")
    return DriverExit.DONE


def _act(res: drivers.ResourceView, request: Request) -> int:
    from omc.runtime.log import driver_log

    action = request.action
    log = driver_log(res.path, res.rid, action=action, unit=res.unit)
    if "noaction" in res.tags:
        log.info(f"skip {action}: tagged noaction")
        return DriverExit.DONE
    try:
        method = _method(res, action)
        if action == "run":
            method(res, log, confirm=request.confirm)
        elif action in ("update", "full"):
            method(res, log, target=request.target)
        else:
            method(res, log)
    except (drivers.DriverError, drivers.UnknownDriverError) as exc:
        log.error(str(exc))
        return DriverExit.FAILED
    except OSError as exc:  # permissions, full disks, vanished files: say which
        log.error(f"{action} failed: {exc}")
        return DriverExit.FAILED
    except Exception as exc:  # a driver bug: one line in the log, traceback on demand
        log.error(f"{action} failed: unexpected {type(exc).__name__}: {exc}")
        if os.environ.get("OMC_DEBUG"):
            raise
        return DriverExit.FAILED
    return DriverExit.DONE


def _method(res: drivers.ResourceView, action: str) -> Any:
    """The driver's bound method for ``action``; tasks run, syncs update, all start/stop."""
    method = getattr(drivers.get(res.driver), action, None)
    if method is None:
        raise drivers.DriverError(f"{res.driver} has no {action} action")
    return method
