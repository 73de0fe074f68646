"""Text → :class:`Document`: sections and ``key[@scope] = value`` entries with spans.

The only user of the parser generated from ``grammar/opensvc.lark`` by lark
(``_lark_parser.py``, see :mod:`.regen_parser`). This module builds plain
structure from the tree and attaches meaning to nothing:
keyword knowledge lives in ``keywords.py`` and ``lower.py``.

Syntax errors never stop the parse. Each one becomes a diagnostic whose
message comes from :data:`SYNTAX_EXAMPLES` (lark's ``match_examples``), then
the offending line is blanked out and parsing resumes, so one run reports
every broken line and the rest of the file still compiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .diagnostics import Collector, Severity, Span
from .records import Record, direct_init

if TYPE_CHECKING:
    from ._lark_parser import Lark, Token, Tree, UnexpectedInput

DEFAULT = "DEFAULT"
SCOPE_SEPARATOR = "@"
_QUOTES = "'\""  # unquote() only changes a value starting with one
MAX_SYNTAX_ERRORS = 50


@direct_init
@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Entry(Record):
    """One ``key[@scope] = value`` line (plus its continuation lines)."""

    key: str  # without the scope
    scope: str | None  # "nodes", "n1", ... or None
    value: str  # continuation lines joined with "\n"; inline comments removed
    value_span: Span  # the first line of the value (an empty value: just after the delimiter)
    key_at: tuple[int, int, int]  # the key's line, column and end column (see span)

    @property
    def raw_key(self) -> str:
        return self.key if self.scope is None else f"{self.key}@{self.scope}"

    @property
    def span(self) -> Span:
        """The key as written, scope included. Built when asked (diagnostics ask):
        a record costs as much as the rest of the entry's parse."""
        line, column, end_column = self.key_at
        file = self.value_span.file
        return Span(file=file, line=line, column=column, end_line=line, end_column=end_column)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Section(Record):
    """A section, duplicates merged in file order (later entries win when evaluated)."""

    name: str
    span: Span  # the first header with this name
    entries: tuple[Entry, ...] = ()

    def keys(self) -> frozenset[str]:
        """Keyword names present, scopes removed."""
        return frozenset(e.key for e in self.entries)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Document(Record):
    """A parsed file: sections in first-appearance order."""

    file: str
    sections: tuple[Section, ...] = ()

    def section(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def section_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections)

    def default_keys(self) -> frozenset[str]:
        section = self.section(DEFAULT)
        return section.keys() if section else frozenset()


# Example bad inputs → friendly message. The same table is a parametrized test
# (tests/compiler/test_parse_errors.py): each label must be reachable.
_CONTEXTS = ("", "[DEFAULT]\n", "[DEFAULT]\na = 1\n", "# comment\n", "[DEFAULT]\na = 1\n  b\n")

SYNTAX_EXAMPLES: dict[str, list[str]] = {
    "missing '=' or ':' after the keyword name": [
        *(c + "nodes\n" for c in _CONTEXTS),
        *(c + "nodes n1 n2\n" for c in _CONTEXTS),
    ],
    "unterminated section header, expected ']'": [
        *(c + "[DEFAULT\n" for c in _CONTEXTS),
        *(c + "[ip#0\nipname = 1.2.3.4\n" for c in _CONTEXTS),
    ],
    "unexpected text after the section header": [
        "[DEFAULT] nodes = n1\n",
        "[ip#0]]\n",
    ],
    "a keyword name cannot start with '=' or ':'": [
        *(c + "= n1\n" for c in _CONTEXTS),
        *(c + ": n1\n" for c in _CONTEXTS),
    ],
}

_HINTS = {
    "missing '=' or ':' after the keyword name": "write 'keyword = value'",
    "unterminated section header, expected ']'": "write '[section]' on a line of its own",
    "unexpected text after the section header": "put keywords on the lines after '[section]'",
    "a keyword name cannot start with '=' or ':'": "write 'keyword = value'",
}


START = "document"  # one token per line (grammar/opensvc.lark)
TOKEN_START = "document_tokens"  # the same language token by token, read after an error


@cache
def _parser() -> Lark:
    """The LALR parser, built once per process from the checked-in tables.

    ``_lark_parser`` is lark's stand-alone parser of ``grammar/opensvc.lark``
    (``python -m omc.compiler.regen_parser`` rewrites it): loading it costs
    ~10 ms where importing lark and its analysed grammar cost ~60 ms.
    """
    from ._lark_parser import Lark_StandAlone

    return Lark_StandAlone()


def prepare(text: str) -> str:
    """BOM removed, a final newline guaranteed (positions are unchanged)."""
    text = text.removeprefix("\ufeff")
    if not text.endswith("\n"):
        text += "\n"
    return text


def parse(text: str, *, filename: str, diags: Collector) -> Document:
    """Parse ``text``; syntax errors are reported in ``diags`` and their lines skipped."""
    source = prepare(text)
    tree = _parse_recovering(source, filename=filename, diags=diags)
    return (
        _build(tree, filename=filename, diags=diags)
        if tree is not None
        else Document(file=filename)
    )


