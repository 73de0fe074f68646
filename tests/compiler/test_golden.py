"""Each example compiles to exactly its golden unit tree (``make golden`` rewrites them).

The trees in ``tests/golden/<example>/`` are compiled for node ``n1`` with
``--om /usr/bin/om``, cluster name ``lab``, as if installed in ``/etc/opensvc``,
so they do not depend on the machine. An example that fails to compile keeps its
diagnostics text in ``diagnostics.txt`` instead (that text is golden too).
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from .asserts import compile_example

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = sorted((ROOT / "examples").glob("*.conf"))
UPDATE = os.environ.get("OMC_UPDATE_GOLDEN") == "1"
DIAGNOSTICS = "diagnostics.txt"


def expected_tree(example: Path) -> dict[str, str]:
    """Unit name -> text, plus the diagnostics text when there is any."""
    outcome = compile_example(example.read_text(), name=example.name)
    tree = dict(outcome.units)
    if outcome.stderr:
        tree[DIAGNOSTICS] = outcome.stderr
    return tree


def read_tree(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def write_tree(folder: Path, tree: dict[str, str]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in tree.items():
        (folder / name).write_text(text)


def describe(actual: dict[str, str], golden: dict[str, str]) -> str:
    """A readable account of how two trees differ (names, then text)."""
    lines = [f"only in output: {n}" for n in sorted(set(actual) - set(golden))]
    lines += [f"only in golden: {n}" for n in sorted(set(golden) - set(actual))]
    for name in sorted(set(actual) & set(golden)):
        if actual[name] != golden[name]:
            lines += difflib.unified_diff(
                golden[name].splitlines(), actual[name].splitlines(),
                f"golden/{name}", f"output/{name}", lineterm="",
            )  # fmt: skip
    return "\n".join([*lines, "(if the change is intended: make golden)"])


@pytest.mark.parametrize("example", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_example_output_matches_golden_tree(example: Path) -> None:
    """The compiled units of an example are byte-identical to its golden tree."""
    folder = GOLDEN / example.stem
    actual = expected_tree(example)
    if UPDATE:
        write_tree(folder, actual)
    golden = read_tree(folder)
    assert actual == golden, describe(actual, golden)


def test_every_golden_tree_has_an_example() -> None:
    """No golden tree outlives its example."""
    trees = {p.name for p in GOLDEN.iterdir() if p.is_dir()} if GOLDEN.is_dir() else set()
    assert trees <= {e.stem for e in EXAMPLES}
