"""Assertion comments in example configs, checked against the units they compile to.

In the spirit of Podman Quadlet's test files: a config documents what it must
become with comment lines, and the test evaluates them. Prefix ``!`` to invert.

==========================================  ===============================================
directive                                   holds when
==========================================  ===============================================
``# assert-unit NAME``                      a unit named NAME is emitted
``# assert-unit-count N``                   exactly N units are emitted
``# assert-key UNIT SECTION KEY VALUE``     UNIT has the line ``KEY=VALUE`` in ``[SECTION]``
``# assert-key-contains UNIT SEC KEY TEXT``  some ``KEY=`` line of ``[SEC]`` contains TEXT
``# assert-has-key UNIT SECTION KEY``       UNIT sets KEY in ``[SECTION]`` (any value)
``# assert-order RID_A RID_B``              A's unit is ordered before B's: ``After=`` or
                                            ``Before=`` edges lead from A to B (transitively)
``# assert-failed``                         compilation fails (non-zero exit, no unit)
``# assert-stderr-contains TEXT``           the diagnostics text contains TEXT
==========================================  ===============================================

VALUE and TEXT are the rest of the line, verbatim (they may hold spaces and ``#``).
A rid maps to the units whose ``[Unit]`` has ``X-OpenSVC-Rid=<rid>`` (a scheduled
task or sync has a service and a timer); ``assert-order`` holds when any unit of A
is ordered before any unit of B.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

PREFIX = "# assert-"
INVERTED = "# !assert-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    line: int
    name: str
    args: tuple[str, ...]
    inverted: bool

    def __str__(self) -> str:
        bang = "!" if self.inverted else ""
        return f"line {self.line}: {bang}assert-{self.name} {' '.join(self.args)}".rstrip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What compiling an example produced."""

    status: int
    units: Mapping[str, str]
    stderr: str


Unit = dict[str, list[tuple[str, str]]]  # section -> [(key, value)] in file order

# directive name -> number of arguments (the last one takes the rest of the line)
ARITY = {
    "unit": 1,
    "unit-count": 1,
    "key": 4,
    "key-contains": 4,
    "has-key": 3,
    "order": 2,
    "failed": 0,
    "stderr-contains": 1,
}


def parse_directives(text: str) -> tuple[Directive, ...]:
    """Every assertion comment of a config, with its line number; bad ones raise."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        inverted = line.startswith(INVERTED)
        if not (inverted or line.startswith(PREFIX)):
            continue
        body = line[len(INVERTED if inverted else PREFIX) :]
        name, _, rest = body.partition(" ")
        if name not in ARITY:
            raise ValueError(f"line {number}: unknown directive assert-{name}")
        arity = ARITY[name]
        args = tuple(rest.strip().split(None, arity - 1)) if arity else ()
        if len(args) != arity:
            raise ValueError(f"line {number}: assert-{name} takes {arity} argument(s)")
        found.append(Directive(line=number, name=name, args=args, inverted=inverted))
    return tuple(found)


def parse_unit(text: str) -> Unit:
    """A unit file as systemd reads it: sections, ``key=value``, ``\\`` continuations."""
    unit: Unit = {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        unit.setdefault(section, []).append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def rid_units(units: Mapping[str, Unit]) -> dict[str, list[str]]:
    """rid -> unit names, from ``X-OpenSVC-Rid=`` (a scheduled task has a service and a timer)."""
    found: dict[str, list[str]] = {}
    for name, unit in units.items():
        for rid in values(unit, "Unit", "X-OpenSVC-Rid"):
            found.setdefault(rid, []).append(name)
    return found


def ordered_before(units: Mapping[str, Unit], first: str, second: str) -> bool:
    """True when ordering edges lead from unit ``first`` to unit ``second``."""
    later: dict[str, set[str]] = {name: set() for name in units}
    for name, unit in units.items():
        for section in ("Unit",):
            for value in values(unit, section, "After"):
                for dep in value.split():
                    later.setdefault(dep, set()).add(name)
            for value in values(unit, section, "Before"):
                later.setdefault(name, set()).update(value.split())
    seen, todo = {first}, [first]
    while todo:
        for nxt in later.get(todo.pop(), ()):
            if nxt == second:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _check_unit(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    return args[0] in outcome.units


def _check_count(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    return len(outcome.units) == int(args[0])


def _check_key(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    unit, section, key, value = args
    return value in values(parsed.get(unit, {}), section, key)


def _check_key_contains(
    outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]
) -> bool:
    unit, section, key, text = args
    return any(text in v for v in values(parsed.get(unit, {}), section, key))


def _check_has_key(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    unit, section, key = args
    return bool(values(parsed.get(unit, {}), section, key))


def _check_order(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    by_rid = rid_units(parsed)
    firsts, seconds = (by_rid.get(rid, [rid]) for rid in args)
    return any(ordered_before(parsed, a, b) for a in firsts for b in seconds)


def _check_failed(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    return outcome.status != 0 and not outcome.units


def _check_stderr(outcome: Outcome, parsed: Mapping[str, Unit], args: tuple[str, ...]) -> bool:
    return args[0] in outcome.stderr


CHECKS: dict[str, Callable[[Outcome, Mapping[str, Unit], tuple[str, ...]], bool]] = {
    "unit": _check_unit,
    "unit-count": _check_count,
    "key": _check_key,
    "key-contains": _check_key_contains,
    "has-key": _check_has_key,
    "order": _check_order,
    "failed": _check_failed,
    "stderr-contains": _check_stderr,
}


def evaluate(directives: tuple[Directive, ...], outcome: Outcome) -> list[str]:
    """The directives that do not hold, as readable failure lines (empty = all hold)."""
    parsed = {name: parse_unit(text) for name, text in outcome.units.items()}
    failures = []
    for directive in directives:
        holds = CHECKS[directive.name](outcome, parsed, directive.args)
        if holds == directive.inverted:
            failures.append(f"{directive} does not hold")
    return failures


# How examples are compiled for these tests and for the golden trees: a fixed node,
# `om` path, cluster name and install location, so the output is machine independent.
EXAMPLE_NODE = "n1"
EXAMPLE_OM = "/usr/bin/om"
EXAMPLE_CLUSTER = {"clustername": "lab"}
EXAMPLE_ETC = "/etc/opensvc"


def compile_example(text: str, *, name: str, om: str = EXAMPLE_OM) -> Outcome:
    """Compile an example as ``omc compile --dry-run`` would, as if installed in /etc/opensvc."""
    from omc.compiler.diagnostics import render_text
    from omc.compiler.pipeline import build

    result = build(
        text, filename=f"{EXAMPLE_ETC}/{name}", node=EXAMPLE_NODE, om=om, cluster=EXAMPLE_CLUSTER
    )
    return Outcome(
        status=0 if result.ok else 1,
        units=result.units,
        stderr=render_text(result.diagnostics, text),
    )
