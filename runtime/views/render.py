"""``om <path> print status``: the om3 tree (opensvc.md §6.2) and its data form. Pure.

Layout: the object line, ``instances``, the other nodes' instances folded to one
line each (on a cluster node: :mod:`.cluster`), then the local node expanded with
its ``resources``: ``rid  flags  status  label`` and indented status-log lines. The
status column is aligned across all lines, as om3 prints it. Control characters (an
app's check output, a label) are shown escaped, as on every console line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omc.runtime.drivers.base import Status
from omc.runtime.log import printable  # labels and check output: controls shown escaped

if TYPE_CHECKING:  # imported at run time only on a cluster node (views/status.py)
    from omc.runtime.views.cluster import ClusterView, InstanceLine


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRow:
    rid: str
    flags: str
    status: Status
    label: str
    messages: tuple[str, ...] = ()
    subset: str | None = None  # "<group>:<name>" when the resource is in a subset


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceView:
    """What ``print status`` shows about one object on this node."""

    path: str
    node: str
    avail: Status
    overall: Status
    frozen: bool
    resources: tuple[ResourceRow, ...]
    parallel: frozenset[str] = frozenset()  # subsets ("<group>:<name>") marked parallel
    extra: Mapping[str, object] | None = None
    cluster: ClusterView | None = None  # on a cluster node: the object across the cluster

    @property
    def notes(self) -> str:
        """The local instance's notes (om3's, with the monitor's on a cluster node)."""
        if self.cluster is not None and self.cluster.local is not None:
            return " ".join(self.cluster.local.notes)
        notes = ["warn"] if self.overall is Status.WARN else []
        if self.frozen:
            notes.append("frozen")
        return " ".join(notes)

    @property
    def object_avail(self) -> str:
        """The object's avail: the cluster's when it could be read, else this node's."""
        if self.cluster is not None and not self.cluster.error:
            return self.cluster.avail
        return str(self.avail)

    @property
    def object_notes(self) -> tuple[str, ...]:
        """The object line's notes: the cluster's, or ``warn`` from this node's overall."""
        if self.cluster is not None and not self.cluster.error:
            return self.cluster.notes
        return ("warn",) if self.overall is Status.WARN else ()

    @property
    def peers(self) -> tuple[InstanceLine, ...]:
        return () if self.cluster is None else self.cluster.peers


def flags(
    *,
    running: bool = False,
    monitor: bool = False,
    disabled: bool = False,
    optional: bool = False,
    encap: bool = False,
    provisioned: str = ".",
    standby: bool = False,
    restart: int = 0,
    stopped: bool = False,
) -> str:
    """The 8 flag columns: R M D O E provisioned S restart (``.`` when unset)."""
    restart_flag = (
        "X" if stopped else ("." if restart <= 0 else "+" if restart > 9 else str(restart))
    )
    return "".join(
        (
            "R" if running else ".",
            "M" if monitor else ".",
            "D" if disabled else ".",
            "O" if optional else ".",
            "E" if encap else ".",
            provisioned,
            "S" if standby else ".",
            restart_flag,
        )
    )


def _message_line(msg: str) -> str:
    return msg if msg.startswith(("info:", "warn:", "error:")) else f"info: {msg}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Line:
    """One line of the resources part: tree prefix, optional row, continuation prefix."""

    left: str
    cont: str  # the prefix of the status-log lines under it
    row: ResourceRow | None = None


def _resource_lines(view: InstanceView) -> list[_Line]:
    """Resources in order, members of a subset grouped under a ``subset#…`` node."""
    groups: list[tuple[str | None, list[ResourceRow]]] = []
    for row in view.resources:
        if row.subset and groups and groups[-1][0] == row.subset:
            groups[-1][1].append(row)
        else:
            groups.append((row.subset, [row]))
    lines: list[_Line] = []
    for gi, (subset, rows) in enumerate(groups):
        last_group = gi == len(groups) - 1
        branch, pipe = ("└", " ") if last_group else ("├", "│")
        if subset is None:
            (row,) = rows
            lines.append(_Line(left=f"      {branch} {row.rid}", cont=f"      {pipe}", row=row))
            continue
        mark = " //" if subset in view.parallel else ""
        lines.append(_Line(left=f"      {branch} subset#{subset}{mark}", cont=""))
        for ri, row in enumerate(rows):
            inner, inner_pipe = ("└", " ") if ri == len(rows) - 1 else ("├", "│")
            lines.append(_Line(left=f"      {pipe} {inner} {row.rid}",
                               cont=f"      {pipe} {inner_pipe}", row=row))  # fmt: skip
    return lines


