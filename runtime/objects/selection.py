"""Resource selection (opensvc.md §4.4): ``--rid``, ``--tag``, ``--subset``. Pure.

* ``--rid a,b``: each term is a rid (``fs#1``), a driver group (``fs``) or an
  fnmatch pattern (``app#w*``).
* ``--tag t1+t2,t3``: ``,`` is OR, ``+`` is AND inside a term (v2 and the book;
  om3's matcher dropped ``+``, we keep it).
* ``--subset s1,s2``: resources whose subset is s1 or s2.
* The three are combined by union. No option at all means "no selection"
  (``None``), which is not the same as an empty selection: options that match
  no resource are the user's mistake (a typo in a rid), never a silent no-op,
  so :func:`select_some` raises :class:`NoMatchError` for them.
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

    def describe(self) -> str:
        """The options as they would be typed: ``--rid typo --tag db`` (``''`` for empty)."""
        given = (("--rid", self.rid), ("--tag", self.tag), ("--subset", self.subset))
        return " ".join(
            f"{flag} {_shell_word(value)}" for flag, value in given if value is not None
        )


class NoMatchError(LookupError):
    """Selection options were given and matched no resource of the object."""


def _shell_word(value: str) -> str:
    """``value`` readable as one shell word: quoted only when it must be."""
    if value and not any(c.isspace() or c in "'\"\\$`" for c in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


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


def select_some(
    resources: Iterable[Selectable], selector: Selector, *, owner: str
) -> frozenset[str] | None:
    """:func:`select`, refusing options that match nothing (``owner`` names the object)."""
    chosen = select(resources, selector)
    if chosen is not None and not chosen:
        raise NoMatchError(f"{owner}: no resource matches {selector.describe()}")
    return chosen


def _selected(res: Selectable, selector: Selector) -> bool:
    if selector.rid is not None and any(rid_matches(t, res) for t in _terms(selector.rid)):
        return True
    if selector.tag is not None and tag_matches(selector.tag, res.tags):
        return True
    return selector.subset is not None and res.subset in _terms(selector.subset)
