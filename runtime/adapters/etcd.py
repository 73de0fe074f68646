"""The etcd adapter: the only module that imports etcd3gw.

etcd3gw talks to one endpoint; :class:`Etcd` takes the cluster's endpoint list and
moves to the next endpoint when one refuses connections or times out, so that
losing one member (with quorum kept) is invisible to callers. The API path is
pinned (``/v3/`` for etcd 3.4) to skip etcd3gw's discovery request.

Where ``om`` finds the endpoints: :func:`endpoints_from_file` reads
``/etc/opensvc/etcd.endpoints`` (one URL per line, ``#`` comments), which
``om lab`` writes in every node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ENDPOINTS_FILE = Path("/etc/opensvc/etcd.endpoints")
T = TypeVar("T")


class EtcdError(Exception):
    """No endpoint answered, or etcd refused the request."""


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
        return self._clients[url]

    def _try(self, op: Callable[[Any], T]) -> T:
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
