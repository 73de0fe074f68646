"""Resource selection: --rid, --tag (a+b,c), --subset, combined by union."""

from __future__ import annotations

import pytest
from omc.runtime.objects.selection import Selectable, Selector, select

RESOURCES = (
    Selectable(rid="ip#0", tags=frozenset({"net"})),
    Selectable(rid="fs#1", tags=frozenset({"a", "b"})),
    Selectable(rid="fs#data", tags=frozenset({"a"})),
    Selectable(rid="app#web", tags=frozenset({"c"}), subset="front"),
    Selectable(rid="app#worker1", subset="workers"),
    Selectable(rid="app#worker2", subset="workers"),
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (Selector(rid="fs#1"), {"fs#1"}),
        (Selector(rid="fs"), {"fs#1", "fs#data"}),
        (Selector(rid="app#w*"), {"app#web", "app#worker1", "app#worker2"}),
        (Selector(rid="ip#0,app#web"), {"ip#0", "app#web"}),
        (Selector(rid="ip,fs#data"), {"ip#0", "fs#data"}),
        (Selector(rid="nope"), set()),
        (Selector(tag="a"), {"fs#1", "fs#data"}),
        (Selector(tag="a+b"), {"fs#1"}),
        (Selector(tag="a+b,c"), {"fs#1", "app#web"}),
        (Selector(tag="net,c"), {"ip#0", "app#web"}),
        (Selector(subset="workers"), {"app#worker1", "app#worker2"}),
        (Selector(subset="workers,front"), {"app#web", "app#worker1", "app#worker2"}),
        (
            Selector(rid="ip#0", tag="c", subset="workers"),
            {"ip#0", "app#web", "app#worker1", "app#worker2"},
        ),
    ],
)
def test_selection_table(selector: Selector, expected: set[str]) -> None:
    """Each selector expression picks exactly the expected resources."""
    assert select(RESOURCES, selector) == frozenset(expected)


def test_no_option_is_no_selection() -> None:
    """Without --rid/--tag/--subset there is no selection (None), not an empty one."""
    assert select(RESOURCES, Selector()) is None
