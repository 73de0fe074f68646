"""The CLI side of orchestrated actions: ``om <path> start|stop|switch|…`` on a cluster.

An orchestrated action writes the object's intent (global expect + a new
orchestration id) in one etcd transaction, which fails if another orchestration
is in progress (``abort`` replaces one). It returns once every live instance has
acknowledged the orchestration, printing om3's table::

    OBJECT  ORCHESTRATION_ID                      STATUS
    svc0    5b9f0a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b  accepted

``--wait`` then follows etcd until the orchestration ends and checks the object
reached what was asked (exit 0), else names the failing instances (exit 1). Once
every live instance is done it ends the orchestration itself, as the daemons would
(the intent deleted in a transaction on its revision): a command that waits for a
daemon to see it and delete it pays one more round trip through etcd;
``--time D`` bounds the whole wait (exit 124 at the bound, the orchestration goes
on); ``--watch`` shows the object's ``om mon`` view at every change meanwhile;
``--dry-run`` prints what every node would do first, and writes nothing.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TextIO

from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters.etcd import Etcd, EtcdError, Event, when_version
from omc.runtime.adapters.etcd import get as op_get
from omc.runtime.adapters.etcd import put as op_put
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.connect import etcd as connect_etcd
from omc.runtime.cluster.decide import (
    all_done,
    decide_all,
    live_instances,
    object_avail,
    placement_state,
    started,
    started_and_settled,
)
from omc.runtime.cluster.model import DOWN_LIKE, Expect, Intent, ObjectView, Snapshot
from omc.runtime.cluster.settings import ClusterSettings
from omc.runtime.cluster.state import ClusterState, end_intent
from omc.runtime.log import new_sid

ACK_TIMEOUT = 10.0  # seconds for every live instance to acknowledge an orchestration
DEFAULT_TIME = 300.0  # --time default (om3: 5m)

# CLI verb → (global expect); thaw is v2's spelling of unfreeze.
VERBS = {
    "start": Expect.STARTED, "stop": Expect.STOPPED, "freeze": Expect.FROZEN,
    "unfreeze": Expect.UNFROZEN, "thaw": Expect.UNFROZEN, "switch": Expect.PLACED_AT,
    "takeover": Expect.PLACED_AT, "giveback": Expect.PLACED, "restart": Expect.RESTARTED,
    "abort": Expect.ABORTED,
}  # fmt: skip


class OrchestrationError(Exception):
    """The orchestration was refused, failed or could not be followed; the message says why."""


class Timeout(OrchestrationError):  # noqa: N818 - a timeout is its own outcome (exit 124)
    """``--time`` ran out; the orchestration goes on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One orchestrated action on one object."""

    path: ObjectPath
    expect: Expect
    destination: tuple[str, ...] = ()
    wait: bool = False
    time: float = DEFAULT_TIME
    watch: bool = False
    dry_run: bool = False


@dataclass(slots=True)
class Cluster:
    """A CLI's view of the cluster: an etcd client and the state it read."""

    settings: ClusterSettings
    etcd: Etcd
    state: ClusterState

    stale: str = ""  # why the state is a member's own, read without quorum (``for_monitor``)
    # One watch for every :meth:`follow` of this command (a new stream is a new TLS
    # connection): its batches, and what stops it.
    _batches: queue.Queue[tuple[list[Event], int]] | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def open(cls, settings: ClusterSettings, *, path: ObjectPath | None = None) -> Cluster:
        """Read the cluster's state. ``path``: a command about that object only
        (:func:`run`) reads the nodes and its keys, in one transaction (one revision),
        not every object's; it reads everything when the object has affinities (their
        objects count in its placement)."""
        client = connect_etcd(settings)
        state = ClusterState(keys=k.Keys(settings.prefix), members=settings.nodes)
        if path is not None:
            try:
                reads = [op_get(key, prefix=prefix) for key, prefix in state.keys.of_object(path)]
                result = client.txn([], reads)
            except EtcdError as exc:
                raise OrchestrationError(f"etcd is unreachable: {exc}") from None
            state.load(result.revision, result.found)
            config = state.view(path, settings.node).config
            if not (config.hard_affinity or config.hard_anti_affinity):
                return cls(settings=settings, etcd=client, state=state)
        try:
            state.load(*client.range(settings.prefix))
        except EtcdError as exc:
            raise OrchestrationError(f"etcd is unreachable: {exc}") from None
        return cls(settings=settings, etcd=client, state=state)

    @classmethod
    def for_monitor(cls, settings: ClusterSettings) -> Cluster:
        """``om mon``'s read: what it shows (:meth:`.keys.Keys.of_monitor`: the instances'
        summaries, not the configs' text, nor requests and secrets), in one transaction
        (one revision); ``--watch`` follows the summaries too.
        When no member answers with quorum, what one member has: a partitioned node
        still shows its last view, marked so (``stale`` says why)."""
        client = connect_etcd(settings)
        state = ClusterState(keys=k.Keys(settings.prefix), members=settings.nodes,
                             summaries=True)  # fmt: skip

        def read(serializable: bool) -> None:
            reads = [op_get(key, prefix=True, keys_only=keys_only, serializable=serializable)
                     for key, keys_only in state.keys.of_monitor()]  # fmt: skip
            result = client.txn([], reads)
            state.load(result.revision, result.found)

        try:
            read(serializable=False)
        except EtcdError as exc:
            try:
                read(serializable=True)
            except EtcdError:
                raise OrchestrationError(f"etcd is unreachable: {exc}") from None
            return cls(settings=settings, etcd=client, state=state, stale=str(exc))
        return cls(settings=settings, etcd=client, state=state)

    def snapshot(self) -> Snapshot:
        return self.state.snapshot(self.settings.node)

    def follow(self, done: Callable[[ClusterState], bool], deadline: float,
               on_change: Callable[[ClusterState], None] | None = None) -> None:  # fmt: skip
        """Apply etcd's events until ``done(state)`` (no polling: a watch from the last
        revision read, kept for the next call); :class:`Timeout` at ``deadline`` (a
        monotonic time)."""
        if done(self.state):
            return
        batches = self._watching()
        while not done(self.state):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out; the orchestration goes on")
            try:
                events, revision = batches.get(timeout=left)
            except queue.Empty:
                continue
            self.state.apply(events, revision)
            if on_change is not None:
                on_change(self.state)

    def prepare_follow(self) -> None:
        """Open the watch :meth:`follow` reads, from the last revision read, ahead of
        the first call (it runs on a thread of its own)."""
        self._watching()

    def _watching(self) -> queue.Queue[tuple[list[Event], int]]:
        """The batches of the watch from the last revision read, started at the first call."""
        if self._batches is None:
            batches: queue.Queue[tuple[list[Event], int]] = queue.Queue()
            threading.Thread(
                target=self.etcd.watch,
                args=(self.settings.prefix, self.state.revision + 1,
                      lambda events, rev: batches.put((events, rev)), self._stop),
                daemon=True,
            ).start()  # fmt: skip
            self._batches = batches
        return self._batches

    def close(self) -> None:
        """Stop the watch (its thread ends at its next event, or with the process)."""
        self._stop.set()


