"""The IR as JSON-ready dicts and back, losslessly (pinned by a corpus round-trip test).

For tools and the runtime that want the whole evaluated object rather than
one unit's ``X-OpenSVC-Config``: ``from_dict(to_dict(service)) == service``.
Every dataclass carries a ``"__type__"`` tag so resource subclasses come back
as themselves; tuples and frozensets become lists, enums their values.
Decoding follows the field type hints of :mod:`ir`, so a malformed document
raises :class:`IrDecodeError` naming the field, never a bare ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from functools import cache
from typing import Any

from . import ir

TYPE_TAG = "__type__"


class IrDecodeError(ValueError):
    """A dict that does not describe an IR value."""


def to_dict(obj: Any) -> dict[str, Any]:
    """An IR dataclass as plain JSON types."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"not an IR dataclass: {obj!r}")
    encoded = _encode(obj)
    assert isinstance(encoded, dict)
    return encoded


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {TYPE_TAG: type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(_encode(v) for v in value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


@cache
def _classes() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(ir).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    }


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(ir))


def from_dict(data: dict[str, Any], cls: type | None = None) -> Any:
    """Rebuild an IR value; ``cls`` defaults to the ``__type__`` tag."""
    return _decode_dataclass(data, cls, where="$")


def _decode_dataclass(data: Any, cls: type | None, *, where: str) -> Any:
    if not isinstance(data, dict):
        raise IrDecodeError(f"{where}: expected an object, got {type(data).__name__}")
    tag = data.get(TYPE_TAG)
    if tag is not None:
        tagged = _classes().get(str(tag))
        if tagged is None or (cls is not None and not issubclass(tagged, cls)):
            raise IrDecodeError(f"{where}: unexpected type {tag!r}")
        cls = tagged
    if cls is None:
        raise IrDecodeError(f"{where}: no {TYPE_TAG!r} tag")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name], where=f"{where}.{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise IrDecodeError(f"{where}: {exc}") from None


def _decode(hint: Any, value: Any, *, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _decode(hint, value, where=where)
    if origin is tuple:
        return _decode_tuple(args, value, where=where)
    if origin is frozenset:
        return frozenset(_decode(args[0], v, where=where) for v in _list(value, where))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(value, hint, where=where)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise IrDecodeError(f"{where}: {value!r} is not a {hint.__name__}") from None
    if hint is object or hint is Any:
        return _freeze(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise IrDecodeError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _decode_tuple(args: tuple[Any, ...], value: Any, *, where: str) -> tuple[Any, ...]:
    items = _list(value, where)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], v, where=f"{where}[{i}]") for i, v in enumerate(items))
    if len(args) != len(items):
        raise IrDecodeError(f"{where}: expected {len(args)} items, got {len(items)}")
    return tuple(
        _decode(a, v, where=f"{where}[{i}]")
        for i, (a, v) in enumerate(zip(args, items, strict=True))
    )


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise IrDecodeError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


def _freeze(value: Any) -> Any:
    """Free-form config values: JSON lists back to the tuples lowering produced."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value
