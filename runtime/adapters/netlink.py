"""The netlink adapter: the only module that imports pyroute2.

``netns(path)`` opens an ``IPRoute`` socket inside a network namespace (a path
such as ``/proc/PID/ns/net`` or ``/run/netns/NAME``, or a name under
``/run/netns``) without moving the calling process: pyroute2 forks a helper
that enters the namespace, creates the socket and hands it back. ``flags=0``
stops pyroute2 from creating a namespace that does not exist yet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class NetlinkError(Exception):
    """A netlink request failed (the message names the request and the device)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """One address on a link, as ``ip -br addr`` would show it."""

    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


class Netlink:
    """A thin wrapper over one ``IPRoute`` socket: links, addresses, routes."""

    def __init__(self, ipr: Any) -> None:
        self._ipr = ipr

    def close(self) -> None:
        self._ipr.close()

    def _index(self, dev: str) -> int:
        found = self._ipr.link_lookup(ifname=dev)
        if not found:
            raise NetlinkError(f"no such link: {dev!r}")
        return int(found[0])

    def _do(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except NetlinkError:
            raise
        except Exception as exc:
            raise NetlinkError(f"{what}: {exc}") from exc

    def links(self) -> list[str]:
        """Names of every link in the namespace."""
        return sorted(str(msg.get("ifname")) for msg in self._ipr.get_links())

    def link_exists(self, dev: str) -> bool:
        return bool(self._ipr.link_lookup(ifname=dev))

    def link_up(self, dev: str) -> bool:
        """True when the link is administratively up (``IFF_UP``)."""
        (msg,) = self._ipr.get_links(self._index(dev))
        return bool(msg["flags"] & 1)

    def carrier(self, dev: str) -> bool:
        """True when the link has carrier (``IFF_LOWER_UP``)."""
        (msg,) = self._ipr.get_links(self._index(dev))
        return bool(msg["flags"] & 0x10000)

    def set_up(self, dev: str, *, up: bool = True) -> None:
        state = "up" if up else "down"
        self._do(f"set {dev} {state}", self._ipr.link, "set", index=self._index(dev), state=state)

    def addresses(self, dev: str) -> list[Address]:
        """The IPv4 and IPv6 addresses on a link."""
        msgs = self._ipr.get_addr(index=self._index(dev))
        return [
            Address(address=str(msg.get("IFA_ADDRESS")), prefixlen=int(msg["prefixlen"]))
            for msg in msgs
        ]

    def add_address(self, dev: str, address: str, prefixlen: int) -> None:
        """Add an address; adding one that is already there is a no-op."""
        if Address(address=address, prefixlen=prefixlen) in self.addresses(dev):
            return
        self._do(
            f"add {address}/{prefixlen} to {dev}",
            self._ipr.addr,
            "add",
            index=self._index(dev),
            address=address,
            prefixlen=prefixlen,
        )

    def del_address(self, dev: str, address: str, prefixlen: int) -> None:
        """Remove an address; removing one that is absent is a no-op."""
        if Address(address=address, prefixlen=prefixlen) not in self.addresses(dev):
            return
        self._do(
            f"delete {address}/{prefixlen} from {dev}",
            self._ipr.addr,
            "del",
            index=self._index(dev),
            address=address,
            prefixlen=prefixlen,
        )

    def route_add(self, dst: str, *, gateway: str | None = None, dev: str | None = None) -> None:
        """Add a route to ``dst`` (CIDR or ``default``) via a gateway and/or a device."""
        self._do(f"add route {dst}", self._ipr.route, "add", **self._route(dst, gateway, dev))

    def route_del(self, dst: str, *, gateway: str | None = None, dev: str | None = None) -> None:
        self._do(f"delete route {dst}", self._ipr.route, "del", **self._route(dst, gateway, dev))

    def _route(self, dst: str, gateway: str | None, dev: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if dst != "default":
            net = ipaddress.ip_network(dst, strict=False)
            spec.update(dst=str(net.network_address), dst_len=net.prefixlen)
        if gateway is not None:
            spec["gateway"] = gateway
        if dev is not None:
            spec["oif"] = self._index(dev)
        return spec


@contextmanager
def netns(path: str | None = None) -> Iterator[Netlink]:
    """A :class:`Netlink` inside the namespace at ``path`` (``None``: the caller's own)."""
    from pyroute2 import IPRoute  # lazy: keeps `om` start-up fast

    try:
        ipr = IPRoute() if path is None else IPRoute(netns=path, flags=0)
    except Exception as exc:
        raise NetlinkError(f"cannot open netlink in {path or 'own netns'}: {exc}") from exc
    wrapper = Netlink(ipr)
    try:
        yield wrapper
    finally:
        wrapper.close()
