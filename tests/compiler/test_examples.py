"""Every example config satisfies the assertion comments it carries (Quadlet-style)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .asserts import compile_example, evaluate, parse_directives

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.conf"))


def test_there_are_at_least_eight_documented_examples_and_one_expected_failure() -> None:
    """The examples cover the use cases of the brief, one of them failing on purpose."""
    failing = [f for f in EXAMPLES if "# assert-failed" in f.read_text()]
    assert len(EXAMPLES) - len(failing) >= 8
    assert len(failing) >= 1


@pytest.mark.parametrize("example", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_example_carries_assertions_and_a_comment_header(example: Path) -> None:
    """Each example starts with a comment saying what it is and has assert lines."""
    text = example.read_text()
    assert text.startswith(f"# {example.stem}:")
    assert parse_directives(text)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_example_assertions_hold(example: Path) -> None:
    """Compiling the example satisfies every `# assert-…` directive in it."""
    text = example.read_text()
    outcome = compile_example(text, name=example.name)
    failures = evaluate(parse_directives(text), outcome)
    assert failures == [], outcome.stderr