def check_daemon(cluster: Cluster) -> None:
    """The local daemon must be running: it is what acts on this node's instances."""
    node = cluster.settings.node
    if node not in cluster.state.nodes:
        raise OrchestrationError(
            f"the daemon is not running on {node} (no live node record in etcd): "
            "systemctl start omc-daemon, or act on the local instance with "
            "`om <path> instance <action>`"
        )


def _view(cluster: Cluster, path: ObjectPath) -> ObjectView:
    if path not in cluster.state.paths():
        raise OrchestrationError(f"object {path} is not known to the cluster")
    return cluster.state.view(path, cluster.settings.node)


def _reached(view: ObjectView, snap: Snapshot, expect: Expect, dest: Sequence[str]) -> bool:
    """Whether the object already is what ``expect`` asks (nothing to orchestrate)."""
    live = [i for n, i in view.instances.items() if snap.alive(n)]
    frozen = [i.frozen for i in live]
    if expect is Expect.STARTED:
        return started(view, snap) and not any(frozen)
    if expect is Expect.STOPPED:
        return all(i.avail in DOWN_LIKE for i in live) and all(frozen)
    if expect is Expect.FROZEN:
        return all(frozen)
    if expect is Expect.UNFROZEN:
        return not any(frozen)
    if expect is Expect.PLACED_AT:
        up = {i.node for i in live if i.avail == "up"}
        return bool(dest) and up == set(dest) and not any(frozen)
    return False


