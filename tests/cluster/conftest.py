"""Real etcds on loopback for the adapter and state tests (the lab tests use the lab's):
a plain one, and one with TLS client certificates and auth (:class:`SecureEtcd`)."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from omc.runtime.adapters.etcd import Etcd, Tls
from omc.runtime.lab import security

TOKEN_TTL = 2  # seconds: --auth-token-ttl of the secure etcd (etcd's default is 300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_etcd(data: Path, scheme: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A one-member etcd on 127.0.0.1 (listening when this returns) and its client URL."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: `make test` installs etcd-server")
    client, peer = _free_port(), _free_port()
    url = f"{scheme}://127.0.0.1:{client}"
    proc = subprocess.Popen(
        ["etcd", "--name", "t", "--data-dir", str(data / "d"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"t=http://127.0.0.1:{peer}",
         "--heartbeat-interval", "50", "--election-timeout", "500",
         "--log-outputs", str(Path(data / "log")), "--logger", "zap", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", client)) == 0:
                break
        time.sleep(0.05)
    return proc, url


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client URL of a one-member etcd on 127.0.0.1, for this test session."""
    proc, url = _start_etcd(tmp_path_factory.mktemp("etcd"), "http", [])
    try:
        yield url
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def client(etcd_url: str) -> Etcd:
    """A client of the session's plain etcd."""
    return Etcd([etcd_url], timeout=3)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureEtcd:
    """An etcd over TLS requiring client certificates, with auth on: users ``omc-a`` and
    ``omc-b`` own the prefixes ``/omc/a/`` and ``/omc/b/``. ``tls`` holds ``ca.pem``,
    ``client.pem``/``.key`` (no CN, like the lab's), ``named.pem``/``.key`` (a CN), and
    ``other/`` a foreign CA with its own ``client.pem``/``.key``."""

    url: str
    tls: Path
    passwords: dict[str, str] = field(repr=False)

    @property
    def material(self) -> Tls:
        """The CA and the lab-like client certificate (no CN)."""
        return Tls(ca_cert=f"{self.tls}/ca.pem", cert=f"{self.tls}/client.pem",
                   key=f"{self.tls}/client.key")  # fmt: skip

    def client(self, user: str | None = None, *, tls: Tls | None = None) -> Etcd:
        """A client with the lab-like certificate (or ``tls``), logged in as ``user``."""
        etcd = Etcd([self.url], tls=tls or self.material, timeout=5)
        if user:
            etcd.authenticate(user, self.passwords[user])
        return etcd


def _named_cert(tls: Path) -> None:
    """A client certificate of the right CA, but with a Common Name."""
    subprocess.run(
        ["openssl", "req", "-x509", *security.EC, "-CA", f"{tls}/ca.pem", "-CAkey",
         f"{tls}/ca.key", "-days", "1", "-keyout", f"{tls}/named.key", "-out",
         f"{tls}/named.pem", "-subj", "/CN=omc-a", *security.LEAF],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureEtcd]:
    """An etcd with TLS, client certificate auth and etcd auth, provisioned as the lab's
    (:mod:`omc.runtime.lab.security`), tokens expiring after ``TOKEN_TTL`` s idle."""
    base = tmp_path_factory.mktemp("secure-etcd")
    tls, other = base / "tls", base / "tls" / "other"
    other.mkdir(parents=True)
    security.make_ca(tls, "omc-test")
    security.make_cert(tls, "server", sans="IP:127.0.0.1", org="omc-test")
    security.make_cert(tls, "client", sans="DNS:client", org="omc-test")
    _named_cert(tls)
    security.make_ca(other, "elsewhere")
    security.make_cert(other, "client", sans="DNS:client", org="elsewhere")
    flags = [f"--cert-file={tls}/server.pem", f"--key-file={tls}/server.key",
             f"--trusted-ca-file={tls}/ca.pem", "--client-cert-auth", "--bcrypt-cost=4",
             f"--auth-token-ttl={TOKEN_TTL}"]  # fmt: skip
    proc, url = _start_etcd(base, "https", flags)
    try:
        passwords = {u: secrets.token_hex(16) for u in ("root", "omc-a", "omc-b")}
        secure = SecureEtcd(url=url, tls=tls, passwords=passwords)
        anonymous = secure.client()
        security.provision(anonymous, user="omc-a", password=passwords["omc-a"],
                           prefix="/omc/a/", root_password=passwords["root"])  # fmt: skip
        security.add_cluster_user(secure.client("root"), user="omc-b",
                                  password=passwords["omc-b"], prefix="/omc/b/")  # fmt: skip
        yield secure
    finally:
        proc.kill()
        proc.wait()
