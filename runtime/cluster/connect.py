"""Reaching the cluster's etcd from ``cluster.conf`` (the daemon and the CLI alike).

Plain http to a member that is not on loopback is refused unless ``[etcd]
insecure = true``: cluster state decides what runs where, so it travels over TLS
with client certificates (docs/cluster.md, "Security").
"""

from __future__ import annotations

from urllib.parse import urlsplit

from omc.runtime.adapters.etcd import Etcd, Tls
from omc.runtime.cluster.settings import ClusterSettings, SettingsError

LOOPBACK = ("127.", "::1", "localhost")


def check_endpoints(settings: ClusterSettings) -> None:
    """Refuse clear-text endpoints off loopback (unless the settings allow it)."""
    if settings.insecure:
        return
    for url in settings.endpoints:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" and not host.startswith(LOOPBACK):
            raise SettingsError(
                f"cluster.conf: etcd endpoint {url} is plain http off loopback: use https "
                "with [etcd] ca/cert/key, or set [etcd] insecure = true"
            )


def etcd(settings: ClusterSettings, *, timeout: float | None = None) -> Etcd:
    """An etcd client for the cluster (TLS and auth as ``cluster.conf`` says)."""
    check_endpoints(settings)
    tls = Tls(ca_cert=settings.ca, cert=settings.cert, key=settings.key) if settings.ca else None
    client = Etcd(settings.endpoints, tls=tls, timeout=timeout or settings.timeout)
    if settings.user:
        client.authenticate(settings.user, settings.password or "")
    return client