def _parse_recovering(source: str, *, filename: str, diags: Collector) -> Tree[Token] | None:
    from ._lark_parser import UnexpectedInput

    parser = _parser()
    lines: list[str] | None = None
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            tree: Tree[Token] = parser.parse(source, start=START)  # lark's ParseTree
        except UnexpectedInput as exc:
            lines = source.split("\n") if lines is None else lines
            line = _report(_token_level(exc, source), lines, filename=filename, diags=diags)
            lines[line - 1] = _blank(lines[line - 1])
            source = "\n".join(lines)
        else:
            return tree
    diags.error(None, f"too many syntax errors (more than {MAX_SYNTAX_ERRORS})", code="syntax")
    return None


def _token_level(exc: UnexpectedInput, source: str) -> UnexpectedInput:
    """The error of the token-by-token parse of the same text (same language).

    The line-level parse knows only that a line matched no line shape; token by
    token, the parser state and column say where the line stopped making sense,
    which is what :data:`SYNTAX_EXAMPLES` tells apart.
    """
    from ._lark_parser import UnexpectedInput

    try:
        _parse_tokens(source)
    except UnexpectedInput as token_exc:
        return token_exc
    return exc  # not reached while both start rules describe one language


def _parse_tokens(text: str) -> Tree[Token]:
    """The token-by-token parse: the one :data:`SYNTAX_EXAMPLES` is matched against."""
    tree: Tree[Token] = _parser().parse(text, start=TOKEN_START)
    return tree


def _blank(line: str) -> str:
    """Turn a line into a comment of the same length so later columns do not move."""
    return ";" + " " * max(len(line.rstrip("\r")) - 1, 0) + ("\r" if line.endswith("\r") else "")


def _report(exc: UnexpectedInput, lines: list[str], *, filename: str, diags: Collector) -> int:
    """Add the diagnostic for one syntax error; return its 1-based line."""
    line = max(int(getattr(exc, "line", 1) or 1), 1)
    column = max(int(getattr(exc, "column", 1) or 1), 1)
    line = min(line, len(lines))
    text = lines[line - 1].rstrip("\r")
    label = exc.match_examples(_parse_tokens, SYNTAX_EXAMPLES, use_accepts=True)
    label = label or _fallback_label(text)
    message = label or _generic_message(exc)
    span = Span(file=filename, line=line, column=column, end_line=line, end_column=len(text) + 1)
    diags.error(span, f"syntax error: {message}", code="syntax", hint=_HINTS.get(label or ""))
    return line


def _fallback_label(text: str) -> str | None:
    """Classify a bad line by its shape when no example matched the parser state."""
    stripped = text.strip()
    if stripped.startswith("["):
        if "]" not in stripped:
            return "unterminated section header, expected ']'"
        return "unexpected text after the section header"
    if stripped[:1] in ("=", ":"):
        return "a keyword name cannot start with '=' or ':'"
    if "=" not in stripped and ":" not in stripped:
        return "missing '=' or ':' after the keyword name"
    return None


def _generic_message(exc: UnexpectedInput) -> str:
    char = getattr(exc, "char", None)
    if char is not None:
        return f"unexpected character {char!r}"
    token = getattr(exc, "token", None)
    return f"unexpected {str(token)!r}" if token is not None else "invalid line"


# --- tree → Document -------------------------------------------------------------


