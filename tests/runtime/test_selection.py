"""Resource selection: --rid, --tag (a+b,c), --subset, combined by union."""

from __future__ import annotations

import pytest
from omc.runtime.objects.selection import NoMatchError, Selectable, Selector, select, select_some

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


@pytest.mark.parametrize(
    ("selector", "said"),
    [
        (Selector(rid="typo"), "--rid typo"),
        (Selector(rid=""), "--rid ''"),
        (Selector(tag="no such"), "--tag 'no such'"),
        (Selector(subset="s9", rid="app#9"), "--rid app#9 --subset s9"),
        (Selector(rid="it's"), "--rid 'it'\\''s'"),
    ],
)
def test_options_matching_nothing_are_refused_by_name(selector: Selector, said: str) -> None:
    """select_some raises NoMatchError naming the options as typed (quoted when needed)."""
    with pytest.raises(NoMatchError) as caught:
        select_some(RESOURCES, selector, owner="svc0")
    assert str(caught.value) == f"svc0: no resource matches {said}"


def test_select_some_passes_matches_and_no_selection_through() -> None:
    """A match, or no option at all, is what select gives."""
    assert select_some(RESOURCES, Selector(rid="fs#1"), owner="svc0") == {"fs#1"}
    assert select_some(RESOURCES, Selector(), owner="svc0") is None
