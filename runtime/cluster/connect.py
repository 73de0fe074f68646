"""Reaching the cluster's etcd from ``cluster.conf`` (the daemon and the CLI alike).

:func:`etcd` makes the client ``cluster.conf`` describes: TLS with the node's client
certificate, and etcd's auth as the cluster's user (the login happens at the first
request, so an unreachable etcd is met where callers already handle it). The checks
(plain http off loopback, unreadable TLS files, a user without a password) run when
the settings are loaded (:func:`omc.runtime.cluster.settings.load`); they run again
here for settings built in code.
"""

from __future__ import annotations

from omc.runtime.adapters.etcd import Etcd, Tls
from omc.runtime.cluster.settings import (
    ClusterSettings,
    check_credentials,
    check_endpoints,
)

__all__ = ["check_endpoints", "etcd", "tls"]


def tls(settings: ClusterSettings) -> Tls | None:
    """The TLS material ``cluster.conf`` names (None: plain http)."""
    if not (settings.ca or settings.cert):
        return None
    return Tls(ca_cert=settings.ca, cert=settings.cert, key=settings.key)


def etcd(settings: ClusterSettings, *, timeout: float | None = None) -> Etcd:
    """An etcd client for the cluster (TLS and auth as ``cluster.conf`` says)."""
    check_endpoints(settings)
    check_credentials(settings)
    client = Etcd(settings.endpoints, tls=tls(settings), timeout=timeout or settings.timeout)
    if settings.user and settings.password:
        client.authenticate(settings.user, settings.password)
    return client
