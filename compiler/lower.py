"""Lowering: Document + keyword table + evaluation for a node → ``ir.Service``.

One pass over the whole file that collects every diagnostic (it never raises
on bad input). What is an error and what is a warning:

=====================================================  ========  ===========================
finding                                                severity  effect
=====================================================  ========  ===========================
unknown keyword (did-you-mean hint)                    error     file rejected
bad value for the keyword's converter / candidates     error     file rejected
missing required keyword (``fs.mnt``, ``disk.file``)   error     file rejected
unknown reference, reference loop                      error     file rejected
unknown section name                                   error     file rejected
rid outside the grammar (``[fs#a/b]``, ``[fs#]``)       error     file rejected
driver omc does not run (legacy v1/v2 type or group,   error     file rejected
om3-only driver such as ``disk.crypt``)
... same, on an ``optional`` or ``disable``\\d resource  warning   resource skipped
keyword of another driver type of the group            warning   ignored
v1/v2-only keyword (``DEFAULT.docker_data_dir``)       warning   ignored
``yes``/``no`` boolean                                 warning   honoured
scope on a non-scopable keyword                        warning   scoped line ignored
node/cluster-only section (``[hb#1]``)                 warning   ignored
duplicate key / section                                warning   last wins
=====================================================  ========  ===========================
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from . import ir
from .contract.paths import RID_INDEX_MAX, rid_error
from .convert import ConvertError, convert
from .diagnostics import Collector, Span
from .evaluate import (
    REFERENCE,
    Context,
    Evaluator,
    Origin,
    plain_defaults,
    section_kind,
)
from .keywords import (
    FREEFORM_SECTIONS,
    INSTEAD,
    LEGACY_GROUPS,
    NODE_GROUPS,
    Conv,
    Keyword,
    Status,
    Support,
    driver_name,
    driver_support,
    lookup,
    lookup_any_type,
    section_keywords,
    suggest,
)
from .lower_resources import BUILDERS, Keywords, kv_refs
from .parse import DEFAULT, Document, Section
from .records import Record
from .values import jsonable_config, process_group

RESOURCE_GROUPS = frozenset(g.value for g in ir.Group)
TRIGGER_ACTIONS = ("start", "stop", "run", "provision", "unprovision")
_KV_KEYWORDS = frozenset(("configs_environment", "secrets_environment"))


def lower(
    document: Document,
    *,
    path: ir.ObjectPath,
    node: str,
    source: str,
    env: Mapping[str, str],
    cluster: Mapping[str, str],
    diags: Collector,
) -> ir.Service | None:
    """Build the service for ``node``; None only when DEFAULT itself cannot be evaluated."""
    ctx = Context(node=node, path=path, env=env, cluster=cluster)
    ev = Evaluator(document, ctx=ctx, diags=diags)
    resource_sections: list[Section] = []
    subset_sections: list[Section] = []
    for section in document.sections:
        role = _classify(section, diags)
        if role == "resource":
            resource_sections.append(section)
        elif role == "subset":
            subset_sections.append(section)
        if role in ("resource", "subset", DEFAULT):
            _validate_keywords(section, ev, diags)
    resources = [r for s in resource_sections if (r := _resource(s, ev, diags)) is not None]
    subsets = _subsets(subset_sections, resources, ev, diags)
    return _service(ev, path=path, source=source, resources=resources, subsets=subsets)


# --- sections --------------------------------------------------------------------


def _classify(section: Section, diags: Collector) -> str:
    """``DEFAULT``, ``resource``, ``subset``, ``freeform`` or ``ignored``."""
    name = section.name
    if name == DEFAULT:
        return DEFAULT
    if name in FREEFORM_SECTIONS:
        return "freeform"
    group, sep, _ = name.partition("#")
    if name.startswith("subset#"):
        return "subset" if _valid_subset(section, diags) else "ignored"
    if group in RESOURCE_GROUPS and sep:
        return "resource" if _valid_rid(section, diags) else "ignored"
    if group in LEGACY_GROUPS:
        return "resource"  # reported as a legacy driver by _resource
    if group in NODE_GROUPS:
        diags.warning(
            section.span,
            f"[{name}] belongs in a node or cluster config; ignored",
            code="node-section",
        )
        return "ignored"
    diags.error(
        section.span,
        f"unknown section [{name}]",
        code="unknown-section",
        hint="resource sections are <group>#<index> with group one of "
        + ", ".join(g.value for g in ir.Group),
    )
    return "ignored"


def _valid_rid(section: Section, diags: Collector) -> bool:
    """The contract's rid grammar: a rid becomes part of file and unit names at run time."""
    why = rid_error(section.name)
    if not why:
        return True
    group, _, index = section.name.partition("#")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", index).lstrip("-")[:RID_INDEX_MAX] or "0"
    span = section.span
    diags.error(
        Span(file=span.file, line=span.line, column=span.column + 1, end_line=span.line,
             end_column=span.column + 1 + len(section.name)),
        why,
        code="bad-section",
        hint=f"rename the section, e.g. [{group}#{safe}]",
    )  # fmt: skip
    return False


