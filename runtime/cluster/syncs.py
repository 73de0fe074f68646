"""The cluster's side of sync.rsync: a transport nobody sets up by hand, and the sync
after a failover.

**Transport.** Every node daemon, when it starts, :func:`provision`\\ s an rsync daemon
for its peers (docs/cluster.md, "Sync"):

* the cluster's sync secret, 32 random bytes created once in etcd (``secrets/sync``,
  a create-if-absent transaction: the first daemon wins, the others read it);
* this node's rsync password, ``HMAC-SHA256(secret, "rsync:" + node)``: every node
  authenticates under its own name; each node can compute the others' passwords to
  accept them (nodes trust each other as root already: configs replicate and run
  everywhere);
* in ``/var/lib/opensvc/node/sync/`` (root, ``0700``): ``password`` (the client's
  ``--password-file``), ``secrets`` (``<node>:<password>`` of every cluster node, the
  daemon's), ``rsyncd.conf`` and ``transport.json`` (what sync drivers read: port,
  module, user);
* ``omc-rsyncd.socket`` (``ListenStream=<this node's address>:<port>``, ``Accept=yes``)
  and ``omc-rsyncd@.service`` under ``/run/systemd/system``: rsync runs only while a
  peer is connected.

The module ``omc`` is ``/``, writable only (``write only``: a peer pushes, it cannot
read this node's files), for the cluster's nodes only (``auth users`` and ``hosts
allow`` from cluster.conf), symlinks kept as they are (``munge symlinks = no``).
rsync's daemon protocol authenticates by challenge and response but does not
encrypt: ``[sync] transport = ssh`` in cluster.conf is the choice for a cluster
network others can read (docs/threat-model.md).

**After a failover** the node that started a failover object with sync resources
runs ``om <path> sync update`` (a transient unit, origin ``daemon/monitor``): the new
active copy reaches the others without waiting for the schedule (:func:`after_start`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omc.compiler.contract.node import om_path
from omc.compiler.contract.paths import ObjectPath
from omc.runtime import layout, safefs

if TYPE_CHECKING:
    from omc.runtime.adapters.etcd import Etcd
    from omc.runtime.adapters.systemd import Systemd
    from omc.runtime.cluster.records import Status
    from omc.runtime.cluster.settings import ClusterSettings
    from omc.runtime.log import ActionLog

MODULE = "omc"
SOCKET_UNIT = "omc-rsyncd.socket"
SERVICE_UNIT = "omc-rsyncd@.service"
RUNTIME_UNITS = Path("/run/systemd/system")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transport:
    """How sync drivers reach peers (``transport.json``): ``rsyncd`` (the port, module,
    user and password file of the peers' rsync daemons) or ``ssh``."""

    kind: str
    port: int = 0
    module: str = ""
    user: str = ""
    password_file: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "port": self.port, "module": self.module,
                           "user": self.user, "password_file": self.password_file})  # fmt: skip


def password(secret: str, node: str) -> str:
    """A node's rsync password, derived from the cluster's secret (pure)."""
    return hmac.new(secret.encode(), f"rsync:{node}".encode(), hashlib.sha256).hexdigest()


def rsyncd_conf(*, nodes: tuple[str, ...], hosts: list[str], secrets: Path, om: str,
                requests: Path) -> str:  # fmt: skip
    """The rsync daemon's configuration (pure). rsync tells the request (the destination)
    to its pre-xfer hook only: a one-line shell notes it by ``RSYNC_PID``; after the copy
    ``om node sync-received`` records it (rsync runs that once the sender is gone: no
    wait for it; a note that cannot be written never refuses a copy)."""
    if any(c in f"{om}{requests}" for c in "\n\r"):
        raise ValueError("a line break in a path written into rsyncd.conf")
    notes = shlex.quote(str(requests))
    note = f'printf %s "$RSYNC_REQUEST" > {notes}/"$RSYNC_PID" 2>/dev/null || true'
    return (
        "# Written by the omc node daemon (runtime/cluster/syncs.py); rewritten at its start.\n"
        "use chroot = no\nnumeric ids = yes\nmunge symlinks = no\nuid = root\ngid = root\n"
        "reverse lookup = no\nlist = no\n\n"
        f"[{MODULE}]\npath = /\nread only = no\nwrite only = yes\n"
        f"auth users = {', '.join(nodes)}\nsecrets file = {secrets}\nstrict modes = yes\n"
        f"hosts allow = {' '.join(hosts) or '127.0.0.1'}\nhosts deny = *\n"
        f"pre-xfer exec = {note}\npost-xfer exec = {shlex.quote(om)} node sync-received\n"
    )


def socket_unit(address: str, port: int) -> str:
    listen = f"{address}:{port}" if address else str(port)
    return (
        "# Written by the omc node daemon: the cluster's sync transport (docs/cluster.md).\n"
        "[Unit]\nDescription=omc cluster sync: rsync daemon socket\n\n"
        f"[Socket]\nListenStream={listen}\nAccept=yes\nFreeBind=yes\n"
    )


