"""Reaching the cluster's etcd from ``cluster.conf`` (the daemon and the CLI alike).

:func:`etcd` makes the client ``cluster.conf`` describes: TLS with the node's client
certificate, and etcd's auth as the cluster's user (the login happens at the first
request, so an unreachable etcd is met where callers already handle it). The checks
(plain http off loopback, unreadable TLS files, a user without a password) run when
the settings are loaded (:func:`omc.runtime.cluster.settings.load`); they run again
here for settings built in code.

A login's token is kept in :func:`token_file` (``/run/opensvc/etcd/token``, 0600 in a
0700 directory, root's like ``cluster.conf`` and its password) and tried first by the
next client: each ``om`` command then skips the login, a raft proposal that costs a
round trip to the leader, and a node whose member lost quorum can still read what its
member knows (``om mon`` says "partitioned" instead of failing to log in). A token
etcd no longer knows is replaced by a new login, as any expired one.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from omc.runtime import safefs
from omc.runtime.adapters.etcd import Etcd, Tls
from omc.runtime.cluster.settings import (
    ClusterSettings,
    check_credentials,
    check_endpoints,
)
from omc.runtime.layout import run_dir

__all__ = ["check_endpoints", "etcd", "tls"]


def tls(settings: ClusterSettings) -> Tls | None:
    """The TLS material ``cluster.conf`` names (None: plain http)."""
    if not (settings.ca or settings.cert):
        return None
    return Tls(ca_cert=settings.ca, cert=settings.cert, key=settings.key)


def etcd(
    settings: ClusterSettings, *, timeout: float | None = None, endpoint: str | None = None
) -> Etcd:
    """An etcd client for the cluster (TLS and auth as ``cluster.conf`` says); with
    ``endpoint`` (one of the cluster's), one that talks to that member only, sharing the
    kept token of the others (the daemon's lease refreshers, one per member)."""
    check_endpoints(settings)
    check_credentials(settings)
    if endpoint is not None and endpoint not in settings.endpoints:
        raise ValueError(f"{endpoint} is not one of the cluster's etcd endpoints")
    urls = settings.endpoints if endpoint is None else (endpoint,)
    client = Etcd(urls, tls=tls(settings), timeout=timeout or settings.timeout)
    if settings.user and settings.password:
        owner = _token_owner(settings)
        client.authenticate(
            settings.user,
            settings.password,
            token=_kept_token(owner),
            on_login=lambda token: _keep_token(owner, token),
        )
    return client


def token_file() -> Path:
    """Where the last login's token is kept for the next client on this node."""
    return run_dir() / "etcd" / "token"


def _token_owner(settings: ClusterSettings) -> str:
    """Who a kept token is for: a digest of the user, the password and the endpoints, so
    that a token is never used with other credentials (a wrong password in a copy of
    ``cluster.conf`` must still be refused) nor against another etcd."""
    what = "\0".join((settings.user or "", settings.password or "", *settings.endpoints))
    return hashlib.sha256(what.encode()).hexdigest()


def _kept_token(owner: str) -> str:
    """The kept token when ``owner`` got it; none when it is missing, unsafe or
    another's."""
    try:
        got_by, _, token = safefs.read_text(token_file()).partition("\n")
    except OSError:  # safefs.UnsafePathError included
        return ""
    return token.strip() if got_by == owner else ""


def _keep_token(owner: str, token: str) -> None:
    """Keep ``token`` for the next client; a failure to write only costs it a login."""
    with contextlib.suppress(OSError):
        safefs.write_file(token_file(), f"{owner}\n{token}\n", mode=0o600, dir_mode=0o700)
