"""What an installed unit tells the runtime: the ``X-OpenSVC-*`` keys and their values.

The runtime never re-compiles to learn what a service is: the units installed for
this node *are* the model (docs/design.md, "Unit contract"). The compiler writes
these keys (``views.py``), the runtime reads them (``objects/model.py``, the driver
entry point): the key names, the flag words and the JSON form of requirements are
defined here once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Key(StrEnum):
    """The ``X-OpenSVC-*`` keys of a unit's ``[Unit]`` section (systemd ignores ``X-`` keys)."""

    PATH = "X-OpenSVC-Path"  # every unit: the object's display path
    RID = "X-OpenSVC-Rid"  # resource units
    DRIVER = "X-OpenSVC-Driver"  # resource units: "<group>.<type>"
    TAGS = "X-OpenSVC-Tags"  # space separated
    SUBSET = "X-OpenSVC-Subset"
    FLAGS = "X-OpenSVC-Flags"  # space separated Flag words
    HASH = "X-OpenSVC-Hash"  # of the compiled resource (or service) config
    CONFIG = "X-OpenSVC-Config"  # one-line JSON object of the evaluated keywords
    ID = "X-OpenSVC-Id"  # target: DEFAULT.id
    NODE = "X-OpenSVC-Node"  # target: the node the config was evaluated for
    ORDER = "X-OpenSVC-Order"  # target: JSON list of the resource sets in start order


class Flag(StrEnum):
    """Words of ``X-OpenSVC-Flags``: the resource keywords the runtime acts on."""

    OPTIONAL = "optional"
    STANDBY = "standby"
    DISABLE = "disable"
    MONITOR = "monitor"
    SHARED = "shared"
    ENCAP = "encap"


UNIT_SUFFIXES = (".service", ".mount", ".target", ".timer", ".slice")
UNIT_DIR = Path("/etc/systemd/system")
# Where an object's units may be, in systemd's precedence order (first found wins);
# /run/systemd/generator holds the units of `omc` in generator mode (docs/generator.md).
SEARCH_PATH = (UNIT_DIR, Path("/run/systemd/system"), Path("/run/systemd/generator"))
UNIT_DIR_ENV = "OMC_UNIT_DIR"


def unit_dir() -> Path:
    """Where ``om`` installs units: ``/etc/systemd/system`` (persistent; HA units have no
    ``[Install]``, so nothing but ``om`` starts them), or the first dir of ``OMC_UNIT_DIR``."""
    override = os.environ.get(UNIT_DIR_ENV, "")
    first = next((d for d in override.split(":") if d), "")
    return Path(first) if first else UNIT_DIR


def search_path() -> tuple[Path, ...]:
    """``OMC_UNIT_DIR`` (``:``-separated) when set (tests, lab nodes sharing a file
    system), else systemd's own order for the directories omc writes to."""
    override = [Path(d) for d in os.environ.get(UNIT_DIR_ENV, "").split(":") if d]
    return tuple(override) or SEARCH_PATH


# ---------------------------------------------------------------------------
# Requirements (opensvc.md §2.1): ``start_requires = ip#0 fs#1(down,stdby down)``.

DEFAULT_REQUIRED_STATES = ("up", "stdby up")
REQUIREMENT_KEYS = ("start_requires", "stop_requires", "run_requires")


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """A rid and the states that satisfy it. In ``X-OpenSVC-Config`` a requirement list
    is JSON: ``[{"rid": "ip#0", "states": ["up", "stdby up"]}]`` (never text to re-parse)."""

    rid: str
    states: tuple[str, ...] = DEFAULT_REQUIRED_STATES

    def to_json(self) -> dict[str, object]:
        return {"rid": self.rid, "states": list(self.states)}


def requirements_from_json(value: object) -> tuple[Requirement, ...]:
    """The requirements a config value holds (the JSON form above); anything else is none."""
    if not isinstance(value, list | tuple):
        return ()
    found = []
    for item in value:
        if isinstance(item, Mapping) and isinstance(item.get("rid"), str):
            states = item.get("states") or DEFAULT_REQUIRED_STATES
            found.append(Requirement(rid=item["rid"], states=tuple(map(str, states))))
    return tuple(found)


def requirements_to_json(reqs: Iterable[Requirement]) -> list[dict[str, object]]:
    return [r.to_json() for r in reqs]


# Apps' commands run behind systemd-cat, which connects stdout and stderr to journald
# as two streams of their own priorities (systemd gives a unit's two one priority) and
# then execs the command: same pid, same unit type semantics. The runtime reads the
# lines back after the unit's job (docs/runtime.md, "Logs").
SYSTEMD_CAT = "/usr/bin/systemd-cat"
STREAM_OPTIONS = ("--priority=info", "--stderr-priority=warning", "--level-prefix=false")
STREAM_PREFIX = f"{SYSTEMD_CAT} "


def stream_argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` run behind systemd-cat, its journald identifier the program's name."""
    ident = argv[0].rsplit("/", 1)[-1] or "app"
    return (SYSTEMD_CAT, f"--identifier={ident}", *STREAM_OPTIONS, "--", *argv)


def without_stream(exec_line: str) -> str:
    """An ``Exec*=`` value as the command it runs: the systemd-cat words dropped."""
    if not exec_line.startswith(STREAM_PREFIX):
        return exec_line
    _, sep, rest = exec_line.partition(" -- ")
    return rest if sep else exec_line
