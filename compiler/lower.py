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
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import ir
from .convert import ConvertError, convert
from .diagnostics import Collector, Span
from .evaluate import (
    REFERENCE,
    Context,
    Evaluator,
    Origin,
    Value,
    plain_defaults,
    section_kind,
)
from .keywords import (
    FREEFORM_SECTIONS,
    LEGACY_GROUPS,
    NODE_GROUPS,
    Conv,
    Keyword,
    Status,
    Support,
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
    group, sep, index = name.partition("#")
    if name.startswith("subset#"):
        return "subset" if _valid_subset(section, diags) else "ignored"
    if group in RESOURCE_GROUPS and sep:
        if not index:
            diags.error(
                section.span,
                f"empty resource index in [{name}]",
                code="bad-section",
                hint=f"name it [{group}#0] or [{group}#<name>]",
            )
            return "ignored"
        return "resource"
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
_Plain = tuple[
    tuple[str, ...], tuple[str, ...], Value, Any
]  # names, DEFAULT names, value, converted
_Candidate = tuple[Keyword, _Plain | None]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class _Candidates(Record):
    """The non-legacy keywords of one driver (computed once per driver, see
    :func:`_candidates`), with what finds the ones worth evaluating in a section.

    Most keywords of a resource are written nowhere and take their plain default
    (no reference in it, converted once here): ``defaults`` holds those values,
    copied whole into a section's values. Only the other keywords, and the plain
    ones written in the section or inherited from DEFAULT, are evaluated one by one.
    """

    keywords: tuple[_Candidate, ...]  # each with its converted plain default, if any
    defaults: Mapping[str, Any]  # name -> converted plain default (no run-time one)
    plain_by_name: Mapping[str, frozenset[str]]  # name or alias -> the plain keywords' names
    plain_by_head: Mapping[str, frozenset[str]]  # DEFAULT name -> the plain keywords inheriting it
    always: frozenset[int]  # positions of keywords with a value even when unset
    always_unplain: frozenset[int]  # ... minus the plain defaults'
    plain_positions: frozenset[int]  # the plain defaults' positions
    by_name: Mapping[str, tuple[int, ...]]  # name or alias -> positions
    by_own_name: Mapping[str, tuple[int, ...]]  # name (no alias) -> positions
    position: Mapping[str, int]  # name -> the position of the plain keyword of that name
    resolved: frozenset[int]  # keywords Evaluator.keyword finds for their own name

    def written(self, present: frozenset[str], head_keys: frozenset[str]) -> set[str]:
        """The plain keywords whose default does not apply as is: written in the
        section (under any name) or in DEFAULT (under a name they inherit)."""
        found: set[str] = set()
        for key in present:
            found.update(self.plain_by_name.get(key, ()))
        for key in self.plain_by_head.keys() & head_keys:  # DEFAULT's keys are mostly its own
            found.update(self.plain_by_head[key])
        return found

    def relevant(
        self, present: frozenset[str], head_keys: frozenset[str], *, bulk: frozenset[int]
    ) -> list[int]:
        """Positions, in table order, of the keywords present in the section (under
        any name), set in DEFAULT (under their own name) or with a default; minus
        ``bulk``, the positions of the plain defaults taken whole."""
        found = set(self.always_unplain if bulk else self.always)
        if bulk:  # the plain keywords not taken whole have a default: always relevant
            found.update(self.plain_positions - bulk)
        for key in present:
            found.update(self.by_name.get(key, ()))
        for key in self.by_own_name.keys() & head_keys:
            found.update(self.by_own_name[key])
        return sorted(found - bulk if bulk else found)


@cache
def _candidates(kind: str, driver_type: str | None) -> _Candidates:
    """The non-legacy keywords of a section kind and driver; each keyword whose unset
    value is a plain default comes with that value already converted (see
    :func:`evaluate_keywords`)."""
    plain = plain_defaults(kind, driver_type) if kind not in FREEFORM_SECTIONS else {}
    keywords: list[_Candidate] = []
    always: set[int] = set()
    by_name: dict[str, list[int]] = {}
    by_own_name: dict[str, list[int]] = {}
    for k in section_keywords(kind, driver_type):
        if k.status is Status.LEGACY:
            continue
        fast = plain.get(k.name)
        shortcut = None
        if fast is not None:
            names, heads, value = fast
            shortcut = (names, heads, value, _quiet_convert(k, value.text))
        position = len(keywords)
        keywords.append((k, shortcut))
        if k.default is not None or k.default_option:
            always.add(position)
        for name in k.names:
            by_name.setdefault(name, []).append(position)
        by_own_name.setdefault(k.name, []).append(position)
    resolved = frozenset(
        at for at, (k, _) in enumerate(keywords) if _resolves(k, kind, driver_type)
    )
    return _with_defaults(keywords, always, by_name, by_own_name, resolved)


def _resolves(keyword: Keyword, kind: str, driver_type: str | None) -> bool:
    """:meth:`Evaluator.keyword` finds ``keyword`` for its name in a ``kind`` section
    of ``driver_type`` (``type`` is looked up without a driver type: left out)."""
    if keyword.name == "type":
        return False
    if kind in (DEFAULT, "subset"):
        driver_type = None
    found = lookup(kind, keyword.name, driver_type) or lookup(kind, keyword.name, None)
    return found is keyword


def _with_defaults(
    keywords: list[_Candidate],
    always: set[int],
    by_name: dict[str, list[int]],
    by_own_name: dict[str, list[int]],
    resolved: frozenset[int],
) -> _Candidates:
    """The :class:`_Candidates` of ``keywords``: their plain defaults gathered (a
    keyword sharing its name with another is left to the one-by-one path)."""
    defaults: dict[str, Any] = {}
    position: dict[str, int] = {}
    plain_by_name: dict[str, set[str]] = {}
    plain_by_head: dict[str, set[str]] = {}
    for at, (k, plain) in enumerate(keywords):
        if plain is None or plain[3] is _NO_SHORTCUT or len(by_own_name[k.name]) > 1:
            continue
        if "{" not in plain[2].text:  # else a run-time default: the keyword stays unset
            defaults[k.name] = plain[3]
        position[k.name] = at
        for name in plain[0]:
            plain_by_name.setdefault(name, set()).add(k.name)
        for head in plain[1]:
            plain_by_head.setdefault(head, set()).add(k.name)
    return _Candidates(
        keywords=tuple(keywords),
        defaults=defaults,
        plain_by_name={n: frozenset(ks) for n, ks in plain_by_name.items()},
        plain_by_head={n: frozenset(ks) for n, ks in plain_by_head.items()},
        always=frozenset(always),
        always_unplain=frozenset(always - set(position.values())),
        plain_positions=frozenset(position.values()),
        by_name={n: tuple(p) for n, p in by_name.items()},
        by_own_name={n: tuple(p) for n, p in by_own_name.items()},
        position=position,
        resolved=resolved,
    )


def _quiet_convert(keyword: Keyword, text: str) -> Any:
    """A default's converted value when converting it reports nothing, else _NO_SHORTCUT."""
    scratch = Collector(file="")
    result = _convert(keyword, text, None, keyword.section, scratch)
    return _NO_SHORTCUT if scratch.items or result is _BAD else result


def evaluate_keywords(
    section: str, kind: str, driver_type: str | None, ev: Evaluator, diags: Collector
) -> tuple[dict[str, Any], dict[str, Span | None]]:
    """Every relevant keyword, evaluated and converted (bad values reported, left out).

    Relevant: present, inherited from DEFAULT, or with a default. The keywords
    that take their plain default (most of them: see :class:`_Candidates`) are
    copied in whole: what :meth:`Evaluator.get` and :func:`_convert` would give
    them, minus some twenty calls per keyword.
    """
    present = ev.keys(section)
    head_keys = ev.keys(DEFAULT) if section != DEFAULT else frozenset()
    candidates = _candidates(kind, driver_type)
    values: dict[str, Any] = {}
    bulk: frozenset[int] = frozenset()
    # the table is the driver's own: kind and driver type are those of the section
    resolved = kind == section_kind(section) and (
        kind in (DEFAULT, "subset") or driver_type == ev.driver_type(section)
    )
    if resolved:  # DEFAULT and subsets too: an unset keyword there takes its default as well
        values, bulk = _plain_values(candidates, candidates.written(present, head_keys))
    spans: dict[str, Span | None] = dict.fromkeys(values)
    seen: set[str] = set()
    keywords = candidates.keywords
    for position in candidates.relevant(present, head_keys, bulk=bulk):
        keyword = keywords[position][0]
        if keyword.name in seen:
            continue
        seen.add(keyword.name)
        if resolved and position in candidates.resolved:
            value = ev.get_resolved(section, keyword)
        else:  # the plain defaults are settled: get_keyword would only look for them again
            value = ev.get(section, keyword.name) if bulk else ev.get_keyword(section, keyword)
        if value is None:
            continue
        if value.origin == Origin.KEYWORD_DEFAULT and "{" in value.text:
            continue  # runtime-only default such as {node.node.prkey}
        converted = _convert(keyword, value.text, value.span, section, diags)
        if converted is not _BAD:
            values[keyword.name] = converted
            spans[keyword.name] = value.span
    return values, spans


def _plain_values(
    candidates: _Candidates, written: set[str]
) -> tuple[dict[str, Any], frozenset[int]]:
    """The plain defaults that apply as they are, and their positions."""
    values = dict(candidates.defaults)
    if not written:
        return values, candidates.plain_positions
    # a few written keywords out of some 25 defaults: take them out, not the rest in
    # (a run-time default has a position but no value)
    for name in written:
        values.pop(name, None)
    return values, candidates.plain_positions - {candidates.position[k] for k in written}


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
        _unsupported(
            section,
            ev,
            diags,
            why=f"[{group}{'#...' if '#' in section.name else ''}] is a v1 section; om3 removed it",
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
        legacy = support is Support.LEGACY
        what = "a v1/v2 driver" if legacy else "an om3 driver omc does not run"
        code = "legacy-driver" if legacy else "unsupported-driver"
        _unsupported(
            section, ev, diags, why=f"{group}.{driver_type} is {what}", hint=None, code=code
        )
        return None
    return _build(section, group, driver_type, ev, diags)


def _types(group: str) -> list[str]:
    from .keywords import DRIVERS  # lazily: the table is big

    return [t for t, s in DRIVERS.get(group, {}).items() if s is Support.EMITTED]


def _type_span(section: Section, ev: Evaluator) -> Span:
    value = ev.get(section.name, "type")
    return value.span if value and value.span else section.span


def _unsupported(
    section: Section, ev: Evaluator, diags: Collector, *, why: str, hint: str | None, code: str
) -> None:
    """Error, or a warning when the resource is optional or disabled (then skipped)."""
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
            section.span,
            f"[{section.name}] skipped: {why}",
            code=code,
            hint=hint or f"the resource is {reason}, so the rest still compiles",
        )
        return
    diags.error(
        section.span,
        f"[{section.name}] cannot be compiled: {why}",
        code=code,
        hint=hint or "mark it 'optional = true' or 'disable = true' to skip it",
    )
    return


def _build(
    section: Section, group: str, driver_type: str, ev: Evaluator, diags: Collector
) -> ir.Resource | None:
    values, spans = evaluate_keywords(section.name, group, driver_type, ev, diags)
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
        "driver": group.value if group is ir.Group.VOLUME else f"{group.value}.{driver_type}",
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
        values, spans = evaluate_keywords(section.name, "subset", None, ev, diags)
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
    values, spans = evaluate_keywords(DEFAULT, DEFAULT, None, ev, ev.diags)
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
