"""Resource drivers: one module per driver family, loaded lazily by :func:`get`.

The runtime needs only ``get(driver)`` and the protocol types re-exported here;
importing this package costs nothing beyond ``base`` (the hot path of every
``om <path> driver start`` and ``print status``).
"""

from __future__ import annotations

import importlib

from .base import (
    ActionLog,
    Driver,
    DriverError,
    Probe,
    ResourceView,
    Status,
)

__all__ = [
    "ActionLog",
    "Driver",
    "DriverError",
    "Probe",
    "ResourceView",
    "Status",
    "UnknownDriverError",
    "evaluate",
    "get",
    "known",
    "veto",
]

# driver name, as units carry it (X-OpenSVC-Driver) -> (family module, class).
# "fs.<anything else>" is a mountable fs. The compiler emits exactly these drivers
# (tests/test_contract.py ties this table to compiler/keywords.py, both ways).
_REGISTRY: dict[str, tuple[str, str]] = {
    "ip.host": ("ip", "HostIp"),
    "ip.netns": ("ip", "NetnsIp"),
    "disk.loop": ("disk", "Loop"),
    "disk.vg": ("disk", "Vg"),
    "disk.md": ("disk", "Md"),
    "disk.raw": ("disk", "Raw"),
    "fs.flag": ("fs", "Flag"),
    "fs.directory": ("fs", "Directory"),
    "share.nfs": ("share", "Nfs"),
    "container.podman": ("container", "Podman"),
    "container.docker": ("container", "Docker"),
    "container.oci": ("container", "Podman"),
    "app.forking": ("app", "Forking"),
    "app.simple": ("app", "Simple"),
    "sync.rsync": ("sync", "Rsync"),
    "task.host": ("task", "HostTask"),
    "task.podman": ("task", "PodmanTask"),
    "task.docker": ("task", "DockerTask"),
    "task.oci": ("task", "PodmanTask"),
}
_NOT_MOUNTABLE = frozenset({"fs.flag", "fs.directory", "fs.zfs"})
_cache: dict[str, Driver] = {}


class UnknownDriverError(LookupError):
    """No driver of that name is implemented."""


def known() -> tuple[str, ...]:
    """Every driver name :func:`get` accepts explicitly (mountable fs types aside)."""
    return tuple(sorted(_REGISTRY))


def _locate(driver: str) -> tuple[str, str]:
    if driver in _REGISTRY:
        return _REGISTRY[driver]
    group, _, kind = driver.partition(".")
    if group == "fs" and kind and driver not in _NOT_MOUNTABLE:
        return ("fs", "Mount")
    raise UnknownDriverError(f"no driver {driver!r}; known: {', '.join(known())}, fs.<fstype>")


def get(driver: str) -> Driver:
    """The driver object for ``driver`` (e.g. ``fs.flag``), importing its module on first use."""
    found = _cache.get(driver)
    if found is None:
        module_name, class_name = _locate(driver)
        module = importlib.import_module(f"{__name__}.{module_name}")
        found = getattr(module, class_name)()
        _cache[driver] = found
    return found


def evaluate(res: ResourceView) -> Probe:
    """The resource status as ``print status`` shows it (opensvc.md §4.5, §6.1).

    Disabled resources and the ``nostatus`` tag give ``n/a`` without probing;
    a standby resource's ``up``/``down`` is shown ``stdby up``/``stdby down``.
    A probe that raises :class:`DriverError` is ``undef`` with the message.
    """
    if "disable" in res.flags:
        return Probe(status=Status.NA, messages=("disabled",))
    if "nostatus" in res.tags:
        return Probe(status=Status.NA)
    try:
        probe = get(res.driver).status(res)
    except (DriverError, UnknownDriverError, OSError) as exc:
        return Probe(status=Status.UNDEF, messages=(str(exc),))
    if res.standby and probe.status in (Status.UP, Status.DOWN):
        standby = Status.STDBY_UP if probe.status is Status.UP else Status.STDBY_DOWN
        return Probe(status=standby, messages=probe.messages, warnings=probe.warnings)
    return probe


def has_veto(driver: str) -> bool:
    """Whether resources of ``driver`` have an abort-phase check (:func:`veto`)."""
    try:
        return hasattr(get(driver), "abort")
    except LookupError:
        return False


def veto(res: ResourceView) -> str | None:
    """The abort-phase veto of one resource, or None (disabled/noaction never veto).

    Call it for each resource that is not already up, before starting anything;
    a veto aborts the start ("abort start").
    """
    if "disable" in res.flags or "noaction" in res.tags:
        return None
    abort = getattr(get(res.driver), "abort", None)
    if abort is None:
        return None
    try:
        reason = abort(res)
    except DriverError as exc:
        return str(exc)
    return str(reason) if reason else None
