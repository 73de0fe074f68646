"""Linters, type checks and packaging, run as tests (mkosi's practice).

Architecture rules: tests/test_architecture.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("grammar", "compiler", "runtime", "unit_templates")
PY_TREES = (*PACKAGES, "tests", "bench")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def _sources(*trees: str) -> list[Path]:
    return sorted(p for t in trees for p in (ROOT / t).rglob("*.py") if p.is_file())


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
