"""``om daemon run``: the node daemon (``omc-daemon.service``).

One per node. It keeps the node alive in etcd (a lease, refreshed by a keeper
thread), mirrors the cluster's keys (one range read, then a watch that resumes
from the last revision), installs the object configs replicated to this node,
publishes each local instance's status on change (systemd's unit signals, and a
slow resync as a safety net), and converges local instances to the intents:

    etcd watch / unit signal / action end ──▶ ClusterState ──▶ snapshot
        ──▶ decide (pure) ──▶ steps ──▶ etcd transactions, actions

Actions (start, stop, restart) run as transient units, ``omc-action-<object>.service``
running ``om <path> instance <action>`` with origin ``daemon/monitor``: the same
code path, locks and logs as a user's ``om … instance …``; they outlive the daemon
(restarting it never touches an action in flight, and a restarted daemon picks up
the action's end). The daemon itself never forks (it is multi-threaded).

Threads: the main loop (GLib context: D-Bus signals, decisions, etcd writes), the
lease keeper, the watcher, the guard, the collector's sender. The lease keeper and the
watcher only post to the main loop's queue; the sender only reads and empties the
collector spool (:mod:`omc.runtime.collector.sender`).
"""

from __future__ import annotations

import contextlib
import enum
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from omc.compiler.contract.node import node_name, om_path
from omc.compiler.contract.paths import ObjectPath, parse_path
from omc.runtime import safefs
from omc.runtime.adapters.etcd import (
    AuthError,
    CompactedError,
    Etcd,
    EtcdError,
    Event,
    TlsError,
    when_lease,
    when_value,
    when_version,
)
from omc.runtime.adapters.etcd import delete as op_delete
from omc.runtime.adapters.etcd import put as op_put
from omc.runtime.adapters.systemd import PropValue, Systemd, SystemdError, notify
from omc.runtime.cluster import fence, records, replicate, syncs
from omc.runtime.cluster import keys as k
from omc.runtime.cluster.connect import etcd as connect_etcd
from omc.runtime.cluster.decide import Decision, Do, decide, queued, timed
from omc.runtime.cluster.lease import Keeper
from omc.runtime.cluster.model import Snapshot, State
from omc.runtime.cluster.records import Monitor, Status
from omc.runtime.cluster.settings import ClusterSettings
from omc.runtime.cluster.state import ClusterState, end_intent
from omc.runtime.collector import sender as collector_sender
from omc.runtime.drivers.command import PEERS_DOWN_ENV
from omc.runtime.layout import daemon_lease_file, frozen_flag, node_frozen_flag
from omc.runtime.log import ActionLog, action_log, new_sid
from omc.runtime.upgrade import loaded_sources, stale

ORIGIN = "daemon/monitor"
UNIT = "omc-daemon.service"
ACTION_STATES = {Do.START: ("starting", "start failed"), Do.STOP: ("stopping", "stop failed"),
                 Do.RESTART_RESOURCES: ("starting", "start failed"),
                 Do.EVICT: ("stopping", "stop failed"),
                 Do.RESTART: ("restarting", "start failed")}  # fmt: skip
STATS_PERIOD = 60.0
UPGRADE_CHECK = 5.0  # seconds between checks that the daemon's code is the one on disk
LOOP_STALL = 30.0  # a main loop stuck longer than this stops the watchdog pings
RESTARTS_RESET = 300.0  # a resource up that long since its last restart has its restarts back
RECONCILE_PERIOD = 2.0  # decisions without any change seen (time-only rules), seconds
# Decisions taken again at once on the state this node just changed (ack, unfreeze,
# take …), without waiting for etcd to echo it: at most that many rounds per reconcile.
FOLD_ROUNDS = 4
FOLDED = frozenset({Do.ACK, Do.CLEAR, Do.UNFREEZE, Do.FREEZE, Do.TAKE, Do.RELEASE, Do.DONE})
TXN_OPS = 64  # puts per transaction (etcd's --max-txn-ops is 128 by default)
MONITOR_PERIOD = 60.0  # re-observation of objects with monitored or restartable resources
STONITH_TIMEOUT = 20.0  # a fence command that takes longer failed
STONITH_RETRY = 5.0  # seconds between two attempts to fence the same node
KEEPALIVE_RETRY = 0.1  # seconds before a failed lease refresh is tried again
LEASE_HEDGE = 0.25  # seconds before a refresh not yet answered is asked of every member
LEASE_URGENT = 0.5  # an overdue refresh's bound (at most keepalive/2): soon after a heal
GUARD_FENCED_TICK = 0.1  # seconds between the guard's checks while it has fenced the node
GUARD_LATE = 0.01  # the guard wakes that long after the detection deadline
JOIN_RETRY = 1.0  # seconds between two attempts to reach etcd at start-up
ETCD_DOWN_LOG = 30.0  # an etcd outage is logged once that often


def _monitored(status: Status) -> bool:
    """Resource monitoring needs it observed even when systemd sees no change (a
    forking app whose check fails while its unit stays active)."""
    return any(r.get("restart") or r.get("monitor") for r in status.resources.values())


class Claim(enum.Enum):
    NEW = "new"  # created: this node owns it from now on
    OURS = "ours"  # it was this node's already: re-bound to its lease
    HELD = "held"  # another node owns it (or, without ``create``, nobody does)


def claim(etcd: Etcd, key: str, node: str, lease: int, *, create: bool = True) -> Claim:
    """Own a failover object's ``key`` for ``node``, bound to ``lease``: create it when no
    one holds it, or re-bind it when it holds ``node`` already (a previous lease of this
    node). Both are compare-and-put transactions in etcd: what this node's cache says
    about the owner never decides. (A cache that still said "mine" once let a node back
    from a partition overwrite the key its peer had taken meanwhile, and start the
    object there too.)"""
    mine = k.encode({"node": node})
    put = [op_put(key, mine, lease=lease)]
    if create and etcd.txn([when_version(key, "=", 0)], put).succeeded:
        return Claim.NEW
    return Claim.OURS if etcd.txn([when_value(key, "=", mine)], put).succeeded else Claim.HELD


