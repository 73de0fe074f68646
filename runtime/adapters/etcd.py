"""The etcd adapter: the only module that imports etcd3gw.

etcd3gw talks to one endpoint; :class:`Etcd` takes the cluster's endpoint list and
moves to the next endpoint when one refuses connections or times out, so that
losing one member (with quorum kept) is invisible to callers. The API path is
pinned (``/v3/`` for etcd 3.4) to skip etcd3gw's discovery request.

The cluster layer needs more than etcd3gw's helpers give: revisions (a snapshot
and the watch that follows it must not miss an event), raw transactions that put
with a lease (etcd3gw's ``replace`` drops the lease: cluster-notes.md), lease
keep-alives whose answer says how long the lease still has, and a watch that
reconnects from the last revision it delivered. Those speak the JSON gateway
directly through etcd3gw's session (:meth:`Etcd.call`): :func:`txn`,
:meth:`Etcd.range`, :meth:`Etcd.watch`, the ``lease_*`` methods. Every call is
bounded by the client timeout (a member cut off in a minority hangs until then).

Security (docs/cluster.md, "Security"): TLS with a client certificate (:class:`Tls`)
and etcd's own auth (:meth:`Etcd.authenticate`). etcd 3.4's JSON gateway never takes
the user from the client certificate (it refuses certificates that carry a Common
Name once auth is on), so a user logs in with a password and every request carries
the token etcd returns. Tokens expire (``--auth-token-ttl``, 300 s without use by
default): the client logs in again when etcd says the token is invalid, once per
request, and carries on. Refusals name their cause (:class:`AuthError`,
:class:`PermissionDeniedError`, :class:`TlsError`); no message ever holds the password.

Where ``om`` finds the endpoints: :func:`endpoints_from_file` reads
``/etc/opensvc/etcd.endpoints`` (``$OMC_ETC/etcd.endpoints`` when set; one URL per
line, ``#`` comments), which ``om lab`` writes in every node.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from omc.compiler.contract.node import etc_dir

ENDPOINTS_NAME = "etcd.endpoints"  # in the config directory (``etc_dir()``)
T = TypeVar("T")


class EtcdError(Exception):
    """No endpoint answered, or etcd refused the request."""


class CompactedError(EtcdError):
    """A watch asked for a revision etcd has compacted away: re-read, then watch again."""


class AuthError(EtcdError):
    """etcd refused who we are (unknown user, wrong password, no login, auth not enabled,
    a client certificate it will not take): retrying does not help, the settings must
    change."""


class PermissionDeniedError(AuthError):
    """The user is known but its roles do not grant this key (or this operation)."""


class TlsError(EtcdError):
    """No endpoint completed a TLS handshake: a certificate was refused on one side."""


class _TokenRejectedError(Exception):
    """Internal: etcd no longer knows the token we sent (expired or revoked)."""


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _unb64(data: str) -> bytes:
    """base64.b64decode without its wrapper (checks and a copy per call): a range read
    decodes two per key, ~5 % of ``om mon``'s decoding with 200 objects."""
    return binascii.a2b_base64(data) if data else b""


def prefix_end(prefix: str) -> str:
    """The ``range_end`` of every key starting with ``prefix`` (its last byte + 1)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return bytes(raw).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyValue:
    """One key as etcd stores it (``value`` is empty for a delete event)."""

    key: str
    value: bytes
    mod_revision: int = 0
    create_revision: int = 0
    version: int = 0
    lease: int = 0

    @classmethod
    def from_json(cls, kv: Mapping[str, Any]) -> KeyValue:
        return cls(
            key=_unb64(kv["key"]).decode(),
            value=_unb64(kv.get("value", "")),
            mod_revision=int(kv.get("mod_revision", 0)),
            create_revision=int(kv.get("create_revision", 0)),
            version=int(kv.get("version", 0)),
            lease=int(kv.get("lease", 0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A watch event: ``put`` or ``delete`` of one key."""

    kind: str
    kv: KeyValue


# Transaction parts (etcd's Compare and RequestOp, as the JSON gateway spells them).


def when_version(key: str, op: str, version: int) -> dict[str, Any]:
    """``version == 0``: the key does not exist."""
    return {"key": _b64(key), "target": "VERSION", "result": _RESULTS[op],
            "version": str(version)}  # fmt: skip


def when_value(key: str, op: str, value: str | bytes) -> dict[str, Any]:
    return {"key": _b64(key), "target": "VALUE", "result": _RESULTS[op], "value": _b64(value)}


