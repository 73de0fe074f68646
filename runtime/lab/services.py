"""What each node runs and finds in its /etc: boot target, etcd, rsyncd, sshd, TLS.

Everything is written by the host into the lab directory before boot (pure text
builders plus one ``prepare`` step); the node's init copies ``units/`` into its
/run/systemd/system. All values come from the lab's own naming (node names,
addresses, paths under the lab directory), never from user configuration.

Every node runs the node executor (``omc-executor.service``, :mod:`omc.runtime.executor.server`),
as an installed node does. Cluster services start at boot, pulled in by
``omc-lab.target``, so that all members of the etcd cluster come up together
(``Type=notify``: a node is ``running`` only once its member has joined the cluster).

Where ``om`` finds etcd inside a node: ``/etc/opensvc/etcd.endpoints`` lists the
client URLs of every member, its own first. With TLS, ``/etc/opensvc/etcd-ca.pem``,
``etcd-client.pem`` and ``etcd-client.key`` (0600) sit beside it: the node's own
certificate (:mod:`.security`). A cluster lab is TLS by default, with etcd auth: its
``cluster.conf`` (0600) holds the cluster user's password.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from omc.compiler.contract.node import om_path
from omc.runtime.cluster import daemon, fence
from omc.runtime.cluster.settings import DAEMON_KEYS, SettingsError, timing_from
from omc.runtime.executor import server as executor

from . import security
from .nodeinit import OVERLAID
from .security import Secrets
from .state import LabError, LabState, NodeInfo, fence_socket, node_dir

TARGET = "omc-lab.target"
ETCD_UNIT = "omc-lab-etcd.service"
RSYNCD_UNIT = "omc-lab-rsyncd.socket"
RSYNCD_SERVICE = "omc-lab-rsyncd@.service"
SSHD_UNIT = "omc-lab-sshd.service"
DAEMON_UNIT = "omc-daemon.service"
# Conservative enough for a loaded 2-core test machine (a stop there can take seconds);
# bench/ha.py writes faster ones.
LAB_TIMING = {"lease_ttl": "8s", "keepalive": "1s", "stop_budget": "4s",
              "margin": "500ms", "grace": "500ms", "watchdog": "3s",
              "split_action": "reboot"}  # fmt: skip
# The shortest the timing rule allows with a 1.5 s stop budget (bench/ha.py, bench/chaos.py,
# the lease tests): lease_ttl 4 s, keepalive <= ttl/3, detection (ttl - stop_budget -
# margin) 2 s >= 2 keep-alives, watchdog <= detection (docs/cluster.md, "The timing rule").
FAST_TIMING = {"lease_ttl": "4s", "keepalive": "1s", "stop_budget": "1500ms",
               "margin": "500ms", "grace": "500ms", "watchdog": "2s"}  # fmt: skip
RSYNC_MODULE = "root"


def masks() -> list[str]:
    text = resources.files(__package__).joinpath("masked-units.txt").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def target_unit(state: LabState) -> str:
    wants = ["dbus.socket", "dbus.service", "systemd-journald.socket", RSYNCD_UNIT, executor.UNIT]
    if state.etcd:
        wants.append(ETCD_UNIT)
    if security.auth_enabled(state):
        wants.append(security.AUTH_UNIT)
    if state.cluster:
        wants.append(DAEMON_UNIT)
    if state.ssh:
        wants.append(SSHD_UNIT)
    return (
        "[Unit]\nDescription=omc lab node\nRequires=sysinit.target\n"
        f"Wants={' '.join(wants)}\nAfter=sysinit.target dbus.service\nAllowIsolate=yes\n"
    )


def _scheme(state: LabState) -> str:
    return "https" if state.tls else "http"


def client_url(state: LabState, node: NodeInfo) -> str:
    return f"{_scheme(state)}://{node.address}:2379"


def endpoints(state: LabState, first: NodeInfo | None = None) -> list[str]:
    """Client URLs of the members (non-DRP nodes), ``first``'s own URL first."""
    members = [n for n in state.nodes if not n.drp]
    if first is not None and first in members:
        members.remove(first)
        members.insert(0, first)
    return [client_url(state, n) for n in members]


