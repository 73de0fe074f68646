"""``om <path> sync update|full [--target nodes|drp|drpnodes|local]`` and ``om <path> update``.

The seed's spellings (actions-seed.txt): "Sync All" is ``om <path> update``, "Sync
Nodes" ``sync update --target nodes``, "Sync DRP" ``sync update --target drp``;
om3's ``drpnodes`` and ``local`` are accepted too. Every selected sync resource
(``--rid``/``--tag``/``--subset``, default all of them but the disabled) runs its
driver's ``update`` (or ``full``) here, under the action's log, in rid order. The
driver itself refuses to copy from a node where the instance is not up (no-op,
logged), as om3 does, to protect the active copy. Scheduled syncs are the sync
units' timers (docs/units.md); this is the on-demand path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from omc.runtime.actions import ActionError, load_model
from omc.runtime.log import Sink, action_log, go_duration
from omc.runtime.paths import ObjectPath
from omc.runtime.selection import Selector, select

TARGET_WORDS = {"nodes": "nodes", "drp": "drpnodes", "drpnodes": "drpnodes", "local": "local"}
VERBS = ("update", "full")


def target_of(word: str | None) -> str | None:
    """The driver's target for a ``--target`` word (None: every configured target)."""
    if word is None:
        return None
    if word not in TARGET_WORDS:
        raise ActionError(
            f"unknown sync target {word!r}: expected nodes, drp, drpnodes or local", logged=False
        )
    return TARGET_WORDS[word]


def run(
    path: ObjectPath,
    verb: str,
    *,
    target: str | None,
    selector: Selector,
    argv: Sequence[str],
    console: Sink | None,
) -> None:
    """Run ``verb`` (update, full) on the object's selected sync resources; raises
    ActionError (already logged) when one that is not optional failed."""
    from omc.runtime import drivers

    wanted = target_of(target)
    model = load_model(path, None)
    chosen = select((r.selectable for r in model.resources), selector)
    syncs = [
        r
        for r in model.resources
        if r.group == "sync" and not r.disabled and (chosen is None or r.rid in chosen)
    ]
    log = action_log(str(path), action=f"sync {verb}", console=console)
    line = "om " + " ".join(argv)
    log.info(f">>> do sync {verb} [{line}] (origin user, sid {log.sid})", argv=line)
    began, failed = time.monotonic(), []
    if not syncs:
        log.info("no sync resource selected")
    for res in syncs:
        bound = log.bind(rid=res.rid, subset=res.subset)
        try:
            method = getattr(drivers.get(res.driver), verb)
            method(res.view(model.display, model.id), bound, target=wanted)
        except (drivers.DriverError, drivers.UnknownDriverError, OSError) as exc:
            if res.optional:
                bound.warning(f"{verb} failed: {exc} (optional, ignored)")
            else:
                bound.error(f"{verb} failed: {exc}")
                failed.append(res.rid)
    took = go_duration(time.monotonic() - began)
    if failed:
        log.error(f"<<< failed sync {verb} [{line}] in {took}: {', '.join(failed)}")
        raise ActionError(f"sync {verb} failed: {', '.join(failed)}", logged=True)
    log.info(f"<<< done sync {verb} [{line}] in {took}")
