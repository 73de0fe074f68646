"""Watching a cluster lab from the host during fault runs (tests, ``bench/ha.py``,
``bench/chaos.py``).

Where an object runs is read from outside the cluster, not from what the cluster says:
each object's app leaves a marker file in the node's ``/tmp`` while it runs (with its
PID in it when the app is a process that may be killed: :func:`runs`, :data:`APP`), and the
:class:`Sampler` thread looks for it on every node every 100 ms, through
``/proc/<pid>/root``. That works on a frozen node (its files stay readable), a dead node
runs nothing, and a node whose daemon or etcd is gone is still seen: the count of
samples with a failover object on two nodes is what the HA acceptance is about.

What the cluster says (``om mon --format json`` inside a node) is read by :func:`mon`
and :func:`avails`.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .api import Lab, Node
from .state import LabError

OM = str(Path(sys.executable).parent / "om")
SAMPLE_PERIOD = 0.1
# An app whose marker holds its PID, and whose command line names the marker (runs()).
APP = "/bin/sh -c 'echo $$ > {marker}; exec tail -n 0 -f {marker}'"

Where = dict[str, frozenset[str]]  # object name → the nodes its app runs on


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.monotonic()
    up: Where


@dataclass(slots=True)
class Sampler:
    """Where each object's app runs (its ``marker`` file exists), sampled by a thread
    every ``period`` seconds from :meth:`__enter__` to :meth:`__exit__`."""

    lab: str
    markers: Mapping[str, str]  # object name → its marker file, as a node sees it
    period: float = SAMPLE_PERIOD
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.samples.append(Sample(started, self.running()))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def running(self) -> Where:
        """Where each app runs now (the lab's state read again: nodes die and boot)."""
        found: dict[str, set[str]] = {name: set() for name in self.markers}
        try:
            lab = Lab.attach(self.lab)
        except LabError:
            return {name: frozenset() for name in self.markers}
        for node in lab.nodes:
            with suppress(OSError):
                if not node.alive():
                    continue
                for name, marker in self.markers.items():
                    if runs(node, marker):
                        found[name].add(node.name)
        return {name: frozenset(nodes) for name, nodes in found.items()}

    def _only(self, name: str | None) -> str:
        if name is not None:
            return name
        if len(self.markers) != 1:
            raise ValueError("several objects are sampled: name one")
        return next(iter(self.markers))

    def latest(self, name: str | None = None) -> frozenset[str]:
        """The nodes the app ran on at the last sample."""
        name = self._only(name)
        return self.samples[-1].up[name] if self.samples else frozenset()

    def latest_all(self) -> Where:
        """Where each app ran at the last sample."""
        return self.samples[-1].up if self.samples else {n: frozenset() for n in self.markers}

    def doubles(self, name: str | None = None, since: float = 0.0) -> int:
        """Samples (taken at ``since`` or later) that saw the app on two nodes or more."""
        name = self._only(name)
        return sum(1 for s in self.samples if s.at >= since and len(s.up[name]) > 1)

    def double_window(self, name: str | None = None) -> float:
        """Seconds from the first to the last sample with the app on two nodes (0: none)."""
        name = self._only(name)
        times = [s.at for s in self.samples if len(s.up[name]) > 1]
        return times[-1] - times[0] + self.period if times else 0.0

    def first(self, node: str, after: float, name: str | None = None) -> float:
        """Seconds from ``after`` to the first sample with the app running on ``node``."""
        name = self._only(name)
        found = next((s.at for s in self.samples if s.at >= after and node in s.up[name]), None)
        if found is None:
            raise AssertionError(f"{name}: never seen up on {node}")
        return found - after

    def last(self, node: str, name: str | None = None) -> float:
        """The time of the last sample with the app running on ``node``."""
        name = self._only(name)
        return max(s.at for s in self.samples if node in s.up[name])


def runs(node: Node, marker: str) -> bool:
    """Whether the app of ``marker`` runs on ``node``: the file exists and, when it holds a
    PID (``echo $$ > marker; exec tail -f marker``), that process is alive in the node and
    names the marker in its command line (a SIGKILLed app leaves its marker behind, and
    its PID may be reused by any process of the node)."""
    try:
        text = node.path(marker).read_text().strip()
        if not text.isdigit():
            return True
        cmdline = node.path(f"/proc/{text}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return marker.encode() in cmdline.split(b"\0")


def om(node: Node, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``om ARGS…`` inside the node (never raises on a non-zero exit)."""
    return node.run([OM, *args], check=False, timeout=timeout)


def mon(node: Node) -> dict[str, Any]:
    """``om mon --format json`` as the node sees the cluster."""
    proc = om(node, "mon", "--format", "json")
    if proc.returncode != 0:
        raise LabError(f"{node.name}: om mon: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    if not isinstance(data, dict):
        raise LabError(f"{node.name}: om mon: not an object")
    return data


def avails(node: Node, name: str) -> dict[str, str]:
    """Each instance's avail of object ``name`` ({} while the cluster does not know it)."""
    instances = mon(node).get("objects", {}).get(name, {}).get("instances", {})
    return {n: str(i.get("avail", "")) for n, i in instances.items()}


def alive_in_mon(viewer: Node, node: str) -> bool:
    """Whether ``viewer`` sees ``node`` alive (registered with a lease)."""
    return bool(mon(viewer).get("nodes", {}).get(node, {}).get("alive"))


def etcd_conf(node: Node) -> dict[str, str]:
    """The ``[etcd]`` section of the node's cluster.conf: its TLS files and its user."""
    parser = configparser.ConfigParser()
    parser.read_string(node.read_file("/etc/opensvc/cluster.conf"))
    return dict(parser["etcd"])


def tls_flags(conf: dict[str, str]) -> list[str]:
    """``--cacert``/``--cert``/``--key`` (etcdctl and curl alike) as cluster.conf names them."""
    return ["--cacert", conf["ca"], "--cert", conf["cert"], "--key", conf["key"]]


def etcdctl(node: Node, *args: str) -> list[str]:
    """``etcdctl`` in ``node`` as its daemon reaches etcd: over TLS with the node's client
    certificate, logged in as the cluster's user (both from its cluster.conf)."""
    conf = etcd_conf(node)
    argv = ["etcdctl", "--endpoints=https://127.0.0.1:2379", *tls_flags(conf)]
    if conf.get("user"):
        argv.append(f"--user={conf['user']}:{conf['password']}")
    return [*argv, *args]


def etcd_status(node: Node) -> dict[str, int]:
    """What the node's own etcd member says of itself (it answers without quorum): its
    ``member`` id, the ``leader`` it follows (0: none) and its raft ``term``. No login:
    a member without quorum cannot log anyone in, and a status needs none. (etcdctl
    leaves zeros out of its JSON.)"""
    argv = ["etcdctl", "--endpoints=https://127.0.0.1:2379", *tls_flags(etcd_conf(node)),
            "--command-timeout=5s", "endpoint", "status", "-w", "json"]  # fmt: skip
    out = node.run(argv).stdout
    status = json.loads(out)[0]["Status"]
    return {"member": int(status["header"]["member_id"]), "leader": int(status.get("leader", 0)),
            "term": int(status.get("raftTerm", 0))}  # fmt: skip


def until(check: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll ``check`` every 100 ms; :class:`TimeoutError` naming ``what`` past ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout:g}s: {what}")
        time.sleep(0.1)


def make_whole(lab: Lab, *, timeout: float = 90.0) -> None:
    """Undo every fault: links healed, nodes thawed, dead nodes booted, and each node seen
    alive (registered with a lease) by the last node."""
    lab.heal()
    for node in lab.nodes:
        if node.alive():
            lab.thaw(node.name)
        else:
            node.boot()
    viewer = lab.nodes[-1]
    for node in lab.nodes:
        until(partial(alive_in_mon, viewer, node.name), timeout, f"{node.name} alive")
