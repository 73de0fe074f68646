"""The checked-in stand-alone parser is what ``python -m omc.compiler.regen_parser`` writes."""

from __future__ import annotations

import ast
import subprocess
import sys

import lark
from omc.compiler import regen_parser


def _tables(text: str) -> tuple[object, object]:
    """The DATA and MEMO literals of a generated module."""
    lines = text.split("\n")
    return (
        ast.literal_eval(lines[lines.index("DATA = (") + 1]),
        ast.literal_eval(lines[lines.index("MEMO = (") + 1]),
    )


def test_checked_in_parser_is_built_from_the_current_grammar() -> None:
    """The module's grammar digest is the grammar file's (edit the grammar, then regenerate)."""
    digest = regen_parser.grammar_digest(regen_parser.grammar_text())
    assert f"# grammar sha256: {digest}\n" in regen_parser.TARGET.read_text()


def test_regenerating_gives_the_checked_in_parser() -> None:
    """Regeneration is reproducible and matches the checked-in copy (tables at least,
    the whole text when the installed lark is the version that wrote it)."""
    fresh, current = regen_parser.generate(), regen_parser.TARGET.read_text()
    assert regen_parser.generate() == fresh
    assert _tables(fresh) == _tables(current)
    if f'__version__ = "{lark.__version__}"\n' in current:
        assert fresh == current


def test_check_mode_reports_the_checked_in_parser_current() -> None:
    """`python -m omc.compiler.regen_parser --check` exits 0 on the committed tree."""
    assert regen_parser.main(["--check"]) == 0


def test_canonical_table_renumbers_states_from_the_start() -> None:
    """Tokens are numbered by name, states breadth-first from the start state."""
    table = {
        "tokens": {0: "b", 1: "a", 2: "start"},
        "states": {5: {0: (0, 9), 1: (0, 7)}, 7: {0: (1, {"@": 1})}, 9: {}},
        "start_states": {"start": 5},
        "end_states": {"start": 9},
    }
    assert regen_parser.canonical_table(table) == {
        "tokens": {0: "a", 1: "b", 2: "start"},
        "states": {0: {0: (0, 1), 1: (0, 2)}, 1: {1: (1, {"@": 1})}, 2: {}},
        "start_states": {"start": 0},
        "end_states": {"start": 2},
    }


def test_parsing_does_not_import_lark() -> None:
    """At run time the generated module parses: lark is a build-time tool only."""
    code = (
        "import sys\n"
        "from omc.compiler.diagnostics import Collector\n"
        "from omc.compiler.parse import parse\n"
        "diags = Collector(file='t.conf')\n"
        "doc = parse('[DEFAULT]\\nnodes\\n[s]\\nk = v\\n', filename='t.conf', diags=diags)\n"
        "assert doc.section_names() == ('DEFAULT', 's'), doc\n"
        "assert [d.code for d in diags.items] == ['syntax'], diags.items\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'interegular')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"
