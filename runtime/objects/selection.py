"""Resource selection (opensvc.md §4.4): ``--rid``, ``--tag``, ``--subset``. Pure.

* ``--rid a,b``: each term is a rid (``fs#1``), a driver group (``fs``) or an
  fnmatch pattern (``app#w*``).
* ``--tag t1+t2,t3``: ``,`` is OR, ``+`` is AND inside a term (v2 and the book;
  om3's matcher dropped ``+``, we keep it).
* ``--subset s1,s2``: resources whose subset is s1 or s2.
* The three are combined by union. No option at all means "no selection"
  (``None``), which is not the same as an empty selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True, kw_only=True)
class Selectable:
    """What selection looks at in a resource."""

    rid: str
    tags: frozenset[str] = frozenset()
    subset: str | None = None

    @property
    def group(self) -> str:
        return self.rid.split("#", 1)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Selector:
    """The three CLI options, unparsed (``None`` = option not given)."""

    rid: str | None = None
    tag: str | None = None
    subset: str | None = None

    @property
    def empty(self) -> bool:
        return self.rid is None and self.tag is None and self.subset is None


def _terms(expr: str) -> list[str]:
    return [t.strip() for t in expr.split(",") if t.strip()]


def rid_matches(term: str, res: Selectable) -> bool:
    """A ``--rid`` term: exact rid, driver group, or fnmatch pattern."""
    if "#" not in term and not any(c in term for c in "*?["):
        return res.group == term
    return term == res.rid or fnmatchcase(res.rid, term)


def tag_matches(expr: str, tags: frozenset[str]) -> bool:
    """``a+b,c`` means (a AND b) OR c."""
    return any(
        all(t.strip() in tags for t in term.split("+") if t.strip()) for term in _terms(expr)
    )


def select(resources: Iterable[Selectable], selector: Selector) -> frozenset[str] | None:
    """The rids selected, or None when no selection option was given."""
    if selector.empty:
        return None
    return frozenset(res.rid for res in resources if _selected(res, selector))


def _selected(res: Selectable, selector: Selector) -> bool:
    if selector.rid is not None and any(rid_matches(t, res) for t in _terms(selector.rid)):
        return True
    if selector.tag is not None and tag_matches(selector.tag, res.tags):
        return True
    return selector.subset is not None and res.subset in _terms(selector.subset)
