"""The INI dialect as om3 reads it: sections, entries, scopes, comments, continuations."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omc.compiler import parse as parse_module
from omc.compiler.diagnostics import Collector, Severity
from omc.compiler.parse import START, TOKEN_START, Document, parse


def parse_ok(text: str) -> tuple[Document, Collector]:
    diags = Collector(file="t.conf")
    doc = parse(text, filename="t.conf", diags=diags)
    assert not diags.has_errors, diags.items
    return doc, diags


def value_of(text: str, section: str = "s", key: str = "k") -> str:
    doc, _ = parse_ok(text)
    found = doc.section(section)
    assert found is not None
    return [e.value for e in found.entries if e.key == key][-1]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k = v", "v"),
        ("k=v", "v"),
        ("k: v", "v"),
        ("k :v", "v"),
        ("k =   spaced   value   ", "spaced   value"),
        ("k =", ""),
        ("k = x;y", "x;y"),
        ("k = x#y", "x#y"),
        ("k = x ;comment", "x"),
        ("k = x #comment", "x"),
        ("k = ;only a comment", ""),
        ("k = a = b", "a = b"),
        ("k = a: b", "a: b"),
        ("k = sh -c 'a ; b'", "sh -c 'a ; b'"),
        ('k = sh -c "a # b" ;c', 'sh -c "a # b"'),
        ("k = {env.x} {name}", "{env.x} {name}"),
        ('k = "quoted value"', "quoted value"),
        ("k = 'single quoted'", "single quoted"),
        ('k = "a" "b"', '"a" "b"'),
        ("k = sh -c 'x'", "sh -c 'x'"),
        ('k = "', '"'),
    ],
)
def test_value_forms(line: str, expected: str) -> None:
    """Delimiters, blanks, om3 inline comments and go-ini surrounding quotes."""
    assert value_of(f"[s]\n{line}\n") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[s]\nk = a\n  b\n  c\n", "a\nb\nc"),
        ("[s]\nk = a\n\tb\n", "a\nb"),
        ("[s]\nk =\n  a\n  b\n", "\na\nb"),
        ("[s]\nk = a ;c1\n  b ;c2\n", "a\nb"),
        ("[s]\nk = a\n  # not a continuation\n", "a"),
        ("[s]\nk = a\n\n  b = 1\n", "a"),
    ],
)
def test_continuation_lines(text: str, expected: str) -> None:
    """Indented lines right after a value continue it, joined with a newline."""
    assert value_of(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff[s]\nk = v\n",
        "[s]\r\nk = v\r\n",
        "[s]\nk = v",
        "# head comment\n; other\n[s]\n# c\nk = v\n\n\n",
        "   \n[s]\n  k = v\n",
    ],
)
def test_file_forms(text: str) -> None:
    """BOM, CRLF, a missing final newline, comments and blank lines all parse."""
    assert value_of(text) == "v"


@pytest.mark.parametrize(
    ("raw", "key", "scope"),
    [
        ("nodes", "nodes", None),
        ("nodes@n1", "nodes", "n1"),
        ("ipname@nodes", "ipname", "nodes"),
        ("disable@drpnodes", "disable", "drpnodes"),
        ("dev@node1.example.com", "dev", "node1.example.com"),
        ("x@encapnodes", "x", "encapnodes"),
    ],
)
def test_scoped_keys(raw: str, key: str, scope: str | None) -> None:
    """``key@scope`` splits into the keyword and its scope."""
    doc, _ = parse_ok(f"[s]\n{raw} = v\n")
    entry = doc.sections[0].entries[0]
    assert (entry.key, entry.scope, entry.raw_key) == (key, scope, raw)


def test_spans_point_at_key_and_value() -> None:
    """Keys and values carry 1-based line and column spans."""
    doc, _ = parse_ok("[ip#0]\n  ipname = 10.0.0.1\n")
    entry = doc.sections[0].entries[0]
    assert (entry.span.line, entry.span.column, entry.span.end_column) == (2, 3, 9)
    assert (entry.value_span.line, entry.value_span.column) == (2, 12)


def test_duplicate_keys_last_wins_with_a_warning_at_the_overridden_one() -> None:
    """The later definition is kept; the warning points at the earlier line."""
    doc, diags = parse_ok("[s]\nk = 1\nk = 2\n")
    assert value_of("[s]\nk = 1\nk = 2\n") == "2"
    (warning,) = [d for d in diags.items if d.code == "duplicate-keyword"]
    assert warning.span is not None and warning.span.line == 2
    assert warning.related[0][0].line == 3
    assert len(doc.sections[0].entries) == 2


def test_duplicate_sections_are_merged_with_a_warning() -> None:
    """Keywords of a repeated section join the first one, in file order."""
    doc, diags = parse_ok("[s]\na = 1\n[t]\nb = 2\n[s]\nc = 3\n")
    assert doc.section_names() == ("s", "t")
    section = doc.section("s")
    assert section is not None and [e.key for e in section.entries] == ["a", "c"]
    assert [d.code for d in diags.items] == ["duplicate-section"]


def test_lowercase_default_is_read_as_default_with_a_note() -> None:
    """``[default]`` (v1 docs) becomes ``[DEFAULT]``."""
    doc, diags = parse_ok("[default]\nnodes = n1\n")
    assert doc.section_names() == ("DEFAULT",)
    assert [(d.severity, d.code) for d in diags.items] == [(Severity.NOTE, "lowercase-default")]


def test_keys_before_any_section_go_to_default_with_a_warning() -> None:
    """go-ini files leading keys into DEFAULT; so do we, and say so."""
    doc, diags = parse_ok("nodes = n1\n[s]\nk = v\n")
    assert doc.section_names() == ("DEFAULT", "s")
    assert [d.code for d in diags.items] == ["no-section"]


def test_empty_text_gives_an_empty_document() -> None:
    """Nothing to parse is not an error."""
    doc, diags = parse_ok("")
    assert doc.sections == () and diags.items == []


def test_grammar_has_no_conflicts_or_terminal_collisions() -> None:
    """The grammar builds as LALR in lark's strict mode (needs lark[interegular])."""
    pytest.importorskip("interegular", reason="dependency request: lark[interegular]")
    from importlib import resources

    from lark import Lark

    grammar = resources.files("omc.grammar").joinpath("opensvc.lark").read_text()
    Lark(grammar, parser="lalr", lexer="contextual", start=[START, TOKEN_START], strict=True)