def _valid_subset(section: Section, diags: Collector) -> bool:
    spec = section.name.removeprefix("subset#")
    group, sep, name = spec.partition(":")
    if sep and name and group in RESOURCE_GROUPS:
        return True
    base = group.split(".", 1)[0]
    if base in RESOURCE_GROUPS and sep and name:
        diags.error(
            section.span,
            f"typed subset section [{section.name}] is v1 syntax; om3 removed it",
            code="legacy-section",
            hint=f"write [subset#{base}:{name}]",
        )
        return False
    diags.error(
        section.span,
        f"invalid subset section [{section.name}]",
        code="bad-section",
        hint="write [subset#<group>:<name>]",
    )
    return False


def _validate_keywords(section: Section, ev: Evaluator, diags: Collector) -> None:
    kind = section_kind(section.name)
    kind = "disk" if kind in LEGACY_GROUPS else kind
    driver_type = None
    if kind in RESOURCE_GROUPS and section.name.split("#", 1)[0] == kind:
        driver_type = ev.driver_type(section.name)
        if driver_support(kind, driver_type) is not Support.EMITTED:
            driver_type = None  # reported once by _resource; accept any type's keywords
    for entry in section.entries:
        keyword = lookup(kind, entry.key, driver_type)
        if keyword is None:
            _unknown_keyword(section, entry.key, entry.span, kind, driver_type, diags=diags)
            continue
        if keyword.status is Status.LEGACY:
            diags.warning(
                entry.span,
                f"'{entry.key}' in [{section.name}] is a v1/v2 keyword; ignored",
                code="legacy-keyword",
            )
        elif keyword.status is Status.DEPRECATED:
            diags.warning(
                entry.span,
                f"'{entry.key}' is deprecated",
                code="deprecated-keyword",
                hint=f"use '{keyword.name}'" if keyword.name != entry.key else None,
            )
        if entry.scope is not None and not keyword.scopable:
            diags.warning(
                entry.span,
                f"'{keyword.name}' is not scopable; '{entry.raw_key}' is ignored",
                code="not-scopable",
            )
        elif entry.scope is not None:
            _check_scope(entry.scope, entry.span, ev, diags)


SPECIAL_SCOPES = ("nodes", "drpnodes", "encapnodes", "flex_primary", "drp_flex_primary")


def _check_scope(scope: str, span: Span, ev: Evaluator, diags: Collector) -> None:
    """Warn about a scope that can never apply: not special, not a declared node."""
    if scope.lower() in SPECIAL_SCOPES:
        return
    declared: list[str] = []
    for name in ("nodes", "drpnodes", "encapnodes"):
        declared.extend(w.lower() for e in ev.entries(DEFAULT, name) for w in e.value.split())
    if not declared or any(fnmatch.fnmatchcase(scope.lower(), w) for w in declared):
        return
    import difflib  # lazily: only for a typo's hint, not on the cold path

    close = difflib.get_close_matches(scope.lower(), [*SPECIAL_SCOPES, *declared], n=1)
    diags.warning(
        span,
        f"scope '@{scope}' is not a node of nodes, drpnodes or encapnodes",
        code="unknown-scope",
        hint=f"did you mean '@{close[0]}'?" if close else None,
    )


def _unknown_keyword(
    section: Section,
    key: str,
    span: Span,
    kind: str,
    driver_type: str | None,
    *,
    diags: Collector,
) -> None:
    other = lookup_any_type(kind, key) if driver_type else None
    if other is not None:
        diags.warning(
            span,
            f"'{key}' does not apply to {kind}.{driver_type} in [{section.name}]; ignored",
            code="keyword-not-for-driver",
            hint="it applies to: " + ", ".join(sorted(other.types or ())),
        )
        return
    close = suggest(kind, key, driver_type)
    diags.error(
        span,
        f"unknown keyword '{key}' in [{section.name}]",
        code="unknown-keyword",
        hint=f"did you mean '{close}'?"
        if close
        else f"see 'omc keywords {kind}{'.' + driver_type if driver_type else ''}'",
    )


