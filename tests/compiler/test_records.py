"""Records: the shared eq/hash/repr and direct_init's __init__ behave as dataclass's own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from omc.compiler.diagnostics import Span
from omc.compiler.records import Record, direct_init


def test_direct_init_keeps_signature_defaults_and_immutability() -> None:
    """Keyword-only, required fields required, defaults applied, instance still frozen."""
    span = Span(file="f", line=1, column=2)
    assert (span.end_line, span.end_column) == (None, None)
    assert span == Span(file="f", line=1, column=2, end_line=None, end_column=None)
    assert repr(span) == "Span(file='f', line=1, column=2, end_line=None, end_column=None)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.line = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="column"):
        Span(file="f", line=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Span("f", 1, 2)  # type: ignore[call-arg]


def test_direct_init_refuses_a_default_factory() -> None:
    """A field built per instance is not what the generated __init__ supports."""
    with pytest.raises(TypeError, match="default_factory"):

        @direct_init
        @dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
        class Bad(Record):
            items: list[int] = field(default_factory=list)
