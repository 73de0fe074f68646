"""The cluster's etcd keys and their values, defined once.

Under the cluster prefix ``/omc/<cluster>/`` (values are JSON)::

    nodes/<node>                  the node record          lease: the node's
    instances/<ns>/<kind>/<name>/<node>
                                  an instance's status and monitor
                                                           lease: the node's
    summaries/<ns>/<kind>/<name>/<node>
                                  what ``om mon`` shows of that instance (the record
                                  without resources, restarts, config sha, and
                                  without what its decoder defaults to), written
                                  with the record when it changes
                                                           lease: the node's
    owners/<ns>/<kind>/<name>     the node that may run a failover object
                                                           lease: the owner's
    intents/<ns>/<kind>/<name>    the object's global expect and orchestration id
    configs/<ns>/<kind>/<name>    the object's config text (replicated to its nodes)
    node-intents/<node>           freeze / unfreeze / drain asked of a node
    requests/<node>/<id>          a one-off request to a node's daemon (``clear``),
                                  deleted by that daemon once carried out
    fenced/<node>                 a lost node was fenced (stonith), by whom and when;
                                  the node deletes it when it registers again
    secrets/sync                  the secret the sync transport's passwords derive
                                  from (created once, by the first daemon)

Why these leases: what a node publishes about itself goes when its lease goes
(a dead node's instances stop counting, its ownerships are released by etcd
itself); intents and configs outlive any node.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from omc.compiler.contract.paths import ObjectPath, PathError, parse_path


class Space(StrEnum):
    NODES = "nodes"
    INSTANCES = "instances"
    SUMMARIES = "summaries"
    OWNERS = "owners"
    INTENTS = "intents"
    CONFIGS = "configs"
    NODE_INTENTS = "node-intents"
    REQUESTS = "requests"
    FENCED = "fenced"
    SECRETS = "secrets"


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names of one cluster (``prefix`` ends with ``/``)."""

    prefix: str

    def node(self, node: str) -> str:
        return f"{self.prefix}{Space.NODES}/{node}"

    def instance(self, path: ObjectPath, node: str) -> str:
        return f"{self.prefix}{Space.INSTANCES}/{path.fqn}/{node}"

    def summary(self, path: ObjectPath, node: str) -> str:
        """``om mon``'s part of :meth:`instance` (:func:`.records.instance_summary`): a
        tenth of its bytes, so that the monitor's read of 600 instances is not etcd
        encoding, and ``om`` decoding, ~630 kB of JSON it does not show."""
        return f"{self.prefix}{Space.SUMMARIES}/{path.fqn}/{node}"

    def owner(self, path: ObjectPath) -> str:
        return f"{self.prefix}{Space.OWNERS}/{path.fqn}"

    def intent(self, path: ObjectPath) -> str:
        return f"{self.prefix}{Space.INTENTS}/{path.fqn}"

    def config(self, path: ObjectPath) -> str:
        return f"{self.prefix}{Space.CONFIGS}/{path.fqn}"

    def node_intent(self, node: str) -> str:
        return f"{self.prefix}{Space.NODE_INTENTS}/{node}"

    def fenced(self, node: str) -> str:
        return f"{self.prefix}{Space.FENCED}/{node}"

    def request(self, node: str, rid: str) -> str:
        return f"{self.prefix}{Space.REQUESTS}/{node}/{rid}"

    def secret(self, name: str) -> str:
        """A cluster-wide secret (``secrets/sync``: the sync transport's), no lease."""
        return f"{self.prefix}{Space.SECRETS}/{name}"

    def of_object(self, path: ObjectPath) -> list[tuple[str, bool]]:
        """What a command about one object reads, as (key, is a prefix): the nodes'
        spaces, and that object's keys."""
        nodes = [(f"{self.prefix}{space}/", True)
                 for space in (Space.NODES, Space.NODE_INTENTS, Space.FENCED)]  # fmt: skip
        return [*nodes, (f"{self.prefix}{Space.INSTANCES}/{path.fqn}/", True),
                (self.owner(path), False), (self.intent(path), False),
                (self.config(path), False)]  # fmt: skip

    def of_monitor(self) -> list[tuple[str, bool]]:
        """What ``om mon`` reads, as (prefix, keys only): the spaces it shows (the
        instances' summaries, not their records), and the configs' names alone. A
        configured object is listed even where it runs nowhere; the configs' text is
        ~15 % of the prefix's bytes, and not shown."""
        shown = (Space.NODES, Space.FENCED, Space.SUMMARIES, Space.OWNERS, Space.INTENTS)
        return [*((f"{self.prefix}{space}/", False) for space in shown),
                (f"{self.prefix}{Space.CONFIGS}/", True)]  # fmt: skip

    def parse(self, key: str) -> ParsedKey | None:
        """What a key under the prefix names; None for anything else (or a bad path)."""
        if not key.startswith(self.prefix):
            return None
        space, _, rest = key[len(self.prefix) :].partition("/")
        kind, segments = _SEGMENTS.get(space, (None, 0))
        parts = rest.split("/")
        if kind is None or len(parts) != segments:
            return None
        try:
            if segments == 1:
                return ParsedKey(space=kind, node=parts[0])
            if segments == 2:
                return ParsedKey(space=kind, node=parts[0], rid=parts[1])
            if segments == 4:
                return ParsedKey(space=kind, path=_path("/".join(parts[:3])), node=parts[3])
            return ParsedKey(space=kind, path=_path(rest))
        except PathError:
            return None


# Each space's segments after its name (node; node and request id; object path; object
# path and node), by the name's text: ``Space(name)`` and an enum member's lookup cost
# ~0.9 and ~0.2 µs each (Python 3.11), and ``om mon`` parses ~800 keys. ``secrets/`` is
# not parsed (nothing mirrors it).
_SEGMENTS: dict[str, tuple[Space, int]] = {
    space.value: (space, segments)
    for spaces, segments in (
        ((Space.NODES, Space.NODE_INTENTS, Space.FENCED), 1),
        ((Space.REQUESTS,), 2),
        ((Space.OWNERS, Space.INTENTS, Space.CONFIGS), 3),
        ((Space.INSTANCES, Space.SUMMARIES), 4),
    )
    for space in spaces
}


@functools.lru_cache(maxsize=4096)
def _path(text: str) -> ObjectPath:
    """:func:`parse_path`, once per object: a read of the prefix parses each object's
    path once per key (its instances, owner, intent, config), ~15 % of ``om mon``'s
    decoding with 200 objects. A :class:`PathError` is not cached: raised again."""
    return parse_path(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedKey:
    space: Space
    path: ObjectPath | None = None
    node: str = ""
    rid: str = ""  # requests: the request id


def encode(value: Mapping[str, Any]) -> str:
    """A value as stored: compact JSON, keys sorted (equal values, equal bytes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def decode(raw: bytes) -> dict[str, Any]:
    """A stored value; ``{}`` for anything that is not a JSON object (nor UTF-8). Decoded
    to text first: ``json.loads`` of bytes guesses their encoding at each call."""
    try:
        data = json.loads(raw.decode() if raw else "{}")
    except ValueError:  # UnicodeDecodeError included
        return {}
    return data if isinstance(data, dict) else {}
