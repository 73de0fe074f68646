"""``cluster.conf``: the cluster's one settings file (``/etc/opensvc/cluster.conf``).

Same file, same place as om3's (the compiler reads its ``[cluster]`` values for
``{clustername}`` references through the contract). The cluster layer adds::

    [cluster]
    name = prod1                 # also the etcd key prefix: /omc/<name>/
    nodes = n1 n2 n3

    [etcd]
    endpoints = https://10.0.0.11:2379 https://10.0.0.12:2379
    ca = /etc/opensvc/etcd-ca.pem          # TLS: the CA that signed the members
    cert = /etc/opensvc/etcd-client.pem    # client certificate and key
    key = /etc/opensvc/etcd-client.key
    user = omc                             # etcd auth (password below)
    password = …
    timeout = 2s                           # bound of every etcd call
    insecure = false                       # allow plain http to a non-loopback member

    [stonith]
    cmd = /usr/local/sbin/fence-node {node}   # fences a lost node (objects with stonith)

    [sync]
    transport = rsyncd    # rsyncd: the daemons provision an rsync daemon per node (no
                          # setting needed); ssh: root's ssh between nodes (encrypted)
    port = 1873           # the rsync daemons' port, on each node's own address

    [daemon]
    lease_ttl = 10s       # a node is alive while its lease is (etcd's minimum: ~2 s)
    keepalive = 2s        # lease refresh period (<= lease_ttl / 3)
    stop_budget = 5s      # time the node's failover instances may take to stop
    margin = 1s           # safety margin before the lease can expire
    grace = 1s            # peers take over that long after a lost node's lease expired
    watchdog = 3s         # WatchdogSec= of omc-daemon.service (<= the detection time)
    split_action = crash  # when the stop misses its deadline: crash | reboot | disabled
    resync = 5m           # full re-observation of local instances (a safety net)
    max_parallel = 10     # actions a node runs at once

The file holds a password: it must be 0600 and owned by root (:func:`load` refuses
it otherwise, as ssh does a loose key). What :func:`load` also refuses, naming the
key: plain http to a member off loopback unless ``insecure = true`` (cluster state
decides what runs where: it travels over TLS, docs/cluster.md "Security"), a TLS file
that cannot be read, a certificate without its key, a user without a password.
Durations as in configs (``5s``, ``1m``, a bare integer is seconds).
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from omc.compiler.contract.node import CLUSTER_CONF, etc_dir, node_name


class SettingsError(Exception):
    """cluster.conf is missing, unreadable or wrong; the message names the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The daemon's timing rule (docs/cluster.md, "Timing"), checked by :meth:`check`.

    A node cut off from etcd must have stopped its failover instances before etcd
    can expire its lease (and peers take them over): it gives up when no keep-alive
    succeeded for ``detect = lease_ttl - stop_budget - margin`` seconds, measured on its
    own clock from the *sending* of the last successful keep-alive (the server's
    expiry can only come later). Peers take over ``grace`` seconds after etcd deleted
    the lease's keys.
    """

    lease_ttl: int = 10
    keepalive: float = 2.0
    stop_budget: float = 5.0  # the time stopping the node's failover instances may take
    margin: float = 1.0  # safety margin on the lease deadline
    grace: float = 1.0  # peers wait that long after a node's lease expired
    watchdog: float = 3.0  # WatchdogSec= of omc-daemon.service
    split_action: str = "crash"  # when the stop misses the deadline: crash | reboot | disabled
    resync: float = 300.0
    max_parallel: int = 10

    @property
    def detect(self) -> float:
        """No successful keep-alive for this long: the node gives up its failover instances."""
        return self.lease_ttl - self.stop_budget - self.margin

    def check(self) -> None:
        """Refuse a configuration that cannot keep the promise (a clear message)."""
        if self.keepalive * 3 > self.lease_ttl:
            raise SettingsError(
                f"cluster.conf: keepalive = {self.keepalive:g}s is more than lease_ttl/3 "
                f"({self.lease_ttl / 3:g}s): a single slow keep-alive would put the lease at risk"
            )
        if self.detect < 2 * self.keepalive:
            raise SettingsError(
                f"cluster.conf: lease_ttl ({self.lease_ttl}s) - stop_budget "
                f"({self.stop_budget:g}s) - margin ({self.margin:g}s) = {self.detect:g}s leaves "
                f"less than two keep-alives ({2 * self.keepalive:g}s) before the node must give "
                "up its services: raise lease_ttl or lower stop_budget"
            )
        if self.watchdog > self.detect:
            raise SettingsError(
                f"cluster.conf: watchdog = {self.watchdog:g}s exceeds the detection time "
                f"({self.detect:g}s): a hung daemon would be killed too late to stop its services"
            )
        if self.split_action not in ("crash", "reboot", "disabled"):
            raise SettingsError(
                f"cluster.conf: split_action = {self.split_action!r}: expected crash, reboot "
                "or disabled"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSettings:
    """What a node needs to reach the cluster."""

    name: str
    nodes: tuple[str, ...]
    endpoints: tuple[str, ...]
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    timeout: float = 2.0
    insecure: bool = False
    timing: Timing = field(default_factory=Timing)
    node: str = ""
    stonith: str = ""  # [stonith] cmd: the command that fences a node, {node} replaced
    sync_transport: str = "rsyncd"  # [sync] transport: rsyncd (provisioned) | ssh
    sync_port: int = 1873  # [sync] port: the rsync daemon's, on each node's address

    @property
    def prefix(self) -> str:
        """The cluster's etcd key prefix."""
        return f"/omc/{self.name}/"


