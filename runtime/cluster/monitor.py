"""``om mon``: the cluster at a glance (opensvc.md §6.3), rendered from a snapshot (pure).

One table for the whole frame, as om3's tabwriter: every line has the same
columns (label, status, orchestrate, ``|``, one per node), each column as wide as
its widest cell plus one space, so the sections line up::

    Nodes           n1    n2    n3
     score        | 96    95    96
     load15m      | 0.1   0.2   0.1
     state        |             *

    Objects         n1    n2    n3
     svc0  up  ha 1/1 | O^    X     X

Instance cells: the avail icon (``O`` up, ``X`` down, ``o``/``x`` standby up/down,
``!`` warn, ``/`` n/a, ``?`` unknown), then ``!`` overall warn, ``#`` DRP node, ``^``
placement leader, ``*`` frozen, then `` <monitor state>`` when not idle and
`` ><global expect>`` while an orchestration runs. Object status: avail, then ``!``
(overall warn) and ``^`` (non-optimal placement).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Sequence

from omc.compiler.contract.paths import ObjectPath, parse_path
from omc.runtime.cluster.decide import leaders, object_avail, placement_state, up_count
from omc.runtime.cluster.model import Instance, Node, ObjectView, Snapshot
from omc.runtime.cluster.state import ClusterState

ICONS = {"up": "O", "down": "X", "warn": "!", "n/a": "/", "stdby up": "o", "stdby down": "x"}
BOLD, RED, GREEN, YELLOW, GREY, BLUE, RESET = (
    "\033[1m", "\033[91m", "\033[92m", "\033[93m", "\033[90m", "\033[94m", "\033[0m",
)  # fmt: skip
AVAIL_COLOURS = {"up": GREEN, "stdby up": GREEN, "down": RED, "stdby down": RED, "warn": YELLOW}


def short_duration(seconds: float) -> str:
    """om3's short durations: the biggest unit, and the next one below 10 (``3d4h``, ``500d``)."""
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    left = int(max(seconds, 0))
    for i, (name, size) in enumerate(units):
        if left >= size or name == "s":
            value, rest = divmod(left, size)
            text = f"{value}{name}"
            if value < 10 and i + 1 < len(units) and rest:
                sub_name, sub_size = units[i + 1]
                text += f"{rest // sub_size}{sub_name}"
            return text
    return "0s"


def matches(selector: str, path: str) -> bool:
    """``om mon`` selectors: globs on the display path (``svc*``), ``,`` unions."""
    if not selector:
        return True
    for term in selector.split(","):
        fqn = parse_path(path).fqn
        if fnmatch.fnmatchcase(path, term) or fnmatch.fnmatchcase(fqn, term):
            return True
    return False


def _paint(text: str, colour: str, on: bool) -> str:
    return f"{colour}{text}{RESET}" if on and text else text


def cell(view: ObjectView, snap: Snapshot, node: str, *, chosen: Sequence[str]) -> str:
    """One instance's cell."""
    inst: Instance | None = view.instance(node)
    if inst is None:
        return "?" if node in view.config.scope else ""
    text = ICONS.get(inst.avail, "?")
    if inst.overall == "warn" and inst.avail != "warn":
        text += "!"
    if node in view.config.drpnodes:
        text += "#"
    if node in chosen:
        text += "^"
    if inst.frozen:
        text += "*"
    if inst.config_error:
        text += " config error"
    elif str(inst.state) != "idle":
        text += f" {inst.state}"
    if view.intent is not None:
        text += f" >{view.intent.expect}"
    return text


def _object_row(view: ObjectView, snap: Snapshot, nodes: Sequence[str], colour: bool) -> list[str]:
    avail = object_avail(view, snap)
    status = _paint(avail, AVAIL_COLOURS.get(avail, GREY), colour)
    overall = [i.overall for i in view.instances.values() if snap.alive(i.node)]
    if "warn" in overall and avail != "warn":
        status += "!"
    if placement_state(view, snap) == "non-optimal":
        status += "^"
    running = "" if avail in ("n/a", "undef") else f"{up_count(view, snap)}/{view.config.wanted_up}"
    chosen = leaders(view, snap)
    cells = [cell(view, snap, n, chosen=chosen) for n in nodes]
    return [f" {view.config.path}", status, f"{view.config.orchestrate:<5} {running}", "|", *cells]