# --- keyword evaluation ----------------------------------------------------------


_NO_SHORTCUT = object()


class _Candidate(NamedTuple):
    """One keyword of a driver's table, with what evaluating it in a section needs."""

    keyword: Keyword
    plain: bool
    """Its value where it is set nowhere is known once per driver (see
    :class:`_KeywordTable`): taken from ``defaults``, not evaluated."""
    resolves: bool
    """:meth:`Evaluator.keyword` finds this very keyword for its name, so
    :meth:`Evaluator.get_resolved` may skip that lookup."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class _KeywordTable(Record):
    """The keywords of one driver (or of DEFAULT, or of subsets) as
    :func:`evaluate_keywords` walks them; built once per driver by :func:`_keyword_table`.

    A driver has some 70 keywords and a section writes a handful. Of the others,
    most have no default (they stay unset, nothing to do) and nearly all the rest a
    *plain* one (some 17 per driver): a constant that no rule of
    :meth:`Evaluator.get` changes unless the section writes the keyword (under any
    name) or DEFAULT sets what it inherits. Plain defaults are converted once here
    and copied whole into a section's values; only the keywords written somewhere,
    and the few with another kind of default, are evaluated one by one. The
    indexes make a section cost in proportion to what it and DEFAULT write, not to
    the size of the table.
    """

    candidates: tuple[_Candidate, ...]
    """The non-legacy keywords in table order, the order they are evaluated (and
    their diagnostics reported) in."""
    defaults: Mapping[str, Any]
    """Name -> converted plain default. A plain default left for run time
    (``{node.node.prkey}``) has no entry: the keyword stays unset."""
    by_name: Mapping[str, tuple[int, ...]]
    """Name or alias -> positions: what a section's (or DEFAULT's) few keys name."""
    by_head: Mapping[str, tuple[int, ...]]
    """DEFAULT keyword -> positions of the plain keywords inheriting from it (under
    a name that is not always theirs): set in DEFAULT, it overrides their default."""
    defaulted: frozenset[int]
    """Positions of the keywords that have a value even when unset but no plain
    default (a default with references, a ``default_option``): evaluated in every
    section."""

    def written(self, present: frozenset[str], head_keys: frozenset[str]) -> set[int]:
        """Positions of the plain keywords whose default does not apply as is:
        written in the section (``present``: its keys) or set in DEFAULT
        (``head_keys``) under a name they inherit."""
        candidates = self.candidates
        found = {at for key in present for at in self.by_name.get(key, ()) if candidates[at].plain}
        for key in self.by_head.keys() & head_keys:  # most DEFAULT keys name no such keyword
            found.update(self.by_head[key])
        return found

    def to_evaluate(
        self, present: frozenset[str], head_keys: frozenset[str], written: set[int]
    ) -> list[int]:
        """Positions, in table order, of the keywords to evaluate one by one: the
        ``written`` plain ones, and of the others those with a default, present in
        the section (under any name) or set in DEFAULT (under their own name)."""
        found = set(self.defaulted)
        found.update(written)
        for key in present:  # a plain keyword named here is one of ``written``
            found.update(self.by_name.get(key, ()))
        candidates = self.candidates
        for key in self.by_name.keys() & head_keys:  # a plain one: written, or not inheriting
            found.update(
                at
                for at in self.by_name[key]
                if candidates[at].keyword.name == key and not candidates[at].plain
            )
        return sorted(found)


@cache
def _keyword_table(kind: str, driver_type: str | None) -> _KeywordTable:
    """The :class:`_KeywordTable` of a section kind and driver.

    A keyword is plain when :func:`plain_defaults` lists it, its default converts
    without a diagnostic, and no other keyword of the table shares its name (those
    are left to the one-by-one path, which picks the first)."""
    keywords = [k for k in section_keywords(kind, driver_type) if k.status is not Status.LEGACY]
    plain = plain_defaults(kind, driver_type) if kind not in FREEFORM_SECTIONS else {}
    count: dict[str, int] = {}
    for k in keywords:
        count[k.name] = count.get(k.name, 0) + 1
    candidates: list[_Candidate] = []
    defaults: dict[str, Any] = {}
    by_name: dict[str, list[int]] = {}
    by_head: dict[str, list[int]] = {}
    defaulted: set[int] = set()
    for at, k in enumerate(keywords):
        for name in k.names:
            by_name.setdefault(name, []).append(at)
        found = plain.get(k.name) if count[k.name] == 1 else None
        value = _NO_SHORTCUT if found is None else _quiet_convert(k, found[2].text)
        is_plain = found is not None and value is not _NO_SHORTCUT
        candidates.append(_Candidate(k, is_plain, _resolves(k, kind, driver_type)))
        if found is None or not is_plain:
            if k.default is not None or k.default_option:
                defaulted.add(at)
            continue
        _, heads, default = found
        if "{" not in default.text:  # else left for run time: it stays unset
            defaults[k.name] = value
        for head in heads:
            by_head.setdefault(head, []).append(at)
    return _KeywordTable(
        candidates=tuple(candidates),
        defaults=defaults,
        by_name={n: tuple(p) for n, p in by_name.items()},
        by_head={n: tuple(p) for n, p in by_head.items()},
        defaulted=frozenset(defaulted),
    )


def _resolves(keyword: Keyword, kind: str, driver_type: str | None) -> bool:
    """:meth:`Evaluator.keyword` finds ``keyword`` for its name in a ``kind`` section
    of ``driver_type`` (``type`` is looked up without a driver type: left out)."""
    if keyword.name == "type":
        return False
    if kind in (DEFAULT, "subset"):
        driver_type = None
    found = lookup(kind, keyword.name, driver_type) or lookup(kind, keyword.name, None)
    return found is keyword


def _quiet_convert(keyword: Keyword, text: str) -> Any:
    """A default's converted value when converting it reports nothing, else _NO_SHORTCUT."""
    scratch = Collector(file="")
    result = _convert(keyword, text, None, keyword.section, scratch)
    return _NO_SHORTCUT if scratch.items or result is _BAD else result