def action_unit(path: ObjectPath) -> str:
    """The transient unit of the daemon's action on ``path`` (one at a time per object)."""
    return f"omc-action-{path.flat}.service"


@dataclass(slots=True)
class InFlight:
    """A daemon action whose unit runs."""

    action: Do
    job: str | None  # None: found running after a daemon restart (its end is read from state)


@dataclass(slots=True)
class Local:
    """What this node knows of its own instances."""

    status: dict[ObjectPath, Status] = field(default_factory=dict)
    monitor: dict[ObjectPath, Monitor] = field(default_factory=dict)
    written: dict[ObjectPath, str] = field(default_factory=dict)  # last published values
    summaries: dict[ObjectPath, str] = field(default_factory=dict)  # … and their summaries
    # To publish (:meth:`_flush`): the encoded record, and that record decoded (what
    # the state holds), which its summary is made from.
    pending: dict[ObjectPath, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    units: dict[str, ObjectPath] = field(default_factory=dict)  # unit → object
    inflight: dict[ObjectPath, InFlight] = field(default_factory=dict)
    dirty: set[ObjectPath] = field(default_factory=set)
    # Ownership keys to give back, with the records of the same flush (:meth:`_flush`).
    releases: list[ObjectPath] = field(default_factory=list)


class Daemon:
    """The node daemon of one node; :meth:`run` until SIGTERM."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.node = settings.node or node_name()
        self.keys = k.Keys(settings.prefix)
        self.state = ClusterState(keys=self.keys, members=settings.nodes)
        self.local = Local()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.started = time.time()
        self.boot = True  # the first decisions after start (orchestrate = start)
        self._decide_at = 0.0  # the next periodic decisions (see _reconcile)
        self._timed: set[str] = set()  # what the periodic decisions decide (decide.timed)
        # What to decide again (see _reconcile): the objects whose keys changed since the
        # last decisions (etcd's events, this node's own records), or every object.
        self._touched: set[str] = set()
        self._touch_all = True
        self._queued: set[str] = set()  # waiting for an action slot (decide.queued)
        self._affine: set[str] = set()  # objects with hard (anti-)affinities
        self.lease = 0
        self.etcd: Etcd
        self.sd: Systemd
        self._node_value = ""
        self._stats_at = 0.0
        self._node_frozen = safefs.is_file(node_frozen_flag())
        self._node_flag_seen: tuple[int, int] | None = None  # see _node_frozen_changed
        self._resync_at = 0.0
        self._upgrade_at = 0.0
        self._monitor_at = 0.0
        self._sources: dict[str, int] = {}
        self.last_ok = time.monotonic()  # when the last successful keep-alive was sent
        self.loop_at = time.monotonic()  # when the main loop last came round
        self.next_ping = 0.0  # when the guard pings systemd's watchdog next
        self.fenced = False
        self._rewrite = False  # a write to etcd failed: publish everything again
        self._etcd_said = 0.0  # when the last "etcd does not answer" was logged
        self._fence_tries: dict[str, float] = {}
        self.log = action_log("node", action="daemon", origin=ORIGIN, console=None)

    # -- start-up ----------------------------------------------------------------------

    def run(self) -> int:
        self.etcd = connect_etcd(self.settings)
        self.sd = Systemd.system()
        signal.signal(signal.SIGTERM, lambda *_: self._shutdown())
        signal.signal(signal.SIGINT, lambda *_: self._shutdown())
        # Keep the lease alive from the moment it is taken (the keeper waits while there
        # is none): installing and observing many objects below can take longer than its
        # TTL, and every write that follows carries it.
        self._keep_lease()
        starting = self._ping_while_starting()
        self._join()
        self.sd.watch_units(self._unit_changed)
        self.loop_at = time.monotonic()
        self._sync_configs(self.state.paths())
        self._publish_node(force=True)
        self.loop_at = time.monotonic()
        self._resync()
        self.timing_check()
        syncs.provision(self.settings, self.etcd, self.sd, self.log)
        self.loop_at = time.monotonic()
        starting.set()  # the guard pings from now on
        threading.Thread(target=self._guard, name="guard", daemon=True).start()
        threading.Thread(target=self._watch, name="watch", daemon=True).start()
        threading.Thread(target=collector_sender.serve, args=(self.stop, self.log.warning),
                         name="collector", daemon=True).start()  # fmt: skip
        notify("READY=1")
        self.log.info(f"daemon started on {self.node} (lease {self.lease:x})")
        self._sources = loaded_sources()
        self._loop()
        return 0

    def _ping_while_starting(self) -> threading.Event:
        """Ping systemd's watchdog during start-up, until the event is set (the guard
        thread's job then), while start-up makes progress (``loop_at``, moved at each
        step and each attempt to reach etcd, less than ``LOOP_STALL`` ago). A daemon that
        re-executes itself after an upgrade is ``reloading`` for systemd, its watchdog
        armed: without pings, an etcd outage held it in :meth:`_join` past ``WatchdogSec``
        and systemd killed it (seen in a lab, n1 partitioned, 2026-12-03), then its
        ``OnFailure=`` fence ran; a long first observation of many objects would too."""
        started = threading.Event()
        period = watchdog_period(self.settings.timing.watchdog)

        def ping() -> None:
            while not started.wait(period) and not self.stop.is_set():
                if time.monotonic() - self.loop_at < LOOP_STALL:
                    notify("WATCHDOG=1")

        threading.Thread(target=ping, name="watchdog-start", daemon=True).start()
        return started

    def _join(self) -> None:
        """The lease, the first read of the cluster's keys and the recovery of this node's
        own, retried until etcd answers: a node that boots during an etcd outage, or a
        daemon restarted on the minority side of a partition, waits for etcd instead of
        exiting (a restart loop would end in ``failed`` for good, and the node would never
        rejoin). Failover instances left running by a previous daemon are not guarded
        meanwhile: past the detection time without etcd they are stopped, as the guard
        thread of a running daemon would."""
        timing, since, fenced = self.settings.timing, time.monotonic(), False
        while True:
            self.loop_at = time.monotonic()  # progress, for the start-up watchdog pings
            try:
                self._take_lease()
                revision, kvs = self.etcd.range(self.keys.prefix)
                self.state.load(revision, kvs)
                self._recover()
            except (AuthError, TlsError):
                raise  # a refusal, not an outage: waiting would not change it
            except EtcdError as exc:
                self.lease = 0
                self.log.warning(f"etcd does not answer, retrying: {exc}")
            else:
                return
            if not fenced and time.monotonic() - since > timing.detect:
                fenced = True
                self._fence(deadline=time.monotonic() + timing.stop_budget)
            notify(f"EXTEND_TIMEOUT_USEC={int(JOIN_RETRY * 4e6)}")  # still starting
            if self.stop.wait(JOIN_RETRY):
                raise SystemExit(0)

    def _take_lease(self) -> None:
        """Reuse the lease of a daemon that just restarted (its keys stay put), else grant
        a new one; then (re)write the node record under it."""
        with contextlib.suppress(OSError, ValueError, EtcdError):
            old = int(safefs.read_text(daemon_lease_file()).strip(), 16)
            if self.etcd.lease_keepalive(old) > 0:
                self.lease = old
        if not self.lease:
            self.lease, _ = self.etcd.lease_grant(self.settings.timing.lease_ttl)
        self.last_ok = time.monotonic()
        safefs.write_file(daemon_lease_file(), f"{self.lease:x}\n", mode=0o600)

    def _recover(self) -> None:
        """Take back this node's monitors from etcd, re-bind its keys to the lease, and
        find actions still running from before a restart."""
        for path, published in self.state.instances.items():
            if self.node in published:
                self.local.monitor[path] = Monitor.from_json(published[self.node])
        self.etcd.txn([], [op_delete(self.keys.fenced(self.node))])  # fenced while lost: back
        for path, owner in self.state.owners.items():
            if owner == self.node:  # re-bound only if still ours: etcd, not the read, says
                claim(self.etcd, self.keys.owner(path), self.node, self.lease, create=False)
        running = set(self.sd.list_units(["omc-action-*.service"]))
        for path, monitor in self.local.monitor.items():
            if monitor.state.busy and action_unit(path) in running:
                action = {"starting": Do.START, "stopping": Do.STOP}.get(str(monitor.state),
                                                                         Do.RESTART)  # fmt: skip
                self.local.inflight[path] = InFlight(action=action, job=None)
            elif monitor.state.busy:  # ended while the daemon was down
                self._finish_unknown(path, monitor)

    # -- threads -------------------------------------------------------------------------

    def _post(self, kind: str, data: Any = None) -> None:
        self.events.put((kind, data))
        self.sd.wakeup()

    def _keep_lease(self) -> None:
        """Refresh the lease every ``keepalive``, hedged across the etcd members
        (:class:`.lease.Keeper`: one member asked while they answer, all of them, each
        on its own connection, once a refresh is ``hedge`` overdue), each call bounded by
        ``keepalive`` (a member in a minority hangs). ``last_ok`` is when the last
        successful refresh was *sent*, the conservative end of its round trip."""
        timing = self.settings.timing
        endpoints = self.settings.endpoints
        failing = threading.Event()

        def on_ttl(lease: int, sent: float, ttl: int) -> None:
            failing.clear()
            if ttl > 0:
                self.last_ok = max(self.last_ok, sent)
            else:
                self._post("lease-lost", lease)

        def on_error(error: str) -> None:
            if not failing.is_set():
                failing.set()
                self._post("etcd-error", error)

        Keeper(
            len(endpoints),
            lambda i, timeout: connect_etcd(self.settings, timeout=timeout, endpoint=endpoints[i]),
            lease=lambda: self.lease,
            on_ttl=on_ttl,
            on_error=on_error,
            keepalive=timing.keepalive,
            hedge=min(LEASE_HEDGE, timing.keepalive / 4),
            retry=KEEPALIVE_RETRY,
            urgent=min(LEASE_URGENT, timing.keepalive / 2),
            stop=self.stop,
        ).run()

    def _guard(self) -> None:
        """Self-fencing and the systemd watchdog, on a thread that does no I/O.

        No successful keep-alive for ``detect`` seconds: stop every local failover
        instance before the lease can expire (:mod:`.fence`), then ``split_action`` if
        the stop misses ``lease_ttl - margin``. The watchdog is pinged while this thread
        and the main loop both run (a hung daemon is killed, then restarted or fenced).

        It sleeps until the next of: the detection deadline (``last_ok + detect``, moved
        by every refresh: it then sleeps again), and the next watchdog ping, every
        quarter of ``WatchdogSec`` (systemd asks for at least every half). It ticked at
        10 Hz before, and was ~0.1 % of a core of an idle node, for nothing."""
        timing = self.settings.timing
        while True:
            now = time.monotonic()
            self._ping_watchdog(now)
            if now - self.last_ok > timing.detect and not self.fenced:
                self.fenced = True
                self._fence(deadline=self.last_ok + timing.lease_ttl - timing.margin)
            elif self.fenced and now - self.last_ok < timing.detect:
                self.fenced = False
                self._post("unfenced")
            deadline = self.last_ok + timing.detect + GUARD_LATE
            if self.fenced or deadline <= now:
                deadline = now + GUARD_FENCED_TICK
            if self.stop.wait(max(0.0, min(self.next_ping, deadline) - time.monotonic())):
                return

    def _ping_watchdog(self, now: float) -> None:
        """Tell systemd's watchdog the daemon lives, every quarter of ``WatchdogSec``,
        while the main loop turns too. The guard calls it, and so does a self-fencing
        stop in progress (it may last ``stop_budget``, longer than ``WatchdogSec``: a
        watchdog kill then would end the daemon, and with it the stops, mid-fence)."""
        if now >= self.next_ping:
            self.next_ping = now + watchdog_period(self.settings.timing.watchdog)
            if now - self.loop_at < LOOP_STALL:
                notify("WATCHDOG=1")

    def _fence(self, *, deadline: float) -> None:
        """Stop the local failover instances before ``deadline``, else ``split_action``.
        A refresh that succeeds meanwhile (an etcd election over) proves the lease alive
        until ``lease_ttl`` after it was sent: the deadline moves with it. Held fixed, a
        stop slower than ``stop_budget`` under load rebooted healthy nodes whose lease was
        alive again, after the election a leader's death causes (the chaos run lost its
        quorum when two nodes did it at once)."""
        timing = self.settings.timing
        paths = fence.failover_instances()
        self.log.warning(f"no etcd lease refresh for {timing.detect:g}s: "
                         f"stopping the failover instances {[str(p) for p in paths]}")  # fmt: skip
        failed = fence.stop_all(
            paths,
            lambda: max(deadline, self.last_ok + timing.lease_ttl - timing.margin),
            lambda: self._ping_watchdog(time.monotonic()),
        )
        if failed:
            action = self.settings.timing.split_action
            self.log.error(f"failover instances {[str(p) for p in failed]} not stopped before "
                           f"the lease deadline: split action {action}")  # fmt: skip
            fence.split_action(action)

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                self.etcd.watch(self.keys.prefix, self.state.revision + 1,
                                lambda events, rev: self._post("watch", (events, rev)),
                                self.stop)  # fmt: skip
            except CompactedError:
                self._post("resync-etcd")
                self.stop.wait(1.0)

    def _shutdown(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.sd.wakeup()

    # -- the main loop -------------------------------------------------------------------

    def timing_check(self) -> None:
        """etcd may grant a longer TTL than asked (its minimum): say what holds."""
        _, granted = self.etcd.lease_ttl(self.lease)
        timing = self.settings.timing
        self.log.info(f"lease ttl {granted}s (asked {timing.lease_ttl}s), keepalive "
                      f"{timing.keepalive:g}s, gives up failover instances after "
                      f"{timing.detect:g}s without etcd")  # fmt: skip

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.loop_at = time.monotonic()
            try:
                self._turn()
            except EtcdError as exc:
                self._etcd_down(exc)
            self._upgrade_check()
        notify("STOPPING=1")

    def _etcd_down(self, exc: EtcdError) -> None:
        """An etcd call of the main loop failed (no quorum, partition, outage): say so once
        an outage, wait a little and go on. Self-fencing does not depend on this loop (the
        guard thread watches the lease keep-alives); what failed to be written is written
        again once etcd answers (:meth:`_turn`)."""
        now = time.monotonic()
        if now - self._etcd_said >= ETCD_DOWN_LOG:
            self._etcd_said = now
            self.log.warning(f"etcd: {exc}: retrying")
        self._rewrite = True
        self.stop.wait(0.5)

    def _turn(self) -> None:
        """One round of the main loop."""
        self.sd.iterate(0.5)
        self._drain_events()  # first: a lost lease makes every write with it fail
        if not self.lease:  # a lost lease not granted again yet
            self._take_lease()
            self._rewrite = True
        if self._rewrite:
            self._republish()
            self._rewrite = False
            self._etcd_said = 0.0
        self._check_actions()
        now = time.monotonic()
        if now >= self._resync_at:
            self._resync()
        elif now >= self._monitor_at:  # monitored objects: om3's monitor_schedule (@1m)
            self._monitor_at = now + MONITOR_PERIOD
            self.local.dirty.update(p for p, st in self.local.status.items()
                                    if _monitored(st))  # fmt: skip
        frozen = self._node_frozen_now()
        if now - self._stats_at >= STATS_PERIOD or frozen != self._node_frozen:
            self._node_frozen = frozen
            self._publish_node()
        self._observe_dirty()
        self._serve_requests()
        self._reconcile()
        self._flush()

    def _node_frozen_now(self) -> bool:
        """The node's frozen flag (``om node freeze``), read twice a second: the safe
        check (no symlink, a trusted owner: :func:`safefs.is_file`, a walk from ``/``)
        only when a plain ``lstat`` of the path saw a change, a fifth of an idle daemon's
        CPU before. A missing path seen by ``lstat`` is missing for the safe walk too."""
        try:
            found = os.lstat(node_frozen_flag())
        except OSError:
            seen = None
        else:
            seen = (found.st_ino, found.st_mtime_ns)
        if seen != self._node_flag_seen:
            self._node_flag_seen = seen
            return seen is not None and safefs.is_file(node_frozen_flag())
        return self._node_frozen

    def _upgrade_check(self) -> None:
        """Re-execute when the code changed on disk (whatever etcd's state)."""
        now = time.monotonic()
        if now >= self._upgrade_at:
            self._upgrade_at = now + UPGRADE_CHECK
            if stale(self._sources):
                self._reexec()

    def _reexec(self) -> None:
        """Run the new code: the lease, the keys and the actions in flight carry over."""
        self.log.info("daemon code changed on disk: re-executing")
        notify("RELOADING=1")
        self.stop.set()
        os.execv(sys.executable, [sys.executable, *sys.argv])

    def _drain_events(self) -> None:
        while True:
            try:
                kind, data = self.events.get_nowait()
            except queue.Empty:
                return
            if kind == "watch":
                self._apply(*data)
            elif kind == "lease-lost" and data == self.lease:  # not one granted since
                self.log.warning("the node lease expired: registering again")
                self.lease = 0
                safefs.remove(daemon_lease_file())
                self._take_lease()
                self._republish()  # etcd failing meanwhile: done by the next _turn
            elif kind == "resync-etcd":
                revision, kvs = self.etcd.range(self.keys.prefix)
                self.state.load(revision, kvs)
                self._touch_all = True
                self._sync_configs(self.state.paths())
            elif kind == "etcd-error":
                self.log.warning(f"etcd: {data}")
            elif kind == "unfenced":
                self.log.info("etcd reachable again, the lease still holds")

    def _apply(self, events: list[Event], revision: int) -> None:
        before = dict(self.state.configs)
        intents = dict(self.state.intents)
        lost = set(self.state.lost)
        touched = self.state.apply(events, revision, now=time.monotonic())
        for what in touched:  # an object's keys, or a node's (every object may change)
            if isinstance(what, ObjectPath):
                self._touched.add(str(what))
            else:
                self._touch_all = True
        for path, intent in intents.items():
            if path not in self.state.intents:
                self._ended(path, intent)
        for node in set(self.state.lost) - lost:
            self.log.warning(f"node {node} lost (its lease expired): its failover instances "
                             f"are taken over in {self.settings.timing.grace:g}s")  # fmt: skip
        changed = [p for p in touched if isinstance(p, ObjectPath)
                   and before.get(p) != self.state.configs.get(p)]  # fmt: skip
        if changed:
            self._sync_configs(changed)

    def _unit_changed(self, unit: str) -> None:
        path = self.local.units.get(unit)
        if path is not None:
            self.local.dirty.add(path)

    # -- configs and local status ----------------------------------------------------------

    def _sync_configs(self, paths: list[ObjectPath]) -> None:
        for path in paths:
            outcome = replicate.sync(path, self.state.configs.get(path), self.node,
                                     sd=self.sd, log=self.log)  # fmt: skip
            if outcome.removed:
                self._forget(path)
            elif outcome.present:
                self.local.status[path] = Status(config_error=outcome.error)
                self.local.monitor.setdefault(path, Monitor())
                for unit in outcome.units:
                    self.local.units[unit] = path
                self.local.dirty.add(path)

    def _forget(self, path: ObjectPath) -> None:
        self.local.status.pop(path, None)
        self.local.monitor.pop(path, None)
        self.local.written.pop(path, None)
        self.local.summaries.pop(path, None)
        self.local.pending.pop(path, None)
        self.local.units = {u: p for u, p in self.local.units.items() if p != path}
        with contextlib.suppress(EtcdError):
            self.etcd.txn([], [op_delete(self.keys.instance(path, self.node)),
                               op_delete(self.keys.summary(path, self.node))])  # fmt: skip

    def _resync(self) -> None:
        self.local.dirty.update(self.local.status)
        self._touch_all = True  # and the views of objects gone are dropped
        self._resync_at = time.monotonic() + self.settings.timing.resync

    def _observe_dirty(self) -> None:
        """Observe and publish the instances whose units signalled a change. A failure
        (etcd down while publishing) leaves the paths not done dirty, for the next turn:
        dropped, they waited for another signal or the 5-minute resync."""
        todo = sorted(self.local.dirty, key=lambda p: p.fqn)
        self.local.dirty = set()
        for done, path in enumerate(todo):
            try:
                if path in self.local.status:
                    self.local.status[path] = self._observe(path)
                    self._rearm(path)
                    self._publish(path)
            except BaseException:
                self.local.dirty.update(todo[done:])
                raise

    def _observe(self, path: ObjectPath) -> Status:
        known = self.local.status.get(path)
        error = known.config_error if known is not None else ""
        return replicate.observe_status(path, error, sd=self.sd)

    def _rearm(self, path: ObjectPath) -> None:
        """A resource up for ``RESTARTS_RESET`` since its last restart gets its restarts
        back. om3 gives them back as soon as it is seen up, so a resource that keeps
        dying is restarted for ever and its monitor_action never runs; here ``restart =
        2`` means two restarts, then the monitor action, within that window."""
        monitor = self.local.monitor.get(path)
        if monitor is None or not monitor.restarts:
            return
        resources = self.local.status[path].resources
        now = time.time()
        kept = {
            rid: v
            for rid, v in monitor.restarts.items()
            if resources.get(rid, {}).get("status") not in ("up", "stdby up", "n/a")
            or now - float(v.get("last", 0.0)) < RESTARTS_RESET
        }
        if kept != monitor.restarts:
            self.local.monitor[path] = monitor.but(restarts=kept)

    def _publish(self, path: ObjectPath) -> None:
        """Queue the instance record if it changed; this node's state has it at once,
        etcd at the next :meth:`_flush` (the same turn of the main loop). The record is
        decoded here once: the state keeps it, :meth:`_flush` makes its summary of it."""
        value = k.encode(records.instance_record(self.local.status[path],
                                                 self.local.monitor[path]))  # fmt: skip
        queued = self.local.pending.get(path)
        if (queued[0] if queued is not None else self.local.written.get(path)) == value:
            return
        record = k.decode(value.encode())
        self.local.pending[path] = (value, record)
        self.state.instances.setdefault(path, {})[self.node] = record
        self._touched.add(str(path))  # decided again now, not at etcd's echo

    def _flush(self) -> None:
        """Write the queued instance records (with the lease), many per transaction, each
        with its summary (``om mon``'s part, :func:`.records.instance_summary`) when that
        changed, and give back the ownerships released meanwhile in the same
        transactions: deleted only if still this node's, under its lease, the records
        written either way. A stop's end (the release, then ``done``) is one write, not
        two in a row. Before any transaction that others may act on after this node's
        records (the end of an orchestration), and at the end of each turn of the main
        loop. A transaction holds TXN_OPS // 2 records, their summaries and at most one
        release: within etcd's --max-txn-ops."""
        pending = list(self.local.pending.items())
        size = TXN_OPS // 2
        chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
        releases = list(self.local.releases)
        for index in range(max(len(chunks), len(releases))):
            chunk = chunks[index] if index < len(chunks) else []
            summaries = {path: k.encode(records.instance_summary(record))
                         for path, (_, record) in chunk}  # fmt: skip
            puts = [op_put(self.keys.instance(path, self.node), value, lease=self.lease)
                    for path, (value, _) in chunk]  # fmt: skip
            puts += [op_put(self.keys.summary(path, self.node), summary, lease=self.lease)
                     for path, summary in summaries.items()
                     if summary != self.local.summaries.get(path)]  # fmt: skip
            if index < len(releases):
                key = self.keys.owner(releases[index])
                ours = [when_value(key, "=", k.encode({"node": self.node})),
                        when_lease(key, "=", self.lease)]  # fmt: skip
                self.etcd.txn(ours, [op_delete(key), *puts], puts)
                self.local.releases.remove(releases[index])
            else:
                self.etcd.txn([], puts)
            for path, (value, _) in chunk:
                self.local.written[path] = value
                self.local.summaries[path] = summaries[path]
                queued = self.local.pending.get(path)
                if queued is not None and queued[0] == value:
                    del self.local.pending[path]

    def _republish(self) -> None:
        self.local.written.clear()
        self.local.summaries.clear()
        self.local.pending.clear()
        self._node_value = ""
        self._publish_node(force=True)
        for path in list(self.local.status):
            self._publish(path)
        self._flush()

    def _publish_node(self, *, force: bool = False) -> None:
        self._stats_at = time.monotonic()
        value = k.encode(records.node_record(state="idle", started=self.started))
        if force or value != self._node_value:
            self.etcd.txn([], [op_put(self.keys.node(self.node), value, lease=self.lease)])
            self._node_value = value
            self.state.nodes[self.node] = k.decode(value.encode())

    def _serve_requests(self) -> None:
        """Carry out the one-off requests addressed to this node (``clear``), then drop them."""
        for rid, request in list(self.state.requests.get(self.node, {}).items()):
            path = next((p for p in self.local.monitor if p.fqn == request.get("path")), None)
            clearing = request.get("do") == "clear" and path is not None
            if clearing and path is not None and not self.local.monitor[path].state.busy:
                self._set(path, state=State.IDLE)
                self._action_log(path, "clear").info("instance monitor state cleared")
            self.etcd.delete(self.keys.request(self.node, rid))
            self.state.requests.get(self.node, {}).pop(rid, None)

    # -- decisions ----------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Decide and carry out, for the objects whose snapshot may have changed: those
        whose keys a watch event or this node's own records touched (an action's end,
        a status change), every object when a node's keys changed or a lost node's grace
        ended, and every RECONCILE_PERIOD those whose decision time alone may change
        (restart_delay, a stonith retry, a step not carried out). An idle daemon with 200
        objects spent most of its CPU deciding the same plan twice a second; an
        orchestration of one object, deciding the 200 at each of its events (~3 ms
        each, on every node).

        The objects whose steps changed only what this node holds (ack, unfreeze,
        ownership, done …) are decided again at once, on the state as these steps left
        it: the next step (unfreeze after ack, a stop after the freeze, done after an
        action) no longer waits for etcd's echo of the previous one, and their records
        go to etcd together (:meth:`_flush`), one transaction instead of one per step.
        Likewise this node's own new records (an action's end): decided in the turn
        that wrote them, so ``done`` leaves with the action's end. Nothing is decided
        that the echo would not have decided: the echo brings back what this node
        wrote."""
        now = time.monotonic()
        ended = self.state.forget_lost(now, self.settings.timing.grace)
        every = ended or self.boot or self._touch_all
        periodic = now >= self._decide_at
        if not (every or periodic or self._touched):
            return
        if every or periodic:
            self._decide_at = now + RECONCILE_PERIOD
        # every object; else the touched ones, and on the period those time may change
        paths: set[str] | None = None
        if not every:  # with the objects whose decision depends on others' keys
            paths = self._touched | self._queued | self._affine
            paths |= self._timed if periodic else set()
        self._touched, self._touch_all = set(), False
        for _ in range(FOLD_ROUNDS):
            if paths is not None and not paths:
                break
            plan = decide(self._snapshot(paths), self.node, boot=self.boot,
                          max_parallel=self.settings.timing.max_parallel,
                          paths=paths)  # fmt: skip
            decided = {d.path for d in plan.decisions}
            self._timed = timed(plan) | (self._timed - decided)
            self._queued = queued(plan) | (self._queued - decided)
            paths = set()
            for decision in plan.decisions:
                if decision.steps:
                    try:
                        if self._carry_out(decision) and FOLDED.issuperset(decision.steps):
                            paths.add(decision.path)
                    except (EtcdError, SystemdError, OSError) as exc:
                        self.log.error(f"{decision.path}: {', '.join(decision.steps)}: {exc}")
        # The folded rounds decided what their steps published; what the last one
        # published is decided at the next turn (or its echo).
        self.boot = False
        self._flush()

    def _snapshot(self, paths: set[str] | None) -> Snapshot:
        """The snapshot ``decide`` reads for ``paths`` (None: every object): those
        objects (the ones with hard affinities always among them, as what they depend on
        is not their own keys), what they have affinities with, and the objects whose
        action runs on this node (``max_parallel`` counts them). Decoding the views of
        every object for one was most of the decisions' cost."""
        if paths is None:
            snap = self.state.snapshot(self.node, now=time.time())
            self._affine = {p for p, v in snap.objects.items()
                            if v.config.hard_affinity or v.config.hard_anti_affinity}  # fmt: skip
            return snap
        names = {str(p): p for p in self.state.paths()}
        wanted = {n for n in paths if n in names}
        wanted |= {str(p) for p, m in self.local.monitor.items() if m.state.busy}
        for name in list(wanted):
            config = self.state.view(names[name], self.node).config
            if config.hard_affinity or config.hard_anti_affinity:
                self._affine.add(name)
                wanted.update(config.hard_affinity, config.hard_anti_affinity)
            else:
                self._affine.discard(name)
        only = [names[n] for n in sorted(wanted) if n in names]
        return self.state.snapshot(self.node, now=time.time(), only=only)

    def _carry_out(self, decision: Decision) -> bool:
        """Carry out the decision's steps in order; False when one did not happen. The
        decision names its object as ``str(path)`` does; every path the state holds was
        parsed from its key (:meth:`.keys.Keys.parse`), so parsing that name again gives
        it back, without listing every object for each decision."""
        path = parse_path(decision.path)
        return all(self._step(path, step, decision) for step in decision.steps)

    def _set(self, path: ObjectPath, **changes: Any) -> None:
        self.local.monitor[path] = self.local.monitor.get(path, Monitor()).but(**changes)
        self._publish(path)

    def _step(self, path: ObjectPath, step: Do, decision: Decision) -> bool:
        """Carry out one step; False stops the decision's remaining steps."""
        intent = self.state.intents.get(path, {})
        if step is Do.ACK:
            monitor = self.local.monitor.get(path, Monitor())
            state = monitor.state if monitor.state.busy else State.IDLE
            self._set(path, oid=str(intent.get("oid", "")), done=False, state=state)
        elif step is Do.CLEAR:
            self._set(path, state=State.IDLE)
        elif step in (Do.FREEZE, Do.UNFREEZE):
            self._freeze(path, on=step is Do.FREEZE)
        elif step is Do.FENCE:
            return self._stonith(path)
        elif step is Do.TAKE:
            return self._take(path, decision.reason)
        elif step is Do.RELEASE:
            self._release(path)
        elif step is Do.RESTART_RESOURCES:
            self._restart_resources(path, decision.rids)
        elif step is Do.SPLIT:
            self._set(path, monitor_action_at=time.time())
            action = self.state.view(path, self.node).config.monitor_action[0]
            self.log.error(f"{path}: monitored resources down: monitor_action {action}")
            fence.split_action(action)
        elif step in ACTION_STATES:
            if decision.reason.startswith("monitor_action"):
                self._set(path, monitor_action_at=time.time())
                self._action_log(path, "monitor").warning(
                    f"monitored resources stay down after their restarts: {decision.reason}"
                )
            self._launch(path, step)
        elif step is Do.DONE:
            self._set(path, done=True)
        elif step is Do.END:
            self._end(path, intent)
        return True

    def _freeze(self, path: ObjectPath, *, on: bool) -> None:
        from omc.runtime.engine.instance import freeze

        freeze(path, self._action_log(path, "freeze" if on else "unfreeze"), on=on)
        # Only the flag changed: no need to observe the units and probes again (this
        # step is on the way of every start and stop, on every node).
        known = self.local.status.get(path)
        frozen = safefs.is_file(frozen_flag(path))
        self.local.status[path] = (self._observe(path) if known is None
                                   else replace(known, frozen=frozen))  # fmt: skip
        self._publish(path)

    def _stonith(self, path: ObjectPath) -> bool:
        """Fence the lost nodes the object ran on (``[stonith] cmd``) before taking it over;
        False (no takeover) while a fence did not succeed: better down than twice up."""
        view = self.state.view(path, self.node)
        for node in view.lost_up:
            if time.monotonic() - self._fence_tries.get(node, -STONITH_RETRY) < STONITH_RETRY:
                return False
            self._fence_tries[node] = time.monotonic()
            if not self.settings.stonith:
                self.log.error(f"{path}: stonith is set but cluster.conf has no [stonith] cmd: "
                               f"{node} cannot be fenced, {path} is not taken over")  # fmt: skip
                return False
            argv = [w.replace("{node}", node) for w in shlex.split(self.settings.stonith)]
            self.log.warning(f"{path}: fencing {node} before the takeover: {shlex.join(argv)}")
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=STONITH_TIMEOUT,
                                      check=False, stdin=subprocess.DEVNULL)  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.log.error(f"{path}: fencing {node} failed: {exc}")
                return False
            if proc.returncode != 0:
                self.log.error(f"{path}: fencing {node} failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}")  # fmt: skip
                return False
            value = k.encode({"at": time.time(), "by": self.node})
            self.etcd.txn([], [op_put(self.keys.fenced(node), value)])
            self.state.fenced[node] = k.decode(value.encode())
        return True

    def _take(self, path: ObjectPath, why: str) -> bool:
        """Own the failover object: create the key, or re-bind it when it is already ours.
        A new ownership is logged and published with ``why`` (``om mon --verbose``)."""
        if path in self.local.releases:  # a release not yet written goes first
            self._flush()
        claimed = claim(self.etcd, self.keys.owner(path), self.node, self.lease)
        if claimed is Claim.HELD:
            return False
        self.state.owners[path] = self.node
        if claimed is Claim.NEW and why:
            self.log.info(f"{path}: took the ownership: {why}")
            self._set(path, took_over=time.time(), took_over_why=why)
        return True

    def _release(self, path: ObjectPath) -> None:
        """Give the ownership key back. First cancel systemd's own pending restarts of the
        object's units (an app's ``restart = N`` is also ``Restart=on-failure``,
        docs/units.md): a unit that restarts after the key is gone would run next to the
        next owner's instance. A unit that came back before the cancel keeps the key."""
        units = [u for u, p in self.local.units.items() if p == path]
        with contextlib.suppress(SystemdError):
            pending = [u for u, s in self.sd.sub_states(units).items() if s == "auto-restart"]
            if pending:
                self.sd.stop(pending, timeout=self.settings.timing.stop_budget)
                self.local.dirty.add(path)
                if any(s.is_active for s in self.sd.states(pending).values()):
                    return
        if path not in self.local.releases:  # deleted with the records (:meth:`_flush`)
            self.local.releases.append(path)
        if self.state.owners.get(path) == self.node:
            self.state.owners.pop(path, None)

    def _end(self, path: ObjectPath, intent: dict[str, Any]) -> None:
        self._flush()  # the records it ends on are in etcd first
        revision = self.state.intent_revisions.get(path, 0)
        if end_intent(self.etcd, self.state, path) or revision == 0:
            self.state.intents.pop(path, None)
            self._ended(path, intent)

    def _ended(self, path: ObjectPath, intent: dict[str, Any]) -> None:
        """Log an orchestration's end, once per node: the node that deleted the intent
        when it did, the others (or all, when the waiting command ended it) when the
        deletion reaches them."""
        self.log.info(f"{path}: orchestration {intent.get('oid', '')} ended "
                      f"(>{intent.get('expect', '')})")  # fmt: skip

    def _action_log(self, path: ObjectPath, verb: str) -> ActionLog:
        return action_log(str(path), action=verb, origin=ORIGIN, console=None)

    # -- actions --------------------------------------------------------------------------

    def _restart_resources(self, path: ObjectPath, rids: tuple[str, ...]) -> None:
        """A restart of down resources: one of their attempts spent (om3 counts at launch)."""
        monitor = self.local.monitor.get(path, Monitor())
        status = self.local.status.get(path, Status())
        restarts = dict(monitor.restarts)
        for rid in rids:
            config = status.resources.get(rid, {})
            left = restarts.get(rid, {}).get("remaining", int(config.get("restart", 0)))
            restarts[rid] = {"remaining": max(0, int(left) - 1), "last": time.time()}
        self._set(path, restarts=restarts)
        self._action_log(path, "restart").info(f"resource monitoring restarts {', '.join(rids)}")
        self._launch(path, Do.RESTART_RESOURCES, rids=rids)

    def _launch(self, path: ObjectPath, step: Do, *, rids: tuple[str, ...] = ()) -> None:
        busy, _ = ACTION_STATES[step]
        unit = action_unit(path)
        verb = {Do.RESTART_RESOURCES: "start", Do.EVICT: "stop"}.get(step, str(step))
        argv = [
            om_path(),
            str(path),
            "instance",
            verb,
            *(("--rid", ",".join(rids)) if rids else ()),
        ]
        properties: dict[str, PropValue] = {
            "Type": "oneshot",
            "Environment": [
                f"OSVC_ACTION_ORIGIN={ORIGIN}",
                "OMC_EXECUTOR=1",
                f"OSVC_REQUEST_ID={new_sid()}",  # journald's REQUEST_ID
                f"{PEERS_DOWN_ENV}={' '.join(self._peers_down())}",
            ],
            "Description": f"omc daemon action: {path} {step}",
            "CollectMode": "inactive-or-failed",
        }
        try:
            job = self.sd.launch_transient(unit, argv, properties)
        except SystemdError:  # a failed previous action unit may still hold the name
            with contextlib.suppress(SystemdError):
                self.sd.reset_failed(unit)
            job = self.sd.launch_transient(unit, argv, properties)
        self.local.inflight[path] = InFlight(action=step, job=job)
        self._set(path, state=State(busy))

    def _peers_down(self) -> list[str]:
        """The cluster's nodes without a lease now (dead, cut off, lost): an action's
        drivers do not ask them over ssh (:data:`PEERS_DOWN_ENV`)."""
        return sorted(set(self.settings.nodes) - set(self.state.nodes) - {self.node})

    def _check_actions(self) -> None:
        for path, flight in list(self.local.inflight.items()):
            if flight.job is None:
                if action_unit(path) not in set(self.sd.list_units([action_unit(path)])):
                    del self.local.inflight[path]
                    self._finish_unknown(path, self.local.monitor.get(path, Monitor()))
                continue
            result = self.sd.finished(flight.job)
            if result is None:
                continue
            del self.local.inflight[path]
            self._finish(path, flight.action, ok=result == "done")

    def _finish(self, path: ObjectPath, action: Do, *, ok: bool) -> None:
        _, failed = ACTION_STATES[action]
        self.local.status[path] = self._observe(path)
        self.local.dirty.discard(path)  # the action's own unit signals: seen just now
        if not ok:
            self._set(path, state=State(failed))
            return
        if action in (Do.START, Do.RESTART):
            self._set(path, state=State.IDLE, local_expect="started", monitor_action_at=0.0,
                      last_started=time.time())  # fmt: skip
            if action is Do.START:  # a (failover) start here: the peers get this copy now
                syncs.after_start(self.sd, path, self.local.status[path], self.log)
            if action is Do.RESTART and path in self.state.intents:
                self._set(path, done=True)
        elif action is Do.RESTART_RESOURCES:
            self._set(path, state=State.IDLE)
        elif action is Do.EVICT:  # off the candidates: the next node takes it (§5.6 switch)
            self._set(path, state=State.START_FAILED, local_expect="evicted")
        else:
            self._set(path, state=State.IDLE, local_expect="none")

    def _finish_unknown(self, path: ObjectPath, monitor: Monitor) -> None:
        """An action that ended unseen (the daemon was down): judge it by the status."""
        status = self._observe(path)
        self.local.status[path] = status
        action = {"starting": Do.START, "stopping": Do.STOP}.get(str(monitor.state), Do.RESTART)
        ok = (status.avail == "up") if action is not Do.STOP else status.avail != "up"
        self._finish(path, action, ok=ok)