def render_tree(view: InstanceView) -> str:
    """The text tree, with the status column aligned on every line."""
    body = _resource_lines(view)
    peers = view.peers
    name_w = max((len(ln.left) for ln in body if ln.row), default=0) + 2
    status_x = max(name_w + 10, len(view.path) + 2,
                   *(len(n) + 6 for n in (view.node, *(p.node for p in peers))))  # fmt: skip
    avails = [str(r.status) for r in view.resources] + [str(view.avail), view.object_avail]
    status_w = max(len(a) for a in avails + [p.avail for p in peers]) + 2
    lines = [
        f"{view.path:<{status_x}}{view.object_avail:<{status_w}}{' '.join(view.object_notes)}",
        "└ instances",
        *(f"{'  ├ ' + p.node:<{status_x}}{p.avail:<{status_w}}{' '.join(p.notes)}"
          for p in peers),
        f"{'  └ ' + view.node:<{status_x}}{view.avail!s:<{status_w}}{view.notes}",
        "    └ resources",
    ]  # fmt: skip
    label_x = status_x + status_w
    for ln in body:
        row = ln.row
        if row is None:
            lines.append(ln.left)
            continue
        lines.append(
            f"{ln.left:<{status_x - 10}}{row.flags}  {row.status!s:<{status_w}}{row.label}"
        )
        lines.extend(f"{ln.cont.rstrip():<{label_x}}{_message_line(m)}" for m in row.messages)
    return "\n".join(printable(line).rstrip() for line in lines) + "\n"


def to_data(view: InstanceView) -> dict[str, object]:
    """The machine-readable form (``--format json|yaml``): the tree's facts. On a
    cluster node, the object's ``avail`` is the cluster's, ``placement`` and ``notes``
    come with it, and ``instances`` holds every node (the local one last)."""
    local: dict[str, object] = {
        "avail": str(view.avail),
        "overall": str(view.overall),
        "frozen": view.frozen,
        "resources": {
            r.rid: {"status": str(r.status), "label": r.label, "flags": r.flags,
                    "log": list(r.messages)}
            for r in view.resources
        },
        **(dict(view.extra) if view.extra else {}),
    }  # fmt: skip
    data: dict[str, object] = {
        "path": view.path,
        "avail": view.object_avail,
        "overall": str(view.overall),
        "notes": list(view.object_notes),
    }
    cluster = view.cluster
    if cluster is not None:
        if not cluster.error:
            data.update(overall=cluster.overall, placement=cluster.placement)
        data["cluster"] = {"name": cluster.name, "error": cluster.error}
        if cluster.local is not None:
            local = {**cluster.local.facts, **local}
    data["instances"] = {**{p.node: dict(p.facts) for p in view.peers}, view.node: local}
    return data


def to_json(view: InstanceView) -> str:
    """``--format json``."""
    return json.dumps(to_data(view), indent=2, sort_keys=False) + "\n"


def render_resource_list(rows: Sequence[tuple[str, str, str]]) -> str:
    """``om <path> resource ls``: rid, driver and unit, one per line."""
    width = max((len(r[0]) for r in rows), default=3) + 2
    dwidth = max((len(r[1]) for r in rows), default=6) + 2
    head = f"{'RID':<{width}}{'DRIVER':<{dwidth}}UNIT"
    return "\n".join([head, *(f"{a:<{width}}{b:<{dwidth}}{c}" for a, b, c in rows)]) + "\n"
