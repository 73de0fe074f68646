"""etcd security against a real etcd on loopback (TLS, client certificates, auth): who
gets in, who is refused and why, and a token expiry survived."""

from __future__ import annotations

import base64
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from omc.runtime.adapters import etcd as e
from omc.runtime.cluster import connect, settings
from omc.runtime.lab import security
from requests import Response

from .conftest import TOKEN_TTL, SecureEtcd


@pytest.fixture(autouse=True)
def _own_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept tokens go to this test's own run directory, never the host's /run/opensvc."""
    monkeypatch.setenv("OMC_RUN", str(tmp_path / "run"))


@pytest.fixture
def key() -> Iterator[str]:
    """A fresh key name, used under each cluster's prefix."""
    yield uuid.uuid4().hex[:8]


def test_a_cluster_user_works_in_its_prefix(secure_etcd: SecureEtcd, key: str) -> None:
    """omc-a reads, writes, runs transactions and leases under /omc/a/."""
    etcd = secure_etcd.client("omc-a")
    lease, _ = etcd.lease_grant(5)
    result = etcd.txn([e.when_version(f"/omc/a/{key}", "=", 0)],
                      [e.put(f"/omc/a/{key}", "v", lease=lease)])  # fmt: skip
    assert result.succeeded
    assert [kv.value for kv in etcd.range("/omc/a/")[1] if kv.key.endswith(key)] == [b"v"]
    assert etcd.lease_keepalive(lease) > 0


def test_another_cluster_prefix_is_permission_denied(secure_etcd: SecureEtcd, key: str) -> None:
    """omc-b, with a valid certificate, may neither read nor write /omc/a/: the error
    names the user and the key."""
    etcd = secure_etcd.client("omc-b")
    with pytest.raises(e.PermissionDeniedError, match=rf"user 'omc-b' may not write /omc/a/{key}"):
        etcd.put(f"/omc/a/{key}", "x")
    with pytest.raises(e.PermissionDeniedError, match=r"may not read /omc/a/…"):
        etcd.range("/omc/a/")
    with pytest.raises(e.PermissionDeniedError, match="run a transaction on /omc/a/"):
        etcd.txn([], [e.put(f"/omc/a/{key}", "x")])
    with pytest.raises(e.PermissionDeniedError):
        etcd.range("/")  # nor anything outside its prefix


def test_a_client_without_a_certificate_is_refused(secure_etcd: SecureEtcd) -> None:
    """The CA alone is not enough: the member wants a client certificate."""
    etcd = secure_etcd.client(tls=e.Tls(ca_cert=f"{secure_etcd.tls}/ca.pem"))
    with pytest.raises(e.TlsError, match="refused our client certificate"):
        etcd.range("/omc/a/")


def test_a_certificate_of_another_ca_is_refused(secure_etcd: SecureEtcd) -> None:
    """A client certificate not signed by the cluster's CA fails the handshake."""
    other = secure_etcd.tls / "other"
    tls = e.Tls(ca_cert=f"{secure_etcd.tls}/ca.pem", cert=f"{other}/client.pem",
                key=f"{other}/client.key")  # fmt: skip
    with pytest.raises(e.TlsError, match="refused our client certificate"):
        secure_etcd.client(tls=tls).range("/omc/a/")


