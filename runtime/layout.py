"""Where the runtime keeps its own files on a node (state, locks, relay sockets, flags).

Config locations are the contract's (:mod:`omc.compiler.contract.node`); these
are the runtime's alone:

* per-object state (config hash, ``frozen`` flag, ``stopped/<rid>`` flags):
  ``/var/lib/opensvc/<kind>/<name>/`` (root namespace) or
  ``/var/lib/opensvc/namespaces/<ns>/<kind>/<name>/``; ``OMC_VAR`` overrides the root;
* action locks, log relay sockets and sid files: ``/run/opensvc/lock/``,
  ``/run/opensvc/action/``; ``OMC_RUN`` overrides the root.
"""

from __future__ import annotations

import os
from pathlib import Path

from omc.compiler.contract.paths import ObjectPath


def var_dir() -> Path:
    """Per-object state (frozen flag, stopped flags); ``OMC_VAR`` overrides."""
    return Path(os.environ.get("OMC_VAR", "/var/lib/opensvc"))


def run_dir() -> Path:
    """Volatile per-action files (locks, log relay sockets); ``OMC_RUN`` overrides."""
    return Path(os.environ.get("OMC_RUN", "/run/opensvc"))


def object_var_dir(path: ObjectPath) -> Path:
    """``<var>/<kind>/<name>`` (root) or ``<var>/namespaces/<ns>/<kind>/<name>``."""
    if path.namespace == "root":
        return var_dir() / path.kind / path.name
    return var_dir() / "namespaces" / path.namespace / path.kind / path.name


def frozen_flag(path: ObjectPath) -> Path:
    """The instance's frozen flag file: a frozen instance is never acted on by the daemon."""
    return object_var_dir(path) / "frozen"


def stopped_flag(path: ObjectPath, rid: str) -> Path:
    """Written when a resource is stopped through a selection (restart flag ``X``)."""
    return object_var_dir(path) / "stopped" / rid
