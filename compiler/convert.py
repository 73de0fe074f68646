"""Converters: a raw keyword string → a typed value (opensvc.md §1.8).

Pure functions. Each raises :class:`ConvertError` (message + hint) on bad
input; lowering turns that into a diagnostic at the value's span. A value
accepted only for compatibility (``yes``/``no`` booleans) comes back with a
warning text through :func:`convert`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import ir
from .keywords import Conv
from .records import Record

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False", ""))
_LEGACY_TRUE = frozenset(("yes", "y", "on"))
_LEGACY_FALSE = frozenset(("no", "n", "off", "none"))

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d|w|y)")
_INT = re.compile(r"[+-]?[0-9]+")
_SIZE = re.compile(r"([0-9]+(?:[.,][0-9]+)?)\s*([kmgtpe]?)(i?)(b?)", re.IGNORECASE)
_SIZE_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_OCTAL = re.compile(r"0?o?[0-7]{1,4}")
_NODE_WORD = re.compile(r"[A-Za-z0-9_.*?\[\]!=-]+")
_REQUIREMENT = re.compile(r"([^\s()]+)(?:\(([^()]*)\))?")
_STATUSES = ("up", "down", "warn", "n/a", "undef", "stdby up", "stdby down")


class ConvertError(ValueError):
    """A value that does not fit its converter; ``hint`` says what would."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Converted(Record):
    """A converted value and the warning it deserves, if any.

    (A docstring also spares ``dataclass`` building one from ``inspect.signature``.)
    """

    value: object
    warning: str | None = None


@lru_cache(maxsize=8192)
def convert(conv: Conv, raw: str) -> Converted:
    """Dispatch on the converter; raises :class:`ConvertError`.

    Cached: converted values are immutable (tuples, frozen IR), and the same
    defaults and values recur across resources and files.
    """
    if conv is Conv.BOOL:
        value, legacy = to_bool_compat(raw)
        warning = f"'{raw.strip()}' is a v2 boolean; om3 expects true or false" if legacy else None
        return Converted(value, warning)
    if conv is Conv.TRISTATE:
        if not raw.strip():
            return Converted(None)
        return convert(Conv.BOOL, raw)
    return Converted(_SIMPLE[conv](raw))


def to_bool(raw: str) -> bool:
    """Go ``strconv.ParseBool`` (om3), empty = false."""
    value, legacy = to_bool_compat(raw)
    if legacy:
        raise ConvertError(f"invalid boolean {raw.strip()!r}", "use true or false")
    return value


def to_bool_compat(raw: str) -> tuple[bool, bool]:
    """(value, was a v2-only spelling such as yes/no)."""
    text = raw.strip()
    if text in _TRUE:
        return True, False
    if text in _FALSE:
        return False, False
    if text.lower() in _LEGACY_TRUE:
        return True, True
    if text.lower() in _LEGACY_FALSE:
        return False, True
    raise ConvertError(f"invalid boolean {text!r}", "use true or false")


def to_int(raw: str) -> int:
    text = raw.strip()
    if not _INT.fullmatch(text):
        raise ConvertError(f"invalid integer {text!r}", "use a decimal number such as 10")
    return int(text)


def to_duration(raw: str) -> float:
    """Seconds. A bare number is seconds; else Go units plus d, w, y (``1h30m``)."""
    text = raw.strip()
    if not text:
        raise ConvertError("empty duration", "use a number of seconds or a value such as 1h30m")
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", body):
        return sign * float(body)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or pos == 0:
        raise ConvertError(
            f"invalid duration {text!r}", "use seconds (30) or units ns us ms s m h d w y (1h30m)"
        )
    return sign * total


def to_size(raw: str) -> int:
    """Bytes: ``k m g t p e`` and ``KiB`` are binary, ``KB`` decimal, ``1,5g`` is allowed."""
    text = raw.strip()
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ConvertError(f"invalid size {text!r}", "use bytes or a unit: 512m, 1g, 1GiB, 10MB")
    number, prefix, binary, byte = match.groups()
    power = _SIZE_POWER[prefix.lower()]
    base = 1000 if (byte and not binary and prefix) else 1024
    if binary and not prefix:
        raise ConvertError(f"invalid size {text!r}", "use bytes or a unit: 512m, 1g, 1GiB, 10MB")
    return int(float(number.replace(",", ".")) * base**power)


def to_size_or_percent(raw: str) -> int | str:
    """Sizes of lv/fs may be ``60%FREE``: those stay strings for the driver."""
    return raw.strip() if "%" in raw else to_size(raw)


def to_list(raw: str) -> tuple[str, ...]:
    return tuple(raw.split())


def to_list_lower(raw: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in raw.split())