def etcd_unit(state: LabState, node: NodeInfo) -> str:
    """One etcd member; DRP nodes are clients only (they get no member)."""
    s = _scheme(state)
    peers = ",".join(f"{n.name}=http://{n.address}:2380" for n in state.nodes if not n.drp)
    args = [
        "/usr/bin/etcd",
        f"--name={node.name}",
        "--data-dir=/var/lib/omc-lab-etcd",
        f"--listen-client-urls={s}://{node.address}:2379,{s}://127.0.0.1:2379",
        f"--advertise-client-urls={s}://{node.address}:2379",
        f"--listen-peer-urls=http://{node.address}:2380",
        f"--initial-advertise-peer-urls=http://{node.address}:2380",
        f"--initial-cluster={peers}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token=omc-lab-{state.name}-{state.created:.0f}",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        # A member back from a partition, or booted again, must not depose the leader:
        # without pre-vote its term went up while it campaigned alone, and the first
        # leader message it answers makes the leader step down. The election that
        # follows cut every node's lease refreshes; on a loaded host for longer than
        # the detection time, so healthy nodes stopped their failover instances, and
        # those that missed the stop budget rebooted: quorum lost (bench/chaos.py).
        # etcd 3.5 turns it on by default.
        "--pre-vote",
        "--logger=zap",
        "--log-level=warn",
    ]
    if state.tls:
        args += _tls_args(state, node)
    # SIGKILL on stop: a disposable member need not hand its leadership over (which
    # takes seconds when the peers are going down too, lab-notes §1).
    return (
        "[Unit]\nDescription=omc lab etcd member\nAfter=network.target\n\n"
        "[Service]\nType=notify\nExecStart=" + " ".join(args) + "\n"
        "KillSignal=SIGKILL\nRestart=no\nTimeoutStartSec=60\n"
    )


def _tls_args(state: LabState, node: NodeInfo) -> list[str]:
    """The client port over TLS, requiring a client certificate of the lab's CA. Peer
    traffic stays plain http: the lab's bridge links only its own nodes, which all hold
    the cluster's credentials, and peer TLS cost ~80 ms of CPU per member at boot
    (measured: 270 ms against 190 ms by `running`)."""
    cert, key, ca = (f"{state.dir}/tls/{node.name}.pem", f"{state.dir}/tls/{node.name}.key",
                     f"{state.dir}/tls/ca.pem")  # fmt: skip
    # bcrypt cost 4 (etcd's default: 10): every password here is 128 random bits, out
    # of reach of any guessing whatever the cost. Measured on this 2-core host (load 43):
    # provisioning 3.2 s and a login 319 ms at cost 10, 63 ms and 6 ms at cost 4; every
    # `om` command logs in once.
    return [
        f"--cert-file={cert}", f"--key-file={key}", f"--trusted-ca-file={ca}",
        "--client-cert-auth", "--bcrypt-cost=4",
    ]  # fmt: skip


def rsyncd_conf(state: LabState) -> str:
    return (
        "pid file = /run/omc-lab-rsyncd.pid\nuse chroot = no\nuid = root\ngid = root\n"
        f"hosts allow = {state.subnet} 127.0.0.1\n\n"
        f"[{RSYNC_MODULE}]\npath = /\nread only = false\n"
    )


def rsyncd_socket() -> str:
    """rsync's daemon, socket-activated inetd-style: nothing runs until a client connects,
    and no daemon has to be stopped at poweroff (a long-lived one takes 0.6 s)."""
    return (
        "[Unit]\nDescription=omc lab rsync daemon socket\n\n"
        "[Socket]\nListenStream=873\nAccept=yes\n"
    )


def rsyncd_service(state: LabState) -> str:
    conf = f"{state.dir}/rsyncd.conf"
    return (
        "[Unit]\nDescription=omc lab rsync daemon connection\n\n[Service]\n"
        f"ExecStart=/usr/bin/rsync --daemon --config={conf}\nStandardInput=socket\n"
        "StandardOutput=socket\nStandardError=journal\n"
    )


def sshd_unit(state: LabState) -> str:
    return (
        "[Unit]\nDescription=omc lab sshd\n\n[Service]\nType=notify\n"
        "RuntimeDirectory=sshd\nRuntimeDirectoryMode=0755\n"
        f"ExecStart=/usr/sbin/sshd -D -f {state.dir}/ssh/sshd_config\n"
    )


def sshd_config(state: LabState) -> str:
    ssh = f"{state.dir}/ssh"
    return (
        f"Port 22\nHostKey {ssh}/host_ed25519\nAuthorizedKeysFile {ssh}/authorized_keys\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
        "StrictModes no\nPidFile none\n"
    )


def _keygen(path: Path) -> None:
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omc-lab", "-f", str(path)]
    subprocess.run(argv, check=True, capture_output=True)


