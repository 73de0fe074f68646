"""The lab's etcd security: a per-lab CA, a certificate per node, etcd auth per cluster.

Host side (:func:`prepare`, before boot): a CA (EC P-256, ``openssl``) and one
certificate per node in ``<lab dir>/tls/`` (0700). A node's certificate serves its
etcd member (server auth: its address and 127.0.0.1 as SANs; client auth too, since
the member's own JSON gateway dials the member with it) and identifies the node as
a client. It carries **no Common Name**: once auth is on, etcd 3.4's gateway answers
400 to any client certificate with one (it cannot pass the CN on as the user). With
auth (a cluster lab with TLS), a random ``root`` password goes to
``<lab dir>/tls/etcd-root.password`` (0600), and :class:`Secrets` holds the cluster
user's random password, which only the nodes' ``cluster.conf`` files (0600) keep.

Node side (``omc-lab-etcd-auth.service``, ordered before the node daemon, so that no
daemon starts before etcd knows its user): the first member runs :func:`provision`
(root, a role with read-write on ``/omc/<cluster>/`` only, the cluster's user with
that role, then auth on), checks that its ``cluster.conf`` credentials log in and
creates :data:`READY` in the lab directory, which the other nodes wait for. Run as
``python -I -m omc.runtime.lab.security <lab dir>``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omc.runtime.adapters.etcd import AuthError, Etcd, EtcdError

from .state import LabState, NodeInfo

AUTH_UNIT = "omc-lab-etcd-auth.service"
ROOT_PASSWORD = "etcd-root.password"  # in <lab dir>/tls/
READY = "etcd-auth.ready"  # in <lab dir>: the first member provisioned etcd auth
WAIT_TIMEOUT = 60.0
EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
LEAF = (
    "-addext", "basicConstraints=critical,CA:FALSE",
    "-addext", "keyUsage=critical,digitalSignature",
    "-addext", "extendedKeyUsage=serverAuth,clientAuth",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Secrets:
    """What the host generated for one boot: the cluster user's password (never on the
    host's disk, only in the nodes' cluster.conf)."""

    user: str = ""
    password: str = field(default="", repr=False)


def cluster_user(cluster: str) -> str:
    """The etcd user (and role) of a cluster: ``omc-<cluster>``."""
    return f"omc-{cluster}"


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` 0600 with ``text``; refuses to follow or reuse an existing file
    (the lab directory is fresh: anything there already is not ours)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    """``ca.pem`` and ``ca.key`` in ``directory``: a CA valid two days."""
    _openssl("req", "-x509", *EC, "-keyout", f"{directory}/ca.key", "-out",
             f"{directory}/ca.pem", "-days", "2", "-subj", f"/O={name}/CN={name} CA")  # fmt: skip


def make_cert(directory: Path, name: str, *, sans: str, org: str) -> None:
    """``<name>.pem`` and ``<name>.key`` signed by the CA of ``directory``: server and
    client auth, ``sans`` as subjectAltName, no Common Name (``/O=org/OU=name``)."""
    ca = ("-CA", f"{directory}/ca.pem", "-CAkey", f"{directory}/ca.key", "-days", "2")
    _openssl("req", "-x509", *EC, *ca, "-keyout", f"{directory}/{name}.key",
             "-out", f"{directory}/{name}.pem", "-subj", f"/O={org}/OU={name}",
             "-addext", f"subjectAltName={sans}", *LEAF)  # fmt: skip


def auth_enabled(state: LabState) -> bool:
    """etcd auth is on in a cluster lab over TLS (a password never crosses in clear)."""
    return state.cluster and state.tls


def prepare(state: LabState) -> Secrets:
    """The lab's TLS material and, with auth, the root password file and the cluster
    user's password."""
    tls = state.dir / "tls"
    tls.mkdir(mode=0o700)
    org = f"omc-lab-{state.name}"
    make_ca(tls, org)
    for node in state.nodes:
        make_cert(tls, node.name, sans=f"IP:{node.address},IP:127.0.0.1", org=org)
    if not auth_enabled(state):
        return Secrets()
    write_secret(tls / ROOT_PASSWORD, secrets.token_hex(16) + "\n")
    return Secrets(user=cluster_user(state.name), password=secrets.token_hex(16))


def node_files(state: LabState, node: NodeInfo) -> dict[str, tuple[Path, int]]:
    """Files a node gets in its /etc (relative path → host source, mode)."""
    tls = state.dir / "tls"
    return {
        "opensvc/etcd-ca.pem": (tls / "ca.pem", 0o644),
        "opensvc/etcd-client.pem": (tls / f"{node.name}.pem", 0o644),
        "opensvc/etcd-client.key": (tls / f"{node.name}.key", 0o600),
    }