def test_the_environment_does_not_change_the_ca_or_route(
    secure_etcd: SecureEtcd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE (which requests lets override a session's CA) and a proxy in
    the environment are ignored: the cluster's CA and a direct route, always."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", f"{secure_etcd.tls}/other/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    assert secure_etcd.client("omc-a").range("/omc/a/")[0] > 0


def test_a_member_of_another_ca_is_not_trusted(secure_etcd: SecureEtcd) -> None:
    """The client checks the member too: with another CA as [etcd] ca, no handshake."""
    tls = e.Tls(ca_cert=f"{secure_etcd.tls}/other/ca.pem", cert=f"{secure_etcd.tls}/client.pem",
                key=f"{secure_etcd.tls}/client.key")  # fmt: skip
    with pytest.raises(e.TlsError, match="member's certificate was not accepted"):
        secure_etcd.client(tls=tls).range("/omc/a/")


def test_a_member_is_checked_against_its_address(secure_etcd: SecureEtcd) -> None:
    """The member's certificate names 127.0.0.1 only: reached as `localhost`, refused."""
    url = secure_etcd.url.replace("127.0.0.1", "localhost")
    etcd = e.Etcd([url], tls=secure_etcd.material, timeout=5)
    with pytest.raises(e.TlsError, match=r"certificate was not accepted .*mismatch"):
        etcd.range("/omc/a/")


@pytest.mark.parametrize("login", [False, True])
def test_a_certificate_common_name_is_never_the_user(secure_etcd: SecureEtcd, login: bool) -> None:
    """Through the gateway a client certificate's CN does not make the user: a certificate
    with CN=omc-a is refused (HTTP 400) without a login and even with omc-a's own login,
    which is why the lab's certificates carry no CN; the error says so."""
    tls = e.Tls(ca_cert=f"{secure_etcd.tls}/ca.pem", cert=f"{secure_etcd.tls}/named.pem",
                key=f"{secure_etcd.tls}/named.key")  # fmt: skip
    etcd = secure_etcd.client(tls=tls)
    if login:
        etcd.authenticate("omc-a", secure_etcd.passwords["omc-a"])
    with pytest.raises(e.AuthError, match="has a Common Name, which etcd's JSON gateway refuses"):
        etcd.range("/omc/a/")


@pytest.mark.parametrize("user", ["omc-a", "nobody"])
def test_a_wrong_password_or_unknown_user_is_refused(secure_etcd: SecureEtcd, user: str) -> None:
    """A failed login names the user and the cause, never the password."""
    etcd = secure_etcd.client()
    etcd.authenticate(user, "not-the-password")
    with pytest.raises(e.AuthError, match=f"refused user '{user}': unknown user or wrong") as err:
        etcd.range("/omc/a/")
    assert "not-the-password" not in str(err.value) + repr(etcd)


def test_no_login_is_refused(secure_etcd: SecureEtcd) -> None:
    """With auth on, a client with a good certificate but no user is told to log in."""
    with pytest.raises(e.AuthError, match="did not log in"):
        secure_etcd.client().range("/omc/a/")


def _raw(secure: SecureEtcd, path: str, body: dict[str, str], token: str = "") -> Response:
    """A request straight to the gateway (no adapter), with the lab-like certificate."""
    tls = secure.tls
    return requests.post(
        f"{secure.url}/v3/{path}",
        json=body,
        timeout=5,
        headers={"Authorization": token} if token else {},
        verify=f"{tls}/ca.pem",
        cert=(f"{tls}/client.pem", f"{tls}/client.key"),
    )


def _raw_token(secure: SecureEtcd, user: str) -> str:
    """A token got straight from the gateway, to watch it expire."""
    reply = _raw(secure, "auth/authenticate", {"name": user, "password": secure.passwords[user]})
    return str(reply.json()["token"])


def _accepted(secure: SecureEtcd, token: str) -> bool:
    return _raw(secure, "kv/range", {"key": "L29tYy9hLw=="}, token).status_code == 200


def test_an_expired_token_is_renewed(secure_etcd: SecureEtcd, key: str) -> None:
    """Idle past the token TTL, the client's token is dead (a raw token taken at the same
    time is refused), yet its next requests succeed, from several threads at once."""
    etcd = secure_etcd.client("omc-a")
    etcd.put(f"/omc/a/{key}", "before")
    raw = _raw_token(secure_etcd, "omc-a")
    assert _accepted(secure_etcd, raw)
    time.sleep(TOKEN_TTL + 1.5)
    assert not _accepted(secure_etcd, raw), "the token should have expired"
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda _: etcd.get(f"/omc/a/{key}"), range(8)))
    assert values == [b"before"] * 8


def test_a_watch_opened_after_expiry_renews_the_token(secure_etcd: SecureEtcd, key: str) -> None:
    """A watch started with an expired token (etcd cancels it) logs in again and delivers."""
    etcd, prefix = secure_etcd.client("omc-a"), f"/omc/a/{key}/"
    revision, _ = etcd.range(prefix)
    time.sleep(TOKEN_TTL + 1.5)
    got: list[str] = []
    stop = threading.Event()

    def deliver(events: list[e.Event], _: int) -> None:
        got.extend(ev.kv.key for ev in events)
        stop.set()

    watcher = threading.Thread(target=etcd.watch, args=(prefix, revision + 1, deliver, stop))
    watcher.start()
    secure_etcd.client("omc-a").put(f"{prefix}k", "x")
    watcher.join(timeout=15)
    stop.set()
    assert got == [f"{prefix}k"]


