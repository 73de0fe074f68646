"""Syntax errors: the example table is the spec of each friendly message; parsing recovers."""

from __future__ import annotations

import pytest
from omc.compiler.diagnostics import Collector, render_text
from omc.compiler.parse import SYNTAX_EXAMPLES, parse

CASES = [(label, example) for label, examples in SYNTAX_EXAMPLES.items() for example in examples]


def syntax_errors(text: str) -> list[str]:
    diags = Collector(file="bad.conf")
    parse(text, filename="bad.conf", diags=diags)
    return [d.message for d in diags.items if d.code == "syntax"]


@pytest.mark.parametrize(("label", "example"), CASES)
def test_each_example_gets_its_message(label: str, example: str) -> None:
    """Every example bad input is reported with the message of its row."""
    assert syntax_errors(example) == [f"syntax error: {label}"]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("[DEFAULT]\nnodes = n1\n[app#1]\nscript = x\nbroken line\n", "missing '=' or ':'"),
        ("[DEFAULT]\nid = 1\n; c\n[oops\n", "unterminated section header"),
        ("[a]\nk = 1\n  cont\n[b] trailing\n", "unexpected text after the section"),
    ],
)
def test_messages_hold_in_other_contexts(text: str, label: str) -> None:
    """The message does not depend on what came before the bad line."""
    (message,) = syntax_errors(text)
    assert label in message


def test_every_bad_line_is_reported_and_the_rest_is_parsed() -> None:
    """One run reports all syntax errors; good sections still come through."""
    diags = Collector(file="bad.conf")
    text = "[DEFAULT]\nnodes n1\n[ip#0]\nipname = 1.2.3.4\n[fs#1\ntype = flag\n= x\n"
    doc = parse(text, filename="bad.conf", diags=diags)
    lines = [d.span.line for d in diags.items if d.span and d.code == "syntax"]
    assert lines == [2, 5, 7]
    assert doc.section("ip#0") is not None


def test_syntax_error_rendering_has_location_line_caret_and_hint() -> None:
    """The text form shows file:line:col, the source line, a caret and a hint."""
    diags = Collector(file="svc.conf")
    text = "[DEFAULT]\nnodes n1 n2\n"
    parse(text, filename="svc.conf", diags=diags)
    assert render_text(diags.freeze(), text) == (
        "svc.conf:2:1: error: syntax error: missing '=' or ':' after the keyword name\n"
        "   2 | nodes n1 n2\n"
        "     | ^~~~~~~~~~~\n"
        "hint: write 'keyword = value'\n"
    )


@pytest.mark.parametrize(
    "value",
    ["abcdefghij" * 30, "'a' " * 60, "x  " * 100],
)
def test_a_long_value_broken_at_its_end_is_reported(value: str) -> None:
    """A stray carriage return after a long value is one syntax error at its column
    (the section token's regex gives up at once, it does not try every split)."""
    text = f"[a]\nk = {value}\rx\n"
    diags = Collector(file="bad.conf")
    parse(text, filename="bad.conf", diags=diags)
    errors = [d for d in diags.items if d.code == "syntax"]
    assert [(d.span.line if d.span else 0) for d in errors] == [2]
