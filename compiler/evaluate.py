"""Evaluation of a parsed config for one node: scoping, inheritance, references.

Scoping (opensvc.md §1.6, om3 ``xconfig.descope``), most specific first:

==================  =============================================
level               applies when the evaluating node ...
==================  =============================================
``kw@<nodename>``   is that node (case-insensitive)
``kw@nodes``        is in ``DEFAULT.nodes``
``kw@drpnodes``     is in ``DEFAULT.drpnodes``
``kw@encapnodes``   is in ``DEFAULT.encapnodes``
``kw@flex_primary`` is the flex primary (v2/book; om3 ignores it)
``kw@drp_flex_...`` is the drp flex primary (v2/book)
``kw``              always
==================  =============================================

Each level tries the keyword's name, then its aliases; the last definition
in the file wins inside a level. Non-scopable keywords ignore ``@`` entries.

References (§1.7) ``{[modifier:][#]ref[[n]]}`` are expanded as raw strings;
converters run on the final value only. Well-known names (``{nodename}``,
``{name}``, ``{namespace}``, ``{id}`` ...) come first, then ``{env.k}``,
then ``{section.kw}`` / ``{kw}`` (the current section, then DEFAULT).
References the runtime resolves later (``exposed_devs``, ``volume#x.mnt``,
``{node.*}``, ``{dns}``, ``{safe://}``) are left as written. A reference to
an unknown section or keyword is an error; a known keyword with no value is
left as written with a warning (om3 leaves it unchanged).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from . import ir
from .convert import ConvertError, convert
from .diagnostics import Collector, Span
from .keywords import (
    DEFAULT_TYPES,
    FREEFORM_SECTIONS,
    Conv,
    Inherit,
    Keyword,
    canonical_type,
    lookup,
    section_keywords,
)
from .parse import DEFAULT, Document, Entry, Section
from .records import Record, direct_init

# om3: ({[\w#.-_:]+}) -- ".-_" is a character range (digits, "/", ":", "@", "[", "]", A-Z ...).
REFERENCE = re.compile(r"\{([\w#.-_:]+)\}")
MODIFIERS = {
    "upper": str.upper,
    "lower": str.lower,
    "capitalize": str.capitalize,
    "title": str.title,
    "swapcase": str.swapcase,
}
_INDEX = re.compile(r"(.*)\[(-?[0-9]+)\]")
_SPECIAL_SCOPES = ("nodes", "drpnodes", "encapnodes", "flex_primary", "drp_flex_primary")
_SCOPE_DEPENDS = {
    "nodes": ("nodes",),
    "drpnodes": ("drpnodes",),
    "encapnodes": ("encapnodes",),
    "flex_primary": ("flex_primary", "nodes"),
    "drp_flex_primary": ("drp_flex_primary", "drpnodes"),
}
_SCOPE_KEYS = frozenset(k for deps in _SCOPE_DEPENDS.values() for k in deps)
_DEFERRED_KEYS = frozenset(("exposed_devs", "sub_devs", "base_devs"))
_DEFERRED_NAMES = frozenset(
    ("dns", "dnsuxsock", "dnsuxsockd", "collector_api", "dns_janitor_major")
)


class Origin(StrEnum):
    """Where an evaluated value came from."""

    SECTION = "section"
    DEFAULT_SECTION = "DEFAULT"
    KEYWORD_DEFAULT = "default"


@direct_init
@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Value(Record):
    """An evaluated keyword: the expanded text and where it came from."""

    text: str
    span: Span | None  # None for a keyword default
    origin: Origin
    entry: Entry | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Context(Record):
    """Who evaluates: the node, the object path, overrides and cluster facts."""

    node: str
    path: ir.ObjectPath
    env: Mapping[str, str] = field(default_factory=dict)
    cluster: Mapping[str, str] = field(default_factory=dict)


_UNKNOWN = Value(text="", span=None, origin=Origin.KEYWORD_DEFAULT)  # not evaluated yet


class _UnresolvedError(Exception):
    """A reference that stays as written (deferred, or a known keyword with no value)."""


class Evaluator:
    """Lazily evaluates keywords of one document for one node, with caching."""

    def __init__(self, document: Document, *, ctx: Context, diags: Collector) -> None:
        self.document = document
        self.ctx = ctx
        self.diags = diags
        self.node = ctx.node.lower()
        self._sections = {s.name: s for s in document.sections}
        self._cache: dict[tuple[str, str], Value | None] = {}
        self._stack: list[tuple[str, str]] = []
        self._known = self._static_references()
        self._index: dict[str, dict[str, list[Entry]]] = {}
        # Per section: the last unscoped entry of each key, and the keys with a
        # scoped entry (most have none): descope's answer without a scan.
        self._unscoped: dict[str, dict[str, Entry]] = {}
        self._scoped: dict[str, frozenset[str]] = {}
        for section in document.sections:  # one pass over the entries: one per line
            by_key = self._index.setdefault(section.name, {})
            unscoped: dict[str, Entry] = {}
            scoped: set[str] = set()
            for entry in section.entries:
                by_key.setdefault(entry.key, []).append(entry)
                if entry.scope is None:
                    unscoped[entry.key] = entry
                else:
                    scoped.add(entry.key)
            self._unscoped[section.name] = unscoped
            self._scoped[section.name] = frozenset(scoped)
        self._keys = {name: frozenset(by_key) for name, by_key in self._index.items()}
        self._scope_cache: list[str | None] | None = None
        self._types: dict[str, str] = {}

    # --- public ------------------------------------------------------------------

    def section(self, name: str) -> Section | None:
        return self._sections.get(name)

    def keys(self, section: str) -> frozenset[str]:
        """``Section.keys()`` of a section (empty when absent), computed once."""
        return self._keys.get(section, frozenset())

    def driver_type(self, rid: str) -> str:
        """The canonical driver type of a resource section (default when unset)."""
        known = self._types.get(rid)
        if known is not None:
            return known
        group = rid.split("#", 1)[0]
        value = self.get(rid, "type")
        raw = value.text if value else ""
        found = canonical_type(group, raw.strip().lower() if raw else DEFAULT_TYPES.get(group, ""))
        self._types[rid] = found
        return found

    def keyword(self, section: str, name: str) -> Keyword | None:
        """The table entry for ``name`` in a section (driver type considered)."""
        kind = section_kind(section)
        if kind in FREEFORM_SECTIONS:
            return None
        generic = kind in (DEFAULT, "subset") or name == "type"
        driver_type = None if generic else self.driver_type(section)
        return lookup(kind, name, driver_type) or lookup(kind, name, None)

    def get(self, section: str, name: str) -> Value | None:
        """Evaluate ``section.name`` (scoping, inheritance, default, references)."""
        return self._get(section, name, None)

    def get_resolved(self, section: str, keyword: Keyword) -> Value | None:
        """``get(section, keyword.name)`` for the caller that knows ``keyword`` is
        what :meth:`keyword` finds for that name in ``section``: evaluating every
        keyword of every resource, lowering saves the table lookups that tell."""
        return self._get(section, keyword.name, keyword)

    def _get(self, section: str, name: str, keyword: Keyword | None) -> Value | None:
        key = (section, name)
        value = self._cache.get(key, _UNKNOWN)
        if value is not _UNKNOWN:
            return value
        if key in self._stack:
            self._loop(key)
            return None
        self._stack.append(key)
        try:
            if keyword is None:
                value = self._evaluate(section, name)
            else:
                value = self._inherited(section, keyword)
        finally:
            self._stack.pop()
        self._cache[key] = value
        return value

    def expand(self, text: str, *, section: str, span: Span | None) -> str:
        """Replace every ``{...}`` reference in ``text``."""
        if "{" not in text:
            return text
        return REFERENCE.sub(lambda m: self._substitute(m, section=section, span=span), text)

    def entries(self, section: str, name: str, aliases: tuple[str, ...] = ()) -> list[Entry]:
        sec = self._sections.get(section)
        names = (name, *aliases)
        return [e for e in sec.entries if e.key in names] if sec else []

    # --- scoping -----------------------------------------------------------------

    def descope(self, section: str, names: tuple[str, ...], *, scopable: bool) -> Entry | None:
        """The entry that applies to this node, by om3 precedence (module doc)."""
        unscoped = self._unscoped.get(section)
        if unscoped is None:
            return None
        if scopable and not self._scoped[section].isdisjoint(names):
            found = self._scoped_entry(self._index[section], names)
            if found is not None:
                return found
        for name in names:  # the first name with an unscoped entry, its last one
            entry = unscoped.get(name)
            if entry is not None:
                return entry
        return None

    def _scoped_entry(self, by_key: dict[str, list[Entry]], names: tuple[str, ...]) -> Entry | None:
        """The last entry of the most specific scope that applies, names in order."""
        candidates = [by_key[n] for n in names if n in by_key]
        for level in self._scopes():
            for entries in candidates:
                found = [e for e in entries if _scope_is(e, level)]
                if found:
                    return found[-1]
        return None

    def _scopes(self) -> list[str | None]:
        """The scopes that apply to this node, most specific first (cached once stable)."""
        if self._scope_cache is not None:
            return self._scope_cache
        out: list[str | None] = [self.node]
        out.extend(s for s in _SPECIAL_SCOPES if self._member(s))
        if not any(key[0] == DEFAULT and key[1] in _SCOPE_KEYS for key in self._stack):
            self._scope_cache = out
        return out

    def _member(self, scope: str) -> bool:
        """Is the evaluating node in DEFAULT.<scope> (or the flex primary)?

        A scope whose own keyword is being evaluated does not apply
        (``nodes@nodes`` cannot depend on itself).
        """
        if any((DEFAULT, k) in self._stack for k in _SCOPE_DEPENDS[scope]):
            return False
        if scope in ("flex_primary", "drp_flex_primary"):
            return self._is_flex_primary(scope)
        value = self.get(DEFAULT, scope)
        words = value.text.lower().split() if value else []
        return any(fnmatch.fnmatchcase(self.node, w) for w in words)

    def _is_flex_primary(self, scope: str) -> bool:
        value = self.get(DEFAULT, scope)
        if value is not None and value.text.strip():
            return value.text.strip().lower() == self.node
        source = self.get(DEFAULT, "nodes" if scope == "flex_primary" else "drpnodes")
        words = source.text.lower().split() if source else []
        return bool(words) and words[0] == self.node

    # --- inheritance -------------------------------------------------------------

    def _evaluate(self, section: str, name: str) -> Value | None:
        kind = section_kind(section)
        if kind in FREEFORM_SECTIONS:
            return self._freeform(section, name)
        keyword = self.keyword(section, name)
        if keyword is None:
            entry = self.descope(section, (name,), scopable=True)
            return self._from_entry(entry, section) if entry else None
        return self._inherited(section, keyword)

    def _freeform(self, section: str, name: str) -> Value | None:
        if section == "env" and name in self.ctx.env:
            return Value(text=self.ctx.env[name], span=None, origin=Origin.SECTION)
        entry = self.descope(section, (name,), scopable=True)
        if entry is None:
            return None
        if section == "data":  # cfg/sec data values are stored, not evaluated
            return Value(text=entry.value, span=entry.value_span, origin=Origin.SECTION)
        return self._from_entry(entry, section)

    def _inherited(self, section: str, keyword: Keyword) -> Value | None:
        here = self.descope(section, keyword.names, scopable=keyword.scopable)
        inherit = keyword.inherit
        if here is not None and inherit is Inherit.LEAF2HEAD:  # the common case
            return self._from_entry(here, section)  # whatever DEFAULT holds
        at_default = None
        if section != DEFAULT and inherit in _FROM_DEFAULT:
            names = _head_names(keyword.default_option or keyword.name)
            at_default = self.descope(DEFAULT, names, scopable=True)
        if inherit is Inherit.HEAD2LEAF and at_default is not None:
            return self._from_entry(at_default, DEFAULT, origin=Origin.DEFAULT_SECTION)
        if here is not None and (section == DEFAULT or inherit is not Inherit.HEAD):
            return self._from_entry(here, section)
        if at_default is not None:
            return self._from_entry(at_default, DEFAULT, origin=Origin.DEFAULT_SECTION)
        if keyword.default_option and keyword.default is None:
            head_value = self.get(DEFAULT, keyword.default_option)
            if head_value is not None:
                return head_value
        if keyword.default is None:
            return None
        if "{" not in keyword.default:
            return _plain_default(keyword.default)
        sec = self._sections.get(section)
        text = self.expand(keyword.default, section=section, span=sec.span if sec else None)
        return Value(text=text, span=None, origin=Origin.KEYWORD_DEFAULT)

    def _from_entry(self, entry: Entry, section: str, origin: Origin = Origin.SECTION) -> Value:
        text = self.expand(entry.value, section=section, span=entry.value_span)
        return Value(text=text, span=entry.value_span, origin=origin, entry=entry)

    # --- references --------------------------------------------------------------

    def _substitute(self, match: re.Match[str], *, section: str, span: Span | None) -> str:
        body = match.group(1)
        try:
            return self._reference(body, section=section, span=span)
        except _UnresolvedError:
            return match.group(0)
        except ConvertError as exc:
            self.diags.error(span, f"reference {{{body}}}: {exc.message}", code="bad-reference")
            return match.group(0)

    def _reference(self, body: str, *, section: str, span: Span | None) -> str:
        modifier = None
        head, sep, rest = body.partition(":")
        if sep and head in MODIFIERS:
            modifier, body = MODIFIERS[head], rest
        count = body.startswith("#")
        if count:
            body = body[1:]
        index = None
        indexed = _INDEX.fullmatch(body)
        if indexed:
            body, index = indexed.group(1), int(indexed.group(2))
        text, conv = self._resolve(body, section=section, span=span)
        if count:
            text = str(_count(text, conv))
        elif index is not None:
            words = text.split()
            if not -len(words) <= index < len(words):
                raise ConvertError(f"index {index} out of range ({len(words)} words)")
            text = words[index]
        return modifier(text) if modifier else text

    def _resolve(self, ref: str, *, section: str, span: Span | None) -> tuple[str, Conv | None]:
        known = self._well_known(ref, section)
        if known is not None:
            return known, None
        if ref in _DEFERRED_NAMES or ref.startswith(("node.", "safe:")):
            raise _UnresolvedError
        target, dot, option = ref.rpartition(".")
        if not dot:
            return self._option(ref, (section, DEFAULT), span=span, ref=ref)
        if target == "env" or target in self._sections:
            if option in _DEFERRED_KEYS or (target.startswith("volume#") and option == "mnt"):
                raise _UnresolvedError
            return self._option(option, (target,), span=span, ref=ref)
        if option in _DEFERRED_KEYS:
            raise _UnresolvedError
        self.diags.error(
            span,
            f"unknown reference {{{ref}}}: no section [{target}]",
            code="unknown-reference",
            hint=_sections_hint(self._sections),
        )
        raise _UnresolvedError

    def _option(
        self, option: str, sections: tuple[str, ...], *, span: Span | None, ref: str
    ) -> tuple[str, Conv | None]:
        for target in sections:
            value = self.get(target, option)
            if value is not None:
                keyword = self.keyword(target, option)
                return value.text, keyword.conv if keyword else None
        if any(self.keyword(t, option) is not None for t in sections):
            self.diags.warning(
                span,
                f"reference {{{ref}}} has no value here; left as written",
                code="empty-reference",
            )
            raise _UnresolvedError
        self.diags.error(
            span,
            f"unknown reference {{{ref}}}",
            code="unknown-reference",
            hint=_reference_hint(ref, sections[0]),
        )
        raise _UnresolvedError

    def _loop(self, key: tuple[str, str]) -> None:
        start = self._stack.index(key)
        chain = [f"{s}.{k}" for s, k in (*self._stack[start:], key)]
        entry = self.descope(key[0], (key[1],), scopable=True)
        span = entry.value_span if entry else None
        self.diags.error(span, "reference loop: " + " -> ".join(chain), code="reference-loop")

    def _well_known(self, ref: str, section: str) -> str | None:
        if ref in ("rid", "rindex", "rgroup"):
            rgroup, _, rindex = section.partition("#")
            return {"rid": section, "rindex": rindex, "rgroup": rgroup}[ref]
        if ref == "id":
            value = self.get(DEFAULT, "id")
            return value.text if value else ""
        return self._known.get(ref)

    def _static_references(self) -> dict[str, str]:
        """Well-known references that do not depend on the section (built once)."""
        path, cluster = self.ctx.path, self.ctx.cluster
        clustername = cluster.get("clustername", "default")
        domain = f"{path.namespace}.{path.kind}.{clustername}"
        scaler = re.sub(r"^[0-9]+\.", "", path.name)
        known = {
            "nodename": self.node,
            "short_nodename": self.node.split(".", 1)[0],
            "name": path.name,
            "svcname": path.name,
            "short_name": path.name.split(".", 1)[0],
            "short_svcname": path.name.split(".", 1)[0],
            "scaler_name": scaler,
            "scaler_short_name": scaler.split(".", 1)[0],
            "namespace": path.namespace,
            "kind": str(path.kind),
            "path": str(path),
            "svcpath": str(path),
            "fqdn": f"{path.name}.{domain}",
            "domain": domain,
            "clustername": clustername,
            "clusterid": cluster.get("clusterid", ""),
            "clusternodes": cluster.get("clusternodes", self.node),
            "clusterdrpnodes": cluster.get("clusterdrpnodes", ""),
            "dnsnodes": cluster.get("dnsnodes", cluster.get("clusternodes", self.node)),
            "etc": "/etc/opensvc",
            "var": "/var/lib/opensvc",
            "private_var": _private_var(path),
            "initd": f"/etc/opensvc/{path.name}.d",
            "svcmgr": "om svc",
            "nodemgr": "om node",
        }
        if "dns" in cluster:  # else deferred: the runtime knows the cluster dns
            known["dns"] = cluster["dns"]
        return known


_FROM_DEFAULT = frozenset((Inherit.LEAF2HEAD, Inherit.HEAD2LEAF))


@cache
def _runtime_only(text: str) -> bool:
    """Every reference in ``text`` is a ``{node.*}`` one, which :meth:`Evaluator._resolve`
    leaves as written (no well-known name starts with ``node.``)."""
    refs = REFERENCE.findall(text)
    return bool(refs) and all(r.startswith("node.") for r in refs)


def _plain_default(text: str) -> Value:
    """A keyword default without references: one shared (immutable) value per text."""
    return Value(text=text, span=None, origin=Origin.KEYWORD_DEFAULT)


@cache
def plain_defaults(
    kind: str, driver_type: str | None
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], Value]]:
    """Keywords whose unset value is a plain default, by name: (their names, the DEFAULT
    names they inherit from, the value). Only keywords :meth:`Evaluator.keyword` resolves
    to themselves, so the defaults lowering copies whole (``lower._KeywordTable``) are
    what :meth:`Evaluator.get` gives the same keyword.

    A default whose references are all left for run time (``{node.node.prkey}``)
    counts as plain: expanding it gives it back as written."""
    found: dict[str, tuple[tuple[str, ...], tuple[str, ...], Value]] = {}
    for k in section_keywords(kind, driver_type):
        if k.default is None or k.name == "type" or k.name in found:
            continue
        if "{" in k.default and not _runtime_only(k.default):
            continue
        if (lookup(kind, k.name, driver_type) or lookup(kind, k.name, None)) is not k:
            continue
        heads = _head_names(k.default_option or k.name) if k.inherit in _FROM_DEFAULT else ()
        found[k.name] = (k.names, heads, _plain_default(k.default))
    return found


@cache
def _head_names(name: str) -> tuple[str, ...]:
    """The names (aliases included) under which DEFAULT holds ``name``."""
    head = lookup(DEFAULT, name)
    return head.names if head else (name,)


@cache  # called for every keyword evaluated: section names repeat
def section_kind(section: str) -> str:
    """``ip#0`` → ``ip``; ``subset#app:x`` → ``subset``; ``DEFAULT`` and free-form as is."""
    if section.startswith("subset#"):
        return "subset"
    return section.split("#", 1)[0] if "#" in section else section


