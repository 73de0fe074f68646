"""Field-wise ``==``, ``hash()`` and ``repr()`` for frozen dataclasses, written once.

Each ``@dataclass`` compiles the methods it generates (``exec`` of their source) when
its module is imported, and a cold ``omc`` imports some 40 such classes. Declared
``eq=False, repr=False`` on top of :class:`Record`, a class gets these shared methods
instead, which behave as the generated ones: equal only to an instance of the very
same class with equal fields, hashed as the tuple of its fields, shown as
``Class(field=value, ...)``. Only for frozen classes (a mutable dataclass is unhashable).
:func:`direct_init` gives the records built per line or keyword a cheaper ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from operator import attrgetter
from typing import Any, TypeVar


class Record:
    """Base of the frozen dataclasses: shared ``__eq__``, ``__hash__`` and ``__repr__``."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls = self.__class__
        values = _values(cls)(self)
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(_names(cls), values, strict=True))
        return f"{cls.__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            values = _values(self.__class__)
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values(self.__class__)(self))


_VALUES: dict[type, Callable[[object], tuple[object, ...]]] = {}
_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    found = _NAMES.get(cls)
    if found is None:
        found = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return found


def _values(cls: type) -> Callable[[object], tuple[object, ...]]:
    """The function giving an instance's field values as a tuple (built once per class)."""
    found = _VALUES.get(cls)
    if found is None:
        names = [f.name for f in fields(cls)]
        if len(names) == 1:
            one = attrgetter(names[0])
            found = lambda obj: (one(obj),)  # noqa: E731
        else:
            found = attrgetter(*names)
        _VALUES[cls] = found
    return found


R = TypeVar("R", bound=type)


def direct_init(cls: R) -> R:
    """Give a slotted frozen dataclass an ``__init__`` that stores each field through
    its slot's own setter; for the records built per line or per keyword.

    The generated ``__init__`` sets each field through ``object.__setattr__(self,
    "name", value)``: a name lookup per field, a third of the cost of building a
    five-field record. A slot's setter (its member descriptor's ``__set__``) stores
    the value directly and, like that call, bypasses the frozen ``__setattr__``: the
    instance stays as immutable as before. Same keyword-only signature and defaults
    as the dataclass's own (mypy reads that one); no ``default_factory`` fields.
    """
    namespace: dict[str, Any] = {}
    params, body = [], []
    for f in fields(cls):
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: direct_init takes no default_factory")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, *, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # the source holds field names only, never a value
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010 - mypy rejects assigning __init__
    return cls
