"""``om <path> print status``: the om3 tree (opensvc.md §6.2) and its JSON form. Pure.

Layout: the object line, ``instances``, the local node expanded with its
``resources``: ``rid  flags  status  label`` and indented status-log lines.
The status column is aligned across all lines, as om3 prints it. Control characters
(an app's check output, a label) are shown escaped, as on every console line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omc.runtime.drivers.base import Status
from omc.runtime.log import printable  # labels and check output: controls shown escaped


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

    @property
    def notes(self) -> str:
        notes = ["warn"] if self.overall is Status.WARN else []
        if self.frozen:
            notes.append("frozen")
        return " ".join(notes)


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
    name_w = max((len(ln.left) for ln in body if ln.row), default=0) + 2
    status_x = max(name_w + 10, len(view.path) + 2, len(view.node) + 6)
    status_w = max([len(str(r.status)) for r in view.resources] + [len(str(view.avail))]) + 2
    lines = [
        f"{view.path:<{status_x}}{view.avail!s:<{status_w}}"
        + ("warn" if view.overall is Status.WARN else ""),
        "└ instances",
        f"{'  └ ' + view.node:<{status_x}}{view.avail!s:<{status_w}}{view.notes}",
        "    └ resources",
    ]
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


def to_json(view: InstanceView) -> str:
    """The machine-readable form (``--format json``)."""
    data = {
        "path": view.path,
        "avail": str(view.avail),
        "overall": str(view.overall),
        "instances": {
            view.node: {
                "avail": str(view.avail),
                "overall": str(view.overall),
                "frozen": view.frozen,
                "resources": {
                    r.rid: {
                        "status": str(r.status),
                        "label": r.label,
                        "flags": r.flags,
                        "log": list(r.messages),
                    }
                    for r in view.resources
                },
                **(dict(view.extra) if view.extra else {}),
            }
        },
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def render_resource_list(rows: Sequence[tuple[str, str, str]]) -> str:
    """``om <path> resource ls``: rid, driver and unit, one per line."""
    width = max((len(r[0]) for r in rows), default=3) + 2
    dwidth = max((len(r[1]) for r in rows), default=6) + 2
    head = f"{'RID':<{width}}{'DRIVER':<{dwidth}}UNIT"
    return "\n".join([head, *(f"{a:<{width}}{b:<{dwidth}}{c}" for a, b, c in rows)]) + "\n"