def _node_state(node: Node) -> str:
    if not node.alive:
        return "lost"
    text = "" if node.state == "idle" else node.state
    return text + ("*" if node.frozen else "")


def frame(snap: Snapshot, *, selector: str = "", colour: bool = False,
          now: float | None = None, started: dict[str, float] | None = None) -> str:  # fmt: skip
    """The whole ``om mon`` text."""
    nodes = sorted(snap.nodes)
    pad = ["" for _ in nodes]
    bold = [_paint(n, BOLD, colour) for n in nodes]
    rows: list[list[str]] = []
    if started is not None:
        clock = time.time() if now is None else now
        rows += [
            ["Daemon", "", "", "", *bold],
            [" uptime", "", "", "|",
             *(short_duration(clock - started[n]) if n in started else "-" for n in nodes)],
            [" state", "", "", "|", *("" if snap.alive(n) else "X" for n in nodes)],
            ["", "", "", "", *pad],
        ]  # fmt: skip
    rows += [
        ["Nodes", "", "", "", *bold],
        [" score", "", "", "|",
         *(str(snap.nodes[n].score) if snap.alive(n) else "" for n in nodes)],
        ["  load15m", "", "", "|",
         *(f"{snap.nodes[n].load15:.1f}" if snap.alive(n) else "" for n in nodes)],
        [" state", "", "", "|", *(_node_state(snap.nodes[n]) for n in nodes)],
        ["", "", "", "", *pad],
        ["Objects" + (f" ~ {selector}" if selector else ""), "", "", "", *bold],
    ]  # fmt: skip
    for path, view in sorted(snap.objects.items()):
        if matches(selector, path):
            rows.append(_object_row(view, snap, nodes, colour))
    return _tabulate(rows)


def _visible(text: str) -> int:
    """Display width, colour codes excluded."""
    width, escape = 0, False
    for char in text:
        if char == "\033":
            escape = True
        elif escape:
            escape = char != "m"
        else:
            width += 1
    return width


def _tabulate(rows: list[list[str]]) -> str:
    widths = [max(_visible(r[i]) for r in rows) + 1 for i in range(len(rows[0]))]
    return "".join(
        "".join(c + " " * (w - _visible(c)) for c, w in zip(row, widths, strict=True)) + "\n"
        for row in rows
    )


def render_watch(state: ClusterState, path: ObjectPath) -> str:
    """One object's frame, as ``--watch`` redraws it at every change."""
    return "\n" + frame(state.snapshot(), selector=str(path))


def to_data(snap: Snapshot, *, selector: str = "") -> dict[str, object]:
    """``om mon --format json|yaml``: the same facts as the text, as data."""
    objects: dict[str, object] = {}
    for path, view in sorted(snap.objects.items()):
        if not matches(selector, path):
            continue
        objects[path] = {
            "avail": object_avail(view, snap),
            "placement": placement_state(view, snap),
            "orchestrate": view.config.orchestrate,
            "topology": view.config.topology,
            "up": up_count(view, snap),
            "expected": view.config.wanted_up,
            "leaders": leaders(view, snap),
            "owner": view.owner,
            "intent": None if view.intent is None else {
                "expect": str(view.intent.expect), "oid": view.intent.oid,
                "destination": list(view.intent.destination),
            },
            "instances": {
                node: {"avail": i.avail, "overall": i.overall, "frozen": i.frozen,
                       "state": str(i.state), "oid": i.oid, "done": i.done,
                       "config_error": i.config_error}
                for node, i in sorted(view.instances.items())
            },
        }  # fmt: skip
    nodes = {
        name: {"alive": n.alive, "frozen": n.frozen, "state": n.state, "score": n.score,
               "load15": n.load15}
        for name, n in sorted(snap.nodes.items())
    }  # fmt: skip
    return {"revision": snap.revision, "nodes": nodes, "objects": objects}
