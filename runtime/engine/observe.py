"""Observation: unit states from systemd plus the drivers' probes → resource statuses.

Two sources, merged per resource: systemd's ``ActiveState`` of its unit (all
units of the object in ONE round trip: ``Systemd.active_states`` over D-Bus when
a connection is open, else one ``systemctl list-units``) and the driver's ``status()``
probe, run in-process (drivers are imported lazily, one family at a time).
The probe sees drift systemd cannot: an address removed by hand, a flag
file deleted; systemd sees what a probe may not (a killed ``Type=simple`` app).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omc.runtime.drivers.base import Probe, Status
from omc.runtime.engine.plan import Observed
from omc.runtime.objects.model import ObjectModel, ResourceModel
from omc.runtime.status import ResourceStatus

if TYPE_CHECKING:
    from omc.runtime.adapters.systemd import Systemd

ACTIVE = frozenset({"active", "reloading", "activating", "deactivating"})


def states_via_systemctl(units: Sequence[str]) -> dict[str, str]:
    """``ActiveState`` of units with one ``systemctl list-units`` (no D-Bus import).

    ``list-units`` is one ``ListUnitsByPatterns`` call; ``systemctl show`` would
    fetch every property of every unit (0.36 s for 20 units, against ~5 ms).
    Units systemd has not loaded are not listed: they are inactive.
    """
    return start_states_via_systemctl(units)()


def start_states_via_systemctl(units: Sequence[str]) -> Callable[[], dict[str, str]]:
    """Start :func:`states_via_systemctl`'s command now; the function returned waits
    for it and parses its output (so other work can overlap it)."""
    if not units:
        return dict
    proc = subprocess.Popen(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "--", *units],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip

    def finish() -> dict[str, str]:
        out, _ = proc.communicate()
        return parse_list_units(out, units)

    return finish


def parse_list_units(text: str, units: Sequence[str]) -> dict[str, str]:
    """``UNIT LOAD ACTIVE SUB DESCRIPTION`` lines (a ``●`` marks failed units) → states."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "●":
            words = words[1:]
        if len(words) >= 3:
            found[words[0]] = words[2]
    return {unit: found.get(unit, "inactive") for unit in units}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceState:
    """Everything observed about one resource."""

    res: ResourceModel
    unit_state: str
    probe: Probe

    @property
    def status(self) -> Status:
        return self.probe.status

    @property
    def observed(self) -> Observed:
        return Observed(unit_active=self.unit_state in ACTIVE, status=self.status)

    def summary(self) -> ResourceStatus:
        return ResourceStatus(
            rid=self.res.rid, status=self.status, optional=self.res.optional,
            group=self.res.group, messages=self.probe.messages,
        )  # fmt: skip


def _standby(status: Status) -> Status:
    return {Status.UP: Status.STDBY_UP, Status.DOWN: Status.STDBY_DOWN}.get(status, status)


def _normalized(found: Probe) -> Probe:
    """Messages as status-log lines: ``info: …`` for messages, ``warn: …`` for warnings."""
    lines = tuple(
        m if m.startswith(("info:", "warn:", "error:")) else f"info: {m}" for m in found.messages
    )
    warnings = tuple(f"warn: {w}" for w in getattr(found, "warnings", ()))
    return Probe(status=found.status, messages=lines + warnings)


def probe(model: ObjectModel, res: ResourceModel, unit_state: str) -> Probe:
    """The resource's status: the driver's probe, or the unit state when there is none."""
    return _settle(res, _driver_probe(model, res), unit_state)


def _driver_probe(model: ObjectModel, res: ResourceModel) -> Probe | None:
    """The driver's own probe (None: no driver, or not probed), independent of systemd."""
    if res.disabled or "nostatus" in res.tags:
        return None
    found: Probe | None = None
    try:
        from omc.runtime import drivers

        found = drivers.get(res.driver).status(res.view(model.display, model.id))
    except (LookupError, ImportError, AttributeError):
        found = None
    except Exception as exc:  # a broken probe must not break status
        found = Probe(status=Status.UNDEF, messages=(f"error: probe failed: {exc}",))
    return _normalized(found) if found is not None else None


def _unit_tells(res: ResourceModel, found: Probe | None) -> bool:
    """Whether the unit's state makes the resource's status (pure): no driver probe, or
    an app without a check command (systemd tracks the process)."""
    return found is None or (found.status is Status.NA and res.group == "app")