def test_a_watch_of_another_prefix_is_refused_not_silent(secure_etcd: SecureEtcd) -> None:
    """etcd cancels a watch the user may not read; the stream is not taken for an idle
    one (which would wait for `idle` seconds): each attempt fails at once."""
    etcd = secure_etcd.client("omc-b")
    started = time.monotonic()
    with pytest.raises(e.PermissionDeniedError, match="may not watch /omc/a/"):
        etcd._try(
            lambda c: e._stream(c, prefix="/omc/a/", start=1, deliver=lambda ev, r: None,
                                stop=threading.Event(), idle=30),
            what="watch /omc/a/",
        )  # fmt: skip
    assert time.monotonic() - started < 10


def _cluster_conf(tmp_path: Path, secure: SecureEtcd, *, mode: int = 0o600) -> Path:
    tls = secure.tls
    conf = tmp_path / "cluster.conf"
    conf.write_text(
        f"[cluster]\nname = a\nnodes = n1\n\n[etcd]\nendpoints = {secure.url}\n"
        f"ca = {tls}/ca.pem\ncert = {tls}/client.pem\nkey = {tls}/client.key\n"
        f"user = omc-a\npassword = {secure.passwords['omc-a']}\n"
    )
    conf.chmod(mode)
    return tmp_path


def test_cluster_conf_reaches_the_secure_etcd(secure_etcd: SecureEtcd, tmp_path: Path) -> None:
    """What the daemon and the CLI do: load cluster.conf, connect, work in the prefix."""
    conf = settings.load(_cluster_conf(tmp_path, secure_etcd))
    assert conf.prefix == "/omc/a/"
    etcd = connect.etcd(conf)
    etcd.put("/omc/a/from-conf", "ok")
    assert etcd.get("/omc/a/from-conf") == b"ok"
    assert secure_etcd.passwords["omc-a"] not in repr(conf) + repr(etcd)