def to_set(raw: str) -> tuple[str, ...]:
    """Deduplicated words, in first-seen order."""
    return tuple(dict.fromkeys(raw.split()))


# One part of a shell word (POSIX shlex rules): a plain run, a '…' run, a "…" run (a
# backslash escapes only " and \\ there), or a backslash-escaped character. Each part is
# one regex step, so splitting is linear in the text (Python's shlex appends every
# character to a string: quadratic on a long word, 53 s for a 1.6 MB value).
_WORD_PART = re.compile(
    r"""([^ \t\r\n'"\\]+)|'([^']*)'|"([^"\\]*(?:\\.[^"\\]*)*)"|\\(.)""", re.DOTALL
)
_BLANKS = re.compile(r"[ \t\r\n]*")
_IN_DOUBLE_QUOTES = re.compile(r"\\(.)", re.DOTALL)
_OPEN_DOUBLE_QUOTE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*\\\Z', re.DOTALL)


def _unescape_double(body: str) -> str:
    """Inside "…" a backslash escapes only " and \\ (and stays before anything else)."""
    if "\\" not in body:
        return body
    return _IN_DOUBLE_QUOTES.sub(lambda m: m[1] if m[1] in '"\\' else m[0], body)


def split_words(raw: str) -> list[str]:
    """``shlex.split(raw, comments=False, posix=True)``, in linear time; the same
    ``ValueError`` messages on bad quoting (a property test compares both)."""
    words: list[str] = []
    pos, end = 0, len(raw)
    while True:
        pos = _BLANKS.match(raw, pos).end()  # type: ignore[union-attr]  # always matches
        if pos >= end:
            return words
        parts: list[str] = []
        while pos < end and raw[pos] not in " \t\r\n":
            found = _WORD_PART.match(raw, pos)
            if found is None:
                raise ValueError(_split_error(raw, pos))
            plain, single, double, escaped = found.groups()
            if double is not None:
                parts.append(_unescape_double(double))
            else:
                parts.append(plain or single or escaped or "")
            pos = found.end()
        words.append("".join(parts))


def _split_error(raw: str, pos: int) -> str:
    """shlex's message for the part at ``pos`` that does not close."""
    if raw[pos] == "\\" or _OPEN_DOUBLE_QUOTE.match(raw, pos):
        return "No escaped character"
    return "No closing quotation"


def to_shlex(raw: str) -> tuple[str, ...]:
    """Shell-like split (quotes respected, newlines are blanks)."""
    try:
        return tuple(split_words(raw))
    except ValueError as exc:
        raise ConvertError(f"cannot split command: {exc}", "check the quotes") from None


_SHELL_OPERATORS = ("|", "&&", ";")
_SHELLS = frozenset(("sh", "bash", "dash", "/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/bash"))


def to_command(raw: str) -> tuple[str, ...]:
    """A command as om3 runs it (``CmdArgsFromString``).

    A string holding ``|``, ``&&`` or ``;`` runs as ``/bin/sh -c <string>``;
    anything else is shlex-split and executed directly. A string that already is
    exactly ``<shell> -c <script>`` runs as written: om3 would wrap it in a second
    shell (same effect, one more process, and a ``run:`` line showing the wrap twice).
    """
    text = raw.strip()
    if any(op in text for op in _SHELL_OPERATORS):
        try:
            words = split_words(text)
        except ValueError:
            words = []
        if len(words) == 3 and words[0] in _SHELLS and words[1] == "-c":
            return tuple(words)
        return ("/bin/sh", "-c", text)
    return to_shlex(text)


def to_nodes(raw: str) -> tuple[str, ...]:
    """Node selector words, lowercased: names, globs, ``label=value``."""
    words = to_list_lower(raw)
    for word in words:
        if not _NODE_WORD.fullmatch(word):
            raise ConvertError(
                f"invalid node selector {word!r}", "use node names, globs or label=value"
            )
    return words


def to_umask(raw: str) -> int:
    text = raw.strip()
    if not _OCTAL.fullmatch(text):
        raise ConvertError(f"invalid octal mode {text!r}", "use an octal value such as 022 or 0644")
    return int(text.replace("o", ""), 8)


def to_requires(raw: str) -> tuple[ir.Requirement, ...]:
    """``ip#0 fs#1(down,stdby down)``: rids with the states that satisfy them."""
    out: list[ir.Requirement] = []
    pos = 0
    text = raw.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _REQUIREMENT.match(text, pos)
        if match is None or match.end() == pos:
            raise ConvertError(f"invalid requirement near {text[pos:]!r}", "use rid(state,...)")
        rid, states = match.group(1), match.group(2)
        out.append(_requirement(rid, states))
        pos = match.end()
    return tuple(out)