def duration(text: str, *, key: str) -> float:
    """``5s``, ``500ms``, ``2m``, ``1h``, or a bare number of seconds."""
    value = text.strip()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, scale in units:
        if value.endswith(suffix) and value[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(value[: -len(suffix)]) * scale
    if value.replace(".", "", 1).isdigit():
        return float(value)
    raise SettingsError(f"cluster.conf: {key} = {text!r} is not a duration (e.g. 5s, 500ms)")


def _flag(text: str, *, key: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(f"cluster.conf: {key} = {text!r} is not a boolean")


DAEMON_KEYS = ("lease_ttl", "keepalive", "stop_budget", "margin", "grace", "watchdog",
               "split_action", "resync", "max_parallel")  # fmt: skip


def timing_from(daemon: Mapping[str, str]) -> Timing:
    """The ``[daemon]`` section's values (defaults for the missing ones), checked against
    the timing rule: :class:`SettingsError` names the value that breaks it."""
    default = Timing()

    def get(key: str, fallback: str) -> str:
        return str(daemon.get(key, fallback)).strip() or fallback

    def seconds(key: str, fallback: float) -> float:
        return duration(get(key, f"{fallback:g}s"), key=key)

    max_parallel = get("max_parallel", "10")
    if not max_parallel.isdigit():
        raise SettingsError(f"cluster.conf: max_parallel = {max_parallel!r} is not a number")
    timing = Timing(
        lease_ttl=max(1, round(seconds("lease_ttl", default.lease_ttl))),
        keepalive=seconds("keepalive", default.keepalive),
        stop_budget=seconds("stop_budget", default.stop_budget),
        margin=seconds("margin", default.margin),
        grace=seconds("grace", default.grace),
        watchdog=seconds("watchdog", default.watchdog),
        split_action=get("split_action", default.split_action),
        resync=seconds("resync", default.resync),
        max_parallel=int(max_parallel),
    )
    timing.check()
    return timing


def load(etc: Path | None = None) -> ClusterSettings:
    """The settings of ``<etc>/cluster.conf``; :class:`SettingsError` says what is wrong."""
    file = (etc_dir() if etc is None else etc) / CLUSTER_CONF
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        with file.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        raise SettingsError(f"{file}: no cluster configured on this node") from None
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise SettingsError(f"{file}: cannot read: {exc}") from None

    def get(section: str, key: str, default: str = "") -> str:
        return parser.get(section, key, fallback=default).strip()

    endpoints = tuple(get("etcd", "endpoints").split())
    if not endpoints:
        raise SettingsError(f"{file}: [etcd] endpoints is empty: the cluster needs etcd")
    daemon = dict(parser.items("daemon")) if parser.has_section("daemon") else {}
    timing = timing_from(daemon)
    settings = ClusterSettings(
        name=get("cluster", "name", "default") or "default",
        nodes=tuple(get("cluster", "nodes").split()),
        endpoints=endpoints,
        ca=get("etcd", "ca") or None,
        cert=get("etcd", "cert") or None,
        key=get("etcd", "key") or None,
        user=get("etcd", "user") or None,
        password=get("etcd", "password") or None,
        timeout=duration(get("etcd", "timeout", "2s"), key="timeout"),
        insecure=_flag(get("etcd", "insecure", "false"), key="insecure"),
        timing=timing,
        node=node_name(),
        stonith=get("stonith", "cmd"),
        sync_transport=_choice(
            get("sync", "transport", "rsyncd"), ("rsyncd", "ssh"), key="[sync] transport"
        ),
        sync_port=_port(get("sync", "port", "1873"), key="[sync] port"),
    )
    check(settings, file)
    return settings


def loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost`` (a name such as ``127.example.com`` is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoints(settings: ClusterSettings) -> None:
    """Refuse clear-text endpoints off loopback (unless ``insecure = true``)."""
    if settings.insecure:
        return
    for url in settings.endpoints:
        parts = urlsplit(url)
        if parts.scheme != "https" and not loopback(parts.hostname or ""):
            raise SettingsError(
                f"cluster.conf: [etcd] endpoint {url} is plain http to another host: cluster "
                "state and credentials would cross the network in clear; use https:// with "
                "[etcd] ca, cert and key, or set [etcd] insecure = true to allow it"
            )


def check_credentials(settings: ClusterSettings) -> None:
    """TLS material comes as readable files, a certificate with its key, a user with its
    password (and the reverse)."""
    if bool(settings.cert) != bool(settings.key):
        raise SettingsError("cluster.conf: [etcd] cert and key go together (one is missing)")
    if bool(settings.user) != bool(settings.password):
        missing = "password" if settings.user else "user"
        raise SettingsError(f"cluster.conf: [etcd] user and password go together ({missing} "
                            "is missing)")  # fmt: skip
    for key in ("ca", "cert", "key"):
        path = getattr(settings, key)
        if path and not os.access(path, os.R_OK):
            reason = "not readable" if Path(path).exists() else "no such file"
            raise SettingsError(f"cluster.conf: [etcd] {key} = {path}: {reason}")


def check_secret_file(file: Path) -> None:
    """A file holding a password is the caller's alone: owned by it, mode 0600 or less."""
    info = file.stat()
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if info.st_uid != os.geteuid() or loose:
        raise SettingsError(
            f"{file}: holds the etcd password but is "
            + ("owned by another user" if info.st_uid != os.geteuid() else
               f"readable by others (mode {stat.S_IMODE(info.st_mode):04o})")
            + f": chown root and chmod 600 {file}"
        )  # fmt: skip


def check(settings: ClusterSettings, file: Path) -> None:
    """Everything :func:`load` refuses besides syntax (see the module's docstring)."""
    check_endpoints(settings)
    check_credentials(settings)
    if settings.password:
        check_secret_file(file)


def _choice(text: str, allowed: tuple[str, ...], *, key: str) -> str:
    if text not in allowed:
        raise SettingsError(f"cluster.conf: {key} = {text!r}: expected {' or '.join(allowed)}")
    return text


def _port(text: str, *, key: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SettingsError(f"cluster.conf: {key} = {text!r} is not a TCP port")
    return int(text)


def configured(etc: Path | None = None) -> bool:
    """Whether this node belongs to a cluster (a cluster.conf with an [etcd] section)."""
    file = (etc_dir() if etc is None else etc) / CLUSTER_CONF
    try:
        return "[etcd]" in file.read_text(encoding="utf-8")
    except OSError:
        return False
