"""Where the runtime keeps its own files on a node (state, locks, relay sockets, flags).

Config locations are the contract's (:mod:`omc.compiler.contract.node`); these
are the runtime's alone:

* per-object state (config hash, ``frozen`` flag, ``stopped/<rid>`` flags, task and
  sync records): ``/var/lib/opensvc/<kind>/<name>/`` (root namespace) or
  ``/var/lib/opensvc/namespaces/<ns>/<kind>/<name>/``; ``OMC_VAR`` overrides the root;
* action locks, log relay sockets and sid files: ``/run/opensvc/lock/``,
  ``/run/opensvc/action/``; ``OMC_RUN`` overrides the root;
* ``fs.flag`` flags: ``/dev/shm/opensvc/<kind>/<name>/<rid>.flag`` (namespaced under
  ``namespaces/<ns>/``); ``OMC_FLAG_DIR`` overrides the root;
* the collector spool: ``/var/lib/opensvc/collector/spool/`` (``0700``), the node's
  generated uuid ``/var/lib/opensvc/node/uuid`` (``0600``).

Every path is built here from checked parts only: the object path's names and
namespace (:func:`~omc.compiler.contract.paths.name_error`) and the rid
(:func:`~omc.compiler.contract.paths.check_rid`), so no string from a config, a
unit file or argv becomes a path unchecked. Reading and writing them goes through
:mod:`omc.runtime.safefs` (root-owned directories, fixed modes, no symlinks).
Directories are ``0755`` but ``action/``, ``0700``: only root talks to a relay.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omc.compiler.contract.paths import KINDS, ObjectPath, PathError, check_rid, name_error
from omc.runtime import safefs

FLAG_DIR_ENV = "OMC_FLAG_DIR"
DEFAULT_FLAG_DIR = "/dev/shm/opensvc"
ACTION_DIR_MODE = 0o700
_SUFFIX = re.compile(r"[A-Za-z0-9_.@+:=-]*\Z")


def var_dir() -> Path:
    """Per-object state (frozen flag, stopped flags); ``OMC_VAR`` overrides."""
    return Path(os.environ.get("OMC_VAR", "/var/lib/opensvc"))


def run_dir() -> Path:
    """Volatile per-action files (locks, log relay sockets); ``OMC_RUN`` overrides."""
    return Path(os.environ.get("OMC_RUN", "/run/opensvc"))


def flag_dir() -> Path:
    """Where ``fs.flag`` resources keep their flags; ``OMC_FLAG_DIR`` overrides."""
    return Path(os.environ.get(FLAG_DIR_ENV) or DEFAULT_FLAG_DIR)


def _object_part(path: ObjectPath) -> Path:
    """``<kind>/<name>`` or ``namespaces/<ns>/<kind>/<name>``, each part checked again:
    an ObjectPath can be built without :func:`parse_path`."""
    why = name_error(path.name)
    if not why and path.kind not in KINDS:
        why = f"invalid kind {path.kind!r}"
    if not why and path.namespace != "root":
        why = name_error(path.namespace, "namespace")
    if why:
        raise PathError(why)
    if path.namespace == "root":
        return Path(path.kind, path.name)
    return Path("namespaces", path.namespace, path.kind, path.name)


def object_var_dir(path: ObjectPath) -> Path:
    """``<var>/<kind>/<name>`` (root) or ``<var>/namespaces/<ns>/<kind>/<name>``."""
    return var_dir() / _object_part(path)


def frozen_flag(path: ObjectPath) -> Path:
    """The instance's frozen flag file: a frozen instance is never acted on by the daemon."""
    return object_var_dir(path) / "frozen"


def stopped_dir(path: ObjectPath) -> Path:
    """Where :func:`stopped_flag` files live (one per resource stopped by a selection)."""
    return object_var_dir(path) / "stopped"


def stopped_flag(path: ObjectPath, rid: str) -> Path:
    """Written when a resource is stopped through a selection (restart flag ``X``)."""
    return stopped_dir(path) / check_rid(rid)


def config_hash_file(path: ObjectPath) -> Path:
    """The hash of the config the installed units were compiled from."""
    return object_var_dir(path) / "config.sha256"


def resource_file(path: ObjectPath, rid: str, suffix: str) -> Path:
    """``<var>/…/<rid><suffix>``: a resource's own record (``.last_run``, ``.ipname`` …)."""
    if not _SUFFIX.match(suffix):
        raise PathError(f"invalid file suffix {suffix!r} for {rid}")
    return object_var_dir(path) / f"{check_rid(rid)}{suffix}"


def task_pid_dir(path: ObjectPath, rid: str) -> Path:
    """Where running instances of a task leave a pid file each (``max_parallel``)."""
    return object_var_dir(path) / "run" / check_rid(rid)


def flag_file(path: ObjectPath, rid: str) -> Path:
    """``/dev/shm/opensvc/<kind>/<name>/<rid>.flag``; namespaced under ``namespaces/<ns>/``."""
    return flag_dir() / _object_part(path) / f"{check_rid(rid)}.flag"


def replicated_marker(path: ObjectPath) -> Path:
    """Written when an object's config came from the cluster (its sha256): only such
    configs are removed when the cluster's key goes."""
    return object_var_dir(path) / "replicated"


def node_frozen_flag() -> Path:
    """The node's frozen flag (om3's ``<var>/node/frozen``): the cluster starts nothing
    here on its own."""
    return var_dir() / "node" / "frozen"


def daemon_lease_file() -> Path:
    """The node daemon's etcd lease id, kept across a restart of the daemon (0600)."""
    return run_dir() / "daemon.lease"


def node_uuid_file() -> Path:
    """The node's uuid when ``node.conf`` sets none (the collector's auth tuple), 0600."""
    return var_dir() / "node" / "uuid"


def collector_spool_dir() -> Path:
    """The collector spool (``0700``): one file per XML-RPC call, a state file, the
    sender's lock (:mod:`omc.runtime.collector.spool`)."""
    return var_dir() / "collector" / "spool"


SPOOL_DIR_MODE = 0o700


def sync_requests_dir() -> Path:
    """Where the cluster rsync daemon notes each transfer's request for its post-xfer
    hook (``0700``; one file per transfer, named by rsync's ``RSYNC_PID``)."""
    return run_dir() / "rsyncd"


def sync_transport_dir() -> Path:
    """The cluster sync transport's files (``0700``): passwords, rsyncd.conf, what
    drivers read (:mod:`omc.runtime.cluster.syncs`)."""
    return var_dir() / "node" / "sync"


def lock_file(path: ObjectPath) -> Path:
    """The per-object action lock (§4.7)."""
    _object_part(path)
    return run_dir() / "lock" / f"{path.flat}.lock"


def relay_files(path: ObjectPath) -> tuple[Path, Path]:
    """The acting ``om``'s relay socket and sid file for an object."""
    _object_part(path)
    base = run_dir() / "action"
    return base / f"{path.flat}.sock", base / f"{path.flat}.sid"


def is_set(flag: Path) -> bool:
    """Whether a flag file is there, made by root in root's directories (what status
    shows: a flag another user could have made is not set)."""
    try:
        return safefs.is_file(flag)
    except safefs.UnsafePathError:
        return False