# Line shapes, good and bad, that the two start rules must read alike.
LINES = ["[s]", "[s] ;c", "[s] x", "[s]]", "[s", "k = v", "k=v", "k@n1 = v", "k:v", "k =",
         "k = ;c", "k = 'a ; b' ;c", "k = a#b", "k = a\rb", "= v", "nodes", "# c", "; c", "",
         "  ", "  cont", "\tcont x ; y", "  # c", "k = v\r", "k\r = v", "k = [x",
         "k = \"q\""]  # fmt: skip


def _accepts(start: str, text: str) -> bool:
    try:
        parse_module._parser().parse(text, start=start)
    except Exception:  # lark's UnexpectedInput, from the generated module
        return False
    return True


Position = tuple[int, int, int, int, int]


def _value_positions(doc: Document) -> list[Position]:
    """(key line, key column, value line, value column, value end) of the entries with
    a value on their key's line."""
    return sorted(
        (e.span.line, e.span.column, v.line, v.column, v.end_column or 0)
        for s in doc.sections
        for e in s.entries
        if (v := e.value_span).line == e.span.line and v.end_column != v.column
    )


def _token_level_positions(text: str) -> list[Position]:
    """The same, from the KEY and VALUE tokens of the token-by-token parse."""
    tree = parse_module._parser().parse(text, start=TOKEN_START)
    found = []
    for entry in tree.find_data("entry"):
        key, *rest = entry.children
        if rest and getattr(rest[0], "type", None) == "VALUE":
            value = rest[0]
            found.append((key.line, key.column, value.line, value.column, value.end_column))
    return sorted(found)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "  "]), st.sampled_from(LINES)), max_size=8))
def test_line_and_token_start_rules_read_alike(lines: list[tuple[str, str]]) -> None:
    """`document` (a token per line) and `document_tokens` accept the same texts, and the
    fields split from an entry's line token sit where the token-by-token parse has them."""
    text = "".join(f"{indent}{line}\n" for indent, line in lines)
    accepted = _accepts(START, text)
    assert accepted == _accepts(TOKEN_START, text)
    if accepted:
        doc = parse(text, filename="t.conf", diags=Collector(file="t.conf"))
        assert _value_positions(doc) == _token_level_positions(text)


def test_cache_dir_is_refused_when_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler's cache (jinja2 bytecode) is only used in a private directory of the user."""
    from omc.compiler.cachedir import private_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert private_cache_dir() == tmp_path / "omc"
    (tmp_path / "omc").chmod(0o777)
    assert private_cache_dir() is None
