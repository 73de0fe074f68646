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

Where ``om`` finds the endpoints: :func:`endpoints_from_file` reads
``/etc/opensvc/etcd.endpoints`` (one URL per line, ``#`` comments), which
``om lab`` writes in every node.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ENDPOINTS_FILE = Path("/etc/opensvc/etcd.endpoints")
T = TypeVar("T")


class EtcdError(Exception):
    """No endpoint answered, or etcd refused the request."""


class CompactedError(EtcdError):
    """A watch asked for a revision etcd has compacted away: re-read, then watch again."""


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _unb64(data: str) -> bytes:
    return base64.b64decode(data) if data else b""


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


def get(key: str) -> dict[str, Any]:
    return {"request_range": {"key": _b64(key)}}


_RESULTS = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnResult:
    """Whether the compares held, the revision, and the keys read by ``get`` ops."""

    succeeded: bool
    revision: int
    found: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    """Client-side TLS material: the CA that signed the servers, and optionally a
    client certificate and key (for ``--client-cert-auth``)."""

    ca_cert: str
    cert: str | None = None
    key: str | None = None


def endpoints_from_file(path: Path = ENDPOINTS_FILE) -> list[str]:
    """The endpoint URLs written in ``path``; an error names the file when it is empty."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise EtcdError(f"{path}: cannot read etcd endpoints: {exc.strerror}") from exc
    urls = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not urls:
        raise EtcdError(f"{path}: no etcd endpoint listed")
    return urls


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
        self._credentials: tuple[str, str] | None = None
        self._token = ""

    def authenticate(self, user: str, password: str) -> None:
        """Use etcd's auth: every request carries a token got for ``user`` (renewed
        when etcd says it expired)."""
        self._credentials = (user, password)
        self._token = ""
        self._login()

    def _login(self) -> None:
        user, password = self._credentials or ("", "")
        reply = self._try(lambda c: c.post(c.get_url("/auth/authenticate"),
                                           json={"name": user, "password": password}))  # fmt: skip
        self._token = str(reply["token"])
        for client in self._clients.values():
            client.session.headers["Authorization"] = self._token

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
            if self._token:
                self._clients[url].session.headers["Authorization"] = self._token
        return self._clients[url]

    def _try(self, op: Callable[[Any], T], *, retried: bool = False) -> T:
        """Run ``op`` on the current endpoint, failing over on connection errors."""
        from etcd3gw import exceptions  # lazy, as above

        errors: list[str] = []
        for step in range(len(self.endpoints)):
            index = (self._current + step) % len(self.endpoints)
            url = self.endpoints[index]
            try:
                result = op(self._client(url))
            except (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            except exceptions.Etcd3Exception as exc:
                if self._credentials and "invalid auth token" in str(exc) and not retried:
                    self._login()
                    return self._try(op, retried=True)
                raise EtcdError(f"{url}: {exc}") from exc
            self._current = index
            return result
        raise EtcdError("no etcd endpoint answered: " + "; ".join(errors))

    def get(self, key: str) -> bytes | None:
        values = self._try(lambda c: c.get(key))
        return bytes(values[0]) if values else None

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        rows = self._try(lambda c: c.get_prefix(prefix))
        return {meta["key"].decode(): bytes(value) for value, meta in rows}

    def put(self, key: str, value: str | bytes, *, lease: Any = None) -> None:
        self._try(lambda c: c.put(key, value, lease=lease))

    def delete(self, key: str) -> bool:
        return bool(self._try(lambda c: c.delete(key)))

    def create(self, key: str, value: str | bytes, *, lease: Any = None) -> bool:
        """Put only if absent (a create-revision 0 compare); True when created."""
        return bool(self._try(lambda c: c.create(key, value, lease=lease)))

    def replace(self, key: str, old: str | bytes, new: str | bytes) -> bool:
        """Compare-and-swap on the value; True when swapped."""
        return bool(self._try(lambda c: c.replace(key, old, new)))

    def lease(self, ttl: int) -> Any:
        """A lease (``refresh()``, ``revoke()``, ``ttl()``) granted for ``ttl`` seconds."""
        return self._try(lambda c: c.lease(ttl))

    def transaction(self, txn: dict[str, Any]) -> dict[str, Any]:
        """A raw ``/kv/txn`` (compare, success, failure), keys base64-encoded by the caller."""
        return dict(self._try(lambda c: c.transaction(txn)))

    def watch_prefix(self, prefix: str) -> tuple[Iterator[Any], Callable[[], None]]:
        """Events under ``prefix`` (an iterator) and the function that cancels the watch."""
        events, cancel = self._try(lambda c: c.watch_prefix(prefix))
        return events, cancel

    # -- the JSON gateway, directly (revisions, raw transactions, leases, watch) --------

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that answers."""
        return self._try(lambda c: dict(c.post(c.get_url(path), json=dict(body))))

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
        revision raises :class:`CompactedError` (re-read the prefix, then watch again)."""
        next_revision = start_revision
        while not stop.is_set():
            try:
                opened = functools.partial(_stream, prefix=prefix, start=next_revision,
                                           deliver=deliver, stop=stop, idle=idle)  # fmt: skip
                next_revision = self._try(opened)
            except CompactedError:
                raise
            except EtcdError:
                if stop.wait(0.5):
                    return

    def members(self) -> list[dict[str, Any]]:
        return list(self._try(lambda c: c.members()))

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
        try:
            for line in response.iter_lines():
                if stop.is_set():
                    return start
                if line:
                    start = _deliver(json.loads(line).get("result", {}), start, deliver)
                if stop.is_set():
                    return start
        except requests.exceptions.RequestException:
            pass  # idle or dropped: the caller reopens from `start`
    return start


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
