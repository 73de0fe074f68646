"""Diagnostic rendering: the text layout (location, line, caret, hint) and the JSON form."""

from __future__ import annotations

import json

import pytest
from omc.compiler.diagnostics import (
    Collector,
    Diagnostic,
    Severity,
    Span,
    count,
    render_text,
    to_json,
)

SOURCE = "[DEFAULT]\r\nnodes = n1\r\n\tbad\tline = x\r\n"


def diag(line: int, column: int, end: int | None, **kw: object) -> Diagnostic:
    span = Span(file="s.conf", line=line, column=column, end_line=line, end_column=end)
    return Diagnostic(
        severity=kw.pop("severity", Severity.ERROR),  # type: ignore[arg-type]
        span=span,
        message=str(kw.pop("message", "boom")),
        hint=kw.pop("hint", None),  # type: ignore[arg-type]
        code="x",
    )


@pytest.mark.parametrize(
    ("line", "column", "end", "caret"),
    [
        (2, 1, 6, "^~~~~"),
        (2, 9, 11, "        ^~"),
        (2, 9, None, "        ^~"),
        (3, 2, 5, " ^~~"),
    ],
)
def test_caret_sits_under_the_span(line: int, column: int, end: int | None, caret: str) -> None:
    """The marker starts at the column and spans the range (to the line end when open)."""
    out = render_text([diag(line, column, end)], SOURCE).splitlines()
    assert out[2] == f"     | {caret}"


def test_layout_with_hint_and_related_location() -> None:
    """Header, gutter-aligned source line, caret, related note, hint."""
    first = Span(file="s.conf", line=2, column=1, end_line=2, end_column=6)
    d = Diagnostic(
        severity=Severity.WARNING,
        span=Span(file="s.conf", line=3, column=2, end_line=3, end_column=5),
        message="overridden",
        hint="remove one",
        code="duplicate-keyword",
        related=((first, "first defined here"),),
    )
    assert render_text([d], SOURCE) == (
        "s.conf:3:2: warning: overridden\n"
        "   3 |  bad line = x\n"
        "     |  ^~~\n"
        "s.conf:2:1: note: first defined here\n"
        "   2 | nodes = n1\n"
        "     | ^~~~~\n"
        "hint: remove one\n"
    )


def test_spanless_diagnostic_and_empty_list() -> None:
    """No span: just the message line; no diagnostics: empty text."""
    d = Diagnostic(severity=Severity.ERROR, span=None, message="cannot read", code="io")
    assert render_text([d]) == "<input>: error: cannot read\n"
    assert render_text([]) == ""


def test_json_form_is_serializable_and_complete() -> None:
    """to_json gives plain dicts with severity, code, message, hint and spans."""
    data = to_json([diag(2, 1, 6, hint="h")])
    assert json.loads(json.dumps(data)) == [
        {
            "severity": "error",
            "code": "x",
            "message": "boom",
            "hint": "h",
            "span": {"file": "s.conf", "line": 2, "column": 1, "end_line": 2, "end_column": 6},
            "related": [],
        }
    ]


def test_collector_sorts_by_position_and_counts() -> None:
    """freeze() orders diagnostics by line and column; count() tallies severities."""
    c = Collector(file="s.conf")
    c.warning(Span(file="s.conf", line=3, column=1), "w", code="w")
    c.error(Span(file="s.conf", line=1, column=4), "e", code="e")
    c.note(None, "n", code="n")
    frozen = c.freeze()
    assert [d.message for d in frozen] == ["n", "e", "w"]
    assert c.has_errors
    assert count(frozen) == {Severity.ERROR: 1, Severity.WARNING: 1, Severity.NOTE: 1}
