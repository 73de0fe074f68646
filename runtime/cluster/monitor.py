"""``om mon``: the cluster at a glance (opensvc.md §6.3), rendered from a snapshot (pure).

The layout is om3's (om3-orchestrator.md §5.1): one table for the whole frame, so
every line has the same cells (label, status, orchestrate, ``|``, one per node in
``cluster.conf`` order) and each column is as wide as its widest cell plus one
space, trailing spaces included; the sections line up::

    Daemon             n1    n2    n3
     uptime          | 5m30s 5m29s ?
     state           | O     O     X

    Nodes              n1    n2    n3
     score           | 96    95    ?
      load15m        | 0.1   0.2   ?
     state           |       *

    Objects            n1    n2    n3
     svc0  up  ha 1/1 | O^   X     ?

Object status: avail, ``!`` (overall warn), ``^`` (non-optimal placement); then
the orchestrate mode and ``<up>/<expected>``. Instance cells: the avail icon (``O``
up, ``X`` down, ``o``/``x`` standby up/down, ``!`` warn, ``/`` n/a, ``?`` unknown),
then ``!`` overall warn, ``#`` DRP node, ``^`` placement leader, ``*`` frozen, ``P``
not provisioned, `` <monitor state>`` when not idle, `` ><global expect>`` while an
orchestration runs. Colours (om3's palette) only when asked for: the CLI turns them
on for a terminal without ``NO_COLOR``.

omc has no heartbeats: a node is alive while its etcd lease is, so the Daemon
section shows the daemon's uptime and ``O``/``X`` for its lease (``--verbose``: the
seconds it has left). The Nodes ``state`` row says what a node without a lease is:
``lost``, or ``fenced`` once a peer's stonith killed it; and ``partitioned`` for the
local node when its etcd member has no quorum (the view is that member's last state).
With ``--verbose``, a ``Takeovers`` list follows: each object's last ownership taken,
where, when and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from omc.compiler.contract.paths import ObjectPath, PathError, parse_path
from omc.runtime.cluster.decide import (
    aggregate_avail,
    leaders,
    live_instances,
    placement_state,
)
from omc.runtime.cluster.model import (
    UP,
    Instance,
    Node,
    ObjectView,
    Snapshot,
    snapshot_from_json,
)
from omc.runtime.cluster.state import ClusterState
from omc.runtime.objects.configs import NotFoundError, select_objects

# SGR codes of the colours om3 uses (fatih/color attributes).
BOLD, GREEN, YELLOW, HIBLACK, HIRED, HIGREEN, HIYELLOW, HIBLUE = 1, 32, 33, 90, 91, 92, 93, 94
# om3's palette for a status word (core/colorstatus): optimal, error, warning, secondary.
STATUS_COLOURS = {"up": HIGREEN, "stdby up": HIGREEN, "down": HIRED, "stdby down": HIRED,
                  "warn": HIYELLOW, "n/a": HIBLACK, "undef": HIBLACK}  # fmt: skip
SELECTOR_WIDTH = 18  # a longer selector is cut in the Objects title (om3)


class SelectorError(ValueError):
    """The selector is not a valid object selector expression."""


@dataclass(frozen=True, slots=True)
class Paint:
    """Colour a text as fatih/color does (``ESC[<code>m text ESC[0m``), or leave it."""

    on: bool = False

    def __call__(self, text: str, code: int) -> str:
        return f"\033[{code}m{text}\033[0m" if self.on and text else text

    def status(self, word: str) -> str:
        return self(word, STATUS_COLOURS.get(word, 0))

    def frozen(self, text: str) -> str:
        """om3's frozen mark: bold around hiblue."""
        return self(self(text, HIBLUE), BOLD)


@dataclass(frozen=True, slots=True, kw_only=True)
class Daemon:
    """What etcd says of a node's daemon beyond :class:`~.model.Node`: its record's
    start time and version, whether a peer fenced the node (``fenced/<node>``, until
    it comes back), the seconds its lease has left (``--verbose``), and whether this
    is the local node reading a stale view (its etcd member has no quorum)."""

    started: float = 0.0
    version: str = ""
    fenced: bool = False
    lease_left: int | None = None
    partitioned: bool = False


def daemons_from_json(
    nodes: Mapping[str, Mapping[str, Any]], fenced: Collection[str] = ()
) -> dict[str, Daemon]:
    """Daemon facts of node records (etcd values, or golden cases' ``nodes``) and of
    the nodes fenced (which have no record: their lease is gone)."""
    found = {
        name: Daemon(started=float(v.get("started", 0.0) or 0.0), version=str(v.get("version", "")))
        for name, v in nodes.items()
    }
    for name in fenced:
        found[name] = replace(found.get(name, Daemon()), fenced=True)
    return found


# ---------------------------------------------------------------------------
# Selection


def select(selector: str, paths: Sequence[str]) -> list[str]:
    """The paths an ``om mon`` selector keeps, with ``om``'s object selector rules
    (opensvc.md §1.9: ``svc*``, ``ns1/**``, ``,`` unions, ``+`` and ``!``); no
    selector keeps all; a selector that matches nothing keeps nothing."""
    if not selector:
        return list(paths)
    try:
        parsed = {parse_path(p): p for p in paths}
        chosen = select_objects(selector, list(parsed))
    except NotFoundError:
        return []
    except PathError as exc:
        raise SelectorError(f"invalid selector {selector!r}: {exc}") from None
    return [parsed[p] for p in chosen]


# ---------------------------------------------------------------------------
# Cells


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


def object_overall(view: ObjectView, snap: Snapshot) -> str:
    """om3's object overall: the instances' overall statuses aggregated as their avails
    are (a warn instance, two up failover instances, a flex count out of bounds)."""
    return aggregate_avail([i.overall for i in live_instances(view, snap)], view.config)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a row and ``--format json`` show of one object, each fact computed once: every
    one is a pass over the live instances, and a row asked for the avail 7 times (with
    200 objects, ~half of the frame's time)."""

    live: list[Instance]
    avail: str
    overall: str
    leaders: list[str]
    placement: str

    @classmethod
    def of(cls, view: ObjectView, snap: Snapshot) -> Facts:
        live = live_instances(view, snap)
        avail = aggregate_avail([i.avail for i in live], view.config)
        return cls(
            live=live,
            avail=avail,
            overall=aggregate_avail([i.overall for i in live], view.config),
            leaders=leaders(view, snap),
            placement=placement_state(view, snap) if avail == UP else "n/a",
        )


def object_frozen(live: Sequence[Instance]) -> str:
    """om3's object ``frozen`` (of its live instances): frozen, unfrozen, mixed, or n/a
    without instances."""
    flags = {i.frozen for i in live}
    if not flags:
        return "n/a"
    return "mixed" if len(flags) > 1 else ("frozen" if flags == {True} else "unfrozen")


def running(view: ObjectView, facts: Facts) -> str:
    """``<up>/<expected>``; empty without live instances or when the object is n/a."""
    if not facts.live or facts.avail == "n/a":
        return ""
    return f"{sum(1 for i in facts.live if i.avail == UP)}/{view.config.wanted_up}"


def _avail_icon(inst: Instance, object_up: bool, paint: Paint) -> str:
    """om3's instance icon: a down or standby-up instance is dim when the object is up
    (nothing to fix), bright red when it is not."""
    avail = inst.avail
    if avail == "up":
        return paint("O", GREEN)
    if avail == "warn":
        return paint("!", YELLOW)
    if avail == "n/a":
        return paint("/", HIBLACK)
    if avail == "stdby down":
        return paint("x", HIRED)
    if avail in ("down", "stdby up"):
        icon = "X" if avail == "down" else "o"
        return paint(icon, HIBLACK if object_up else HIRED)
    return paint("?", HIRED)


def cell(view: ObjectView, snap: Snapshot, node: str, *, facts: Facts,
         paint: Paint = Paint()) -> str:  # fmt: skip
    """One instance's cell (empty: the node is not in the object's scope)."""
    inst = view.instance(node) if snap.alive(node) else None
    if inst is None:
        return paint("?", HIRED) if node in view.config.scope else ""
    text = _avail_icon(inst, facts.avail == UP, paint)
    if inst.overall == "warn":
        text += paint("!", YELLOW)
    if node in view.config.drpnodes:
        text += paint("#", HIBLACK)
    if node in facts.leaders:
        text += paint("^", HIBLACK)
    if inst.frozen:
        text += paint.frozen("*")
    if not inst.provisioned:
        text += paint("P", HIRED)
    if inst.config_error:
        text += " config error"
    elif str(inst.state) != "idle":
        text += f" {inst.state}"
    if view.intent is not None:
        text += paint(f" >{view.intent.expect}", HIBLUE)
    return text


def object_status(facts: Facts, paint: Paint = Paint()) -> str:
    """``<avail>[!][^]``: overall warn, non-optimal placement."""
    text = paint.status(facts.avail)
    if facts.overall == "warn":
        text += paint("!", YELLOW)
    if facts.placement == "non-optimal":
        text += paint("^", YELLOW)
    return text


def _object_row(view: ObjectView, snap: Snapshot, nodes: Sequence[str], sep: str,
                paint: Paint) -> list[str]:  # fmt: skip
    facts = Facts.of(view, snap)
    orchestrate = f"{view.config.orchestrate:<5} {running(view, facts)}"
    cells = [cell(view, snap, n, facts=facts, paint=paint) for n in nodes]
    return [f" {paint(view.config.path, BOLD)}", object_status(facts, paint), orchestrate,
            sep, *cells]  # fmt: skip


# ---------------------------------------------------------------------------
# The frame


def columns(snap: Snapshot, members: Sequence[str] = ()) -> list[str]:
    """Node columns: ``cluster.conf``'s nodes in its order, then any other known node."""
    listed = list(dict.fromkeys(members))
    return listed + [n for n in snap.nodes if n not in listed]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    """What every section needs: the snapshot, the columns, the painter."""

    snap: Snapshot
    nodes: list[str]
    paint: Paint

    @property
    def sep(self) -> str:
        return "|" if self.nodes else " "

    def title(self, text: str) -> list[str]:
        return [text, "", "", "", *(self.paint(n, BOLD) for n in self.nodes)]

    def row(self, label: str, cell_of: Callable[[str], str], status: str = "") -> list[str]:
        """`` <label>`` (its leading spaces unpainted), then one cell per node."""
        indent = label[: len(label) - len(label.lstrip())]
        name = indent + self.paint(label.lstrip(), BOLD)
        return [name, status, "", self.sep, *(cell_of(n) for n in self.nodes)]

    def empty(self) -> list[str]:
        return ["", "", "", "", *("" for _ in self.nodes)]

    def known(self, node: str) -> bool:
        return self.snap.alive(node)

    def undef(self) -> str:
        return self.paint("?", HIRED)


def _daemon_rows(
    f: _Frame, daemons: Mapping[str, Daemon], now: float, *, verbose: bool
) -> list[list[str]]:
    def uptime(n: str) -> str:
        found = daemons.get(n)
        if not f.known(n) or found is None or not found.started:
            return f.undef()
        return short_duration(now - found.started)

    def lease(n: str) -> str:
        return f.paint("O", GREEN) if f.known(n) else f.paint("X", HIRED)

    def left(n: str) -> str:
        found = daemons.get(n)
        if not f.known(n) or found is None or found.lease_left is None:
            return f.undef()
        return f"{found.lease_left}s"

    rows = [f.title("Daemon"), f.row(" uptime", uptime), f.row(" state", lease)]
    if verbose:
        rows.append(f.row("  lease left", left))
    return [*rows, f.empty()]


def _node_rows(f: _Frame, daemons: Mapping[str, Daemon]) -> list[list[str]]:
    snap = f.snap

    def score(n: str) -> str:
        return str(snap.nodes[n].score) if f.known(n) else f.undef()

    def load(n: str) -> str:
        return f"{snap.nodes[n].load15:.1f}" if f.known(n) else f.undef()

    def version(n: str) -> str:
        found = daemons.get(n)
        return found.version if f.known(n) and found and found.version else f.undef()

    def state(n: str) -> str:
        node, daemon = snap.nodes.get(n), daemons.get(n, Daemon())
        if daemon.partitioned:
            return f.paint("partitioned", HIRED)
        if node is None or not node.alive:
            return f.paint("fenced" if daemon.fenced else "lost", HIRED)
        return ("" if node.state == "idle" else node.state) + (
            f.paint.frozen("*") if node.frozen else ""
        )

    rows = [f.title("Nodes"), f.row(" score", score), f.row("  load15m", load)]
    versions = {daemons[n].version for n in f.nodes if f.known(n) and n in daemons}
    if len(versions - {""}) > 1:  # om3 shows versions only when they differ
        rows.append(f.row("  version", version, status=f.paint("warn", YELLOW)))
    return [*rows, f.row(" state", state), f.empty()]


def _object_rows(f: _Frame, selector: str) -> list[list[str]]:
    title = "Objects"
    if selector:
        cut = selector if len(selector) <= SELECTOR_WIDTH else selector[:15] + "..."
        title += f" ~ {cut}"
    paths = select(selector, sorted(f.snap.objects))
    rows = [f.title(title)]
    rows += [_object_row(f.snap.objects[p], f.snap, f.nodes, f.sep, f.paint) for p in paths]
    return rows


def frame(
    snap: Snapshot,
    *,
    members: Sequence[str] = (),
    daemons: Mapping[str, Daemon] | None = None,
    selector: str = "",
    colour: bool = False,
    now: float | None = None,
    verbose: bool = False,
) -> str:
    """The whole ``om mon`` text: Daemon, Nodes and Objects in one table; with
    ``verbose``, each lease's time left and, after the table, the last takeover of each
    object (where, when, why)."""
    f = _Frame(snap=snap, nodes=columns(snap, members), paint=Paint(colour))
    clock = time.time() if now is None else now
    found = daemons or {}
    rows = [*_daemon_rows(f, found, clock, verbose=verbose), *_node_rows(f, found),
            *_object_rows(f, selector)]  # fmt: skip
    text = tabulate(rows)
    if verbose:
        text += takeovers(snap, selector, clock, f.paint)
    return text


def takeovers(snap: Snapshot, selector: str, now: float, paint: Paint = Paint()) -> str:
    """``Takeovers``: for each object, the node that took its ownership last, how long
    ago and why (a lost node, an orchestration, ``orchestrate = ha``)."""
    lines = []
    for path in select(selector, sorted(snap.objects)):
        view = snap.objects[path]
        taken = [i for i in view.instances.values() if i.took_over]
        if taken:
            last = max(taken, key=lambda i: i.took_over)
            ago = short_duration(now - last.took_over)
            lines.append(f" {paint(path, BOLD)} on {last.node}, {ago} ago: {last.took_over_why}")
    if not lines:
        return ""
    return "\n" + paint("Takeovers", BOLD) + "\n" + "\n".join(lines) + "\n"


def visible_width(text: str) -> int:
    """Display width, colour codes excluded (as om3's ansiterm tabwriter measures)."""
    if "\033" not in text:  # no colour: every cell of a plain frame, measured twice
        return len(text)
    width, escape = 0, False
    for char in text:
        if char == "\033":
            escape = True
        elif escape:
            escape = char != "m"
        else:
            width += 1
    return width


def tabulate(rows: Sequence[Sequence[str]]) -> str:
    """Go's tabwriter with om3's settings (padding 1, every cell tab-terminated): each
    column is its widest cell plus one space, and every cell is padded, the last too."""
    widths = [max(visible_width(r[i]) for r in rows) + 1 for i in range(len(rows[0]))]
    return "".join(
        "".join(c + " " * (w - visible_width(c)) for c, w in zip(row, widths, strict=True)) + "\n"
        for row in rows
    )


def watch_header(host: str, count: int, cluster: str, when: float) -> str:
    """om3's ``--watch`` header (omc reads etcd, not a node's daemon), then a blank line."""
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S %Z", time.localtime(when))
    return (f"Client {host} received {count} eventsets from etcd, cluster {cluster}, "
            f"last on {stamp}\n\n")  # fmt: skip


# ---------------------------------------------------------------------------
# From the CLI's cluster state; golden cases


def state_frame(state: ClusterState, *, local: str = "", selector: str = "",
                colour: bool = False, now: float | None = None, verbose: bool = False,
                daemons: Mapping[str, Daemon] | None = None) -> str:  # fmt: skip
    """The frame of a live :class:`ClusterState` (``om mon``, ``--watch``); ``daemons``
    as :func:`state_daemons` gives them."""
    found = state_daemons(state) if daemons is None else daemons
    return frame(state.snapshot(local), members=state.members, daemons=found,
                 selector=selector, colour=colour, now=now, verbose=verbose)  # fmt: skip


def state_daemons(
    state: ClusterState,
    *,
    leases: Mapping[str, int] | None = None,
    partitioned: str = "",
) -> dict[str, Daemon]:
    """The daemon facts of a cluster state: with ``leases`` (node → seconds left, read
    by the CLI for ``--verbose``), and ``partitioned``: the local node when its view is
    its own etcd member's, without quorum."""
    found = daemons_from_json(state.nodes, fenced=state.fenced)
    for name, left in (leases or {}).items():
        found[name] = replace(found.get(name, Daemon()), lease_left=left)
    if partitioned:
        found[partitioned] = replace(found.get(partitioned, Daemon()), partitioned=True)
    return found


def render_watch(state: ClusterState, path: ObjectPath) -> str:
    """One object's frame, as an orchestrated action's ``--watch`` redraws it."""
    return "\n" + state_frame(state, selector=str(path))


def case_frame(case: Mapping[str, Any]) -> str:
    """A golden case's frame: ``snapshot`` (node records may carry ``started`` and
    ``version``), and optionally ``members``, ``selector``, ``colour``, ``now``."""
    raw = case["snapshot"]
    daemons = daemons_from_json(raw["nodes"], fenced=case.get("fenced", ()))
    for name, left in case.get("lease_left", {}).items():
        daemons[name] = replace(daemons.get(name, Daemon()), lease_left=int(left))
    if case.get("partitioned"):
        name = str(case["partitioned"])
        daemons[name] = replace(daemons.get(name, Daemon()), partitioned=True)
    return frame(snapshot_from_json(raw), members=tuple(case.get("members", ())),
                 daemons=daemons, selector=str(case.get("selector", "")),
                 colour=bool(case.get("colour", False)), now=float(case.get("now", 0.0)),
                 verbose=bool(case.get("verbose", False)))  # fmt: skip


# ---------------------------------------------------------------------------
# --format json|yaml


def _instance_data(view: ObjectView, snap: Snapshot, node: str, inst: Instance,
                   chosen: Sequence[str]) -> dict[str, object]:  # fmt: skip
    return {
        "avail": inst.avail, "overall": inst.overall, "frozen": inst.frozen,
        "provisioned": inst.provisioned, "state": str(inst.state), "oid": inst.oid,
        "done": inst.done, "local_expect": inst.local_expect, "leader": node in chosen,
        "drp": node in view.config.drpnodes, "alive": snap.alive(node),
        "config_error": inst.config_error, "took_over": inst.took_over,
        "took_over_why": inst.took_over_why,
    }  # fmt: skip


def _object_data(view: ObjectView, snap: Snapshot) -> dict[str, object]:
    facts = Facts.of(view, snap)
    chosen = facts.leaders
    intent = view.intent
    return {
        "avail": facts.avail, "overall": facts.overall,
        "frozen": object_frozen(facts.live), "placement": facts.placement,
        "orchestrate": view.config.orchestrate, "topology": view.config.topology,
        "up": sum(1 for i in facts.live if i.avail == UP), "expected": view.config.wanted_up,
        "leaders": chosen, "owner": view.owner, "scope": list(view.config.scope),
        "intent": None if intent is None else {
            "expect": str(intent.expect), "oid": intent.oid,
            "destination": list(intent.destination),
        },
        "instances": {node: _instance_data(view, snap, node, inst, chosen)
                      for node, inst in sorted(view.instances.items())},
    }  # fmt: skip


def to_data(snap: Snapshot, *, selector: str = "", members: Sequence[str] = (),
            daemons: Mapping[str, Daemon] | None = None) -> dict[str, object]:  # fmt: skip
    """``om mon --format json|yaml``: the facts of the text, as data."""
    found = daemons or {}
    nodes = {}
    for name in columns(snap, members):
        node, daemon = snap.nodes.get(name, Node(name=name, alive=False)), found.get(name, Daemon())
        nodes[name] = {"alive": node.alive, "frozen": node.frozen, "state": node.state,
                       "score": node.score, "load15": node.load15,
                       "started": daemon.started, "version": daemon.version,
                       "fenced": daemon.fenced, "partitioned": daemon.partitioned,
                       "lease_left": daemon.lease_left}  # fmt: skip
    paths = select(selector, sorted(snap.objects))
    objects = {p: _object_data(snap.objects[p], snap) for p in paths}
    return {"revision": snap.revision, "nodes": nodes, "objects": objects}