def intent_of(request: Request) -> Intent:
    return Intent(expect=request.expect, oid=new_sid(), destination=request.destination,
                  created=time.time())  # fmt: skip


def submit(cluster: Cluster, request: Request) -> Intent | None:
    """Write the intent in one transaction; None when the object is already there."""
    view = _view(cluster, request.path)
    snap = cluster.snapshot()
    if request.expect is not Expect.ABORTED and _reached(view, snap, request.expect,
                                                         request.destination):  # fmt: skip
        return None
    intent = intent_of(request)
    key = cluster.state.keys.intent(request.path)
    value = k.encode({"expect": str(intent.expect), "oid": intent.oid, "created": intent.created,
                      "destination": list(intent.destination),
                      "by": cluster.settings.node})  # fmt: skip
    compare = [] if request.expect is Expect.ABORTED else [when_version(key, "=", 0)]
    result = cluster.etcd.txn(compare, [op_put(key, value)], [])
    if not result.succeeded:
        current = cluster.state.intents.get(request.path) or k.decode(
            next((kv.value for kv in cluster.etcd.range(key)[1]), b"")
        )
        raise OrchestrationError(
            f"orchestration {current.get('oid', '?')} (>{current.get('expect', '?')}) "
            "already in progress: wait for it, or `om <path> abort`"
        )
    cluster.state.intents[request.path] = k.decode(value.encode())  # ours, until it ends
    return intent


def acknowledged(
    path: ObjectPath, oid: str, nodes: Sequence[str]
) -> Callable[[ClusterState], bool]:
    def check(state: ClusterState) -> bool:
        published = state.instances.get(path, {})
        live = [n for n in published if n in state.nodes and n in nodes]
        return all(published[n].get("oid") == oid for n in live) or path not in state.intents

    return check


def ended(path: ObjectPath, oid: str) -> Callable[[ClusterState], bool]:
    def check(state: ClusterState) -> bool:
        return state.intents.get(path, {}).get("oid") != oid

    return check


def over(path: ObjectPath, oid: str, node: str) -> Callable[[ClusterState], bool]:
    """Ended, or every live instance is done with it (what makes the daemons end it),
    or a start reached its goal with nothing left to do anywhere
    (:func:`.decide.started_and_settled`: the other nodes' ``done`` would only cost
    the command a round trip through etcd)."""
    gone = ended(path, oid)

    def check(state: ClusterState) -> bool:
        if gone(state):
            return True
        snap = state.snapshot(node, only=[path])
        view = snap.objects[str(path)]
        return bool(live_instances(view, snap)) and (
            all_done(view, snap, oid) or started_and_settled(view, snap, oid)
        )

    return check


def end(cluster: Cluster, path: ObjectPath, oid: str) -> None:
    """End the orchestration ``oid`` once it is over, as a daemon's :attr:`Do.END`
    would: delete the intent in a transaction on the revision it was read at, so that
    nothing newer is ever deleted. Whoever comes second (a daemon, or this command)
    finds the revision changed and deletes nothing."""
    if ended(path, oid)(cluster.state) or not cluster.state.intent_revisions.get(path):
        return
    end_intent(cluster.etcd, cluster.state, path)


def _unmet(view: ObjectView, snap: Snapshot, request: Request) -> str:
    """How the object differs from what was asked (om3's post-end checks), or ""."""
    avail = object_avail(view, snap)
    live = {n: i for n, i in view.instances.items() if snap.alive(n)}
    frozen = [i.frozen for i in live.values()]
    expect = request.expect
    if expect is Expect.STARTED and (avail not in ("up", "n/a") or any(frozen)):
        return f"object avail is {avail}, expected up and unfrozen"
    if expect is Expect.STOPPED and (avail not in DOWN_LIKE or not all(frozen)):
        return f"object avail is {avail}, expected down and frozen"
    if expect is Expect.FROZEN and not all(frozen):
        return "not every instance is frozen"
    if expect is Expect.UNFROZEN and any(frozen):
        return "an instance is still frozen"
    if expect is Expect.PLACED_AT:
        down = [n for n in request.destination if n not in live or live[n].avail != "up"]
        return f"not up on {', '.join(down)}" if down else ""
    if expect is Expect.PLACED and placement_state(view, snap) == "non-optimal":
        return "placement is non-optimal"
    if expect is Expect.RESTARTED and avail not in ("up", "n/a"):
        return f"object avail is {avail}, expected up"
    return ""


