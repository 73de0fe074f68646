"""Key stores (cfg, sec and usr objects) and the references services make to their keys.

A key store is an object config whose ``[data]`` section holds the keys (opensvc.md
§1.3, om3's datastore): ``name = <encoding>:<value>``. The encodings:

=============  ===========================================  ============================
prefix         value                                        written for
=============  ===========================================  ============================
``literal:``   the text itself                              cfg, plain printable ASCII
``base64:``    URL-safe base64 of the bytes (om3 cfg's)     sec, usr; other cfg values
``crypt:``     om3's AES with the cluster key               never; reading one fails
(none)         the text itself (written by hand)            never
=============  ===========================================  ============================

sec values are **not encrypted** here: the file is root's, mode 0600, and base64 only
keeps a value off a casual screen (docs/units.md, "Secrets").

Services reference keys with ``configs_environment`` / ``secrets_environment``
(opensvc.md §2.8, §2.9): ``VAR=<object>/<key>`` sets ``VAR`` to one key's value,
``<object>/<glob>`` sets one variable per matching key, named after it. The object
is a cfg (configs) or sec (secrets) of the service's namespace.

This module is the one reader and writer of that format: the compiler checks
references with it, ``om`` edits stores and resolves references with it. Pure: text
in, text or values out (through the compiler's own parser, :mod:`.parse`).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from dataclasses import dataclass

from .contract.paths import Kind
from .diagnostics import Collector
from .parse import Document, Entry, parse

DATA = "data"
KEY_MAX = 255
ENV_KINDS = {"configs_environment": Kind.CFG, "secrets_environment": Kind.SEC}
_KEY = re.compile(r"[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A literal the INI parser gives back unchanged: printable ASCII, no edge blanks, no
# leading quote (dropped by the parser), no blank before # or ; (an inline comment).
_LITERAL = re.compile(r"""(?:[!-~](?:[ -~]*[!-~])?)?\Z""")
_NOT_LITERAL = re.compile(r"""^['"]|[ \t][#;]|[{}]""")


class KvError(ValueError):
    """A key or value that cannot be stored or read; the message says which and why."""


def key_error(key: str) -> str:
    """Why ``key`` cannot name a key, or ``""``: ``/``-separated words of letters, digits,
    ``_ . + -`` (om3 allows ``dir/file`` keys), at most 255 characters."""
    if not _KEY.match(key) or len(key) > KEY_MAX or any(p in (".", "..") for p in key.split("/")):
        return (
            f"invalid key {key!r}: expected '/'-separated words of letters, digits, '_', '.', "
            f"'+' or '-' (no '.' or '..' word), at most {KEY_MAX} characters"
        )
    return ""


def env_name_ok(name: str) -> bool:
    """A variable name systemd and a shell accept: ``[A-Za-z_][A-Za-z0-9_]*``."""
    return bool(_ENV_NAME.match(name))


def encode(value: bytes, *, secret: bool) -> str:
    """The stored form of a value: ``literal:`` for plain cfg text, else ``base64:``."""
    if not secret:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if text is not None and _LITERAL.match(text) and not _NOT_LITERAL.search(text):
            return f"literal:{text}"
    return "base64:" + base64.urlsafe_b64encode(value).decode("ascii")


def decode(key: str, raw: str) -> bytes:
    """A stored value's bytes; ``key`` names it in errors."""
    if raw.startswith("literal:"):
        return raw[len("literal:") :].encode()
    if raw.startswith("base64:"):
        try:
            return base64.b64decode(raw[len("base64:") :], altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise KvError(f"the value of key {key!r} is not valid base64") from None
    if raw.startswith("crypt:"):
        raise KvError(
            f"key {key!r} is encrypted (crypt:): decrypting needs om3's cluster key, "
            "which omc does not support yet"
        )
    return raw.encode()


@dataclass(frozen=True, slots=True)
class Store:
    """The keys of one store, in file order (a key written twice: the last one wins)."""

    text: str
    entries: dict[str, Entry]
    lines: dict[str, list[tuple[int, int]]]  # key -> every (first, last) line it occupies
    header: int | None  # the line of the first [data] header, None without one

    def all_keys(self) -> list[str]:
        return list(self.entries)

    def has(self, key: str) -> bool:
        return key in self.entries

    def value(self, key: str) -> bytes:
        entry = self.entries.get(key)
        if entry is None:
            raise KvError(f"no key {key!r}")
        return decode(key, entry.value)

    def matching(self, pattern: str) -> list[str]:
        """Keys matching a glob as om3 matches them (``*`` stays within one ``/`` word,
        and a pattern naming a directory matches every key under it)."""
        return [k for k in self.entries if match(pattern, k)]


def read(text: str, *, filename: str) -> Store:
    """The ``[data]`` keys of a config text (scoped entries, ``key@node``, are not keys)."""
    doc: Document = parse(text, filename=filename, diags=Collector(file=filename))
    section = doc.section(DATA)
    entries: dict[str, Entry] = {}
    lines: dict[str, list[tuple[int, int]]] = {}
    for entry in section.entries if section else ():
        if entry.scope is not None:
            continue
        entries.pop(entry.key, None)  # re-inserted: file order is the last occurrence's
        entries[entry.key] = entry
        first = entry.key_at[0]
        lines.setdefault(entry.key, []).append((first, first + entry.value.count("\n")))
    return Store(
        text=text, entries=entries, lines=lines, header=section.span.line if section else None
    )


def with_key(store: Store, key: str, stored: str) -> str:
    """The text with ``key = stored`` as the key's only line, after the store's last key."""
    line = f"{key} = {stored}"
    if store.header is None:
        text = store.text if store.text.endswith("\n") or not store.text else store.text + "\n"
        return f"{text}\n[{DATA}]\n{line}\n"
    kept = [end for k, spans in store.lines.items() if k != key for _, end in spans]
    return _edit(store, drop=store.lines.get(key, []), insert_after=max(kept, default=store.header),
                 line=line)  # fmt: skip


def without_key(store: Store, key: str) -> str:
    """The text without any line of ``key``."""
    return _edit(store, drop=store.lines.get(key, []), insert_after=0, line="")


def _edit(store: Store, *, drop: list[tuple[int, int]], insert_after: int, line: str) -> str:
    gone = {n for first, last in drop for n in range(first, last + 1)}
    out: list[str] = []
    for number, text in enumerate(store.text.split("\n"), start=1):
        if number not in gone:
            out.append(text)
        if number == insert_after and line:
            out.append(line)
    return "\n".join(out)


def match(pattern: str, key: str) -> bool:
    """fnmatch with FNM_PATHNAME | FNM_LEADING_DIR, word by word."""
    want, have = pattern.split("/"), key.split("/")
    if len(have) < len(want):
        return False
    return all(fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=False))


# ---------------------------------------------------------------------------
# References: configs_environment / secrets_environment items


@dataclass(frozen=True, slots=True)
class Ref:
    """``VAR=<object>/<key>`` (``var`` set) or ``<object>/<glob>`` (``var`` None)."""

    var: str | None
    name: str
    key: str

    def __str__(self) -> str:
        ref = f"{self.name}/{self.key}"
        return f"{self.var}={ref}" if self.var is not None else ref


def parse_ref(item: str) -> Ref:
    """One item of a ``*_environment`` list; :class:`KvError` says what is wrong."""
    from .contract.paths import name_error

    var, eq, ref = item.partition("=")
    if not eq:
        var, ref = "", item
    name, slash, key = ref.partition("/")
    if not slash or not name or not key:
        raise KvError(f"{item!r} is not VAR=<object>/<key> nor <object>/<key glob>")
    if eq and not env_name_ok(var):
        raise KvError(f"{item!r}: {var!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if why := name_error(name):
        raise KvError(f"{item!r}: {why}")
    if eq and (why := key_error(key)):
        raise KvError(f"{item!r}: {why}")
    return Ref(var=var if eq else None, name=name, key=key)