UNIT_TEXT = """\
[Unit]
Description=omc node daemon: cluster state in etcd, orchestration of local instances
Wants=omc-executor.service
After=network-online.target omc-executor.service omc-lab-etcd.service
OnFailure=omc-daemon-fence.service
StartLimitIntervalSec=60
StartLimitBurst=3

[Service]
Type=notify
ExecStart={om} daemon run
# Actions run in their own transient units: stopping or restarting the daemon never
# touches one in flight (a restarted daemon picks up its end).
KillMode=mixed
Restart=on-failure
RestartSec=1s
# A hung daemon is killed (then restarted); one that keeps failing stops the node's
# failover instances (omc-daemon-fence.service): no instance stays unguarded.
WatchdogSec={watchdog}

[Install]
WantedBy=multi-user.target
"""


def watchdog_period(watchdog: float) -> float:
    """Seconds between two watchdog pings: a quarter of ``WatchdogSec`` (systemd's own
    ``$WATCHDOG_USEC`` when it is shorter than ``cluster.conf``'s ``watchdog``)."""
    with contextlib.suppress(ValueError):
        watchdog = min(watchdog, int(os.environ.get("WATCHDOG_USEC", "")) / 1e6)
    return max(0.05, watchdog / 4)


def unit_text(om: str, *, watchdog: float = 3.0) -> str:
    """The daemon's unit; ``om`` is the absolute path of the ``om`` command."""
    return UNIT_TEXT.format(om=om, watchdog=f"{int(watchdog * 1000)}ms")


def main(argv: list[str]) -> int:
    """``om daemon run``."""
    from omc.runtime.cluster.settings import SettingsError, load
    from omc.runtime.exitcodes import ExitStatus

    if argv != ["run"]:
        print("usage: om daemon run", flush=True)
        return ExitStatus.USAGE
    try:
        settings = load()
    except SettingsError as exc:
        print(f"om daemon: error: {exc}", flush=True)
        return ExitStatus.ERROR
    return Daemon(settings).run()
