"""The driver protocol: what every resource driver offers the runtime.

A driver is a stateless object with four methods. The runtime (``om … print
status``) calls :meth:`Driver.status` in-process; the oneshot units call
``om <path> driver start|stop --rid <rid>`` which ends in :meth:`Driver.start`
or :meth:`Driver.stop`. Everything a driver knows about a resource comes in a
:class:`ResourceView`, built from the unit file's ``X-OpenSVC-*`` keys, so
drivers never import the compiler.

Drivers are idempotent (opensvc.md §4.8): a start on an already-up resource
logs "already up" and changes nothing; they signal failure by raising
:class:`DriverError` (the entry point turns it into an exit code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from omc.compiler.contract.paths import ObjectPath, PathError, parse_path


class Status(StrEnum):
    """Resource status values (opensvc.md §6.1)."""

    UP = "up"
    DOWN = "down"
    WARN = "warn"
    NA = "n/a"
    UNDEF = "undef"
    STDBY_UP = "stdby up"
    STDBY_DOWN = "stdby down"


class DriverError(Exception):
    """A resource action failed; the message is what the operator reads."""


class ActionLog(Protocol):
    """The logging surface drivers use (``runtime/log.py`` implements it)."""

    def info(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def warning(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def error(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def debug(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...


def acting(log: ActionLog) -> bool:
    """Whether an acting ``om`` receives this driver's records through its relay: an
    ``om`` start, which ran its abort phase (the vetoes) a moment before."""
    return bool(getattr(log, "relayed", False))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceView:
    """One resource as the runtime sees it: identity plus its evaluated keywords."""

    path: str  # display form: "svc0", "ns1/svc/web"
    rid: str  # "fs#1"
    driver: str  # "fs.flag"
    config: Mapping[str, object]  # X-OpenSVC-Config, decoded
    tags: frozenset[str] = frozenset()
    subset: str | None = None
    flags: frozenset[str] = frozenset()  # among optional standby disable monitor shared encap
    unit: str = ""  # the resource's unit name
    object_id: str = ""  # DEFAULT.id (OPENSVC_ID)

    @property
    def ref(self) -> ObjectPath:
        """The object path; raises DriverError for a path ``om`` would refuse."""
        try:
            return parse_path(self.path)
        except PathError as exc:
            raise DriverError(str(exc)) from None

    @property
    def rindex(self) -> str:
        """The part after ``#``: ``1`` for ``fs#1``."""
        return self.rid.split("#", 1)[-1]

    @property
    def standby(self) -> bool:
        return "standby" in self.flags


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """A status probe result: the status and the messages ``print status`` shows."""

    status: Status
    messages: tuple[str, ...] = ()  # info lines of the status log
    warnings: tuple[str, ...] = ()  # warn lines: they make the instance overall "warn"


class Driver(Protocol):
    """What the runtime calls. Implementations live in one module per driver family."""

    def start(self, res: ResourceView, log: ActionLog) -> None:
        """Bring the resource up; log "already up" and do nothing if it is."""

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        """Bring the resource down; log "already down" and do nothing if it is."""

    def status(self, res: ResourceView) -> Probe:
        """Observe, never change: cheap enough to run on every ``print status``."""

    def label(self, res: ResourceView) -> str:
        """The short description shown beside the rid, e.g. ``10.0.0.10@eth0``."""


class Vetoing(Protocol):
    """Optional driver method for the start abort phase (opensvc.md §4.2 step 4).

    ``abort(res)`` returns the reason to refuse the whole start before anything
    runs ("10.0.0.10 is alive", "already up on peer n2"), or None. Drivers
    without it never veto; :func:`omc.runtime.drivers.veto` hides the difference.
    """

    def abort(self, res: ResourceView) -> str | None: ...