def service_unit(conf: Path) -> str:
    return (
        "[Unit]\nDescription=omc cluster sync: rsync daemon connection\n\n[Service]\n"
        f"ExecStart=/usr/bin/rsync --daemon --config={conf}\nStandardInput=socket\n"
        "StandardOutput=socket\nStandardError=journal\n"
    )


def _address(node: str) -> str:
    """A node's address (IPv4 first), or "" when its name does not resolve."""
    try:
        infos = socket.getaddrinfo(node, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return ""
    found = sorted({str(i[4][0]) for i in infos}, key=lambda a: (":" in a, a))
    return found[0] if found else ""


def cluster_secret(etcd: Etcd, key: str) -> str:
    """The cluster's sync secret: created by the first daemon, read by the others."""
    etcd.create(key, os.urandom(32).hex())
    value = etcd.get(key)
    if not value:
        raise OSError(f"etcd: {key} is empty")
    return value.decode()


def provision(settings: ClusterSettings, etcd: Etcd, sd: Systemd, log: ActionLog) -> None:
    """Set the node's rsync daemon up for its peers (see the module); never raises: a
    node whose transport failed still runs its services (sync says why it cannot)."""
    from omc.runtime.cluster.keys import Keys

    base = layout.sync_transport_dir()
    try:
        if settings.sync_transport == "ssh":
            safefs.write_file(base / "transport.json", Transport(kind="ssh").to_json(),
                              mode=0o600, dir_mode=layout.SPOOL_DIR_MODE)  # fmt: skip
            return
        secret = cluster_secret(etcd, Keys(settings.prefix).secret("sync"))
        _write(settings, secret, sd)
    except Exception as exc:  # etcd, D-Bus, files: report, keep the daemon running
        log.warning(f"cluster sync transport not provisioned: {exc}")


def _write(settings: ClusterSettings, secret: str, sd: Systemd) -> None:
    node = settings.node
    base = layout.sync_transport_dir()
    mode = layout.SPOOL_DIR_MODE
    nodes = settings.nodes or (node,)
    hosts = [a for a in (_address(n) for n in nodes) if a]
    secrets = "".join(f"{n}:{password(secret, n)}\n" for n in nodes)
    safefs.write_file(base / "secrets", secrets, mode=0o600, dir_mode=mode)
    safefs.write_file(base / "password", password(secret, node) + "\n", mode=0o600, dir_mode=mode)
    requests = layout.sync_requests_dir()
    safefs.ensure_dir(requests, mode)
    conf = rsyncd_conf(nodes=nodes, hosts=hosts, secrets=base / "secrets", om=om_path(),
                       requests=requests)  # fmt: skip
    safefs.write_file(base / "rsyncd.conf", conf, mode=0o600, dir_mode=mode)
    transport = Transport(kind="rsyncd", port=settings.sync_port, module=MODULE, user=node,
                          password_file=str(base / "password"))  # fmt: skip
    safefs.write_file(base / "transport.json", transport.to_json(), mode=0o600, dir_mode=mode)
    own = _address(node)
    units = {SOCKET_UNIT: socket_unit("" if own.startswith("127.") else own, settings.sync_port),
             SERVICE_UNIT: service_unit(base / "rsyncd.conf")}  # fmt: skip
    changed = False
    for name, text in units.items():
        try:
            changed |= safefs.read_text(RUNTIME_UNITS / name) != text
        except FileNotFoundError:
            changed = True
        safefs.write_file(RUNTIME_UNITS / name, text)
    if changed:
        sd.daemon_reload()
        sd.restart([SOCKET_UNIT])
    else:
        sd.start([SOCKET_UNIT])


def transport() -> Transport | None:
    """This node's provisioned transport (None: not in a cluster, or not provisioned)."""
    try:
        data = json.loads(safefs.read_text(layout.sync_transport_dir() / "transport.json"))
        return Transport(kind=str(data["kind"]), port=int(data["port"]),
                         module=str(data["module"]), user=str(data["user"]),
                         password_file=str(data["password_file"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sync_unit(path: ObjectPath) -> str:
    return f"omc-sync-{path.flat}.service"


def after_start(sd: Systemd, path: ObjectPath, status: Status, log: ActionLog) -> None:
    """A failover object just started here: push its sync resources to the others now
    (``om <path> sync update`` as a transient unit; a sync already running is left be)."""
    topology = str(status.config.get("topology") or "failover")
    if topology != "failover" or not any(r.startswith("sync#") for r in status.resources):
        return
    from omc.runtime.adapters.systemd import SystemdError
    from omc.runtime.log import new_sid

    argv = [om_path(), str(path), "sync", "update"]
    env = ["OSVC_ACTION_ORIGIN=daemon/monitor", "OMC_EXECUTOR=1", f"OSVC_REQUEST_ID={new_sid()}"]
    properties = {"Type": "oneshot", "CollectMode": "inactive-or-failed", "Environment": env,
                  "Description": f"omc daemon: sync {path} after its start"}  # fmt: skip
    try:
        sd.launch_transient(sync_unit(path), argv, properties)  # type: ignore[arg-type]
        log.info(f"{path}: started here: sync update to its peers")
    except SystemdError as exc:
        log.warning(f"{path}: sync after start not launched: {exc}")