def _settle(res: ResourceModel, found: Probe | None, unit_state: str) -> Probe:
    """Combine the driver's probe with the unit state (apps without check, standby)."""
    if res.disabled or "nostatus" in res.tags:
        return Probe(status=Status.NA)
    active = unit_state in ACTIVE
    if found is None or _unit_tells(res, found):  # (None spelled out for mypy)
        # No driver, or an app without a check command: systemd tracks the process.
        found = Probe(status=Status.UP if active else Status.DOWN)
    if unit_state == "failed" and found.status is Status.DOWN:
        found = Probe(status=Status.DOWN, messages=(*found.messages, f"warn: {res.unit} failed"))
    if res.standby:
        found = Probe(status=_standby(found.status), messages=found.messages)
    return found


def observe(
    model: ObjectModel,
    *,
    sd: Systemd | None = None,
    rids: frozenset[str] | None = None,
    unit_states: Mapping[str, str] | None = None,
    probes: Mapping[str, Probe | None] | None = None,
) -> dict[str, ResourceState]:
    """Observe every resource (or only ``rids``) of an object; ``unit_states`` are
    ActiveStates the caller has just read (no systemd call then), ``probes`` the driver
    probes it has just run (:func:`begin_observe`)."""
    chosen = [r for r in model.resources if rids is None or r.rid in rids]
    units = [r.unit for r in chosen]
    if unit_states is None and sd is None:
        # `systemctl list-units` runs while the driver probes run (both mostly forks).
        pending = start_states_via_systemctl(units)
        probes = {r.rid: _driver_probe(model, r) for r in chosen}
        unit_states = pending()
    else:
        if unit_states is None:
            assert sd is not None
            unit_states = sd.active_states(units)
        if probes is None:
            probes = {r.rid: _driver_probe(model, r) for r in chosen}
    found = {r.rid: unit_states.get(r.unit, "inactive") for r in chosen}
    return {
        r.rid: ResourceState(res=r, unit_state=found[r.rid],
                             probe=_settle(r, probes[r.rid], found[r.rid]))
        for r in chosen
    }  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Looking:
    """An observation under way: the driver probes are in, the unit states are being
    read (``systemctl list-units``, started by :func:`begin_observe`)."""

    model: ObjectModel
    chosen: tuple[ResourceModel, ...]
    probes: Mapping[str, Probe | None]
    pending: Callable[[], dict[str, str]]

    def known(self, groups: Sequence[str]) -> dict[str, ResourceState] | None:
        """The states of the resources of ``groups`` if none of them needs its unit's
        state (each has a driver probe, which the unit state does not change but for an
        app's; see :func:`_settle`): no wait for systemctl. None: one of them needs it."""
        found = {}
        for r in self.chosen:
            if r.group not in groups:
                continue
            probe = self.probes[r.rid]
            if not (r.disabled or "nostatus" in r.tags) and _unit_tells(r, probe):
                return None
            found[r.rid] = ResourceState(res=r, unit_state="", probe=_settle(r, probe, ""))
        return found

    def finish(self) -> dict[str, ResourceState]:
        """Every chosen resource's state, once the unit states are read."""
        return observe(self.model, rids=frozenset(r.rid for r in self.chosen),
                       unit_states=self.pending(), probes=self.probes)  # fmt: skip


def begin_observe(model: ObjectModel, *, rids: frozenset[str]) -> Looking:
    """:func:`observe` in two steps: the probes now, the unit states when asked for
    (:meth:`Looking.finish`), so that a caller needing only what the probes tell (a
    sync's "is this instance up here") does not wait for systemctl before its work."""
    chosen = tuple(r for r in model.resources if r.rid in rids)
    pending = start_states_via_systemctl([r.unit for r in chosen])
    probes = {r.rid: _driver_probe(model, r) for r in chosen}
    return Looking(model=model, chosen=chosen, probes=probes, pending=pending)


def observed_map(states: Mapping[str, ResourceState]) -> dict[str, Observed]:
    return {rid: st.observed for rid, st in states.items()}


def label(model: ObjectModel, res: ResourceModel) -> str:
    """om3's ``<driver type> <driver label>`` (``flag /dev/shm/…``, ``host 10.0.0.10@eth0``)."""
    kind = res.driver.partition(".")[2] or res.driver
    try:
        from omc.runtime import drivers

        text = drivers.get(res.driver).label(res.view(model.display, model.id))
    except Exception:  # a label is cosmetic: never fail status for it
        text = ""
    return text if text.startswith(kind) else f"{kind} {text}".rstrip()
