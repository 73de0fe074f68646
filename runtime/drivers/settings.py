"""Typed reads of a resource's evaluated keywords (``X-OpenSVC-Config``).

The compiler converts values before emitting them, but a value may still be a
string (an unconverted keyword, or an old unit): every getter accepts both the
converted and the textual form, and raises :class:`DriverError` naming the
keyword when a value cannot be read, so a bad unit never ends in a traceback.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from .base import DriverError, ResourceView

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0", ""})
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _lookup(config: Mapping[str, object], names: tuple[str, ...]) -> object | None:
    for name in names:
        value = config.get(name)
        if value is not None:
            return value
    return None


def text(res: ResourceView, *names: str, default: str | None = None) -> str | None:
    """The first set keyword among ``names`` (aliases), as a string."""
    value = _lookup(res.config, names)
    if value is None:
        return default
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def required(res: ResourceView, *names: str) -> str:
    """Like :func:`text`, but a missing or empty value is a configuration error."""
    value = text(res, *names)
    if not value:
        raise DriverError(f"{res.rid}: keyword {names[0]!r} is required by {res.driver}")
    return value


def boolean(res: ResourceView, *names: str, default: bool) -> bool:
    """A boolean keyword; accepts JSON booleans and OpenSVC's textual forms."""
    value = _lookup(res.config, names)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise DriverError(f"{res.rid}: keyword {names[0]!r} expects a boolean, got {value!r}")


def integer(res: ResourceView, *names: str, default: int) -> int:
    """An integer keyword."""
    value = _lookup(res.config, names)
    if value is None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise DriverError(
            f"{res.rid}: keyword {names[0]!r} expects an integer, got {value!r}"
        ) from None


def as_words(value: object) -> list[str]:
    """A list value from any JSON shape: list, whitespace-separated text, scalar or None."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value).split()


def words(res: ResourceView, *names: str) -> tuple[str, ...]:
    """A list keyword: a JSON list, or whitespace-separated text."""
    value = _lookup(res.config, names)
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(str(value).split())


def argv(res: ResourceView, *names: str) -> tuple[str, ...]:
    """A shlex command keyword: a JSON list is taken as already split."""
    value = _lookup(res.config, names)
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    try:
        return tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise DriverError(f"{res.rid}: keyword {names[0]!r}: {exc}: {value!r}") from None


SCRIPT_ACTIONS = frozenset({"start", "stop", "check", "info"})  # true/false/number mean <script>


def command(res: ResourceView, action: str) -> tuple[str, ...]:
    """An app's argv for ``action`` (start, stop, check, info): () means "nothing to run".

    ``true`` or a sequence number runs ``<script> <action>``; ``false`` runs
    nothing; anything else is the command itself (shlex, or a JSON list). Pure: the
    app driver runs it, the narration shows it (``run:`` lines).
    """
    value = res.config.get(action)
    if value is None or value is False:
        return ()
    if action not in SCRIPT_ACTIONS:
        return argv(res, action)
    word = str(value).strip().lower() if not isinstance(value, list | tuple) else ""
    if value is True or word == "true" or word.isdigit():
        script = text(res, "script")
        if not script:
            raise DriverError(f"{res.rid}: {action} = {value} needs the script keyword")
        return (script, action)
    if word == "false":
        return ()
    return argv(res, action)


def seconds(res: ResourceView, *names: str, default: float | None) -> float | None:
    """A duration keyword in seconds: the compiler's float, or text like ``90``, ``5s``, ``2m``."""
    value = _lookup(res.config, names)
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(str(value), what=f"{res.rid}: keyword {names[0]!r}")


def parse_duration(text: str, *, what: str) -> float:
    """``1h30m`` → 5400.0; a bare number is seconds."""
    total, number = 0.0, ""
    for char in text.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in _DURATION_UNITS and number:
            total += float(number) * _DURATION_UNITS[char]
            number = ""
        else:
            raise DriverError(f"{what} expects a duration like 30s or 1h30m, got {text!r}")
    return total + (float(number) if number else 0.0)


def mode(res: ResourceView, *names: str) -> int | None:
    """A permission keyword: the compiler's integer, or octal text like ``0750``."""
    value = _lookup(res.config, names)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise DriverError(
            f"{res.rid}: keyword {names[0]!r} expects an octal mode like 0755, got {value!r}"
        ) from None


def size(res: ResourceView, *names: str) -> int | None:
    """A size keyword in bytes (``100m``, ``1g``, ``512``; binary multiples as OpenSVC)."""
    value = _lookup(res.config, names)
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return parse_size(str(value), what=f"{res.rid}: keyword {names[0]!r}")


def parse_size(value: str, *, what: str) -> int:
    """``10m`` → 10485760. ``what`` names the value in the error message."""
    raw = value.strip().lower().removesuffix("ib").removesuffix("b")
    number = raw.rstrip("kmgt")
    unit = raw[len(number) :]
    try:
        return int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise DriverError(f"{what} expects a size like 100m, got {value!r}") from None
