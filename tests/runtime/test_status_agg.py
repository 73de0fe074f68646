"""Status aggregation follows om3's merge table (opensvc.md §6.1)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omc.runtime.drivers.base import Status
from omc.runtime.exitcodes import avail_code
from omc.runtime.status import ResourceStatus, aggregate, merge

U, D, W, NA, UD = Status.UP, Status.DOWN, Status.WARN, Status.NA, Status.UNDEF
SU, SD = Status.STDBY_UP, Status.STDBY_DOWN


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((), NA),
        ((NA, UD), NA),
        ((U,), U),
        ((U, NA), U),
        ((U, U), U),
        ((D, D), D),
        ((U, D), W),
        ((U, W), W),
        ((D, W), W),
        ((U, SU), U),
        ((U, SD), W),
        ((D, SU), SU),
        ((D, SD), SD),
        ((SU, SU), SU),
        ((SD, SD), SD),
        ((SU, SD), W),
        ((U, SU, D), W),
        ((D, SU, U), W),
        ((SU, D, D), SU),
        ((SU, U, U), U),
    ],
)
def test_merge_table(statuses: tuple[Status, ...], expected: Status) -> None:
    """Each combination of resource statuses merges as om3's status.Add does."""
    assert merge(statuses) == expected


def test_avail_ignores_optional_sync_and_task() -> None:
    """Avail excludes optional, sync and task resources; overall includes them."""
    got = aggregate(
        [
            ResourceStatus(rid="ip#0", status=U, group="ip"),
            ResourceStatus(rid="app#1", status=D, group="app", optional=True),
            ResourceStatus(rid="sync#0", status=D, group="sync"),
            ResourceStatus(rid="task#0", status=D, group="task"),
        ]
    )
    assert (got.avail, got.overall) == (U, W)


def test_warning_message_makes_overall_warn() -> None:
    """A warn: line in a resource's status log makes overall warn, not avail."""
    got = aggregate([ResourceStatus(rid="fs#1", status=U, group="fs", messages=("warn: x",))])
    assert (got.avail, got.overall) == (U, W)


def test_no_resources_is_na() -> None:
    """An instance with no resources is n/a."""
    assert aggregate([]).avail == NA


@pytest.mark.parametrize(
    ("avail", "code"), [(U, 0), (D, 1), (W, 2), (NA, 3), (UD, 5), (SU, 6), (SD, 7)]
)
def test_avail_exit_codes(avail: Status, code: int) -> None:
    """instance status exits with v2's avail encoding."""
    assert avail_code(avail) == code


@given(st.lists(st.sampled_from(list(Status)), max_size=8), st.randoms())
def test_merge_is_order_independent(statuses: list[Status], rnd: random.Random) -> None:
    """The aggregate does not depend on the order resources are listed in."""
    shuffled = list(statuses)
    rnd.shuffle(shuffled)
    assert merge(shuffled) == merge(statuses)


@given(st.lists(st.sampled_from(list(Status)), max_size=8))
def test_na_and_undef_are_neutral(statuses: list[Status]) -> None:
    """Adding n/a or undef resources never changes the aggregate."""
    assert merge([*statuses, NA, UD]) == merge(statuses)