def evaluate_keywords(
    section: str, ev: Evaluator, diags: Collector
) -> tuple[dict[str, Any], dict[str, Span | None]]:
    """Every relevant keyword of a resource, subset or DEFAULT section, evaluated and
    converted (bad values reported, left out); their values and spans.

    Relevant: present, inherited from DEFAULT, or with a default. The plain
    defaults that apply (most keywords: see :class:`_KeywordTable`) are copied in
    whole: what :meth:`Evaluator.get` and :func:`_convert` would give them, minus
    some twenty calls per keyword.
    """
    kind = section_kind(section)
    table = _keyword_table(kind, None if kind in (DEFAULT, "subset") else ev.driver_type(section))
    present = ev.keys(section)
    head_keys = ev.keys(DEFAULT) if section != DEFAULT else frozenset()
    written = table.written(present, head_keys)
    values = dict(table.defaults)
    for at in written:  # a few out of some 25: taken out, not the rest put in
        values.pop(table.candidates[at].keyword.name, None)
    spans: dict[str, Span | None] = dict.fromkeys(values)
    seen: set[str] = set()
    for at in table.to_evaluate(present, head_keys, written):
        keyword, _, resolves = table.candidates[at]
        if keyword.name in seen:
            continue  # the first keyword of a name wins
        seen.add(keyword.name)
        value = ev.get_resolved(section, keyword) if resolves else ev.get(section, keyword.name)
        if value is None:
            continue
        if value.origin == Origin.KEYWORD_DEFAULT and "{" in value.text:
            continue  # runtime-only default such as {node.node.prkey}
        converted = _convert(keyword, value.text, value.span, section, diags)
        if converted is not _BAD:
            values[keyword.name] = converted
            spans[keyword.name] = value.span
    return values, spans


_BAD = object()


def _convert(keyword: Keyword, text: str, span: Span | None, section: str, diags: Collector) -> Any:
    try:
        result = convert(keyword.conv, text)
    except ConvertError as exc:
        if REFERENCE.search(text):
            diags.note(
                span,
                f"'{keyword.name}' in [{section}] holds a reference left for run time "
                f"({text.strip()!r}); not used at compile time",
                code="deferred-reference",
            )
            return _BAD
        diags.error(
            span,
            f"invalid value for '{keyword.name}' in [{section}]: {exc.message}",
            code="invalid-value",
            hint=exc.hint,
        )
        return _BAD
    if result.warning:
        diags.warning(
            span,
            f"'{keyword.name}' in [{section}]: {result.warning}",
            code="legacy-boolean",
            hint="write true or false",
        )
    if (
        keyword.candidates
        and result.value is not None
        and str(result.value).strip()
        and str(result.value) not in keyword.candidates
    ):
        diags.error(
            span,
            f"invalid value {str(result.value)!r} for '{keyword.name}' in [{section}]",
            code="invalid-value",
            hint="expected one of: " + ", ".join(keyword.candidates),
        )
        return _BAD
    return result.value


