"""Object paths as the CLI spells them (opensvc.md §1.1), and where their files live.

Pure and import-light: the log relay, the store and the driver entry point all
need to turn ``svc0`` / ``ns1/svc/web`` into the same canonical path, so the
rules live once, here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(?:\d+\.)?[a-z][a-z0-9.-]*$")
KINDS = ("svc", "vol", "cfg", "sec", "usr")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectPath:
    """``<namespace>/<kind>/<name>``, like ``omc.compiler.ir.ObjectPath``.

    A runtime twin rather than the IR class: importing the IR module costs
    ~60 ms (dozens of dataclasses), too much for ``om``'s start-up.
    """

    namespace: str = "root"
    kind: str = "svc"
    name: str

    def __str__(self) -> str:
        if self.namespace == "root":
            return self.name if self.kind == "svc" else f"{self.kind}/{self.name}"
        return f"{self.namespace}/{self.kind}/{self.name}"


class PathError(ValueError):
    """A string that is not a valid object path; the message says why."""


def _check_name(value: str, what: str, text: str) -> None:
    if not _NAME.match(value) or value.endswith(("-", ".")) or len(value) > 63:
        raise PathError(
            f"invalid {what} {value!r} in object path {text!r}: "
            "expected lowercase letters, digits, '-' or '.', starting with a letter"
        )


def parse_path(text: str) -> ObjectPath:
    """``name`` → root/svc/name, ``kind/name`` → root/kind/name, ``ns/kind/name`` as is."""
    parts = text.split("/")
    if len(parts) == 1:
        ns, kind, name = "root", "svc", parts[0]
    elif len(parts) == 2:
        ns, kind, name = "root", parts[0], parts[1]
    elif len(parts) == 3:
        ns, kind, name = parts
    else:
        raise PathError(f"invalid object path {text!r}: too many '/'")
    if kind not in KINDS:
        raise PathError(f"invalid object path {text!r}: unknown kind {kind!r}")
    _check_name(name, "name", text)
    if ns != "root":
        _check_name(ns, "namespace", text)
    if name in KINDS:
        raise PathError(f"invalid object path {text!r}: {name!r} is a reserved kind name")
    return ObjectPath(namespace=ns, kind=kind, name=name)


def fqn(path: ObjectPath) -> str:
    """The full ``ns/kind/name`` form used for glob matching (§1.9)."""
    return f"{path.namespace}/{path.kind}/{path.name}"


def flat(path: ObjectPath) -> str:
    """A file-name-safe form (names never hold ``_``): ``root_svc_svc0``."""
    return f"{path.namespace}_{path.kind}_{path.name}"


def etc_dir() -> Path:
    """Where object configs live; ``OMC_ETC`` overrides ``/etc/opensvc`` (tests)."""
    return Path(os.environ.get("OMC_ETC", "/etc/opensvc"))


def var_dir() -> Path:
    """Per-object state (frozen flag, stopped flags); ``OMC_VAR`` overrides."""
    return Path(os.environ.get("OMC_VAR", "/var/lib/opensvc"))


def run_dir() -> Path:
    """Volatile per-action files (log relay sockets); ``OMC_RUN`` overrides."""
    return Path(os.environ.get("OMC_RUN", "/run/opensvc"))


def config_file(path: ObjectPath) -> Path:
    """om3 ``Path.ConfigFile()``: ``<etc>/<name>.conf`` for root svc, else by kind/namespace."""
    if path.namespace == "root":
        if path.kind == "svc":
            return etc_dir() / f"{path.name}.conf"
        return etc_dir() / path.kind / f"{path.name}.conf"
    return etc_dir() / "namespaces" / path.namespace / path.kind / f"{path.name}.conf"


def frozen_flag(path: ObjectPath) -> Path:
    """The instance's frozen flag file: a frozen instance is never acted on by the daemon."""
    return object_var_dir(path) / "frozen"


def stopped_flag(path: ObjectPath, rid: str) -> Path:
    """Written when a resource is stopped through a selection (restart flag ``X``)."""
    return object_var_dir(path) / "stopped" / rid


def object_var_dir(path: ObjectPath) -> Path:
    """``<var>/<kind>/<name>`` (root) or ``<var>/namespaces/<ns>/<kind>/<name>``."""
    if path.namespace == "root":
        return var_dir() / path.kind / path.name
    return var_dir() / "namespaces" / path.namespace / path.kind / path.name