def verify(view: ObjectView, snap: Snapshot, request: Request) -> list[str]:
    """Empty when the object reached what was asked; else what differs, then every
    instance left in a failed state (the ones to ``clear``)."""
    unmet = _unmet(view, snap, request)
    if not unmet:
        return []
    live = sorted((n, i) for n, i in view.instances.items() if snap.alive(n))
    return [unmet, *(f"{n}: {i.state}" for n, i in live if i.state.failed)]


def table(rows: Sequence[tuple[str, str, str]]) -> str:
    """om3's tab renderer: each cell left-justified to its column, two spaces after."""
    header = ("OBJECT", "ORCHESTRATION_ID", "STATUS")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
    return "".join(
        "".join(f"{cell:<{w}}  " for cell, w in zip(row, widths, strict=True)) + "\n"
        for row in (header, *rows)
    )


def dry_run(cluster: Cluster, request: Request, out: TextIO) -> None:
    """What each node would do first, were the intent written (nothing is)."""
    view = _view(cluster, request.path)
    intent = intent_of(request)
    acked = {n: replace(i, oid=intent.oid, done=False) for n, i in view.instances.items()}
    hypothetical = replace(view, intent=intent, instances=acked)
    snap = cluster.snapshot()
    objects = {**snap.objects, str(request.path): hypothetical}
    plans = decide_all(replace(snap, objects=objects))
    where = f" {' '.join(request.destination)}" if request.destination else ""
    out.write(f"{request.path}: >{request.expect}{where}\n")
    for node, plan in plans.items():
        for decision in plan.decisions:
            if decision.path == str(request.path):
                what = ", ".join(decision.steps) or f"nothing ({decision.reason or 'idle'})"
                out.write(f"  {node}: {what}\n")


def run(settings: ClusterSettings, request: Request, *, out: TextIO | None = None,
        render: Callable[[ClusterState, ObjectPath], str] | None = None) -> None:  # fmt: skip
    """Submit, acknowledge, and with ``--wait`` follow to the end; raises on failure.
    ``out`` defaults to the *current* stdout (an executor worker replaces it)."""
    out = sys.stdout if out is None else out
    deadline = time.monotonic() + request.time
    cluster = Cluster.open(settings, path=None if request.dry_run else request.path)
    if request.dry_run:
        dry_run(cluster, request, out)
        return
    check_daemon(cluster)
    # The watch that follows the orchestration opens now, from the revision just read: its
    # connection (a TLS handshake) is made while the intent's transaction runs, not after.
    cluster.prepare_follow()
    try:
        _submit_and_follow(cluster, request, out, render, deadline)
    finally:
        cluster.close()


def _submit_and_follow(cluster: Cluster, request: Request, out: TextIO,
                       render: Callable[[ClusterState, ObjectPath], str] | None,
                       deadline: float) -> None:  # fmt: skip
    intent = submit(cluster, request)
    if intent is None:
        out.write(table([(str(request.path), "-", f"already {request.expect}")]))
        return
    scope = _view(cluster, request.path).config.scope
    cluster.follow(acknowledged(request.path, intent.oid, scope),
                   min(deadline, time.monotonic() + ACK_TIMEOUT))  # fmt: skip
    out.write(table([(str(request.path), intent.oid, "accepted")]))
    out.flush()
    if not (request.wait or request.watch):
        return

    def show(state: ClusterState) -> None:
        if render is not None:
            out.write(render(state, request.path))
            out.flush()

    on_change = show if request.watch else None
    node = cluster.settings.node
    cluster.follow(over(request.path, intent.oid, node), deadline, on_change)
    end(cluster, request.path, intent.oid)
    cluster.follow(ended(request.path, intent.oid), deadline, on_change)
    if request.wait:
        view = cluster.state.view(request.path, node)
        problems = verify(view, cluster.snapshot(), request)
        if problems:
            raise OrchestrationError(f"{request.path}: >{request.expect} failed: "
                                     + "; ".join(problems))  # fmt: skip
