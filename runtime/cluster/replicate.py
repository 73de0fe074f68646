"""Replicated object configs on one node, and the local status the daemon publishes.

``om <path> create --config F`` on any node of a cluster stores the config in etcd
(``configs/<fqn>``: the text and its scope, the nodes it belongs to, decided once
by the creating node). Every daemon installs the configs of its scope exactly as a
local ``create`` would (config file + compile + units, under the object lock), and
removes what it had installed when the key goes. A config that does not compile
here installs nothing (the last good units stay) and is reported in the node's
instance record (``config_error``), never half-installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omc.compiler.contract.node import config_file
from omc.compiler.contract.paths import ObjectPath
from omc.runtime import safefs
from omc.runtime.cluster.records import Status, orchestration_config
from omc.runtime.layout import frozen_flag, replicated_marker

if TYPE_CHECKING:
    from omc.runtime.adapters.systemd import Systemd
    from omc.runtime.log import ActionLog


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What syncing one object's config did on this node."""

    present: bool  # the object belongs here (installed, or its config failed here)
    removed: bool = False  # it left this node (deleted, or out of its scope)
    busy: bool = False  # an action held the object lock: try again later
    error: str = ""  # the config does not compile here (the diagnostics)
    units: tuple[str, ...] = ()


EVERY_NODE = "*"
"""The scope of a config every node installs (cfg, sec and usr stores)."""


def in_scope(node: str, scope: Collection[str]) -> bool:
    return node in scope or EVERY_NODE in scope


def config_entry(text: str, scope: list[str], origin: str) -> dict[str, Any]:
    """The value of ``configs/<fqn>``."""
    return {"text": text, "scope": scope, "origin": origin,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip


def sync(
    path: ObjectPath,
    entry: Mapping[str, Any] | None,
    node: str,
    *,
    sd: Systemd,
    log: ActionLog,
) -> Outcome:
    """Install, update or remove one object's config and units on this node."""
    from omc.runtime.engine.session import try_object_lock

    wanted = entry is not None and in_scope(node, entry.get("scope", ()))
    if not wanted and not safefs.is_file(replicated_marker(path)):
        return Outcome(present=False)
    with try_object_lock(path) as locked:
        if not locked:
            return Outcome(present=wanted, busy=True)
        if not wanted:
            return _remove(path, sd=sd, log=log)
        assert entry is not None
        return _install(path, str(entry.get("text", "")), sd=sd, log=log)


def _install(path: ObjectPath, text: str, *, sd: Systemd, log: ActionLog) -> Outcome:
    from omc.runtime.engine.config_change import commit_config, install_units
    from omc.runtime.engine.session import ActionError
    from omc.runtime.objects import configs, install, model

    file = config_file(path)
    current = file.read_text(encoding="utf-8") if file.is_file() else None
    try:
        if current != text:
            compiled = install.compile_config(path, text, filename=str(file))
            if not compiled.ok:
                log.error(
                    f"{path}: replicated config does not compile here:\n{compiled.diagnostics}"
                )
                return Outcome(present=True, error=compiled.diagnostics.strip() or "config error")
            commit_config(path, text, compiled.units, action="replicate", console=None,
                          sd=lambda: sd, origin="daemon/monitor")  # fmt: skip
            safefs.write_file(
                replicated_marker(path), hashlib.sha256(text.encode()).hexdigest() + "\n"
            )
            log.info(f"{path}: config installed from the cluster")
        else:
            install_units(path, action="replicate", console=None, sd=lambda: sd,
                          origin="daemon/monitor")  # fmt: skip
    except (configs.StoreError, ActionError) as exc:  # what it says; the last good units stay
        return Outcome(present=True, error=str(exc))
    found = model.load(path)
    units = tuple(found.units) if found is not None else ()
    return Outcome(present=True, units=units)


def _remove(path: ObjectPath, *, sd: Systemd, log: ActionLog) -> Outcome:
    from omc.runtime.engine.config_change import reload
    from omc.runtime.objects import install
    from omc.runtime.objects.configs import remove_config

    install.remove_units(path, reload=lambda gone: reload(sd, gone))
    remove_config(path)
    safefs.remove(replicated_marker(path))
    log.info(f"{path}: config removed (deleted from the cluster, or out of this node's scope)")
    return Outcome(present=False, removed=True)


def observe_status(path: ObjectPath, config_error: str, *, sd: Systemd | None = None) -> Status:
    """The instance's status as ``print status`` would see it, for the instance record."""
    from omc.runtime.engine.observe import observe
    from omc.runtime.objects.kv import is_store
    from omc.runtime.objects.model import ModelError, load
    from omc.runtime.status import aggregate

    if is_store(path):  # keys, no units: nothing runs, nothing to orchestrate
        return Status(avail="n/a", overall="n/a", config_error=config_error,
                      config_sha=_installed_sha(path))  # fmt: skip
    try:
        found = load(path)
    except ModelError as exc:
        return Status(config_error=config_error or str(exc))
    if found is None:
        return Status(config_error=config_error or "no units installed on this node")
    states = observe(found, sd=sd)
    agg = aggregate(s.summary() for s in states.values())
    return Status(
        avail=str(agg.avail),
        overall=str(agg.overall),
        frozen=frozen_flag(path).exists(),
        resources={rid: _resource(found, st, path) for rid, st in states.items()},
        config=orchestration_config(found.config),
        config_error=config_error,
        config_sha=_installed_sha(path),
    )


def _resource(model: Any, state: Any, path: ObjectPath) -> dict[str, Any]:
    """One resource in the instance record: its status and what resource monitoring reads."""
    from omc.runtime.layout import stopped_flag

    res = state.res
    config = res.config
    return {
        "status": str(state.status),
        "restart": int(config.get("restart", 0) or 0),
        "restart_delay": float(config.get("restart_delay", 0.5) or 0.0),
        "monitor": "monitor" in res.flags,
        "standby": res.standby,
        "disabled": res.disabled,
        "stopped": stopped_flag(path, res.rid).exists(),
    }


def _installed_sha(path: ObjectPath) -> str:
    try:
        return safefs.read_text(replicated_marker(path)).strip()
    except OSError:
        return ""