@cache
def _line_pattern() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Regexes reading the lines of a PREAMBLE or BLOCK token, made of the terminals
    the grammar builds those tokens from (the grammar's first comment).

    A line: a header (group ``section``), an entry (``key``, its first line's
    ``value``, its continuation lines ``more``) or a comment; then its line end.
    The second regex reads one continuation line of ``more``. Matched in a token
    the parser accepted, they find the very fields the token-by-token parse gives.
    """
    parser = _parser()
    section, key, value, comment, cont, full_comment, nl = (
        parser.get_terminal(name).pattern.to_regexp()
        for name in ("SECTION", "KEY", "VALUE", "_INLINE_COMMENT", "_CONT", "_COMMENT", "_NL")
    )
    line = (
        f"(?:(?P<section>{section})(?:{comment})?"
        f"|(?P<key>{key})(?P<value>{value})?(?:{comment})?"
        f"(?P<more>(?:{cont}{value}(?:{comment})?)*)"
        f"|{full_comment}){nl}"
    )
    return re.compile(line), re.compile(f"{cont}({value})(?:{comment})?")


def _build(tree: Any, *, filename: str, diags: Collector) -> Document:
    """Group entries under their headers, merge duplicate sections, flag overrides."""
    order: list[str] = []
    headers: dict[str, Span] = {}
    entries: dict[str, list[Entry]] = {}
    current: str | None = None
    lines, continuation = _line_pattern()
    for token in tree.children:  # a PREAMBLE, then BLOCKs
        line, counted = token.line, 0
        for found in lines.finditer(token):
            at = found.start()
            line += token.count("\n", counted, at)
            counted = at
            # column = offset + position in the token
            offset = token.column if at == 0 else -token.rfind("\n", 0, at)
            header, key = found.group("section", "key")
            if header is not None:
                span = _line_span(filename, line, offset + at, header)
                current = _header(span, header, diags=diags, headers=headers)
                if current not in entries:
                    order.append(current)
                    entries[current] = []
            elif key is not None:
                entry = _entry(found, token, line, offset, continuation, filename=filename)
                if current is None:
                    current = _implicit_default(entry, diags=diags, headers=headers)
                    order.append(current)
                    entries[current] = []
                entries[current].append(entry)
    for name in order:
        _flag_duplicate_keys(name, entries[name], diags=diags)
    sections = tuple(Section(name=n, span=headers[n], entries=tuple(entries[n])) for n in order)
    return Document(file=filename, sections=sections)


def _header(span: Span, text: str, *, diags: Collector, headers: dict[str, Span]) -> str:
    """The section name of a ``[name]`` header (``span``: where it is written)."""
    name = text[1:-1].strip()
    if name == "default":
        diags.note(span, "[default] is read as [DEFAULT]", code="lowercase-default")
        name = DEFAULT
    previous = headers.get(name)
    if previous is not None:
        diags.add(
            Severity.WARNING,
            span,
            f"duplicate section [{name}]: its keywords are merged with the earlier one",
            code="duplicate-section",
            related=((previous, "first defined here"),),
        )
    headers.setdefault(name, span)
    return name


def _implicit_default(entry: Entry, *, diags: Collector, headers: dict[str, Span]) -> str:
    """go-ini files keys found before any header into DEFAULT; so do we, with a warning."""
    diags.warning(
        entry.span,
        "keyword before any section header is read as part of [DEFAULT]",
        code="no-section",
        hint="add a '[DEFAULT]' line at the top of the file",
    )
    headers.setdefault(DEFAULT, entry.span)
    return DEFAULT


def _entry(
    found: re.Match[str],
    tok: str,
    line: int,
    offset: int,
    continuation: re.Pattern[str],
    *,
    filename: str,
) -> Entry:
    """An entry line (see :func:`_line_pattern`) as an :class:`Entry`; its columns are
    ``offset`` + its positions in ``tok``."""
    # KEY holds the key, its delimiter (the only "=" or ":") and the blanks after it.
    key_text, first, more = found.group("key", "value", "more")
    raw_key = key_text.rstrip(" \t")[:-1].rstrip(" \t")
    key, sep, scope = raw_key.partition(SCOPE_SEPARATOR)
    column = offset + found.start()
    end_column = column + len(raw_key)
    if more:
        value, value_span = _continued(found, tok, line, offset, continuation, filename=filename)
    elif first is not None:  # the common case
        value = unquote(first) if first[0] in _QUOTES else first
        value_span = _line_span(filename, line, offset + found.start("value"), first)
    else:  # an empty value: its span is just after the key
        value, value_span = "", _line_span(filename, line, end_column + 1, "")
    return Entry(
        key=key.strip(),
        scope=scope.strip() if sep else None,
        value=value,
        value_span=value_span,
        key_at=(line, column, end_column),
    )


def _line_span(filename: str, line: int, column: int, text: str) -> Span:
    """The span of ``text`` on one line from ``column``."""
    end = column + len(text)
    return Span(file=filename, line=line, column=column, end_line=line, end_column=end)


def _continued(
    found: re.Match[str],
    tok: str,
    line: int,
    offset: int,
    continuation: re.Pattern[str],
    *,
    filename: str,
) -> tuple[str, Span]:
    """A value with continuation lines, joined with "\n"; the span of its first line
    (of the first continuation line when the key's line holds no value)."""
    values, span = [""], None
    first = found["value"]
    if first is not None:
        values = [unquote(first)]
        span = _line_span(filename, line, offset + found.start("value"), first)
    more = continuation.match(tok, found.start("more"))
    while more is not None:
        if span is None:
            at = more.start(1)
            here = line + tok.count("\n", found.start(), at)
            span = _line_span(filename, here, at - tok.rfind("\n", 0, at), more[1])
        values.append(more[1].rstrip())
        more = continuation.match(tok, more.end(), found.end("more"))
    assert span is not None  # "more" holds one continuation line at least
    return "\n".join(values), span


def unquote(value: str) -> str:
    """go-ini drops quotes that surround a whole value (and appear nowhere inside).

    ``comment = "a b"`` reads ``a b``; ``cmd = "a" "b"`` and ``cmd = sh -c 'x'``
    are kept as written.
    """
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] not in inner:
            return inner
    return value


def _flag_duplicate_keys(section: str, entries: list[Entry], *, diags: Collector) -> None:
    seen: dict[str, Entry] = {}
    for entry in entries:
        raw_key = entry.raw_key
        earlier = seen.get(raw_key)
        if earlier is not None:
            diags.add(
                Severity.WARNING,
                earlier.span,
                f"'{raw_key}' in [{section}] is overridden by a later definition",
                code="duplicate-keyword",
                related=((entry.span, "the value used is defined here"),),
            )
        seen[raw_key] = entry