def prepare_ssh(state: LabState) -> None:
    """Per-lab host key and client key; the client key is authorized on every node."""
    ssh = state.dir / "ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    _keygen(ssh / "host_ed25519")
    _keygen(ssh / "id_ed25519")
    shutil.copyfile(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    (ssh / "sshd_config").write_text(sshd_config(state))


def etc_files(state: LabState, node: NodeInfo, secrets: Secrets | None = None) -> dict[str, str]:
    """Files pre-seeded in the node's /etc overlay (relative to /etc)."""
    hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
    lab_hosts = "".join(f"{n.address} {n.name}\n" for n in state.nodes)
    files = {
        "hostname": f"{node.name}\n",
        "machine-id": uuid.uuid4().hex + "\n",
        "hosts": f"127.0.0.1 localhost\n{lab_hosts}" + _without_localhost(hosts),
    }
    if state.etcd:
        files["opensvc/etcd.endpoints"] = "\n".join(endpoints(state, node)) + "\n"
    if state.cluster:
        files["opensvc/cluster.conf"] = cluster_conf(state, node, secrets or Secrets())
    return files


SECRET_FILES = ("opensvc/cluster.conf",)  # written 0600: it may hold the etcd password


def cluster_conf(state: LabState, node: NodeInfo, secrets: Secrets) -> str:
    """The node's ``/etc/opensvc/cluster.conf`` (docs/cluster.md): the lab's nodes, its
    etcd members (this node's own first), TLS material and etcd user when the lab has
    them."""
    lines = [
        "[cluster]",
        f"name = {state.name}",
        "nodes = " + " ".join(n.name for n in state.nodes),
        "",
        "[etcd]",
        "endpoints = " + " ".join(endpoints(state, node)),
    ]
    if state.tls:
        lines += ["ca = /etc/opensvc/etcd-ca.pem", "cert = /etc/opensvc/etcd-client.pem",
                  "key = /etc/opensvc/etcd-client.key"]  # fmt: skip
    else:  # --no-tls: plain http on the lab's own bridge, which nothing outside reaches
        lines.append("insecure = true")
    if secrets.user:
        lines += [f"user = {secrets.user}", f"password = {secrets.password}"]
    # The fence agent of the lab (runtime/lab/fenceagent.py) kills a node: the lab's BMC.
    lines += ["", "[stonith]", f"cmd = {fence_command(state)}"]
    # Short timings (failover in seconds), within the timing rule (docs/cluster.md);
    # `reboot` ends only the node (a crash would be the host's kernel).
    lines += ["", "[daemon]", *(f"{k} = {v}" for k, v in daemon_settings(state).items()), ""]
    return "\n".join(lines)


def daemon_settings(state: LabState) -> dict[str, str]:
    """The ``[daemon]`` section: :data:`LAB_TIMING` with the lab's own overrides."""
    return {**LAB_TIMING, **state.timing}


def check_timing(overrides: dict[str, str]) -> None:
    """Refuse ``[daemon]`` overrides the daemon would refuse (unknown key, timing rule)
    before any node boots: :class:`LabError` with the settings' message."""
    for key in overrides:
        if key not in DAEMON_KEYS:
            raise LabError(f"unknown daemon setting {key!r} (one of {', '.join(DAEMON_KEYS)})")
    try:
        timing_from({**LAB_TIMING, **overrides})
    except SettingsError as exc:
        raise LabError(str(exc)) from None


def fence_command(state: LabState) -> str:
    """``[stonith] cmd``: ``om lab fence`` through the lab's agent socket (docs/lab.md)."""
    argv = [om_path(), "lab", "fence", "--socket", str(fence_socket(state.name))]
    return shlex.join(argv) + " {node}"


def _without_localhost(hosts: str) -> str:
    return "".join(ln + "\n" for ln in hosts.splitlines() if "localhost" not in ln and ln.strip())


def node_units(state: LabState, node: NodeInfo) -> dict[str, str]:
    units = {
        TARGET: target_unit(state),
        RSYNCD_UNIT: rsyncd_socket(),
        RSYNCD_SERVICE: rsyncd_service(state),
        executor.UNIT: executor.unit_text(om_path()),
    }
    if state.etcd and not node.drp:
        units[ETCD_UNIT] = etcd_unit(state, node)
    if security.auth_enabled(state):
        units[security.AUTH_UNIT] = security.auth_unit(state, node)
    if state.ssh:
        units[SSHD_UNIT] = sshd_unit(state)
    if state.cluster:
        units[DAEMON_UNIT] = daemon.unit_text(om_path(), watchdog=3.0)
        units[fence.UNIT] = fence.unit_text(om_path())
    return units


def prepare(state: LabState) -> Secrets:
    """Lab-wide files (rsyncd.conf, keys, certificates); the secrets the nodes get."""
    (state.dir / "rsyncd.conf").write_text(rsyncd_conf(state))
    if state.ssh:
        prepare_ssh(state)
    return security.prepare(state) if state.tls else Secrets()


def _create(path: Path, data: bytes, mode: int) -> None:
    """A new file (never an existing one, never through a symlink) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def prepare_node(state: LabState, node: NodeInfo, secrets: Secrets | None = None) -> Path:
    """The node's directory: overlay layers with /etc seeded, units, console file."""
    base = node_dir(state.name, node.name)
    for sub in (*(f"ov/{top}/{layer}" for top in OVERLAID for layer in ("upper", "work")), "units"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    etc = base / "ov/etc/upper"
    for rel, text in etc_files(state, node, secrets).items():
        _create(etc / rel, text.encode(), 0o600 if rel in SECRET_FILES else 0o644)
    if state.tls:
        for rel, (source, mode) in security.node_files(state, node).items():
            _create(etc / rel, source.read_bytes(), mode)
    for name, text in node_units(state, node).items():
        (base / "units" / name).write_text(text)
    (base / "console.log").touch()
    return base
