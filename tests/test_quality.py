"""Linters, type checks and architecture rules, run as tests (mkosi's practice)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("grammar", "compiler", "runtime", "unit_templates")
PY_TREES = (*PACKAGES, "tests", "bench")

# The one module allowed to import each external library (one chokepoint per system).
CHOKEPOINTS = {
    "pydbus": "runtime/systemd.py",
    "gi": "runtime/systemd.py",
    "pyroute2": "runtime/netlink.py",
    "etcd3gw": "runtime/etcd.py",
    # Only the build-time generator imports lark; at run time parse.py uses the
    # stand-alone parser it writes (compiler/_lark_parser.py, no lark import).
    "lark": "compiler/regen_parser.py",
    "jinja2": "compiler/emit.py",
}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def _sources(*trees: str) -> list[Path]:
    return sorted(p for t in trees for p in (ROOT / t).rglob("*.py") if p.is_file())


def _imports(path: Path) -> set[str]:
    """Top-level module names imported by a file, including `from x import y`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ruff_format() -> None:
    """Every Python file is formatted as `ruff format` would write it."""
    proc = _run(sys.executable, "-m", "ruff", "format", "--check", *PY_TREES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_check() -> None:
    """`ruff check` finds nothing."""
    proc = _run(sys.executable, "-m", "ruff", "check", *PY_TREES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    """The installed import root `omc` type-checks under `mypy --strict`."""
    proc = _run(sys.executable, "-m", "mypy", "-p", "omc")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compiler_never_imports_runtime() -> None:
    """The compiler is a pure text-to-units pipeline: it must not depend on the runtime."""
    offenders = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in _sources("compiler", "grammar", "unit_templates")
        for name in _imports(p)
        if name.startswith("omc.runtime")
    ]
    assert offenders == []


@pytest.mark.parametrize(("library", "owner"), sorted(CHOKEPOINTS.items()))
def test_external_library_has_one_chokepoint(library: str, owner: str) -> None:
    """Only the adapter module of an external system imports its library."""
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in _sources(*PACKAGES)
        if any(n == library or n.startswith(library + ".") for n in _imports(p))
    )
    assert set(importers) <= {owner}


def test_wheel_has_one_import_root(tmp_path: Path) -> None:
    """The built wheel installs everything under `omc/`: no bare `compiler` package."""
    proc = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", str(tmp_path), str(ROOT),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("omc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.startswith("omc-")}
    assert top == {"omc"}
    expected = {
        f"omc/{p.relative_to(ROOT)}"
        for tree in PACKAGES
        for pattern in ("*.py", "*.lark", "*.j2", "*.txt")
        for p in (ROOT / tree).rglob(pattern)
        if "__pycache__" not in p.parts
    }
    assert expected - set(names) == set()