def _requirement(rid: str, states: str | None) -> ir.Requirement:
    if "#" not in rid:
        raise ConvertError(f"invalid requirement {rid!r}: not a resource id", "use ip#0(up)")
    if states is None:
        return ir.Requirement(rid=rid)
    names = tuple(s.strip() for s in states.split(",") if s.strip())
    for name in names:
        if name not in _STATUSES:
            raise ConvertError(
                f"unknown state {name!r} in requirement {rid}", "states: " + ", ".join(_STATUSES)
            )
    return ir.Requirement(rid=rid, states=names)


def to_retcodes(raw: str) -> tuple[tuple[int, str], ...]:
    """``0:up 1:down 3:n/a``."""
    out: list[tuple[int, str]] = []
    for word in raw.split():
        code, sep, status = word.partition(":")
        if not sep or not _INT.fullmatch(code) or status not in _STATUSES:
            raise ConvertError(f"invalid retcode {word!r}", "use <code>:<up|down|warn|n/a|undef>")
        out.append((int(code), status))
    return tuple(out)


def to_appcmd(raw: str) -> bool | int | tuple[str, ...]:
    """app start/stop/check/info: a boolean, a sequence number, or a command."""
    text = raw.strip()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    if _INT.fullmatch(text):
        return int(text)
    return to_command(raw)


def to_string(raw: str) -> str:
    return raw


# --- schedules -------------------------------------------------------------------

_DAYS = {
    "mon": 1,
    "tue": 2,
    "wed": 3,
    "thu": 4,
    "fri": 5,
    "sat": 6,
    "sun": 7,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
    "sunday": 7,
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_ALL_WEEKDAYS = tuple(range(1, 8))  # "*:last": any weekday, so the day of month alone
_NTH = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "last": -1,
}
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_SCHEDULE_HINT = (
    "syntax: [!][~]HH:MM[-HH:MM][@interval] [days [weeks [months]]], e.g. 04:00-06:00@60"
)


def to_schedule(raw: str) -> ir.Schedule:
    """Parse an OpenSVC schedule (book "Scheduler"); a JSON list holds several rules.

    A bare interval (``@60``) is in minutes, as the scheduler documents; units
    may be given (``@10m``, ``@1h``). Empty or ``@0`` means never.
    """
    text = raw.strip()
    definitions = _schedule_definitions(text)
    rules = tuple(r for d in definitions if (r := _rule(d)) is not None)
    return ir.Schedule(raw=raw, rules=rules)


def _schedule_definitions(text: str) -> list[str]:
    if not text.startswith("["):
        return [text] if text else []
    try:
        items = json.loads(text)
    except ValueError:
        raise ConvertError(f"invalid schedule list {text!r}", _SCHEDULE_HINT) from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConvertError(f"invalid schedule list {text!r}", "use a JSON list of strings")
    return [i.strip() for i in items if i.strip()]


def _rule(definition: str) -> ir.ScheduleRule | None:
    exclude = definition.startswith("!")
    words = definition.lstrip("!").split()
    if not words:
        raise ConvertError(f"invalid schedule {definition!r}", _SCHEDULE_HINT)
    if len(words) > 4:
        raise ConvertError(f"too many fields in schedule {definition!r}", _SCHEDULE_HINT)
    ranges = tuple(_timerange(t) for t in words[0].split(","))
    if any(r is None for r in ranges):
        return None  # "@0": never
    fields = _classify(words[1:], definition)
    days = _days(fields["days"]) if "days" in fields else ()
    weeks = _numbers(fields["weeks"], 1, 53, "week") if "weeks" in fields else ()
    months = _months(fields["months"]) if "months" in fields else ()
    return ir.ScheduleRule(
        exclude=exclude,
        timeranges=tuple(r for r in ranges if r is not None),
        days=days,
        weeks=weeks,
        months=months,
    )


def _classify(words: list[str], definition: str) -> dict[str, str]:
    """Assign the words after the time ranges to days, weeks and months.

    Positional (days, weeks, months), except that a word naming months
    (``jan-feb``) is months and one naming weekdays is days wherever it is.
    """
    fields: dict[str, str] = {}
    free = ["days", "weeks", "months"]
    for word in words:
        lower = word.lower()
        if any(m in lower for m in _MONTH_NAMES) or lower.startswith("%"):
            slot = "months"
        elif any(d in lower for d in _DAYS) or ":" in lower:
            slot = "days"
        elif free:
            slot = free[0]
        else:
            slot = ""
        if not slot or slot in fields:
            raise ConvertError(
                f"unexpected field {word!r} in schedule {definition!r}", _SCHEDULE_HINT
            )
        fields[slot] = word
        if slot in free:
            free = free[free.index(slot) + 1 :]
    return fields


