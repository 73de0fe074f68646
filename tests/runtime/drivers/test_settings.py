"""Keyword readers: the compiler's converted JSON values and their textual forms alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omc.runtime.drivers import DriverError, ResourceView, settings

from .helpers import view


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("yes", True), ("false", False), ("0", False), (None, None)],
)
def test_boolean(value: object, expected: bool | None) -> None:
    """Booleans: JSON or OpenSVC words; unset gives the default."""
    res = view("x.y", {} if value is None else {"k": value})
    assert settings.boolean(res, "k", default=None) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5.0, 5.0), (3, 3.0), ("90", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("1.5s", 1.5)],
)
def test_seconds(value: object, expected: float) -> None:
    """Durations: the compiler's float seconds, or OpenSVC duration text."""
    assert settings.seconds(view("x.y", {"t": value}), "t", default=None) == expected


@pytest.mark.parametrize(("value", "expected"), [(488, 0o750), ("0750", 0o750), ("644", 0o644)])
def test_mode(value: object, expected: int) -> None:
    """Permissions: the compiler's integer, or octal text."""
    assert settings.mode(view("x.y", {"perm": value}), "perm") == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(10485760, 10 << 20), ("10m", 10 << 20), ("1g", 1 << 30), ("512", 512)]
)
def test_size(value: object, expected: int) -> None:
    """Sizes: bytes, or text with binary multiples."""
    assert settings.size(view("x.y", {"size": value}), "size") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["a", "b c"], ("a", "b c")), ("a 'b c'", ("a", "b c")), (None, ())],
)
def test_argv(value: object, expected: tuple[str, ...]) -> None:
    """Commands: a JSON list is already split; text is shlex-split."""
    assert settings.argv(view("x.y", {} if value is None else {"c": value}), "c") == expected


BAD = [
    (lambda r: settings.seconds(r, "kw", default=None), "soon"),
    (lambda r: settings.mode(r, "kw"), "rwx"),
    (lambda r: settings.size(r, "kw"), "big"),
    (lambda r: settings.integer(r, "kw", default=0), "many"),
]


@pytest.mark.parametrize(("read", "value"), BAD)
def test_bad_values_name_the_keyword(read: Callable[[ResourceView], object], value: str) -> None:
    """A value that cannot be read is a DriverError naming the rid and the keyword."""
    with pytest.raises(DriverError, match=r"app#1: keyword 'kw'"):
        read(view("x.y", {"kw": value}, rid="app#1"))


def test_required_names_driver() -> None:
    """A missing required keyword says which driver needs it."""
    with pytest.raises(DriverError, match=r"keyword 'file' is required by disk\.loop"):
        settings.required(view("disk.loop", {}), "file")
