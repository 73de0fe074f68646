"""Object paths, kinds, driver groups and resource ids (opensvc.md §1.1, §1.3, §2.2).

``om`` parses every command's selector, the driver entry point every unit's
``X-OpenSVC-Path=``, the compiler every file location: all of them through
:func:`parse_path`, so a name one side accepts is never refused by the other.
Resource ids have one grammar too (:func:`rid_error`): the compiler refuses a
section that breaks it, and the runtime checks it again wherever a rid becomes
part of a file name (a rid also arrives from argv: ``driver start --rid``).
Import-light on purpose (``om``'s hot path): enums, one dataclass, a few regexes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Object kinds (opensvc.md §1.1). Only svc and vol produce units."""

    SVC = "svc"
    VOL = "vol"
    CFG = "cfg"
    SEC = "sec"
    USR = "usr"


KINDS = frozenset(Kind)


class Group(StrEnum):
    """Driver groups, declared in start order (opensvc.md §2.2); stop walks them reversed."""

    IP = "ip"
    VOLUME = "volume"
    DISK = "disk"
    FS = "fs"
    SHARE = "share"
    CONTAINER = "container"
    APP = "app"
    SYNC = "sync"
    TASK = "task"

    @property
    def rank(self) -> int:
        """Position in the start order."""
        return _GROUP_RANK[self]


_GROUP_RANK: dict[str, int] = {group: rank for rank, group in enumerate(Group)}


def group_rank(group: str) -> int:
    """The start-order rank of a group name; unknown groups sort last."""
    return _GROUP_RANK.get(group, len(_GROUP_RANK))


# RFC 952-like, as om3 checks names (lowercase, digits, '-', '.'), with the scaler's
# "<n>." prefix allowed; \Z, not $: "svc0\n" is not a name.
_NAME = re.compile(r"(?:\d+\.)?[a-z][a-z0-9.-]*\Z")
NAME_MAX = 63


class PathError(ValueError):
    """A string that is not a valid object path; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectPath:
    """``<namespace>/<kind>/<name>``, shown as om3 does: ``svc0``, ``cfg/c1``, ``ns1/svc/web``."""

    namespace: str = "root"
    kind: Kind = Kind.SVC
    name: str

    def __str__(self) -> str:
        if self.namespace == "root":
            return self.name if self.kind is Kind.SVC else f"{self.kind}/{self.name}"
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def fqn(self) -> str:
        """The full ``ns/kind/name`` form, what selector globs match (§1.9)."""
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def flat(self) -> str:
        """A file-name-safe form, ``root_svc_svc0`` (names never hold ``_``)."""
        return f"{self.namespace}_{self.kind}_{self.name}"


class RidError(PathError):
    """A string that is not a valid resource id; the message says why."""


# <group>#<index>: the index is a file-name-safe word (it becomes part of file and unit
# names: ``fs#1.flag``, ``stopped/app#web``, ``…-app.web.service``), never ``.``, ``/``
# or a leading ``-``. Every rid of the corpus fits: app#1ok, fs#data, sync#i0, container#db.
_RID_INDEX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
RID_INDEX_MAX = 64


def rid_error(rid: str) -> str:
    """Why ``rid`` is not a valid resource id (``<group>#<index>``), or ``""``."""
    group, sep, index = rid.partition("#")
    if not sep or group not in _GROUP_RANK:
        groups = ", ".join(Group)
        return f"invalid resource id {rid!r}: expected <group>#<index>, group one of {groups}"
    if not _RID_INDEX.match(index) or len(index) > RID_INDEX_MAX:
        return (
            f"invalid resource id {rid!r}: the index after '#' must be 1 to {RID_INDEX_MAX} "
            "letters, digits, '_' or '-', not starting with '-'"
        )
    return ""


def check_rid(rid: str) -> str:
    """``rid`` itself when valid, else :class:`RidError` (before it becomes part of a path)."""
    why = rid_error(rid)
    if why:
        raise RidError(why)
    return rid


def name_error(value: str, what: str = "name") -> str:
    """Why ``value`` is not a valid object name or namespace, or ``""``."""
    if not _NAME.match(value) or value.endswith(("-", ".")) or len(value) > NAME_MAX:
        return (
            f"invalid {what} {value!r}: expected at most {NAME_MAX} lowercase letters, "
            "digits, '-' or '.', starting with a letter"
        )
    if what == "name" and value in KINDS:
        return f"invalid name {value!r}: it is a reserved kind name"
    return ""


def parse_path(text: str) -> ObjectPath:
    """``name`` → root/svc/name, ``kind/name`` → root/kind/name, ``ns/kind/name`` as is."""
    parts = text.split("/")
    if len(parts) == 1:
        ns, kind, name = "root", "svc", parts[0]
    elif len(parts) == 2:
        ns, (kind, name) = "root", parts
    elif len(parts) == 3:
        ns, kind, name = parts
    else:
        raise PathError(f"invalid object path {text!r}: too many '/'")
    if kind not in KINDS:
        raise PathError(f"invalid object path {text!r}: unknown kind {kind!r}")
    for value, what in ((name, "name"), (ns, "namespace")):
        if (what == "name" or value != "root") and (why := name_error(value, what)):
            raise PathError(f"{why} (in object path {text!r})")
    return ObjectPath(namespace=ns, kind=Kind(kind), name=name)
