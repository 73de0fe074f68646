"""The one module that writes systemd unit-file syntax.

Every value that reaches a unit file goes through a function here, so that no
config value can add a directive, change a setting's meaning or be rewritten by
systemd. What systemd does to a value depends on the setting, so there is one
function per kind of setting:

=====================  =================================================  ====================
function               systemd processing of the value                    used for
=====================  =================================================  ====================
:func:`exec_line`      split into words (quotes, C escapes), ``%``        ExecStart= ExecStop=
                       specifiers at load, ``$VAR`` at exec time
:func:`environment`    split into words (quotes, C escapes), ``%``        Environment=
                       specifiers; no ``$`` expansion
:func:`plain`          taken verbatim after trimming, ``%`` specifiers    What= Where= User=
                                                                          WorkingDirectory=
                                                                          SourcePath= Options=
:func:`text`           same, free text (control characters neutralised)   Description=
:func:`raw`            ignored by systemd (``X-`` keys), read back by us  X-OpenSVC-*
:func:`json_value`     one-line JSON for ``X-OpenSVC-Config=``            X-OpenSVC-Config=
=====================  =================================================  ====================

Line structure: systemd reads one setting per line, joins a line ending in an
odd number of backslashes with the next one, and strips surrounding
whitespace. So every value is checked to be one line, and values whose
meaning would change by trimming or joining are either quoted (Exec and
Environment words) or refused with :class:`UnitSyntaxError`.

Unit names: :func:`escape` and :func:`escape_path` reproduce ``systemd-escape``
and ``systemd-escape --path``; :func:`escape_part` escapes one part of a
hierarchical name (``/`` included) so that it never creates a slice level.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "UnitSyntaxError",
    "environment",
    "escape",
    "escape_part",
    "escape_path",
    "exec_line",
    "json_value",
    "plain",
    "quote_word",
    "raw",
    "text",
    "unescape",
]

# Characters systemd-escape keeps as they are (unit_name_escape(), "valid_chars").
_NAME_KEEP = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")
# Words made only of these need no quoting in an Exec/Environment line.
_WORD_SAFE = re.compile(r"[A-Za-z0-9_@+=:,./#-]+")
# Exec prefixes systemd interprets on the first word (even when quoted).
_EXEC_PREFIXES = frozenset("@-:+!|")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRINTABLE = re.compile(r"[ -~]*")
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x85\u2028\u2029]")
# Printable ASCII, no blank at either end, no trailing backslash: what raw() accepts as is.
_RAW_SAFE = re.compile(r"(?:[!-~][ -~]*)?[!-\[\]-~]|")
_NAME_PLAIN = re.compile(r"[A-Za-z0-9:_][A-Za-z0-9:_.]*")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
UNIT_NAME_MAX = 255


class UnitSyntaxError(ValueError):
    """A value that cannot be written so that systemd sees exactly it."""

    def __init__(self, setting: str, value: str, reason: str) -> None:
        super().__init__(f"{setting}: cannot write {value!r}: {reason}")
        self.setting = setting
        self.value = value
        self.reason = reason


# ---------------------------------------------------------------------------
# Values


def _specifiers(value: str) -> str:
    """Double ``%`` so that systemd's specifier expansion gives the value back."""
    return value.replace("%", "%%")


def _check_utf8(setting: str, value: str) -> None:
    """Unit files are UTF-8: a lone surrogate cannot be written."""
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise UnitSyntaxError(setting, value, "not valid UTF-8") from exc


def _check_line(setting: str, value: str) -> None:
    """Refuse what cannot live on one unit-file line (NUL, line breaks, bad UTF-8)."""
    if value.isascii() and _PRINTABLE.fullmatch(value):
        return
    _check_utf8(setting, value)
    if "\x00" in value:
        raise UnitSyntaxError(setting, value, "contains a NUL character")
    if _LINE_BREAK.search(value):
        raise UnitSyntaxError(setting, value, "contains a line break")


def _c_escape_char(c: str) -> str:
    """One character inside a double-quoted word, as systemd's cunescape reads it.

    Non-printable characters are escaped, so no line separator of any reader
    (systemd splits on ``\\n``; Python's ``splitlines`` also on ``\\x1c-\\x1e``,
    ``\\x85``, ``\\u2028``…) survives into the file.
    """
    if c in _C_ESCAPES:
        return _C_ESCAPES[c]
    if c.isprintable():
        return c
    code = ord(c)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote_word(word: str, *, setting: str = "ExecStart", exec_vars: bool = True) -> str:
    """One argument of an Exec or Environment line, quoted only when needed.

    ``exec_vars`` doubles ``$`` (Exec lines expand ``$VAR`` at exec time;
    Environment= does not). ``%`` is always doubled (both expand specifiers).
    """
    if _WORD_SAFE.fullmatch(word):  # the common case: nothing to double, quote or refuse
        return word
    if "\x00" in word:
        raise UnitSyntaxError(setting, word, "contains a NUL character")
    _check_utf8(setting, word)
    body = _specifiers(word)
    if exec_vars:
        body = body.replace("$", "$$")
    if body and _WORD_SAFE.fullmatch(body):
        return body
    return '"' + "".join(_c_escape_char(c) for c in body) + '"'


