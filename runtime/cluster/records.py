"""What a node publishes in etcd: its node record and one record per local instance.

Records are rebuilt from local observation and written only when their encoded
value changed (an idle cluster writes nothing but lease keep-alives). The
instance record carries the status (from the units and the drivers' probes, as
``print status`` sees it), the monitor (state, acknowledged orchestration, done),
and the object keywords orchestration reads, as this node evaluated them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omc.runtime import VERSION, safefs
from omc.runtime.cluster.model import (
    CONFIG_FIELDS,
    INSTANCE_FIELDS,
    Fields,
    State,
    decode_field,
    decode_fields,
)
from omc.runtime.layout import node_frozen_flag

# The object keywords a node publishes for orchestration (model.ObjectConfig).
CONFIG_KEYS = ("nodes", "drpnodes", "topology", "orchestrate", "placement", "flex_min",
               "flex_max", "flex_target", "priority", "hard_affinity",
               "hard_anti_affinity", "stonith", "monitor_action")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Monitor:
    """The local instance's monitor: what the daemon is doing for it."""

    state: State = State.IDLE
    oid: str = ""
    done: bool = False
    local_expect: str = "none"
    last_started: float = 0.0
    restarts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    monitor_action_at: float = 0.0
    took_over: float = 0.0  # when this node last took the ownership, and why
    took_over_why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"state": str(self.state), "oid": self.oid, "done": self.done,
                "local_expect": self.local_expect, "last_started": self.last_started,
                "restarts": {r: dict(v) for r, v in self.restarts.items()},
                "monitor_action_at": self.monitor_action_at, "took_over": self.took_over,
                "took_over_why": self.took_over_why}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Monitor:
        try:
            state = State(data.get("state", "idle"))
        except ValueError:
            state = State.IDLE
        return cls(state=state, oid=str(data.get("oid", "")), done=bool(data.get("done")),
                   local_expect=str(data.get("local_expect", "none")),
                   last_started=float(data.get("last_started", 0.0)),
                   restarts=dict(data.get("restarts", {})),
                   monitor_action_at=float(data.get("monitor_action_at", 0.0)),
                   took_over=float(data.get("took_over", 0.0)),
                   took_over_why=str(data.get("took_over_why", "")))  # fmt: skip

    def but(self, **changes: Any) -> Monitor:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The local instance's status."""

    avail: str = "undef"
    overall: str = "undef"
    frozen: bool = False
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # rid → status …
    config: Mapping[str, Any] = field(default_factory=dict)
    config_error: str = ""
    config_sha: str = ""  # sha256 of the replicated config installed here


def instance_record(status: Status, monitor: Monitor) -> dict[str, Any]:
    """The instance record as stored under ``instances/<fqn>/<node>``."""
    return {
        "avail": status.avail,
        "overall": status.overall,
        "frozen": status.frozen,
        "provisioned": True,
        "resources": dict(status.resources),
        "config": dict(status.config),
        "config_error": status.config_error,
        "config_sha": status.config_sha,
        **monitor.to_json(),
    }


# What ``om mon`` never shows of an instance record: a summary leaves them out.
NOT_SUMMARIZED = ("resources", "restarts", "config_sha", "monitor_action_at")


def instance_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """What ``om mon`` reads of an instance record (``summaries/<fqn>/<node>``): the
    record without :data:`NOT_SUMMARIZED`, and without any field (of the record, or of
    its ``config``) that the decoders in :mod:`.model` give back by default. A field is
    left out only when decoding without it yields what decoding with it did, so the
    decoders' tables (:data:`.model.INSTANCE_FIELDS`, :data:`.model.CONFIG_FIELDS`) stay
    the one place defaults are defined: with 200 objects on 3 nodes, ~75 bytes a summary
    against ~780 a record."""
    kept = {key: value for key, value in record.items() if key not in NOT_SUMMARIZED}
    config = kept.pop("config", None)
    summary = _lean(INSTANCE_FIELDS, kept)
    # never empty: the state takes an empty record for no record when it picks the
    # object's config (:func:`.state._config`)
    summary.setdefault("avail", decode_field(INSTANCE_FIELDS, kept, "avail"))
    if isinstance(config, Mapping):
        summary["config"] = _lean(CONFIG_FIELDS, config)
    elif config is not None:
        summary["config"] = config
    return summary


def _lean(fields: Fields, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the fields that decoding (as ``fields`` says) does not need to
    give the same values: its fields taken out one after the other, each left out when
    the decoded fields it may change (itself, and those falling back to it while absent)
    stay the same. The record is decoded once, and each field again only from what
    replaces it: a whole decoding per field took ~0.2-0.3 ms a changed record, this
    ~0.05 (bench/summary.py, docs/BENCHMARKS.md). A field the decoders do not read is
    left out."""
    try:
        whole = decode_fields(fields, data)
    except (KeyError, ValueError, TypeError):
        return dict(data)  # what the decoder refuses is published as it is
    lean = dict(data)
    for key in data:
        value = lean.pop(key)
        if key not in fields:
            continue
        try:
            same = decode_field(fields, lean, key) == whole[key] and all(
                decode_field(fields, lean, name) == whole[name]
                for name in fields.fallers.get(key, ())
                if name not in lean
            )
        except (KeyError, ValueError, TypeError):
            same = False
        if not same:
            lean[key] = value
    return {key: value for key, value in data.items() if key in lean}  # in data's order


def orchestration_config(config: Mapping[str, object]) -> dict[str, Any]:
    """The orchestration keywords of an object's evaluated ``DEFAULT`` section."""
    return {key: config[key] for key in CONFIG_KEYS if key in config}


def load15() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 0.0


def score() -> int:
    """om3's node score: ``(100/max(load15,1) + 100 + mem avail% + 2·(100 + swap avail%)) / 7``."""
    info: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    mem = 100 * info.get("MemAvailable", 0) // max(info.get("MemTotal", 1), 1)
    swap = 100 * info.get("SwapFree", 0) // info["SwapTotal"] if info.get("SwapTotal") else 0
    return (int(100 / max(load15(), 1.0)) + 100 + mem + 2 * (100 + swap)) // 7


def node_record(*, state: str, started: float) -> dict[str, Any]:
    """The node record as stored under ``nodes/<node>`` (lease-bound: alive while it is)."""
    return {
        "frozen": safefs.is_file(node_frozen_flag()),
        "state": state,
        "score": score(),
        "load15": round(load15(), 1),
        "version": VERSION,
        "started": started,
        "pid": os.getpid(),
    }
