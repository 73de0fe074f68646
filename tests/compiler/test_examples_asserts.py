"""The assertion-directive evaluator itself: a checker that cannot fail proves nothing."""

from __future__ import annotations

import pytest

from .asserts import Outcome, evaluate, ordered_before, parse_directives, parse_unit

A = "[Unit]\nX-OpenSVC-Rid=ip#0\n[Service]\nType=oneshot\nExecStart=/usr/bin/om svc0 x --rid ip#0\n"
B = "[Unit]\nX-OpenSVC-Rid=fs#1\nAfter=a.service\n"
C = "[Unit]\nX-OpenSVC-Rid=app#0\nAfter=b.service x.slice\n"
D = "[Unit]\nX-OpenSVC-Rid=app#9\nBefore=a.service\n"
UNITS = {"a.service": A, "b.service": B, "c.service": C, "d.service": D}
OK = Outcome(status=0, units=UNITS, stderr="")
FAILED = Outcome(status=1, units={}, stderr="x.conf:3:1: error: unknown keyword 'ipnme'\n")


@pytest.mark.parametrize(
    ("directive", "outcome", "holds"),
    [
        ("# assert-unit a.service", OK, True),
        ("# assert-unit z.service", OK, False),
        ("# !assert-unit z.service", OK, True),
        ("# assert-unit-count 4", OK, True),
        ("# assert-unit-count 3", OK, False),
        ("# assert-key a.service Service Type oneshot", OK, True),
        ("# assert-key a.service Service Type simple", OK, False),
        ("# assert-key a.service Unit Type oneshot", OK, False),
        ("# assert-key a.service Service ExecStart /usr/bin/om svc0 x --rid ip#0", OK, True),
        ("# assert-key-contains a.service Service ExecStart --rid ip#0", OK, True),
        ("# assert-has-key a.service Service Type", OK, True),
        ("# !assert-has-key a.service Install WantedBy", OK, True),
        ("# assert-order ip#0 fs#1", OK, True),
        ("# assert-order ip#0 app#0", OK, True),
        ("# assert-order app#9 app#0", OK, True),
        ("# assert-order app#0 ip#0", OK, False),
        ("# !assert-order fs#1 ip#0", OK, True),
        ("# assert-failed", OK, False),
        ("# assert-failed", FAILED, True),
        ("# assert-stderr-contains unknown keyword 'ipnme'", FAILED, True),
        ("# assert-stderr-contains ipname", FAILED, False),
    ],
)
def test_directive_table(directive: str, outcome: Outcome, holds: bool) -> None:
    """Each directive holds exactly when its description says."""
    failures = evaluate(parse_directives(directive), outcome)
    assert (failures == []) == holds


@pytest.mark.parametrize(
    "bad", ["# assert-bogus x", "# assert-key a.service Service", "# assert-unit"]
)
def test_malformed_directives_are_rejected(bad: str) -> None:
    """A typo in a directive is an error, never a silently skipped check."""
    with pytest.raises(ValueError, match="line 1"):
        parse_directives(bad)


def test_plain_comments_are_not_directives() -> None:
    """Only `# assert-` and `# !assert-` lines are directives."""
    assert parse_directives("# a comment\n[DEFAULT]\n#assert-unit x\nkey = # assert-unit y\n") == ()


def test_unit_parser_joins_continuations_and_skips_comments() -> None:
    """Backslash continuations join lines; comments are ignored."""
    unit = parse_unit("# c\n[Service]\nExecStart=/bin/a \\\n  b\n; x\nType=simple\n")
    assert unit == {"Service": [("ExecStart", "/bin/a  b"), ("Type", "simple")]}


def test_ordering_is_transitive_and_directional() -> None:
    """After=/Before= edges compose; the reverse direction does not hold."""
    parsed = {name: parse_unit(text) for name, text in UNITS.items()}
    assert ordered_before(parsed, "a.service", "c.service")
    assert not ordered_before(parsed, "c.service", "a.service")