def when_mod(key: str, op: str, revision: int) -> dict[str, Any]:
    return {"key": _b64(key), "target": "MOD", "result": _RESULTS[op],
            "mod_revision": str(revision)}  # fmt: skip


def when_lease(key: str, op: str, lease: int) -> dict[str, Any]:
    return {"key": _b64(key), "target": "LEASE", "result": _RESULTS[op], "lease": str(lease)}


def put(key: str, value: str | bytes, *, lease: int = 0) -> dict[str, Any]:
    request: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        request["lease"] = str(lease)
    return {"request_put": request}


def delete(key: str, *, prefix: bool = False) -> dict[str, Any]:
    request = {"key": _b64(key)}
    if prefix:
        request["range_end"] = _b64(prefix_end(key))
    return {"request_delete_range": request}


def get(
    key: str, *, prefix: bool = False, keys_only: bool = False, serializable: bool = False
) -> dict[str, Any]:
    """A read in a transaction; ``keys_only``: without the values; ``serializable``: as
    :meth:`Etcd.range` says (a transaction of such reads alone needs no quorum)."""
    request: dict[str, Any] = {"key": _b64(key)}
    if prefix:
        request["range_end"] = _b64(prefix_end(key))
    if keys_only:
        request["keys_only"] = True
    if serializable:
        request["serializable"] = True
    return {"request_range": request}


_RESULTS = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnResult:
    """Whether the compares held, the revision, and the keys read by ``get`` ops."""

    succeeded: bool
    revision: int
    found: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    """Client-side TLS material: the CA that signed the servers (None: the system's
    CAs), and optionally a client certificate and key (for ``--client-cert-auth``)."""

    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None


def endpoints_from_file(path: Path | None = None) -> list[str]:
    """The endpoint URLs written in ``path`` (default: ``etcd.endpoints`` in the config
    directory, so ``OMC_ETC`` moves it with the rest); an error names the file when it is
    empty."""
    if path is None:
        path = etc_dir() / ENDPOINTS_NAME
    try:
        text = path.read_text()
    except OSError as exc:
        raise EtcdError(f"{path}: cannot read etcd endpoints: {exc.strerror}") from exc
    urls = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not urls:
        raise EtcdError(f"{path}: no etcd endpoint listed")
    return urls


# -- why etcd said no (pure: the text of a refusal in, the exception to raise out) ----

_RENEW = ("invalid auth token", "revision of auth store is old")
_ALERTS = ("certificate required", "bad certificate", "unknown ca", "certificate unknown",
           "handshake failure", "access denied")  # fmt: skip


def gateway_message(detail: str | None, reason: str = "") -> str:
    """The message of a gateway refusal: its JSON body's ``error`` (also the form of
    stream errors, ``{"error": {"message": …}}``), else the body, else the HTTP reason."""
    text = (detail or "").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text or reason
    if not isinstance(body, dict):
        return text or reason
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or body.get("message") or text)


def token_rejected(message: str) -> bool:
    """Whether etcd refused the token itself (expired, or auth changed): log in again."""
    return any(marker in message for marker in _RENEW)


def refusal(message: str, *, url: str, user: str | None, what: str) -> EtcdError:
    """The exception saying why etcd refused ``what`` (an operation, as a short phrase)."""
    who = f"user {user!r}" if user else "this client (no user)"
    if "permission denied" in message:
        return PermissionDeniedError(
            f"{url}: permission denied: {who} may not {what} "
            "(a cluster's user is granted its own prefix only)"
        )
    if "invalid user ID or password" in message:
        return AuthError(
            f"{url}: etcd refused {who}: unknown user or wrong password (etcd does not say which)"
        )
    if "user name is empty" in message:
        return AuthError(f"{url}: etcd has auth enabled and {who} did not log in "
                         "(set [etcd] user and password in cluster.conf)")  # fmt: skip
    if "authentication is not enabled" in message:
        return AuthError(f"{url}: {who} was configured but etcd auth is not enabled")
    if "CommonName of client" in message:
        return AuthError(
            f"{url}: the client certificate has a Common Name, which etcd's JSON gateway "
            "refuses once auth is enabled: issue client certificates without CN"
        )
    if token_rejected(message):
        return AuthError(f"{url}: etcd refused the token of {who} right after a new login")
    return EtcdError(f"{url}: {what}: {message}")