def auth_unit(state: LabState, node: NodeInfo) -> str:
    """The oneshot ordered before the node's daemon: on the first member, provision etcd
    auth (Python, the adapter) and drop :data:`READY` in the lab directory; elsewhere, wait
    for that file (a shell loop: the nodes share the host's /, and three Python
    processes importing etcd3gw at once cost a 2-core host most of a second of boot)."""
    first = next(n for n in state.nodes if not n.drp)
    after = ""
    if node.name == first.name:
        # Not After= the member: the imports overlap its start; it polls until etcd answers.
        run = f"{sys.executable} -I -m omc.runtime.lab.security {state.dir}"
    else:  # the path is sh's $1 (systemd's $$), never parsed by the shell
        run = f"/bin/sh -c 'until test -e \"$$1\"; do sleep 0.05; done' wait {state.dir / READY}"
        # A member's own etcd comes up with the first member's (quorum): polling starts then.
        after = "" if node.drp else "After=omc-lab-etcd.service\n"
    return (
        f"[Unit]\nDescription=omc lab etcd auth (provisioned by {first.name})\n"
        f"{after}Before=omc-daemon.service\n\n"
        f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={run}\n"
        f"TimeoutStartSec={WAIT_TIMEOUT:.0f}\n"
    )


# -- inside a node ---------------------------------------------------------------------


def provision(etcd: Etcd, *, user: str, password: str, prefix: str, root_password: str) -> None:
    """etcd auth for one cluster on an etcd whose auth is still off: ``root`` (with the
    root role, which auth requires), the cluster's user (:func:`add_cluster_user`), then
    auth on. Each step may be run again: a write whose reply timed out may have landed
    (on a loaded host a fresh cluster's writes can outlast the client's timeout)."""
    _again(lambda: etcd.user_add("root", root_password))
    _again(lambda: etcd.role_add("root"))
    _again(lambda: etcd.user_grant_role("root", "root"))
    add_cluster_user(etcd, user=user, password=password, prefix=prefix)
    etcd.auth_enable()


def _again(call: Callable[[], object]) -> None:
    """``call()``, where "already exists" means an earlier attempt did it."""
    try:
        call()
    except EtcdError as exc:
        if "already" not in str(exc):
            raise


def add_cluster_user(etcd: Etcd, *, user: str, password: str, prefix: str) -> None:
    """A role named ``user`` with read-write on ``prefix`` and nothing else, and ``user``
    holding it (as root once auth is on: how a second cluster joins the same etcd)."""
    _again(lambda: etcd.role_add(user))
    _again(lambda: etcd.grant_prefix(user, prefix))
    _again(lambda: etcd.user_add(user, password))
    _again(lambda: etcd.user_grant_role(user, user))


def _retry(
    call: Callable[[], object], deadline: float, *, final: tuple[type[Exception], ...] = ()
) -> None:
    """``call()`` until it succeeds, every 50 ms while etcd errors (not ``final`` ones)
    until ``deadline``."""
    while True:
        try:
            call()
        except final:
            raise
        except EtcdError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return


def needs_provisioning(etcd: Etcd, prefix: str, deadline: float) -> bool:
    """Wait until the cluster serves a read without a user; False when it refuses it
    (auth is on already: a restarted unit)."""
    try:
        _retry(lambda: etcd.range(prefix), deadline, final=(AuthError,))
    except AuthError:
        return False
    return True


def wait_for_login(etcd: Etcd, deadline: float) -> None:
    """Log in as soon as etcd knows the user (auth enabled by the first member)."""
    _retry(etcd.login, deadline)


def main(argv: list[str]) -> int:
    """The first member's side: provision unless done (a restarted unit), check that the
    cluster user logs in, then tell the other nodes (:data:`READY`)."""
    from omc.runtime.cluster import connect, settings

    lab_dir = Path(argv[0])
    conf = settings.load()
    user, password = conf.user, conf.password
    if not user or not password:
        print("cluster.conf: no [etcd] user: nothing to do", file=sys.stderr)
        return 0
    deadline = time.monotonic() + WAIT_TIMEOUT
    try:
        anonymous = Etcd(conf.endpoints, tls=connect.tls(conf), timeout=conf.timeout)
        root = (lab_dir / "tls" / ROOT_PASSWORD).read_text().strip()
        while needs_provisioning(anonymous, conf.prefix, deadline):
            # AuthError: auth went on (a reply that timed out); needs_provisioning says so
            with contextlib.suppress(AuthError):
                _retry(lambda: provision(anonymous, user=user, password=password,
                                         prefix=conf.prefix, root_password=root),
                       deadline, final=(AuthError,))  # fmt: skip
                break
        wait_for_login(connect.etcd(conf), deadline)
        (lab_dir / READY).touch()
    except (EtcdError, OSError) as exc:
        print(f"etcd auth: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stderr.flush()
    # No interpreter teardown: after etcd3gw's imports it took 0.4-0.9 s on a loaded
    # 2-core host, on every node's boot path, for nothing (no file is open for writing).
    os._exit(status)
