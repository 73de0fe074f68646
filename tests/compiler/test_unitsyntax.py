"""Unit syntax: every value is written so that systemd reads back exactly it."""

from __future__ import annotations

import subprocess

import pytest
from omc.compiler import unitsyntax as us

NAMES = [
    "svc0",
    "my-svc",
    "a/b",
    ".hidden",
    "x.y",
    "a b",
    "é",
    "app@1",
    "with\\slash",
    "colon:under_score",
    "100%",
]


@pytest.mark.parametrize("value", NAMES)
def test_escape_matches_systemd_escape(value: str) -> None:
    """escape() gives exactly what `systemd-escape VALUE` prints."""
    out = subprocess.run(
        ["systemd-escape", "--", value], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert us.escape(value) == out


@pytest.mark.parametrize("path", ["/", "/srv/data", "/srv//my-data/", "/srv/.x/y z", "/mnt/é"])
def test_escape_path_matches_systemd_escape(path: str) -> None:
    """escape_path() gives exactly what `systemd-escape --path PATH` prints."""
    out = subprocess.run(
        ["systemd-escape", "--path", "--", path], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert us.escape_path(path) == out


@pytest.mark.parametrize(
    ("value", "expected"),
    [("my-svc", "my\\x2dsvc"), ("a/b", "a\\x2fb"), (".x", "\\x2ex"), ("0", "0")],
)
def test_escape_part_never_makes_a_slice_level(value: str, expected: str) -> None:
    """A name part keeps no '-' or '/', so it cannot add a slice level."""
    assert us.escape_part(value) == expected
    assert us.unescape(us.escape_part(value)) == value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("/bin/echo", "a"), "/bin/echo a"),
        (("touch", "/tmp/x"), "touch /tmp/x"),
        (("/bin/echo", "a b"), '/bin/echo "a b"'),
        (("/bin/echo", ""), '/bin/echo ""'),
        (("/bin/echo", "%n"), '/bin/echo "%%n"'),
        (("/bin/echo", "$HOME"), '/bin/echo "$$HOME"'),
        (("/bin/echo", '"'), '/bin/echo "\\""'),
        (("/bin/echo", "\\"), '/bin/echo "\\\\"'),
        (("/bin/echo", ";"), '/bin/echo ";"'),
        (("/bin/echo", "a\nb"), '/bin/echo "a\\nb"'),
        (("/bin/echo", "a\x01b"), '/bin/echo "a\\x01b"'),
        (("/bin/echo", "--rid", "fs#1"), "/bin/echo --rid fs#1"),
    ],
)
def test_exec_line_quotes_each_word(argv: tuple[str, ...], expected: str) -> None:
    """Exec lines quote and escape exactly the words that need it."""
    assert us.exec_line(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [(), ("",), ("-rm", "x"), ("@x",), ("rel/path",), ("/bin/echo", "a\x00b"), ("+x",)],
)
def test_exec_line_refuses_ambiguous_commands(argv: tuple[str, ...]) -> None:
    """A program that systemd would read differently is refused, with the reason."""
    with pytest.raises(us.UnitSyntaxError):
        us.exec_line(argv)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((("A", "1"),), "A=1"),
        ((("A", "x y"),), '"A=x y"'),
        ((("A", "$HOME"),), '"A=$HOME"'),
        ((("A", "%n"),), '"A=%%n"'),
        ((("A", "a\nb"),), '"A=a\\nb"'),
        ((("A", ""), ("B", "2")), "A= B=2"),
    ],
)
def test_environment_assignments(pairs: tuple[tuple[str, str], ...], expected: str) -> None:
    """Environment= words: quoted, C-escaped, % doubled, $ kept (no expansion there)."""
    assert us.environment(pairs) == expected


@pytest.mark.parametrize("name", ["1A", "A-B", "A B", "", "A=B"])
def test_environment_refuses_bad_names(name: str) -> None:
    """A variable name that is not a shell identifier is refused."""
    with pytest.raises(us.UnitSyntaxError):
        us.environment([(name, "x")])


@pytest.mark.parametrize(
    "value",
    ["a\nb", "a\rb", " lead", "trail ", "end\\", "nul\x00", "ctl\x07", "\ud800"],
)
def test_plain_refuses_what_systemd_would_alter(value: str) -> None:
    """Single-value settings refuse line breaks, edge whitespace, a trailing backslash."""
    with pytest.raises(us.UnitSyntaxError):
        us.plain(value, setting="What")


@pytest.mark.parametrize(
    ("value", "expected"), [("/srv/data", "/srv/data"), ("50%", "50%%"), ("a b", "a b")]
)
def test_plain_doubles_specifiers(value: str, expected: str) -> None:
    """Single-value settings keep the value, % doubled for specifier expansion."""
    assert us.plain(value, setting="What") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\nb", "a b"), ("x\\", "x\\\\"), ("100%", "100%%"), ("  sp  ", "sp")],
)
def test_text_neutralises_free_text(value: str, expected: str) -> None:
    """Description text never fails and never spans lines."""
    assert us.text(value) == expected


def test_json_value_is_one_ascii_line() -> None:
    """X-OpenSVC-Config JSON escapes line breaks and non-ASCII."""
    out = us.json_value({"k": "a\nb\u2028é", "n": 1})
    assert out == '{"k":"a\\nb\\u2028\\u00e9","n":1}'
    assert out.isascii()
    assert "\n" not in out


def test_raw_refuses_line_breaks() -> None:
    """An X- key value cannot start a new line."""
    with pytest.raises(us.UnitSyntaxError):
        us.raw("a\n[Service]", setting="X-OpenSVC-Rid")


def test_unit_name_length_is_checked() -> None:
    """A unit name longer than systemd's limit is refused."""
    with pytest.raises(us.UnitSyntaxError):
        us.check_unit_name("a" * 252 + ".service")