def describe(path: str, body: Mapping[str, Any]) -> str:
    """A gateway request as errors name it: ``read /omc/c1/``, ``run a transaction on
    /omc/c1/a, /omc/c1/b``: what a permission was refused for."""
    verbs = {"/kv/range": "read", "/kv/put": "write", "/kv/deleterange": "delete"}
    keys: list[str] = []

    def collect(item: Any) -> None:
        if isinstance(item, Mapping):
            if isinstance(item.get("key"), str):
                key = _unb64(item["key"]).decode(errors="replace")
                keys.append(key + ("…" if item.get("range_end") else ""))
            for value in item.values():
                collect(value)
        elif isinstance(item, list):
            for value in item:
                collect(value)

    collect(dict(body))
    named = ", ".join(dict.fromkeys(keys))
    if path in verbs:
        return f"{verbs[path]} {named}"
    if path == "/kv/txn":
        return f"run a transaction on {named}" if named else "run a transaction"
    return f"call {path}" + (f" on {named}" if named else "")


def tls_problem(text: str) -> str | None:
    """What failed in a TLS handshake (from the connection error's text); None when the
    connection failed for another reason."""
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl", maxsplit=1)[0]
        return ("the member's certificate was not accepted "
                f"({detail.strip(' )') or 'not signed by [etcd] ca'})")  # fmt: skip
    if "WRONG_VERSION_NUMBER" in text:
        return "the endpoint does not speak TLS (a plain http member?)"
    for alert in _ALERTS:
        if f"alert {alert}" in text.replace("_", " ").lower():
            return (f"the member refused our client certificate ({alert}): "
                    "none given, or not signed by the cluster's CA")  # fmt: skip
    if "EOF occurred in violation of protocol" in text or "UNEXPECTED_EOF" in text:
        return ("the member closed the connection during the TLS handshake: most often, "
                "it refused our client certificate (not signed by the cluster's CA?)")  # fmt: skip
    return f"TLS: {text}" if "SSL" in text else None


