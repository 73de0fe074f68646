"""The compiler and the runtime agree on the drivers: a driver is emitted only if it runs.

Two tables decide the fate of a resource. The compiler's (``compiler/keywords.py``:
``DRIVERS`` through ``driver_support``) decides which resources become units; the
runtime's (``omc.runtime.drivers.get``: its registry plus the mountable-fs rule) decides
which ``X-OpenSVC-Driver`` values ``om <path> driver start`` can run. When they drift, a
config compiles and its unit fails at start, or omc rejects a driver it could run. These
tests compare the real tables, both ways, with no list of their own.
"""

from __future__ import annotations

import pytest
from omc.compiler.keywords import DRIVERS, MOUNT_FS_TYPES, Support, drivers
from omc.runtime import drivers as runtime


def runs(driver: str) -> bool:
    """True when the runtime has a driver for ``driver`` (it imports and builds it)."""
    try:
        runtime.get(driver)
    except runtime.UnknownDriverError:
        return False
    return True


def test_every_emitted_driver_has_a_runtime_driver() -> None:
    """What the compiler turns into a unit, `om <path> driver start` can run."""
    assert [d for d in drivers(Support.EMITTED) if not runs(d)] == []


def test_every_runtime_driver_is_emitted_by_the_compiler() -> None:
    """Every name in the runtime's registry is one the compiler writes into units."""
    emitted = set(drivers(Support.EMITTED))
    assert [d for d in runtime.known() if d not in emitted] == []


def test_drivers_the_compiler_rejects_as_not_run_are_not_in_the_runtime() -> None:
    """An om3 driver the compiler calls 'not supported by omc's runtime' really is not."""
    assert [d for d in drivers(Support.PARSED) if runs(d)] == []


@pytest.mark.parametrize(
    "fs_type", sorted(t for t, s in DRIVERS["fs"].items() if s is Support.EMITTED)
)
def test_an_fs_is_a_mount_for_the_runtime_exactly_when_the_compiler_mounts_it(fs_type: str) -> None:
    """The runtime's mountable-fs rule and the compiler's list of mount types agree."""
    runtime_mounts = type(runtime.get(f"fs.{fs_type}")).__name__ == "Mount"
    compiler_mounts = fs_type in MOUNT_FS_TYPES
    assert runtime_mounts == compiler_mounts