@cache
def _required(kind: str, driver_type: str) -> tuple[Keyword, ...]:
    """The required keywords of a driver (a handful among some hundred)."""
    return tuple(k for k in section_keywords(kind, driver_type) if k.required)


def _check_required(
    section: Section, kind: str, driver_type: str, values: dict[str, Any], diags: Collector
) -> None:
    for keyword in _required(kind, driver_type):
        if values.get(keyword.name) in (None, "", ()):
            diags.error(
                section.span,
                f"[{section.name}] ({kind}.{driver_type}) requires '{keyword.name}'",
                code="missing-keyword",
                hint=f"add '{keyword.name} = ...' to [{section.name}]",
            )


# --- resources -------------------------------------------------------------------


def _resource(section: Section, ev: Evaluator, diags: Collector) -> ir.Resource | None:
    group = section.name.split("#", 1)[0]
    if group in LEGACY_GROUPS:
        why = f"[{group}{'#...' if '#' in section.name else ''}] is a v1 section; om3 removed it"
        _unsupported(
            section,
            ev,
            diags,
            span=section.span,
            error=f"[{section.name}] cannot be compiled: {why}",
            why=why,
            hint=f"use [disk#N] with type = {LEGACY_GROUPS[group]}",
            code="legacy-section",
        )
        return None
    driver_type = ev.driver_type(section.name)
    if not driver_type and group not in ("volume",):
        v2 = group == "fs"  # v2 guessed the fs type from the device; om3 requires it
        diags.error(
            section.span,
            f"[{section.name}] has no 'type'" + (" (v2 guessed it; om3 requires it)" if v2 else ""),
            code="v2-only" if v2 else "missing-type",
            hint=f"set 'type = ...'; see 'omc keywords {group}'",
        )
        return None
    support = driver_support(group, driver_type)
    if support is None:
        known = " ".join(sorted(_types(group)))
        diags.error(
            _type_span(section, ev),
            f"unknown driver {group}.{driver_type} in [{section.name}]",
            code="unknown-driver",
            hint=f"types: {known}",
        )
        return None
    if support is not Support.EMITTED:
        _unsupported_driver(section, driver_name(group, driver_type), support, ev, diags)
        return None
    return _build(section, group, driver_type, ev, diags)


def _unsupported_driver(
    section: Section, driver: str, support: Support, ev: Evaluator, diags: Collector
) -> None:
    """A driver omc rejects, pointed at its ``type``: v1/v2 only, or not run by omc.

    The two read differently on purpose: a v1/v2 driver is rejected by om3 as well
    (the config needs updating anyway), while an om3 driver omc's runtime does not
    run is valid OpenSVC that omc cannot honour (the hint says what omc offers).
    """
    if support is Support.LEGACY:
        problem, code, hint = "is v1/v2 only; om3 removed it", "legacy-driver", None
    else:
        problem, code = "is not supported by omc's runtime", "unsupported-driver"
        hint = INSTEAD.get(driver)
    _unsupported(
        section,
        ev,
        diags,
        span=_type_span(section, ev),
        error=f"driver {driver} in [{section.name}] {problem}",
        why=f"driver {driver} {problem}",
        hint=hint,
        code=code,
    )


def _types(group: str) -> list[str]:
    from .keywords import DRIVERS  # lazily: the table is big

    return [t for t, s in DRIVERS.get(group, {}).items() if s is Support.EMITTED]


def _type_span(section: Section, ev: Evaluator) -> Span:
    value = ev.get(section.name, "type")
    return value.span if value and value.span else section.span