def exec_line(argv: Sequence[str], *, setting: str = "ExecStart", prefix: str = "") -> str:
    """The value of an ``Exec*=`` setting running exactly ``argv``.

    ``argv[0]`` must be an absolute path or a bare program name (systemd looks
    it up in its fixed PATH); a relative path with ``/`` or a leading prefix
    character (``-@:+!|``) would change the meaning, so it is refused.
    ``prefix`` is one of systemd's prefixes, chosen by the compiler (``-``).
    """
    if not argv:
        raise UnitSyntaxError(setting, "", "empty command")
    if any(c not in _EXEC_PREFIXES for c in prefix):
        raise UnitSyntaxError(setting, prefix, "unknown Exec prefix")
    program = argv[0]
    if not program:
        raise UnitSyntaxError(setting, program, "empty program name")
    if program[0] in _EXEC_PREFIXES:
        raise UnitSyntaxError(setting, program, f"a program name may not start with {program[0]!r}")
    if "{" in program and "}" in program:
        raise UnitSyntaxError(
            setting, program, "the program contains a reference resolved only at run time"
        )
    if not program.startswith("/") and "/" in program:
        raise UnitSyntaxError(
            setting, program, "the program must be an absolute path or a bare name"
        )
    return prefix + exec_words(argv, setting=setting)


def exec_words(words: Sequence[str], *, setting: str = "ExecStart") -> str:
    """``words`` quoted for an ``Exec*=`` line (the arguments after a checked program)."""
    return " ".join([quote_word(w, setting=setting) for w in words])


def environment(pairs: Iterable[tuple[str, str]], *, setting: str = "Environment") -> str:
    """The value of one ``Environment=`` line setting every ``(name, value)``."""
    out = []
    for name, value in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise UnitSyntaxError(setting, name, "not a valid environment variable name")
        out.append(quote_word(f"{name}={value}", setting=setting, exec_vars=False))
    return " ".join(out)


def plain(value: str, *, setting: str, specifiers: bool = True) -> str:
    """A single-valued setting taken verbatim by systemd (after trimming).

    Refused: line breaks, NUL, leading/trailing whitespace (systemd trims it)
    and a trailing backslash (systemd would join the next line).
    """
    _check_line(setting, value)
    if value != value.strip():
        raise UnitSyntaxError(setting, value, "leading or trailing whitespace would be lost")
    if value.endswith("\\"):
        raise UnitSyntaxError(setting, value, "a trailing backslash continues the line")
    if not value.isprintable():
        raise UnitSyntaxError(setting, value, "contains a non-printable character")
    return _specifiers(value) if specifiers else value


def text(value: str) -> str:
    """Free text for ``Description=``: never fails, control characters become spaces."""
    if value.isascii() and _PRINTABLE.fullmatch(value) and "\\" not in value:
        return _specifiers(" ".join(value.split()))
    cleaned = "".join(c if c.isprintable() else " " for c in value)
    cleaned = " ".join(cleaned.split())
    trailing = len(cleaned) - len(cleaned.rstrip("\\"))
    if trailing % 2:
        cleaned += "\\"
    return _specifiers(cleaned)


def raw(value: str, *, setting: str) -> str:
    """An ``X-`` key value: systemd ignores it, our readers take the line as is."""
    if _RAW_SAFE.fullmatch(value):  # the common case: one regex step for all the checks
        return value
    _check_line(setting, value)
    if not value.isprintable():
        raise UnitSyntaxError(setting, value, "contains a non-printable character")
    if value != value.strip():
        raise UnitSyntaxError(setting, value, "leading or trailing whitespace would be lost")
    if value.endswith("\\"):
        raise UnitSyntaxError(setting, value, "a trailing backslash continues the line")
    return value


def json_value(data: object, *, default: Callable[[object], object] | None = None) -> str:
    """One-line JSON (ASCII only, so no control character or line break survives);
    ``default`` as json's: the JSON-friendly form of a value json cannot write."""
    return json.dumps(
        data, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=default
    )


# ---------------------------------------------------------------------------
# Unit names


def _escape_chars(value: str, *, keep_slash_as_dash: bool) -> str:
    out = []
    for i, c in enumerate(value):
        if c == "/" and keep_slash_as_dash:
            out.append("-")
        elif c in _NAME_KEEP and not (i == 0 and c == "."):
            out.append(c)
        else:
            out.extend(f"\\x{b:02x}" for b in c.encode())
    return "".join(out)


def escape(value: str) -> str:
    """``systemd-escape VALUE``: ``/`` becomes ``-``, anything else unsafe ``\\xNN``."""
    return _escape_chars(value, keep_slash_as_dash=True)


def escape_part(value: str) -> str:
    """One part of a hierarchical unit name: like :func:`escape`, ``/`` included.

    A ``-`` (and a ``/``) inside an object name or rid never creates a slice
    level: ``my-svc`` → ``my\\x2dsvc``.
    """
    if not value:
        raise UnitSyntaxError("unit name", value, "empty name part")
    if _NAME_PLAIN.fullmatch(value):
        return value
    return _escape_chars(value, keep_slash_as_dash=False)


def escape_path(path: str) -> str:
    """``systemd-escape --path PATH`` (the name of a ``.mount`` unit without suffix)."""
    if not path.startswith("/"):
        raise UnitSyntaxError("Where", path, "a mount point must be an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UnitSyntaxError("Where", path, "a mount point may not contain . or ..")
    if not parts:
        return "-"
    return escape("/".join(parts))


def unescape(name: str) -> str:
    """Reverse :func:`escape_part` (``\\xNN`` sequences back to bytes)."""
    data = bytearray()
    i = 0
    while i < len(name):
        if name.startswith("\\x", i) and i + 4 <= len(name):
            data.append(int(name[i + 2 : i + 4], 16))
            i += 4
        else:
            data.extend(name[i].encode())
            i += 1
    return data.decode()


def check_unit_name(name: str) -> str:
    """Refuse a unit name systemd would reject for its length."""
    if len(name) > UNIT_NAME_MAX:
        raise UnitSyntaxError("unit name", name, f"longer than {UNIT_NAME_MAX} characters")
    return name
