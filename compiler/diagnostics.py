"""Diagnostics: what went wrong, where, and what to do about it.

Every stage of the front end *collects* :class:`Diagnostic` values instead of
raising on the first problem, so one run reports everything wrong in a file.
Rendering is separate: :func:`render_text` for terminals (the gcc/rustc
layout: location, source line, caret, hint) and :func:`to_json` for editors
and CI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .records import Record, direct_init


class Severity(StrEnum):
    """How bad: errors reject the file, warnings and notes do not."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@direct_init
@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Span(Record):
    """A source range; lines and columns are 1-based, the end column exclusive."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Diagnostic(Record):
    """One finding. ``code`` is a stable kebab-case id (``unknown-keyword``) for tooling."""

    severity: Severity
    span: Span | None
    message: str
    hint: str | None = None
    code: str = "error"
    related: tuple[tuple[Span, str], ...] = ()  # secondary locations ("overridden here")
    file: str | None = None  # a finding about the whole file (no span): which file

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self, fallback: str = "<input>") -> str:
        """``file:line:col``, or just the file name when there is no span."""
        return str(self.span) if self.span else self.file or fallback


@dataclass(slots=True)
class Collector:
    """A mutable bag the stages append to; frozen into a tuple at the end."""

    file: str
    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        span: Span | None,
        message: str,
        *,
        code: str,
        hint: str | None = None,
        related: tuple[tuple[Span, str], ...] = (),
    ) -> None:
        file = None if span else self.file
        diag = Diagnostic(severity=severity, span=span, message=message, hint=hint, code=code,
                          related=related, file=file)  # fmt: skip
        self.items.append(diag)

    def error(self, span: Span | None, message: str, *, code: str, hint: str | None = None) -> None:
        self.add(Severity.ERROR, span, message, code=code, hint=hint)

    def warning(
        self, span: Span | None, message: str, *, code: str, hint: str | None = None
    ) -> None:
        self.add(Severity.WARNING, span, message, code=code, hint=hint)

    def note(self, span: Span | None, message: str, *, code: str, hint: str | None = None) -> None:
        self.add(Severity.NOTE, span, message, code=code, hint=hint)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def freeze(self) -> tuple[Diagnostic, ...]:
        """Diagnostics sorted by position (span-less ones first), stable otherwise."""
        return tuple(sorted(self.items, key=_sort_key))


def _sort_key(diag: Diagnostic) -> tuple[int, int]:
    return (diag.span.line, diag.span.column) if diag.span else (0, 0)


def _snippet(span: Span, lines: Sequence[str]) -> list[str]:
    """The source line under a span with a ``^~~~`` marker, gutter-aligned."""
    if not 1 <= span.line <= len(lines):
        return []
    text = lines[span.line - 1].expandtabs(1)
    gutter = str(span.line)
    pad = " " * len(gutter)
    start = max(span.column - 1, 0)
    if span.end_line in (None, span.line) and span.end_column and span.end_column > span.column:
        width = span.end_column - span.column
    else:
        width = max(len(text.rstrip()) - start, 1)
    marker = " " * start + "^" + "~" * max(width - 1, 0)
    return [f"{gutter:>4} | {text}", f"{pad:>4} | {marker}"]


def render_text(diags: Iterable[Diagnostic], source_text: str | None = None) -> str:
    """gcc-style text: ``file:line:col: severity: message``, the line, a caret, a hint."""
    lines = _source_lines(source_text)
    out: list[str] = []
    for diag in diags:
        where = diag.location()
        out.append(f"{where}: {diag.severity}: {diag.message}")
        if diag.span is not None:
            out.extend(_snippet(diag.span, lines))
        for span, note in diag.related:
            out.append(f"{span}: note: {note}")
            out.extend(_snippet(span, lines))
        if diag.hint:
            out.append(f"hint: {diag.hint}")
    return "\n".join(out) + ("\n" if out else "")


def _source_lines(source_text: str | None) -> list[str]:
    if not source_text:
        return []
    return source_text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _span_dict(span: Span | None) -> dict[str, object] | None:
    if span is None:
        return None
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def to_json(diags: Iterable[Diagnostic]) -> list[dict[str, object]]:
    """JSON-ready dicts (``json.dumps`` them as is)."""
    return [
        {
            "severity": str(d.severity),
            "code": d.code,
            "message": d.message,
            "hint": d.hint,
            "span": _span_dict(d.span),
            "related": [{"span": _span_dict(s), "message": m} for s, m in d.related],
        }
        for d in diags
    ]


def count(diags: Iterable[Diagnostic]) -> dict[Severity, int]:
    """Number of diagnostics per severity (every severity present as a key)."""
    totals = dict.fromkeys(Severity, 0)
    for diag in diags:
        totals[diag.severity] += 1
    return totals