class Etcd:
    """get/put/delete/lease/watch/transaction over the first endpoint that answers."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        api_path: str = "/v3/",
        timeout: float = 5.0,
        tls: Tls | None = None,
    ) -> None:
        if not endpoints:
            raise EtcdError("no etcd endpoint given")
        self.endpoints = tuple(endpoints)
        self._api_path = api_path
        self._timeout = timeout
        self._tls = tls
        self._clients: dict[str, Any] = {}
        self._current = 0
        self._user: str | None = None
        self._password = ""
        self._token = ""
        self._on_login: Callable[[str], None] | None = None
        self._unproven = False  # a kept token no request has succeeded with yet
        self._login_lock = threading.Lock()

    def __repr__(self) -> str:  # never the password, never the token
        return f"<Etcd {' '.join(self.endpoints)} user={self._user!r}>"

    # -- auth ----------------------------------------------------------------------------

    def authenticate(
        self,
        user: str,
        password: str,
        *,
        token: str = "",
        on_login: Callable[[str], None] | None = None,
    ) -> None:
        """Use etcd's auth as ``user``: the first request logs in, every request carries
        the token, and a token etcd no longer knows is renewed by logging in again.

        ``token``: one a previous login got, tried first. A login is a raft proposal (and
        a bcrypt check): it costs a round trip to the leader, and a member without quorum
        cannot log anyone in, while it still serves serializable reads to a token it
        knows. ``on_login`` is told each new token (to keep it for the next process)."""
        self._user, self._password, self._token = user, password, token
        self._unproven = bool(token)
        self._on_login = on_login
        for client in self._clients.values():
            if token:
                client.session.headers["Authorization"] = token
            else:
                client.session.headers.pop("Authorization", None)

    def login(self) -> None:
        """Log in now (instead of at the first request); :class:`AuthError` says why not."""
        if self._user is None:
            raise AuthError("no etcd user to log in as")
        with self._login_lock:
            self._login()

    def _login(self) -> None:
        body = {"name": self._user, "password": self._password}
        reply = self._attempt(
            # The stale token stays off the login request (requests drops None headers).
            lambda c: c.post(c.get_url("/auth/authenticate"), json=body,
                             headers={"Authorization": None}),
            what="log in",
        )  # fmt: skip
        self._token = str(reply["token"])
        for client in self._clients.values():
            client.session.headers["Authorization"] = self._token
        if self._on_login is not None:
            self._on_login(self._token)

    def _token_for_request(self) -> str:
        """The token to send, logging in first when there is none yet (once, whatever the
        number of threads asking)."""
        if self._user is not None and not self._token:
            with self._login_lock:
                if not self._token:
                    self._login()
        return self._token

    def _renew(self, stale: str) -> None:
        """Log in again, unless another thread already replaced the ``stale`` token."""
        with self._login_lock:
            if self._token == stale:
                self._login()

    # -- transport -----------------------------------------------------------------------

    def _client(self, url: str) -> Any:
        if url not in self._clients:
            import etcd3gw  # lazy: its import costs 100+ ms

            parts = urlsplit(url)
            tls = self._tls
            self._clients[url] = etcd3gw.client(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 2379,
                protocol=parts.scheme or "http",
                ca_cert=tls.ca_cert if tls else None,
                cert_cert=tls.cert if tls else None,
                cert_key=tls.key if tls else None,
                timeout=self._timeout,
                api_path=self._api_path,
            )
            # Nothing from the environment: REQUESTS_CA_BUNDLE would replace the cluster's
            # CA (requests lets it override a session's), *_PROXY would route cluster
            # traffic through a proxy, ~/.netrc would replace the token header.
            self._clients[url].session.trust_env = False
            if self._token:
                self._clients[url].session.headers["Authorization"] = self._token
        return self._clients[url]

    def _try(self, op: Callable[[Any], T], *, what: str = "do this") -> T:
        """Run ``op`` on the first endpoint that answers, logged in when a user is set; a
        token etcd refuses is renewed once. ``what`` names the operation in errors."""
        token = self._token_for_request()
        try:
            result = self._attempt(op, what=what, renewable=bool(token))
        except _TokenRejectedError:
            self._renew(token)
        except (TlsError, AuthError):
            raise
        except EtcdError:
            if not self._unproven:
                raise
            # A kept token another etcd issued (one re-created since) names a raft index
            # the members wait for until the request times out: log in, once.
            self._unproven = False
            self._renew(token)
        else:
            self._unproven = False
            return result
        return self._attempt(op, what=what)

    def _attempt(self, op: Callable[[Any], T], *, what: str, renewable: bool = False) -> T:
        """One pass over the endpoints from the current one, failing over on connection
        errors (TLS ones included: another member may hold a good certificate)."""
        from etcd3gw import exceptions  # lazy, as above

        failures: list[tuple[str, str | None]] = []
        for step in range(len(self.endpoints)):
            index = (self._current + step) % len(self.endpoints)
            url = self.endpoints[index]
            try:
                result = op(self._client(url))
            except (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError) as exc:
                text = gateway_message(exc.detail_text, str(exc))
                failures.append((f"{url}: {tls_problem(text) or text}", tls_problem(text)))
                continue
            except exceptions.Etcd3Exception as exc:
                message = gateway_message(exc.detail_text, str(exc))
                if renewable and token_rejected(message):
                    raise _TokenRejectedError from exc
                raise refusal(message, url=url, user=self._user, what=what) from None
            self._current = index
            return result
        if failures and all(tls for _, tls in failures):
            raise TlsError("no etcd endpoint completed TLS: " + "; ".join(m for m, _ in failures))
        raise EtcdError("no etcd endpoint answered: " + "; ".join(m for m, _ in failures))

    def get(self, key: str) -> bytes | None:
        values = self._try(lambda c: c.get(key), what=f"read {key}")
        return bytes(values[0]) if values else None

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        rows = self._try(lambda c: c.get_prefix(prefix), what=f"read {prefix}")
        return {meta["key"].decode(): bytes(value) for value, meta in rows}

    def put(self, key: str, value: str | bytes, *, lease: Any = None) -> None:
        self._try(lambda c: c.put(key, value, lease=lease), what=f"write {key}")

    def delete(self, key: str) -> bool:
        return bool(self._try(lambda c: c.delete(key), what=f"delete {key}"))

    def create(self, key: str, value: str | bytes, *, lease: Any = None) -> bool:
        """Put only if absent (a create-revision 0 compare); True when created."""
        return bool(self._try(lambda c: c.create(key, value, lease=lease), what=f"write {key}"))

    def replace(self, key: str, old: str | bytes, new: str | bytes) -> bool:
        """Compare-and-swap on the value; True when swapped."""
        return bool(self._try(lambda c: c.replace(key, old, new), what=f"write {key}"))

    def lease(self, ttl: int) -> Any:
        """A lease (``refresh()``, ``revoke()``, ``ttl()``) granted for ``ttl`` seconds."""
        return self._try(lambda c: c.lease(ttl), what="grant a lease")

    def transaction(self, txn: dict[str, Any]) -> dict[str, Any]:
        """A raw ``/kv/txn`` (compare, success, failure), keys base64-encoded by the caller."""
        return dict(self._try(lambda c: c.transaction(txn), what="run a transaction"))

    def watch_prefix(self, prefix: str) -> tuple[Iterator[Any], Callable[[], None]]:
        """Events under ``prefix`` (an iterator) and the function that cancels the watch."""
        events, cancel = self._try(lambda c: c.watch_prefix(prefix), what=f"watch {prefix}")
        return events, cancel

    # -- the JSON gateway, directly (revisions, raw transactions, leases, watch) --------

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that answers."""
        return self._try(lambda c: dict(c.post(c.get_url(path), json=dict(body))),
                         what=describe(path, body))  # fmt: skip

    def range(self, prefix: str, *, serializable: bool = False) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` and the store's revision (to watch from + 1).
        ``serializable``: what the answering member has, without asking the leader (it
        answers without quorum, possibly stale)."""
        body = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        reply = self.call("/kv/range", {**body, "serializable": True} if serializable else body)
        kvs = [KeyValue.from_json(kv) for kv in reply.get("kvs", [])]
        return int(reply["header"]["revision"]), kvs

    def txn(
        self,
        compare: Sequence[Mapping[str, Any]],
        success: Sequence[Mapping[str, Any]],
        failure: Sequence[Mapping[str, Any]] = (),
    ) -> TxnResult:
        """One atomic step: if every compare holds, the success ops, else the failure ops."""
        reply = self.call("/kv/txn", {"compare": list(compare), "success": list(success),
                                      "failure": list(failure)})  # fmt: skip
        found = tuple(
            KeyValue.from_json(kv)
            for response in reply.get("responses", [])
            for kv in response.get("response_range", {}).get("kvs", [])
        )
        return TxnResult(succeeded=bool(reply.get("succeeded", False)),
                         revision=int(reply["header"]["revision"]), found=found)  # fmt: skip

    def lease_grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: its id and the TTL etcd granted (raised to its minimum)."""
        reply = self.call("/lease/grant", {"TTL": str(ttl)})
        return int(reply["ID"]), int(reply["TTL"])

    def lease_keepalive(self, lease: int) -> int:
        """Refresh a lease; the TTL it now has (0: it had expired, keys are gone)."""
        reply = self.call("/lease/keepalive", {"ID": str(lease)})
        return int(reply.get("result", {}).get("TTL", 0))

    def lease_ttl(self, lease: int) -> tuple[int, int]:
        """Seconds a lease still has (-1: gone), and the TTL etcd granted it."""
        reply = self.call("/kv/lease/timetolive", {"ID": str(lease)})
        return int(reply.get("TTL", -1)), int(reply.get("grantedTTL", 0))

    def lease_revoke(self, lease: int) -> None:
        """Drop a lease now: its keys are deleted at once."""
        self.call("/kv/lease/revoke", {"ID": str(lease)})

    def watch(
        self,
        prefix: str,
        start_revision: int,
        deliver: Callable[[list[Event], int], None],
        stop: threading.Event,
        *,
        idle: float = 30.0,
    ) -> None:
        """Deliver every event under ``prefix`` from ``start_revision`` on, with the
        revision they bring the store to, until ``stop`` is set. Blocks: run it in a
        thread. A dropped or idle stream (``idle`` seconds without a byte: etcd's
        progress notifications keep a healthy one alive) is reopened from the last
        delivered revision + 1 on any endpoint, so no event is lost; a compacted start
        revision raises :class:`CompactedError` (re-read the prefix, then watch again).
        Other errors, refusals included, are retried every 0.5 s: the caller meets them
        on its own requests, and a watch must outlive a revoked-then-restored grant."""
        next_revision = start_revision
        while not stop.is_set():
            try:
                opened = functools.partial(_stream, prefix=prefix, start=next_revision,
                                           deliver=deliver, stop=stop, idle=idle)  # fmt: skip
                next_revision = self._try(opened, what=f"watch {prefix}")
            except CompactedError:
                raise
            except EtcdError:
                if stop.wait(0.5):
                    return

    # -- etcd auth administration (as root, or before auth is enabled) -------------------

    def user_add(self, name: str, password: str) -> None:
        self.call("/auth/user/add", {"name": name, "password": password})

    def user_password(self, name: str, password: str) -> None:
        """Change a user's password (its tokens stay valid until they expire)."""
        self.call("/auth/user/changepw", {"name": name, "password": password})

    def user_delete(self, name: str) -> None:
        """Remove a user: its tokens stop working at once."""
        self.call("/auth/user/delete", {"name": name})

    def role_add(self, name: str) -> None:
        self.call("/auth/role/add", {"name": name})

    def grant_prefix(self, role: str, prefix: str) -> None:
        """Give ``role`` read and write on every key under ``prefix`` (and nothing else)."""
        perm = {"permType": "READWRITE", "key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        self.call("/auth/role/grant", {"name": role, "perm": perm})

    def user_grant_role(self, user: str, role: str) -> None:
        self.call("/auth/user/grant", {"user": user, "role": role})

    def auth_enable(self) -> None:
        """Turn etcd's auth on (a ``root`` user holding the ``root`` role must exist)."""
        self.call("/auth/enable", {})

    def members(self) -> list[dict[str, Any]]:
        return list(self._try(lambda c: c.members(), what="list members"))

    def health(self) -> dict[str, bool]:
        """Per endpoint: True when it answers a status request and knows a leader."""
        report: dict[str, bool] = {}
        for url in self.endpoints:
            try:
                status = self._client(url).status()
            except Exception:  # any failure means unhealthy here
                report[url] = False
            else:
                report[url] = int(status.get("leader", 0) or 0) != 0
        return report


def _stream(
    client: Any,
    *,
    prefix: str,
    start: int,
    deliver: Callable[[list[Event], int], None],
    stop: threading.Event,
    idle: float,
) -> int:
    """One watch stream; returns the next revision to watch from when it ends."""
    import requests  # etcd3gw's transport, already imported with it

    body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                               "start_revision": str(start), "progress_notify": True}}  # fmt: skip
    try:
        response = client.session.post(client.get_url("/watch"), json=body, stream=True,
                                       timeout=(client.timeout, idle))  # fmt: skip
    except requests.exceptions.RequestException as exc:
        from etcd3gw import exceptions

        raise exceptions.ConnectionFailedError(str(exc)) from exc
    with response:
        if response.status_code != 200:
            raise _refused(response.status_code, response.text, response.reason)
        try:
            for line in response.iter_lines():
                if stop.is_set():
                    return start
                if line:
                    start = _deliver(_result(line), start, deliver)
                if stop.is_set():
                    return start
        except requests.exceptions.RequestException:
            pass  # idle or dropped: the caller reopens from `start`
    return start


def _refused(status: int, text: str, reason: str) -> Exception:
    """A refused watch as etcd3gw raises refused requests (a busy or unready member
    fails over; anything else is classified by :func:`refusal`)."""
    from etcd3gw import exceptions

    if status in (503, 504, 408):
        return exceptions.ConnectionFailedError(text, reason)
    return exceptions.Etcd3Exception(text, reason)


def _result(line: bytes) -> Mapping[str, Any]:
    """One message of a watch stream; a stream error or a canceled watch (an expired
    token, a permission refused) is raised as a refusal of the watch request."""
    message = json.loads(line)
    result = message.get("result", {})
    if "error" in message:
        raise _refused(200, line.decode(errors="replace"), "watch error")
    if result.get("canceled") and not int(result.get("compact_revision", 0) or 0):
        reason = str(result.get("cancel_reason") or "watch canceled")
        raise _refused(200, json.dumps({"error": reason}), "watch canceled")
    return dict(result)


def _deliver(
    result: Mapping[str, Any], start: int, deliver: Callable[[list[Event], int], None]
) -> int:
    if int(result.get("compact_revision", 0) or 0) > 0:
        raise CompactedError(
            f"revision {start} was compacted (oldest kept: {result['compact_revision']})"
        )
    revision = int(result.get("header", {}).get("revision", start - 1) or start - 1)
    events = [
        Event(kind="delete" if e.get("type") == "DELETE" else "put", kv=KeyValue.from_json(e["kv"]))
        for e in result.get("events", [])
    ]
    if events:
        revision = max(e.kv.mod_revision for e in events)
        deliver(events, revision)
    return max(start, revision + 1)