def _unsupported(
    section: Section,
    ev: Evaluator,
    diags: Collector,
    *,
    span: Span,
    error: str,
    why: str,
    hint: str | None,
    code: str,
) -> None:
    """``error``, or a warning saying ``why`` when the resource is optional or disabled
    (then skipped)."""
    flags = {}
    for name in ("optional", "disable"):
        value = ev.get(section.name, name)
        try:
            flags[name] = value is not None and convert(Conv.BOOL, value.text).value is True
        except ConvertError:
            flags[name] = False
    if flags["optional"] or flags["disable"]:
        reason = "optional" if flags["optional"] else "disabled"
        diags.warning(
            span,
            f"[{section.name}] skipped: {why}",
            code=code,
            hint=hint or f"the resource is {reason}, so the rest still compiles",
        )
        return
    diags.error(
        span,
        error,
        code=code,
        hint=hint or "mark it 'optional = true' or 'disable = true' to skip it",
    )
    return


def _build(
    section: Section, group: str, driver_type: str, ev: Evaluator, diags: Collector
) -> ir.Resource | None:
    values, spans = evaluate_keywords(section.name, ev, diags)
    _check_required(section, group, driver_type, values, diags)
    kws = Keywords(
        rid=section.name, values=values, spans=spans, section_span=section.span, diags=diags
    )
    if group == "container":
        p = ev.ctx.path
        kws.extra["default_name"] = f"{p.namespace}..{p.name}.container.{section.name[10:]}"
    base = _base(section, ir.Group(group), driver_type, kws)
    return BUILDERS[ir.Group(group)](kws, base)


def _base(section: Section, group: ir.Group, driver_type: str, kws: Keywords) -> dict[str, Any]:
    tags = frozenset(kws.tuple_of("tags"))
    values = kws.values  # read directly where kws.get adds nothing (no default, or False)
    return {
        "rid": section.name,
        "group": group,
        # volume has one generic driver; its `type` names a pool type (VolumeResource.pool_type)
        "driver": driver_name(group.value, driver_type),
        "span": ir.SourceSpan(
            file=section.span.file, line=section.span.line, column=section.span.column
        ),
        "tags": tags,
        "subset": kws.opt_str("subset"),
        "disable": bool(values.get("disable")),
        "optional": bool(values.get("optional")) or "noaction" in tags,
        "standby": bool(values.get("standby")),
        "monitor": bool(values.get("monitor")),
        "shared": bool(values.get("shared")),
        "encap": bool(values.get("encap")) or "encap" in tags,
        "restart": int(kws.get("restart", 0)),
        "restart_delay": float(kws.get("restart_delay", 0.5)),
        "comment": kws.opt_str("comment") or "",
        "start_timeout": values.get("start_timeout"),
        "stop_timeout": values.get("stop_timeout"),
        "pg": process_group(values, kws.diags, kws.spans),
        "start_requires": kws.tuple_of("start_requires"),
        "stop_requires": kws.tuple_of("stop_requires"),
        "provision": bool(kws.get("provision", True)),
        "unprovision": bool(kws.get("unprovision", True)),
        "triggers": _triggers(kws),
        "kv_refs": kv_refs(kws) if _KV_KEYWORDS & values.keys() else (),
        "config": jsonable_config(values, special=_special(group.value, driver_type)),
    }


@cache
def _special(kind: str, driver_type: str) -> frozenset[str]:
    """The keywords of a driver whose values :func:`values.jsonable` rewrites
    (schedules and requirements)."""
    convs = (Conv.SCHEDULE, Conv.REQUIRES)
    return frozenset(k.name for k in section_keywords(kind, driver_type) if k.conv in convs)


def _triggers(kws: Keywords) -> tuple[ir.Trigger, ...]:
    out = []
    for name, when, action, blocking in _TRIGGER_KEYWORDS:
        if name not in kws.values:
            continue  # most resources set none of the 20 names
        argv = kws.program(name, kws.argv(name))
        if argv:
            out.append(ir.Trigger(when=when, action=action, blocking=blocking, argv=argv))
    return tuple(out)


# (keyword, when, action, blocking), in the order triggers are listed
_TRIGGER_KEYWORDS = tuple(
    (f"{'blocking_' if blocking else ''}{when}_{action}", when, action, blocking)
    for action in TRIGGER_ACTIONS
    for when in ("pre", "post")
    for blocking in (True, False)
)


# --- subsets and service ---------------------------------------------------------