def _timerange(text: str) -> ir.TimeRange | None:
    if text == "*":
        return ir.TimeRange()
    random = text.startswith("~")
    body, _, interval_text = text.lstrip("~").partition("@")
    interval = _interval(interval_text, text) if interval_text else None
    if interval == 0:
        return None
    if not body:
        return ir.TimeRange(interval=interval, random=random)
    begin_text, sep, end_text = body.partition("-")
    begin = _clock(begin_text, text)
    end = _clock(end_text, text) if sep else begin
    return ir.TimeRange(begin=begin, end=end, interval=interval, random=random)


def _interval(text: str, whole: str) -> float:
    try:
        return float(int(text)) * 60.0 if text.isdigit() else to_duration(text)
    except ConvertError:
        raise ConvertError(f"invalid schedule interval in {whole!r}", _SCHEDULE_HINT) from None


def _clock(text: str, whole: str) -> int:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ConvertError(f"invalid time {text!r} in schedule {whole!r}", _SCHEDULE_HINT)
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    total = hours * 3600 + minutes * 60 + seconds
    if minutes > 59 or seconds > 59 or total > 86400:
        raise ConvertError(f"invalid time {text!r} in schedule {whole!r}", _SCHEDULE_HINT)
    return total


def _days(text: str) -> tuple[ir.DaySpec, ...]:
    if text == "*":
        return ()
    out: list[ir.DaySpec] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if sep and ":" not in part:
            lo, hi = _weekday(first), _weekday(last)
            span = range(lo, hi + 1) if lo <= hi else [*range(lo, 8), *range(1, hi + 1)]
            out.extend(ir.DaySpec(weekday=d) for d in span)
            continue
        day, _, nth = part.partition(":")
        weekdays = _ALL_WEEKDAYS if day == "*" else (_weekday(day),)
        out.extend(ir.DaySpec(weekday=d, nth=_nth(nth) if nth else None) for d in weekdays)
    return tuple(out)


def _weekday(text: str) -> int:
    name = text.lower()
    if name in _DAYS:
        return _DAYS[name]
    if name.isdigit() and 0 <= int(name) <= 7:
        return int(name) or 7
    raise ConvertError(f"invalid day {text!r} in schedule", "use mon..sun or 1..7")


def _nth(text: str) -> int:
    if text.lower() in _NTH:
        return _NTH[text.lower()]
    if re.fullmatch(r"[+-]?[1-5]", text):
        return int(text)
    raise ConvertError(f"invalid day of month {text!r}", "use first..fifth, last, or +n/-n")


def _numbers(text: str, low: int, high: int, what: str) -> tuple[int, ...]:
    if text == "*":
        return ()
    out: list[int] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        try:
            lo, hi = int(first), int(last) if sep else int(first)
        except ValueError:
            raise ConvertError(f"invalid {what} {part!r} in schedule", _SCHEDULE_HINT) from None
        if not low <= lo <= hi <= high:
            raise ConvertError(f"{what} {part!r} out of range {low}-{high}", _SCHEDULE_HINT)
        out.extend(range(lo, hi + 1))
    return tuple(sorted(set(out)))


def _months(text: str) -> tuple[int, ...]:
    if text == "*":
        return ()
    out: list[int] = []
    for part in text.split(","):
        if part.startswith("%"):
            modulo, _, shift = part[1:].partition("+")
            if not modulo.isdigit() or int(modulo) == 0 or (shift and not shift.isdigit()):
                raise ConvertError(f"invalid month filter {part!r}", "use %<n>[+<shift>]")
            m, s = int(modulo), int(shift or 0)
            out.extend(x for x in range(1, 13) if x % m == s % m)
            continue
        first, sep, last = part.partition("-")
        lo, hi = _month(first), _month(last) if sep else _month(first)
        out.extend(range(lo, hi + 1) if lo <= hi else [*range(lo, 13), *range(1, hi + 1)])
    return tuple(sorted(set(out)))


def _month(text: str) -> int:
    name = text.lower()[:3]
    if name in _MONTHS:
        return _MONTHS[name]
    if text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    raise ConvertError(f"invalid month {text!r} in schedule", "use jan..dec or 1..12")


_SIMPLE: dict[Conv, Callable[[str], object]] = {
    Conv.STRING: to_string,
    Conv.INT: to_int,
    Conv.DURATION: to_duration,
    Conv.SIZE: to_size_or_percent,
    Conv.LIST: to_list,
    Conv.LISTLOWER: to_list_lower,
    Conv.SET: to_set,
    Conv.SHLEX: to_shlex,
    Conv.COMMAND: to_command,
    Conv.NODES: to_nodes,
    Conv.UMASK: to_umask,
    Conv.SCHEDULE: to_schedule,
    Conv.REQUIRES: to_requires,
    Conv.RETCODES: to_retcodes,
    Conv.APPCMD: to_appcmd,
}
