"""The registry and the common status rules every driver's probe goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
from omc.runtime import drivers
from omc.runtime.drivers import Probe, Status

from .helpers import view


@pytest.mark.parametrize(
    ("driver", "cls"),
    [
        ("fs.flag", "Flag"), ("fs.ext4", "Mount"), ("fs.tmpfs", "Mount"), ("ip.host", "HostIp"),
        ("disk.vg", "Vg"), ("container.oci", "Podman"), ("task.podman", "PodmanTask"),
    ],
)  # fmt: skip
def test_get_maps_driver_names(driver: str, cls: str) -> None:
    """Driver names resolve to their family class; any fs.<fstype> is a mount."""
    assert type(drivers.get(driver)).__name__ == cls


@pytest.mark.parametrize("driver", ["fs.zfs", "ip.cni", "disk.drbd", "nonsense"])
def test_unknown_drivers_are_lookup_errors(driver: str) -> None:
    """Drivers we do not implement are refused by name."""
    with pytest.raises(drivers.UnknownDriverError, match=driver):
        drivers.get(driver)


@pytest.fixture(autouse=True)
def flag_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMC_FLAG_DIR", str(tmp_path))


DISABLED = ("disabled",)


@pytest.mark.parametrize(
    ("flags", "tags", "installed", "expected"),
    [
        (frozenset(), frozenset(), True, Probe(status=Status.UP)),
        (frozenset({"standby"}), frozenset(), True, Probe(status=Status.STDBY_UP)),
        (frozenset({"standby"}), frozenset(), False, Probe(status=Status.STDBY_DOWN)),
        (
            frozenset({"disable"}),
            frozenset(),
            True,
            Probe(status=Status.NA, messages=("disabled",)),
        ),
        (frozenset(), frozenset({"nostatus"}), True, Probe(status=Status.NA)),
    ],
)
def test_evaluate_common_rules(
    flags: frozenset[str], tags: frozenset[str], installed: bool, expected: Probe
) -> None:
    """Standby maps up/down to stdby up/down; disabled and nostatus are n/a without probing."""
    res = view("fs.flag", {}, rid="fs#1", flags=flags, tags=tags)
    if installed:
        drivers.get("fs.flag").start(res, _Quiet())
    assert drivers.evaluate(res) == expected


def test_evaluate_unknown_driver_is_undef() -> None:
    """A unit naming a driver we lack shows undef with the reason, not an exception."""
    probe = drivers.evaluate(view("ip.cni", {}))
    assert probe.status is Status.UNDEF
    assert "no driver 'ip.cni'" in probe.messages[0]


class _Quiet:
    def info(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def warning(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def error(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
    def debug(self, msg: str, *, rid: str | None = None, **fields: object) -> None: ...