def _subsets(
    sections: list[Section], resources: list[ir.Resource], ev: Evaluator, diags: Collector
) -> tuple[ir.Subset, ...]:
    out: dict[tuple[str, str], ir.Subset] = {}
    for section in sections:
        group, _, name = section.name.removeprefix("subset#").partition(":")
        values, spans = evaluate_keywords(section.name, ev, diags)
        out[(group, name)] = ir.Subset(
            group=ir.Group(group),
            name=name,
            parallel=bool(values.get("parallel", False)),
            pg=process_group(values, diags, spans),
        )
    for res in resources:
        if res.subset and (res.group.value, res.subset) not in out:
            out[(res.group.value, res.subset)] = ir.Subset(group=res.group, name=res.subset)
    return tuple(sorted(out.values(), key=lambda s: (s.group.rank, s.name)))


def _order(res: ir.Resource) -> tuple[int, bool, str, int, int, str]:
    """Group rank, default set first then named subsets, S10-style apps, then rid."""
    seq = res.sequence if isinstance(res, ir.AppResource) else None
    rank = seq if seq is not None and seq >= 10 else None
    subset = res.subset or ""
    if rank is None:
        return (res.group.rank, bool(subset), subset, 1, 0, res.rid)
    return (res.group.rank, bool(subset), subset, 0, rank, res.rid)


def _service(
    ev: Evaluator,
    *,
    path: ir.ObjectPath,
    source: str,
    resources: list[ir.Resource],
    subsets: tuple[ir.Subset, ...],
) -> ir.Service:
    values, spans = evaluate_keywords(DEFAULT, ev, ev.diags)
    if path.kind in (ir.Kind.CFG, ir.Kind.SEC, ir.Kind.USR) and not ev.entries(DEFAULT, "nodes"):
        values["nodes"] = ("*",)
    cluster_nodes = tuple(ev.ctx.cluster.get("clusternodes", "").lower().split())
    nodes = expand_nodes(tuple(values.get("nodes", ())), cluster_nodes)
    topology = ir.Topology(values.get("topology") or "failover")
    flex_min = int(values.get("flex_min", 1))
    return ir.Service(
        path=path,
        id=str(values.get("id", "")),
        source=source,
        node=ev.node,
        nodes=nodes,
        drpnodes=expand_nodes(tuple(values.get("drpnodes", ())), cluster_nodes),
        encapnodes=tuple(values.get("encapnodes", ())),
        topology=topology,
        orchestrate=ir.Orchestrate(values.get("orchestrate") or "no"),
        placement=values.get("placement") or "nodes order",
        flex_min=flex_min,
        flex_max=int(values.get("flex_max", len(nodes))),
        flex_target=int(values.get("flex_target", flex_min)),
        flex_primary=values.get("flex_primary") or (nodes[0] if nodes else None),
        priority=int(values.get("priority", 50)),
        parents=tuple(values.get("parents", ())),
        children=tuple(values.get("children", ())),
        monitor_action=tuple(values.get("monitor_action", ())),
        env=_env(ev),
        disable=bool(values.get("disable", False)),
        rollback=bool(values.get("rollback", True)),
        start_timeout=values.get("start_timeout"),
        stop_timeout=values.get("stop_timeout"),
        pg=process_group(values, ev.diags, spans),
        subsets=subsets,
        resources=tuple(sorted(resources, key=_order)),
        config=jsonable_config(values),
        data=_data(ev),
    )


def expand_nodes(selector: tuple[str, ...], cluster_nodes: tuple[str, ...]) -> tuple[str, ...]:
    """Globs (``*``, ``n[23]``) matched against the cluster nodes, in cluster order.

    Without known cluster nodes, and for ``label=value`` selectors (node labels
    are not known at compile time), words are kept as written.
    """
    out: dict[str, None] = {}
    for word in selector:
        if cluster_nodes and any(c in word for c in "*?[") and "=" not in word:
            out.update(dict.fromkeys(n for n in cluster_nodes if fnmatch.fnmatchcase(n, word)))
        else:
            out[word] = None
    return tuple(out)


def _env(ev: Evaluator) -> tuple[tuple[str, str], ...]:
    section = ev.section("env")
    keys = dict.fromkeys(
        [*(e.key for e in section.entries), *ev.ctx.env] if section else list(ev.ctx.env)
    )
    out = []
    for key in keys:
        value = ev.get("env", key)
        if value is not None:
            out.append((key, value.text))
    return tuple(out)


def _data(ev: Evaluator) -> tuple[tuple[str, str], ...]:
    section = ev.section("data")
    if section is None:
        return ()
    return tuple({e.raw_key: e.value for e in section.entries}.items())
