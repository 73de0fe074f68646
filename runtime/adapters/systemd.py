"""The systemd D-Bus adapter: the only module that imports pydbus and gi.

Pacemaker's recipe, which is the only race-free one: ``Subscribe()``, listen for
``JobRemoved`` *before* enqueuing jobs, enqueue (several units at once), wait for
every job path to be removed, then re-read ``ActiveState``/``SubState``/``Result``,
because a job ``done`` is not the same as a unit ``active`` (a oneshot that ran is
``inactive``/``dead`` with result ``success``).

Signals are recorded by job path as they are dispatched, so a job that finishes
before ``StartUnit`` even returns is not missed. Every wait has a deadline.
Method calls go through ``Gio.DBusConnection.call_sync`` on object paths rather
than pydbus proxies: a proxy introspects each unit object, which costs a round
trip and an XML parse per unit.

Import of this module is cheap; pydbus and gi are imported on first connection
(``om`` start-up time matters).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"
DEFAULT_TIMEOUT = 90.0

# The interface that carries `Result` (and, for services, `MainPID`), by unit suffix.
_TYPE_IFACES = {
    "service": "org.freedesktop.systemd1.Service",
    "mount": "org.freedesktop.systemd1.Mount",
    "socket": "org.freedesktop.systemd1.Socket",
    "timer": "org.freedesktop.systemd1.Timer",
    "swap": "org.freedesktop.systemd1.Swap",
    "path": "org.freedesktop.systemd1.Path",
    "scope": "org.freedesktop.systemd1.Scope",
    "automount": "org.freedesktop.systemd1.Automount",
}

# A service's command lists, each an ``a(sasbttttuii)``: path, argv, ignore errors, start
# and exit times (realtime, monotonic), then the pid of the last run, its code and status.
EXEC_PROPERTIES = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop",
                   "ExecStopPost")  # fmt: skip

# A property value: plain Python values are typed by inference (bool → b, int → t,
# str → s, list of str → as); anything else is given as (D-Bus signature, value).
PropValue = bool | int | str | list[str] | tuple[str, Any]


class SystemdError(Exception):
    """A D-Bus call to systemd failed or a wait ran past its deadline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitState:
    """What systemd says about one unit right now."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    result: str
    main_pid: int

    @property
    def is_active(self) -> bool:
        """True when the unit is up (``active``, or ``reloading`` which is up too)."""
        return self.active_state in {"active", "reloading"}

    @property
    def is_failed(self) -> bool:
        return self.active_state == "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutcome:
    """The result of one job (``done``, ``failed``, ``canceled``, ``timeout``,
    ``dependency``, ``skipped``) and the unit state read after the job was removed."""

    unit: str
    job: str
    result: str
    state: UnitState

    @property
    def ok(self) -> bool:
        return self.result in {"done", "skipped"}


class _LazyAsyncio(types.ModuleType):
    """Stands in for ``asyncio`` while gi is imported, so gi does not load it.

    PyGObject >= 3.50's C module imports ``asyncio`` at init (for its experimental
    awaitable Gio calls) and reads ``InvalidStateError`` and ``_get_running_loop``;
    ``gi._ossighelper`` imports it too. asyncio (with ssl and concurrent.futures) is
    ~45 ms of the ~85 ms pydbus import and ``om`` never runs an event loop. This stub
    answers those names, and ``get_event_loop_policy`` that gi's
    ``MainContext.iteration()`` calls, without loading asyncio (no loop can run and
    no policy can be set while asyncio is not imported); any other name loads the
    real module. It is removed
    from ``sys.modules`` as soon as gi is imported, so ``import asyncio`` elsewhere
    gets the real module. Only gi's own awaitable API would see the stub's
    ``InvalidStateError`` class, and ``om`` does not use it.
    """

    class InvalidStateError(Exception):
        """gi raises it from its awaitables (unused by ``om``)."""

    def _get_running_loop(self) -> Any:
        real = sys.modules.get("asyncio")
        if real is None or real is self:
            return None
        return real._get_running_loop()

    def get_event_loop_policy(self) -> Any:
        """gi's ``MainContext.iteration()`` asks the policy for a GLib-aware loop on
        every call; before asyncio is imported no such policy can have been set, and
        the default policy has no ``get_event_loop_for_context`` either."""
        real = sys.modules.get("asyncio")
        if real is None or real is self:
            return object()
        return real.get_event_loop_policy()

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get("asyncio") is self:
            del sys.modules["asyncio"]
        return getattr(importlib.import_module("asyncio"), name)


def import_gi() -> Any:
    """Import pydbus and gi, keeping asyncio out (see :class:`_LazyAsyncio`);
    returns ``pydbus``."""
    if "gi._gi" in sys.modules or "asyncio" in sys.modules:
        import pydbus

        return pydbus
    stub = _LazyAsyncio("asyncio")
    sys.modules["asyncio"] = stub
    try:
        import pydbus
        from gi.repository import GLib  # noqa: F401 - imported under the stub
    finally:
        if sys.modules.get("asyncio") is stub:
            del sys.modules["asyncio"]
    return pydbus


def _glib() -> Any:
    """The ``GLib`` module, imported on first use (``om`` start-up time matters)."""
    import_gi()
    from gi.repository import GLib

    return GLib


def _variant(value: PropValue) -> Any:
    """A GLib.Variant for a property value (see :data:`PropValue`)."""
    GLib = _glib()  # noqa: N806 - the module's own name
    if isinstance(value, tuple):
        signature, raw = value
        return GLib.Variant(signature, raw)
    if isinstance(value, bool):
        return GLib.Variant("b", value)
    if isinstance(value, int):
        return GLib.Variant("t", value)
    if isinstance(value, str):
        return GLib.Variant("s", value)
    return GLib.Variant("as", list(value))


def _props(props: Mapping[str, PropValue]) -> list[tuple[str, Any]]:
    return [(key, _variant(value)) for key, value in props.items()]


def exec_start(argv: Sequence[str], *, ignore_failure: bool = False) -> tuple[str, Any]:
    """The ``ExecStart`` property value (``a(sasb)``) for one command line."""
    return ("a(sasb)", [(argv[0], list(argv), ignore_failure)])


class Systemd:
    """One connection to a systemd manager (the local one or a lab node's)."""

    def __init__(self, bus: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._bus = bus
        self._con = bus.con
        self._ctx = _glib().MainContext.default()
        self.timeout = timeout
        self._removed: dict[str, str] = {}
        self._removed_units: dict[str, str] = {}  # unit → path of its last removed job
        self._watching = False
        self._sub_id: int | None = None
        self._paths: dict[str, str] = {}
        self._unit_sub: int | None = None

    @classmethod
    def system(cls, address: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Systemd:
        """Connect to the local system bus (``None``) or to a bus address, e.g. a lab
        node's ``unix:path=/proc/PID/root/run/dbus/system_bus_socket``."""
        try:
            pydbus = import_gi()
            from pydbus.bus import connect
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise SystemdError(f"pydbus is not importable: {exc}") from exc
        try:
            bus = pydbus.SystemBus() if address is None else connect(address)
        except Exception as exc:
            where = address or "the system bus"
            raise SystemdError(f"cannot connect to {where}: {_msg(exc)}") from exc
        return cls(bus, timeout=timeout)

    def close(self) -> None:
        """Drop the signal subscription and close a private connection."""
        for sub in (self._sub_id, self._unit_sub):
            if sub is not None:
                self._con.signal_unsubscribe(sub)
        self._sub_id = self._unit_sub = None
        if getattr(self._bus, "autoclose", False) and not self._con.is_closed():
            self._con.close_sync(None)

    def __enter__(self) -> Systemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw calls -------------------------------------------------------------------

    def _raw(
        self, path: str, iface: str, method: str, signature: str | None, args: Sequence[Any]
    ) -> Any:
        """One method call; the reply as a GLib.Variant (or None)."""
        params = _glib().Variant(f"({signature})", tuple(args)) if signature else None
        try:
            return self._con.call_sync(
                SYSTEMD, path, iface, method, params, None, 0, int(self.timeout * 1000), None
            )
        except Exception as exc:
            raise SystemdError(f"{method} failed: {_msg(exc)}") from exc

    def _call(
        self, path: str, iface: str, method: str, signature: str | None, args: Sequence[Any]
    ) -> tuple[Any, ...]:
        reply = self._raw(path, iface, method, signature, args)
        return tuple(reply.unpack()) if reply is not None else ()

    def manager(self, method: str, signature: str | None = None, *args: Any) -> tuple[Any, ...]:
        """Call a Manager method by name (escape hatch for what has no wrapper)."""
        return self._call(MANAGER_PATH, MANAGER_IFACE, method, signature, args)

    def subscribe(self) -> None:
        """Subscribe once per connection (idempotent; every enqueue does it first) and
        record every ``JobRemoved``.

        ``Subscribe`` is sent without waiting for its reply (~5 ms): messages of one
        connection reach systemd in order, so it is subscribed before any job this
        connection enqueues, and the match rule reaches dbus-daemon first too.
        """
        if self._watching:
            return
        self._sub_id = self._con.signal_subscribe(
            SYSTEMD, MANAGER_IFACE, "JobRemoved", MANAGER_PATH, None, 0, self._on_job_removed
        )
        # No callback: sent with NO_REPLY_EXPECTED (an AlreadySubscribed error is moot).
        self._con.call(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, "Subscribe", None, None, 0, -1,
                       None, None, None)  # fmt: skip
        self._watching = True

    def _on_job_removed(self, *args: Any) -> None:
        _id, job, unit, result = args[5].unpack()
        self._removed[job] = result
        self._removed_units[unit] = job

    def enqueue(self, method: str, unit: str, mode: str) -> str:
        """Subscribe (once, before any job exists), then enqueue one job; its path."""
        self.subscribe()
        self.forget((unit,))
        return str(self.manager(method, "ss", unit, mode)[0])

    def jobs_of(self, units: Iterable[str]) -> dict[str, str]:
        """The job of each of ``units`` that has one since it was last enqueued or
        forgotten: queued (``ListJobs``) or already removed. One call for all: what a
        transaction pulled in (a target's start) without enqueuing each unit."""
        wanted = set(units)
        rows = self.manager("ListJobs")[0]
        found = {str(row[1]): str(row[4]) for row in rows if str(row[1]) in wanted}
        while self._ctx.pending():  # JobRemoved signals that arrived meanwhile
            self._ctx.iteration(False)
        for unit in wanted - found.keys():
            if unit in self._removed_units:
                found[unit] = self._removed_units[unit]
        return found

    def finished(self, job: str) -> str | None:
        """The result of a job once it is removed (``done``, ``failed`` …), else None;
        signals must have been dispatched (:meth:`iterate`)."""
        return self._removed.pop(job, None)

    def forget(self, units: Iterable[str]) -> None:
        """Drop what is known of the removed jobs of ``units`` (before a new transaction)."""
        for unit in units:
            self._removed_units.pop(unit, None)

    def wait(self, jobs: Iterable[str], timeout: float | None) -> dict[str, str]:
        """Block in the main context until every job path has been removed; a GLib
        timeout source wakes the loop at the deadline."""
        pending = set(jobs)
        seconds = self.timeout if timeout is None else timeout
        expired: list[bool] = []
        glib = _glib()
        source = glib.timeout_add(max(1, int(seconds * 1000)), lambda: expired.append(True))
        try:
            while pending - self._removed.keys():
                if expired:
                    late = sorted(pending - self._removed.keys())
                    raise SystemdError(f"timed out after {seconds:g}s waiting for jobs {late}")
                self._ctx.iteration(True)
        finally:
            if not expired:
                glib.source_remove(source)
        return {job: self._removed.pop(job) for job in pending}

    # -- unit state --------------------------------------------------------------------

    def unit_path(self, unit: str) -> str:
        """The object path of a unit, loading it if needed (cached: systemd derives the
        path from the name, so it never changes)."""
        if unit not in self._paths:
            self._paths[unit] = str(self.manager("LoadUnit", "s", unit)[0])
        return self._paths[unit]

    def _get_all(self, path: str, iface: str, keys: Sequence[str]) -> dict[str, Any]:
        """Some properties of one interface, from one GetAll round trip. Only the wanted
        keys are unpacked: unpacking all of a service's ~250 properties costs ~15 ms."""
        found = self._raw(path, PROPS_IFACE, "GetAll", "s", (iface,)).get_child_value(0)
        values = {}
        for key in keys:
            value = found.lookup_value(key, None)
            if value is not None:
                values[key] = value.unpack()
        return values

    def state(self, unit: str) -> UnitState:
        """Load state, active/sub state, result and main PID of one unit."""
        path = self.unit_path(unit)
        props = self._get_all(path, UNIT_IFACE, ("LoadState", "ActiveState", "SubState"))
        typed: dict[str, Any] = {}
        iface = _TYPE_IFACES.get(unit.rsplit(".", 1)[-1])
        if iface is not None and props.get("LoadState") == "loaded":
            typed = self._get_all(path, iface, ("Result", "MainPID"))
        return UnitState(
            name=unit,
            load_state=str(props.get("LoadState", "")),
            active_state=str(props.get("ActiveState", "")),
            sub_state=str(props.get("SubState", "")),
            result=str(typed.get("Result", "")),
            main_pid=int(typed.get("MainPID", 0)),
        )

    def main_pid(self, unit: str) -> int:
        """A service's main pid (0: none, or not a service): one ``Get``, ~0.5 ms in a
        lab node, where :meth:`state`'s two ``GetAll`` take ~8 ms."""
        if not unit.endswith(".service"):
            return 0
        return int(self.property(unit, "MainPID", _TYPE_IFACES["service"]))

    def exec_pids(self, unit: str, properties: Sequence[str] = EXEC_PROPERTIES) -> list[int]:
        """The pids of a service's commands, as their last runs had them (the ``pid`` of
        each ``ExecCommand`` of ``properties``), 0s out; ``[]`` for a unit that is not a
        service. One ``Get`` per property (~0.5 ms each in a lab node): a ``GetAll`` of
        the service interface took ~4.7 ms."""
        if not unit.endswith(".service"):
            return []
        pids = []
        for name in properties:
            commands = self.property(unit, name, _TYPE_IFACES["service"])
            pids += [int(c[7]) for c in commands if len(c) > 7 and int(c[7]) > 0]
        return pids

    def states(self, units: Iterable[str]) -> dict[str, UnitState]:
        return {unit: self.state(unit) for unit in units}

    def property(self, unit: str, name: str, iface: str = UNIT_IFACE) -> Any:
        """One property of a unit (e.g. ``ControlGroup`` on the unit type's interface)."""
        return self._call(self.unit_path(unit), PROPS_IFACE, "Get", "ss", (iface, name))[0]

    def active_states(self, units: Sequence[str]) -> dict[str, str]:
        """``ActiveState`` of units, ``inactive`` for a unit systemd does not hold.

        One ``ListUnitsByPatterns`` call with the names as patterns: it reports only
        the units PID 1 has in memory, where ``ListUnitsByNames`` would first load
        each unit it dropped (an inactive unit is unloaded soon after it stops), from
        disk, ~1 ms each here, only to say ``inactive``. Names with glob characters
        (``\\x2d`` escapes) go through ``ListUnitsByNames``. Two fields per row are
        read: unpacking whole rows costs ~0.2 ms per unit.
        """
        return self._column(units, 3, "inactive")

    def sub_states(self, units: Sequence[str]) -> dict[str, str]:
        """``SubState`` of units (``auto-restart`` …), ``dead`` for a unit systemd does
        not hold: as :meth:`active_states`, one call for them all."""
        return self._column(units, 4, "dead")

    def _column(self, units: Sequence[str], column: int, absent: str) -> dict[str, str]:
        plain = [u for u in units if not any(c in u for c in "\\*?[")]
        special = [u for u in units if u not in plain]
        found: dict[str, str] = {}
        if plain:
            found.update(self._rows("ListUnitsByPatterns", "asas", ([], plain), column))
        if special:
            found.update(self._rows("ListUnitsByNames", "as", (special,), column))
        return {unit: found.get(unit, absent) for unit in units}

    def _rows(
        self, method: str, signature: str, args: tuple[Any, ...], column: int
    ) -> dict[str, str]:
        """Unit name → one column (3: ActiveState, 4: SubState) of a ``ListUnits*`` reply."""
        rows = self._raw(MANAGER_PATH, MANAGER_IFACE, method, signature, args).get_child_value(0)
        found = {}
        for i in range(rows.n_children()):
            row = rows.get_child_value(i)
            found[row.get_child_value(0).get_string()] = row.get_child_value(column).get_string()
        return found

    def list_units(self, patterns: Sequence[str] = ()) -> list[str]:
        """Names of the units systemd has loaded, optionally filtered by glob patterns."""
        rows = self.manager("ListUnitsByPatterns", "asas", [], list(patterns))[0]
        return sorted(str(row[0]) for row in rows)

    # -- jobs --------------------------------------------------------------------------

    def _jobs(
        self, method: str, units: Sequence[str], mode: str, timeout: float | None
    ) -> dict[str, JobOutcome]:
        self.subscribe()
        jobs = {unit: str(self.manager(method, "ss", unit, mode)[0]) for unit in units}
        results = self.wait(jobs.values(), timeout)
        return {
            unit: JobOutcome(unit=unit, job=job, result=results[job], state=self.state(unit))
            for unit, job in jobs.items()
        }

    def start(
        self, units: Sequence[str], mode: str = "replace", *, timeout: float | None = None
    ) -> dict[str, JobOutcome]:
        """Start units (all jobs enqueued first, then waited for together)."""
        return self._jobs("StartUnit", units, mode, timeout)

    def stop(
        self, units: Sequence[str], mode: str = "replace", *, timeout: float | None = None
    ) -> dict[str, JobOutcome]:
        return self._jobs("StopUnit", units, mode, timeout)

    def restart(
        self, units: Sequence[str], mode: str = "replace", *, timeout: float | None = None
    ) -> dict[str, JobOutcome]:
        return self._jobs("RestartUnit", units, mode, timeout)

    def start_transient(
        self,
        name: str,
        argv: Sequence[str],
        properties: Mapping[str, PropValue] | None = None,
        *,
        mode: str = "fail",
        timeout: float | None = None,
    ) -> JobOutcome:
        """Run ``argv`` as a transient service (``systemd-run`` without the binary)."""
        props = {"ExecStart": exec_start(argv), **(properties or {})}
        self.subscribe()
        args: tuple[Any, ...] = (name, mode, _props(props), [])
        job = str(self.manager("StartTransientUnit", "ssa(sv)a(sa(sv))", *args)[0])
        result = self.wait([job], timeout)[job]
        return JobOutcome(unit=name, job=job, result=result, state=self.state(name))

    def launch_transient(
        self,
        name: str,
        argv: Sequence[str],
        properties: Mapping[str, PropValue] | None = None,
    ) -> str:
        """Start ``argv`` as a transient service and return at once (its job path).

        For work that must outlive the caller (the cluster daemon's actions): the unit
        runs under PID 1, in its own cgroup, logs to the journal, and its end is seen
        through :meth:`watch_units` (or, after a restart of the caller, its state)."""
        props = {"ExecStart": exec_start(argv), **(properties or {})}
        self.subscribe()
        args: tuple[Any, ...] = (name, "fail", _props(props), [])
        return str(self.manager("StartTransientUnit", "ssa(sv)a(sa(sv))", *args)[0])

    # -- signals, for long-running callers (the cluster daemon) --------------------------

    def watch_units(self, on_change: Callable[[str], None]) -> None:
        """Call ``on_change(unit name)`` whenever a unit's properties change (its state,
        its result …), as :meth:`iterate` dispatches the signals."""
        self.subscribe()

        def changed(*args: Any) -> None:
            path = str(args[2])
            if path.startswith(UNIT_PATH_PREFIX):
                on_change(unit_name(path))

        self._unit_sub = self._con.signal_subscribe(
            SYSTEMD, PROPS_IFACE, "PropertiesChanged", None, UNIT_IFACE, 0, changed
        )

    def iterate(self, timeout: float) -> None:
        """Dispatch pending signals, waiting up to ``timeout`` seconds for one (or for
        :meth:`wakeup` from another thread)."""
        glib = _glib()
        fired: list[bool] = []

        def wake() -> bool:
            fired.append(True)
            return False  # one-shot: GLib drops the source

        source = glib.timeout_add(max(1, int(timeout * 1000)), wake)
        try:
            self._ctx.iteration(True)
        finally:
            if not fired:
                glib.source_remove(source)
        while self._ctx.pending():
            self._ctx.iteration(False)

    def wakeup(self) -> None:
        """Make a blocked :meth:`iterate` return (thread-safe)."""
        self._ctx.wakeup()

    # -- manager state -------------------------------------------------------------------

    def daemon_reload(self) -> None:
        """``systemctl daemon-reload``: the call returns once the reload is done."""
        self.manager("Reload")

    def reset_failed(self, unit: str | None = None) -> None:
        if unit is None:
            self.manager("ResetFailed")
        else:
            self.manager("ResetFailedUnit", "s", unit)

    def set_properties(
        self, unit: str, props: Mapping[str, PropValue], *, runtime: bool = True
    ) -> None:
        """``systemctl set-property [--runtime]``, e.g. ``MemoryMax`` on a slice."""
        self.manager("SetUnitProperties", "sba(sv)", unit, runtime, _props(props))

    def system_state(self) -> str:
        """``systemctl is-system-running``: ``starting``, ``running``, ``degraded`` …"""
        path, iface = MANAGER_PATH, MANAGER_IFACE
        return str(self._call(path, PROPS_IFACE, "Get", "ss", (iface, "SystemState"))[0])


def notify(state: str) -> None:
    """sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET`` (READY=1 …)."""
    import os
    import socket

    target = os.environ.get("NOTIFY_SOCKET", "")
    if not target:
        return
    address = "\0" + target[1:] if target.startswith("@") else target
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)


def unit_name(path: str) -> str:
    """A unit's name from its object path (systemd escapes bytes as ``_xx``)."""
    escaped = path.removeprefix(UNIT_PATH_PREFIX)
    out, i = bytearray(), 0
    raw = escaped.encode()
    while i < len(raw):
        if raw[i : i + 1] == b"_" and i + 2 < len(raw):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="replace")


def _msg(exc: BaseException) -> str:
    """A GLib error message without its ``g-dbus-error-name`` prefix noise."""
    text = str(getattr(exc, "message", "") or exc)
    return text.removeprefix("GDBus.Error:")
