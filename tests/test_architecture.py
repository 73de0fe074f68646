"""Architecture rules run as tests, each shown able to fail on a planted violation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.architecture import RULES, Rule, imports, violations

ROOT = Path(__file__).resolve().parent.parent
# The modules that turn outcomes into process exit statuses (the library raises).
ENTRY_MODULES = (
    "compiler/cli.py",
    "compiler/generator.py",
    "runtime/cli.py",
    "runtime/objcli.py",
    "runtime/drivers/entry.py",
    "runtime/executor/server.py",
    # not runtime/executor/client.py: it relays the worker's status and imports C modules
    # only (enum costs a cold `om` 8 ms); its one status of its own is ERROR, spelled 1.
    "runtime/lab/cli.py",
    "runtime/exec.py",
)
_EXIT_CALLS = frozenset({"exit", "_exit"})


def test_the_tree_breaks_no_architecture_rule() -> None:
    """Layering, purity and one-chokepoint-per-library rules hold on the whole tree."""
    assert violations(ROOT) == []


def _plant(root: Path, rule: Rule) -> str:
    """Write one file that breaks ``rule`` under a fresh tree; its relative path."""
    source = rule.sources[0]
    rel = source if source.endswith(".py") else f"{source}planted.py"
    if rule.exempt and rel in rule.exempt:
        rel = "runtime/planted.py"
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"def f() -> None:\n    import {rule.forbidden[0]}.planted  # lazy\n")
    return rel


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_fails_on_a_planted_violation(rule: Rule, tmp_path: Path) -> None:
    """A file importing what a rule forbids (inside a function) is reported by that rule."""
    rel = _plant(tmp_path, rule)
    found = violations(tmp_path, [rule])
    assert [v.split(":")[0] for v in found] == [rel]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    """`from ..runtime import engine` in the compiler is an import of omc.runtime.engine."""
    (tmp_path / "compiler").mkdir()
    (tmp_path / "compiler" / "sneaky.py").write_text("from ..runtime import engine\n")
    assert violations(tmp_path) == [
        "compiler/sneaky.py:1: omc.runtime.engine: the compiler never imports the runtime",
        "compiler/sneaky.py:1: omc.runtime: the compiler never imports the runtime",
    ]


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("runtime/engine/apply.py", "from ..objects import model", "omc.runtime.objects.model"),
        ("runtime/engine/__init__.py", "from .plan import Op", "omc.runtime.engine.plan.Op"),
        ("compiler/contract/names.py", "from ..unitsyntax import x", "omc.compiler.unitsyntax"),
        ("runtime/cli.py", "from omc.runtime import lab", "omc.runtime.lab"),
    ],
)
def test_import_names(rel: str, source: str, expected: str) -> None:
    """Relative, package-relative and `from pkg import module` forms resolve to full names."""
    assert expected in {m for _, m in imports(rel, source)}


def _literal_exits(rel: str, source: str) -> list[str]:
    """Exit statuses written as bare integers in an entry module (they belong in an enum)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.returns is not None:
            annotation = ast.unparse(node.returns)
            if "int" not in annotation and "ExitStatus" not in annotation:
                continue
            for inner in ast.walk(node):
                value = inner.value if isinstance(inner, ast.Return) else None
                if isinstance(value, ast.UnaryOp):
                    value = value.operand
                if isinstance(value, ast.Constant) and type(value.value) is int:
                    found.append(f"{rel}:{inner.lineno}: return {value.value}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _EXIT_CALLS | {"SystemExit"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and type(arg.value) is int:
                    found.append(f"{rel}:{node.lineno}: {name}({arg.value})")
    return found


def test_exit_statuses_come_from_the_enums() -> None:
    """Entry points return and exit with ExitStatus members, never bare integers."""
    found = []
    for rel in ENTRY_MODULES:
        found += _literal_exits(rel, (ROOT / rel).read_text())
    assert found == []


def test_a_bare_exit_status_is_caught() -> None:
    """The exit-status rule fails on a planted `return 1` and `sys.exit(2)`."""
    source = "import sys\ndef main() -> int:\n    sys.exit(2)\n    return 1\n"
    assert _literal_exits("x.py", source) == ["x.py:4: return 1", "x.py:3: exit(2)"]