def _scope_is(entry: Entry, level: str | None) -> bool:
    if level is None:
        return entry.scope is None
    return entry.scope is not None and entry.scope.lower() == level


def _count(text: str, conv: Conv | None) -> int:
    """Items of the converted list (bad values are reported by their own keyword)."""
    if conv in (Conv.LIST, Conv.LISTLOWER, Conv.SET, Conv.NODES, Conv.SHLEX):
        try:
            value = convert(conv, text).value
        except ConvertError:
            return len(text.split())
        return len(value) if isinstance(value, tuple) else len(text.split())
    return len(text.split())


def _private_var(path: ir.ObjectPath) -> str:
    if path.namespace == "root":
        return f"/var/lib/opensvc/{path.kind}/{path.name}"
    return f"/var/lib/opensvc/namespaces/{path.namespace}/{path.kind}/{path.name}"


def _sections_hint(sections: Mapping[str, Section]) -> str:
    names = ", ".join(sorted(sections)) or "none"
    return f"sections in this file: {names}"


def _reference_hint(ref: str, section: str) -> str:
    if "." not in ref:
        return f"not a keyword of [{section}] or [DEFAULT]; for an [env] key write {{env.{ref}}}"
    return "write {<section>.<keyword>}, e.g. {fs#1.mnt} or {env.key}"