def test_a_kept_token_spares_the_next_client_its_login(
    secure_etcd: SecureEtcd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login's token is kept 0600 for the next client, which works without logging in;
    a kept token etcd no longer knows (here: garbage) is replaced by a new login."""
    conf = settings.load(_cluster_conf(tmp_path, secure_etcd))
    connect.etcd(conf).put("/omc/a/kept", "1")
    kept = connect.token_file()
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept.parent.stat().st_mode & 0o777 == 0o700
    owner, token = kept.read_text().splitlines()
    assert token and secure_etcd.passwords["omc-a"] not in owner
    logins: list[str] = []
    monkeypatch.setattr(e.Etcd, "_login", lambda self: logins.append("login"))
    assert connect.etcd(conf).get("/omc/a/kept") == b"1"
    assert logins == [], "the kept token should have been used"
    monkeypatch.undo()
    monkeypatch.setenv("OMC_RUN", str(tmp_path / "run"))
    kept.write_text(f"{owner}\nnot-a-token\n")
    assert connect.etcd(conf).get("/omc/a/kept") == b"1"
    assert kept.read_text().splitlines()[1] not in ("not-a-token", token)
    # A token of an etcd re-created since: its raft index is ahead of this one's.
    kept.write_text(f"{owner}\n{token.split('.')[0]}.999999\n")
    assert connect.etcd(conf).get("/omc/a/kept") == b"1"


def test_a_kept_token_is_not_used_with_a_wrong_password(
    secure_etcd: SecureEtcd, tmp_path: Path
) -> None:
    """A token kept by a client with the right password does not let a copy of
    cluster.conf with a wrong one in: that client logs in, and is refused."""
    good = settings.load(_cluster_conf(tmp_path, secure_etcd))
    connect.etcd(good).put("/omc/a/kept", "1")
    bad = dataclasses.replace(good, password="wrong-one")
    with pytest.raises(e.AuthError, match="wrong password"):
        connect.etcd(bad).get("/omc/a/kept")


def test_a_kept_token_of_a_foreign_owner_is_not_used(
    secure_etcd: SecureEtcd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token file another user owns is not read: the client logs in, and its token,
    root's and 0600, replaces the file (renamed over it in root's 0700 directory)."""
    conf = settings.load(_cluster_conf(tmp_path, secure_etcd))
    kept = connect.token_file()
    kept.parent.mkdir(parents=True, mode=0o700)
    kept.write_text("omc-a\nplanted\n")
    os.chown(kept, 65534, 65534)
    used: list[str] = []
    real = e.Etcd.authenticate

    def spy(self: e.Etcd, user: str, password: str, **kw: Any) -> None:
        used.append(kw.get("token", ""))
        real(self, user, password, **kw)

    monkeypatch.setattr(e.Etcd, "authenticate", spy)
    assert connect.etcd(conf).get("/omc/a/nothing-here") is None
    assert used == [""], "a foreign token file must not be read"
    assert kept.stat().st_uid == 0 and kept.stat().st_mode & 0o777 == 0o600
    assert kept.read_text().splitlines()[1] != "planted"


def test_a_readable_cluster_conf_with_a_password_is_refused(
    secure_etcd: SecureEtcd, tmp_path: Path
) -> None:
    """cluster.conf holding the password must be 0600: 0644 is refused, naming the fix."""
    etc = _cluster_conf(tmp_path, secure_etcd, mode=0o644)
    with pytest.raises(
        settings.SettingsError, match=r"readable by others \(mode 0644\).*chmod 600"
    ):
        settings.load(etc)


def _fresh_cluster_user(secure: SecureEtcd, key: str) -> tuple[e.Etcd, str, str]:
    """A new cluster user (as root), its prefix and password, and root's client."""
    root, user, password = secure.client("root"), f"omc-r{key}", f"pw-{key}"
    security.add_cluster_user(root, user=user, password=password, prefix=f"/omc/r{key}/")
    return root, user, password


def test_a_password_change_cuts_off_every_logged_in_client(
    secure_etcd: SecureEtcd, key: str
) -> None:
    """Changing the password in place invalidates the user's tokens: a daemon still on
    the old password fails at its next request, naming the user (docs: rotate through a
    second user instead)."""
    root, user, password = _fresh_cluster_user(secure_etcd, key)
    daemon = secure_etcd.client()
    daemon.authenticate(user, password)
    daemon.put(f"/omc/r{key}/a", "1")
    root.user_password(user, "rotated")
    with pytest.raises(e.AuthError, match=f"refused user '{user}': unknown user or wrong"):
        daemon.get(f"/omc/r{key}/a")


def test_rotation_through_a_second_user_keeps_clients_working(
    secure_etcd: SecureEtcd, key: str
) -> None:
    """The documented rotation: a second user with the same role works at once, nodes
    move to it one by one, then deleting the old user cuts off only what still used it."""
    root, user, password = _fresh_cluster_user(secure_etcd, key)
    old, moved = secure_etcd.client(), secure_etcd.client()
    old.authenticate(user, password)
    old.put(f"/omc/r{key}/a", "1")
    root.user_add(f"{user}-2", "next-password")
    root.user_grant_role(f"{user}-2", user)
    moved.authenticate(f"{user}-2", "next-password")
    assert moved.get(f"/omc/r{key}/a") == b"1"
    assert old.get(f"/omc/r{key}/a") == b"1"  # both work during the move
    root.user_delete(user)
    assert moved.get(f"/omc/r{key}/a") == b"1"
    with pytest.raises(e.AuthError):
        old.get(f"/omc/r{key}/a")


def test_what_etcd_lets_any_user_do_beyond_its_prefix(secure_etcd: SecureEtcd, key: str) -> None:
    """etcd 3.4 grants every user two things outside its prefix (docs/cluster.md says so):
    the names of keys bound to any lease (not their values), and compaction. Snapshots,
    members and users stay root's."""
    a, b = secure_etcd.client("omc-a"), secure_etcd.client("omc-b")
    lease, _ = a.lease_grant(30)
    a.txn([], [e.put(f"/omc/a/{key}", "secret", lease=lease)])
    leased = b.call("/kv/lease/timetolive", {"ID": str(lease), "keys": True})
    assert [base64.b64decode(k).decode() for k in leased["keys"]] == [f"/omc/a/{key}"]
    revision, _ = a.range("/omc/a/")
    b.call("/kv/compaction", {"revision": str(revision)})
    for path, body in [("/maintenance/snapshot", {}), ("/auth/user/list", {}),
                       ("/cluster/member/add", {"peerURLs": ["http://127.0.0.1:1"]})]:  # fmt: skip
        with pytest.raises(e.PermissionDeniedError):
            b.call(path, body)
