"""The pure parts of etcd security: how a refusal is named, and what cluster.conf may
not say (plain http off loopback, half credentials, a readable password)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from omc.runtime.adapters import etcd as e
from omc.runtime.cluster import connect
from omc.runtime.cluster.settings import (
    ClusterSettings,
    SettingsError,
    check_credentials,
    check_secret_file,
    load,
)

URL = "https://10.0.0.1:2379"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ('{"error":"etcdserver: permission denied","message":"x","code":7}',
         "etcdserver: permission denied"),
        ('{"error":{"grpc_code":16,"message":"etcdserver: invalid auth token"}}',
         "etcdserver: invalid auth token"),
        ("CommonName of client sending a request against gateway will be ignored\n",
         "CommonName of client sending a request against gateway will be ignored"),
        ("", "Bad Request"),
        ("[1, 2]", "[1, 2]"),
    ],
)  # fmt: skip
def test_gateway_message(detail: str, expected: str) -> None:
    """A refusal's message comes from the JSON body (plain or stream form), else the text,
    else the HTTP reason."""
    assert e.gateway_message(detail, "Bad Request") == expected


@pytest.mark.parametrize(
    ("message", "kind", "phrase"),
    [
        ("etcdserver: permission denied", e.PermissionDeniedError,
         "permission denied: user 'omc-a' may not write /omc/b/k"),
        ("rpc error: code = PermissionDenied desc = etcdserver: permission denied",
         e.PermissionDeniedError, "may not write /omc/b/k"),
        ("etcdserver: authentication failed, invalid user ID or password", e.AuthError,
         "refused user 'omc-a': unknown user or wrong password"),
        ("etcdserver: user name is empty", e.AuthError, "did not log in"),
        ("etcdserver: authentication is not enabled", e.AuthError, "auth is not enabled"),
        ("CommonName of client sending a request against gateway will be ignored",
         e.AuthError, "issue client certificates without CN"),
        ("etcdserver: invalid auth token", e.AuthError, "right after a new login"),
        ("etcdserver: mvcc: required revision has been compacted", e.EtcdError,
         "write /omc/b/k: etcdserver: mvcc"),
    ],
)  # fmt: skip
def test_refusals_name_their_cause(message: str, kind: type[e.EtcdError], phrase: str) -> None:
    """Each refusal becomes its own exception type, with the endpoint, the user and the
    operation in the message."""
    error = e.refusal(message, url=URL, user="omc-a", what="write /omc/b/k")
    assert type(error) is kind
    assert str(error).startswith(f"{URL}: ")
    assert phrase in str(error)


def test_a_refusal_without_a_user_says_so() -> None:
    """A client with no user is named as such."""
    error = e.refusal("etcdserver: permission denied", url=URL, user=None, what="read /x")
    assert "this client (no user) may not read /x" in str(error)


@pytest.mark.parametrize(
    ("message", "renew"),
    [("etcdserver: invalid auth token", True),
     ("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token", True),
     ("etcdserver: revision of auth store is old", True),
     ("etcdserver: permission denied", False),
     ("etcdserver: user name is empty", False)],
)  # fmt: skip
def test_which_refusals_renew_the_token(message: str, renew: bool) -> None:
    """Only a token etcd no longer knows leads to a new login."""
    assert e.token_rejected(message) is renew


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
         "verify failed: unable to get local issuer certificate (_ssl.c:1006)'))",
         "member's certificate was not accepted (unable to get local issuer certificate)"),
        ("SSLError(SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
         "certificate required (_ssl.c:2580)'))", "refused our client certificate"),
        ("[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate",
         "refused our client certificate (bad certificate)"),
        ("SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)')",
         "closed the connection during the TLS handshake"),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "does not speak TLS"),
        ("SSLError(something new)", "TLS: SSLError(something new)"),
    ],
)  # fmt: skip
def test_tls_problems_are_named(text: str, phrase: str) -> None:
    """A failed handshake says which side refused which certificate."""
    assert phrase in (e.tls_problem(text) or "")


def test_a_refused_connection_is_no_tls_problem() -> None:
    """A member that is down is not reported as a certificate problem."""
    assert e.tls_problem("Failed to establish a new connection: [Errno 111] refused") is None


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/kv/range", {"key": _b64("/omc/a/"), "range_end": _b64("/omc/a0")}, "read /omc/a/…"),
        ("/kv/put", {"key": _b64("/omc/a/x"), "value": _b64("v")}, "write /omc/a/x"),
        ("/kv/txn", {"compare": [{"key": _b64("/omc/a/x")}],
                     "success": [{"request_put": {"key": _b64("/omc/a/y")}}]},
         "run a transaction on /omc/a/x, /omc/a/y"),
        ("/kv/txn", {"compare": [], "success": []}, "run a transaction"),
        ("/lease/grant", {"TTL": "5"}, "call /lease/grant"),
    ],
)  # fmt: skip
def test_requests_are_described_by_their_keys(path: str, body: dict[str, object],
                                              expected: str) -> None:  # fmt: skip
    """Errors name the keys a request touched (what a permission was refused for)."""
    assert e.describe(path, body) == expected


SETTINGS = ClusterSettings(name="c1", nodes=("n1",), endpoints=("https://10.0.0.1:2379",))


@pytest.mark.parametrize(
    ("endpoint", "insecure", "refused"),
    [
        ("https://10.0.0.1:2379", False, False),
        ("http://127.0.0.1:2379", False, False),
        ("http://localhost:2379", False, False),
        ("http://[::1]:2379", False, False),
        ("http://10.0.0.1:2379", False, True),
        ("http://etcd.example.com:2379", False, True),
        ("http://127.example.com:2379", False, True),
        ("http://10.0.0.1:2379", True, False),
    ],
)  # fmt: skip
def test_plain_http_off_loopback_is_refused(endpoint: str, insecure: bool, refused: bool) -> None:
    """Clear text is allowed to loopback only, unless insecure = true says otherwise."""
    settings = replace(SETTINGS, endpoints=("https://10.0.0.2:2379", endpoint), insecure=insecure)
    if refused:
        with pytest.raises(SettingsError, match=f"endpoint {endpoint} is plain http to another"):
            connect.check_endpoints(settings)
    else:
        connect.check_endpoints(settings)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"cert": "/etc/hosts"}, "cert and key go together"),
        ({"user": "omc-c1"}, "user and password go together (password is missing)"),
        ({"password": "secret"}, "(user is missing)"),
        ({"ca": "/nonexistent/ca.pem"}, "[etcd] ca = /nonexistent/ca.pem: no such file"),
    ],
)  # fmt: skip
def test_half_credentials_are_refused(changes: dict[str, str], phrase: str) -> None:
    """A certificate without its key, a user without a password (or the reverse), a TLS
    file that is not there: each named."""
    with pytest.raises(SettingsError) as err:
        check_credentials(replace(SETTINGS, **changes))  # type: ignore[arg-type]
    assert phrase in str(err.value)


def test_the_password_is_not_in_the_settings_repr() -> None:
    """A settings object printed in a log or a traceback does not show the password."""
    settings = replace(SETTINGS, user="omc-c1", password="s3cret-value")
    assert "s3cret-value" not in repr(settings)


def _conf(etc: Path, text: str, mode: int) -> Path:
    (etc / "cluster.conf").write_text(f"[cluster]\nname = c1\nnodes = n1\n\n[etcd]\n{text}")
    (etc / "cluster.conf").chmod(mode)
    return etc


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_cluster_conf_holds_the_password(tmp_path: Path, mode: int) -> None:
    """0600 (or stricter), owned by us: loaded, with its user and password."""
    etc = _conf(tmp_path, "endpoints = http://127.0.0.1:2379\nuser = u\npassword = p\n", mode)
    settings = load(etc)
    assert (settings.user, settings.password) == ("u", "p")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_shared_cluster_conf_with_a_password_is_refused(tmp_path: Path, mode: int) -> None:
    """Readable by group or others: refused, saying how to fix it."""
    _conf(tmp_path, "", mode)
    with pytest.raises(SettingsError, match=f"mode {mode:04o}.*chmod 600"):
        check_secret_file(tmp_path / "cluster.conf")


def test_a_cluster_conf_without_password_may_be_readable(tmp_path: Path) -> None:
    """No password in it: 0644 is fine (nothing secret)."""
    assert load(_conf(tmp_path, "endpoints = http://127.0.0.1:2379\n", 0o644)).user is None


def test_load_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    """The check runs at load time, so every command reports it as a settings error."""
    etc = _conf(tmp_path, "endpoints = http://10.0.0.1:2379\n", 0o600)
    with pytest.raises(SettingsError, match="plain http to another host"):
        load(etc)


def test_the_endpoints_file_follows_omc_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OMC_ETC`` moves every config file, the endpoint list too (it was pinned to
    /etc/opensvc), and an empty list is refused naming the file."""
    monkeypatch.setenv("OMC_ETC", str(tmp_path))
    (tmp_path / "etcd.endpoints").write_text("# lab\nhttps://10.0.0.1:2379\n\n" + URL + "\n")
    assert e.endpoints_from_file() == [URL, URL]
    (tmp_path / "etcd.endpoints").write_text("# nothing\n")
    with pytest.raises(e.EtcdError, match=f"{tmp_path}/etcd.endpoints: no etcd endpoint"):
        e.endpoints_from_file()
