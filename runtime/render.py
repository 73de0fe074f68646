"""``om <path> print status``: the om3 tree (opensvc.md §6.2) and its JSON form. Pure.

Layout: the object line, ``instances``, the local node expanded with its
``resources``: ``rid  flags  status  label`` and indented status-log lines.
The status column is aligned across all lines, as om3 prints it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omc.runtime.drivers.base import Status


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRow:
    rid: str
    flags: str
    status: Status
    label: str
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceView:
    """What ``print status`` shows about one object on this node."""

    path: str
    node: str
    avail: Status
    overall: Status
    frozen: bool
    resources: tuple[ResourceRow, ...]
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


def render_tree(view: InstanceView) -> str:
    """The text tree, with the status column aligned on every line."""
    res_left = [f"      {'└' if i == len(view.resources) - 1 else '├'} {r.rid}"
                for i, r in enumerate(view.resources)]  # fmt: skip
    name_w = max((len(s) for s in res_left), default=0) + 2
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
    for i, (left, row) in enumerate(zip(res_left, view.resources, strict=True)):
        lines.append(f"{left:<{status_x - 10}}{row.flags}  {row.status!s:<{status_w}}{row.label}")
        cont = "      │" if i < len(view.resources) - 1 else ""
        lines.extend(f"{cont:<{label_x}}{_message_line(m)}" for m in row.messages)
    return "\n".join(line.rstrip() for line in lines) + "\n"


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
