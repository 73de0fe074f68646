"""The netlink adapter: the only module that imports pyroute2 or speaks rtnetlink.

``netns(path)`` opens an ``IPRoute`` socket inside a network namespace (a path
such as ``/proc/PID/ns/net`` or ``/run/netns/NAME``, or a name under
``/run/netns``) without moving the calling process: pyroute2 forks a helper
that enters the namespace, creates the socket and hands it back. ``flags=0``
stops pyroute2 from creating a namespace that does not exist yet.

``here()`` serves an ip.host start or stop in our own namespace with a plain
``NETLINK_ROUTE`` socket and hand-built messages instead: pyroute2 0.9 runs every
request through an asyncio loop, ~20 ms for the five requests of a start on a small
VM (a third of the ip unit's time), where the raw requests take well under 1 ms.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
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


class _Addresses:
    """What both adapters share: adding and removing an address, no-ops when done."""

    def addresses(self, dev: str) -> list[Address]:
        raise NotImplementedError

    def _addr(self, command: str, dev: str, address: str, prefixlen: int) -> None:
        raise NotImplementedError

    def add_address(self, dev: str, address: str, prefixlen: int) -> None:
        """Add an address; adding one that is already there is a no-op."""
        if Address(address=address, prefixlen=prefixlen) not in self.addresses(dev):
            self._addr("add", dev, address, prefixlen)

    def del_address(self, dev: str, address: str, prefixlen: int) -> None:
        """Remove an address; removing one that is absent is a no-op."""
        if Address(address=address, prefixlen=prefixlen) in self.addresses(dev):
            self._addr("del", dev, address, prefixlen)


class Netlink(_Addresses):
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

    def _addr(self, command: str, dev: str, address: str, prefixlen: int) -> None:
        what = f"{'add' if command == 'add' else 'delete'} {address}/{prefixlen}"
        self._do(
            f"{what} {'to' if command == 'add' else 'from'} {dev}",
            self._ipr.addr,
            command,
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


# rtnetlink (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 18, 20, 21, 22
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_LOWER_UP = 0x10000
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, link index
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, link index, flags, change mask


def _attr(kind: int, data: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    return struct.pack("=HH", 4 + len(data), kind) + data + bytes(-len(data) % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    """rtattrs → {type: payload} (pure, tested)."""
    found: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        found.setdefault(kind, data[off + 4 : off + length])
        off += (length + 3) & ~3
    return found


def address_request(command: str, index: int, address: str, prefixlen: int) -> tuple[
        int, int, bytes]:  # fmt: skip
    """The type, flags and body of an RTM_NEWADDR (``add``) or RTM_DELADDR message (pure,
    tested): what pyroute2's ``addr()`` sends, IFA_LOCAL and IFA_ADDRESS for IPv4,
    IFA_ADDRESS for IPv6."""
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    body = _IFADDRMSG.pack(family, prefixlen, 0, 0, index)
    if ip.version == 4:
        body += _attr(IFA_LOCAL, ip.packed)
    body += _attr(IFA_ADDRESS, ip.packed)
    kind, flags = RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK
    if command == "add":
        flags |= NLM_F_CREATE | NLM_F_EXCL
    else:
        kind = RTM_DELADDR
    return kind, flags, body


def parse_addresses(data: bytes, index: int) -> tuple[list[Address], bool]:
    """RTM_NEWADDR messages of a dump → the addresses of link ``index``, and whether the
    dump is over (pure, tested). Raises NetlinkError on an error message."""
    found: list[Address] = []
    off = 0
    while off + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, off)
        if length < _HEADER.size:
            break
        body = data[off + _HEADER.size : off + length]
        off += (length + 3) & ~3
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            _raise(body, "list addresses")
            continue
        if kind != RTM_NEWADDR or len(body) < _IFADDRMSG.size:
            continue
        family, plen, _, _, ifindex = _IFADDRMSG.unpack_from(body)
        raw = _attrs(body[_IFADDRMSG.size :]).get(IFA_ADDRESS)
        if ifindex == index and raw is not None and family in (socket.AF_INET, socket.AF_INET6):
            found.append(Address(address=str(ipaddress.ip_address(raw)), prefixlen=plen))
    return found, False


def _raise(body: bytes, what: str) -> None:
    """An NLMSG_ERROR's error (0 is an acknowledgement) as a NetlinkError."""
    (code,) = struct.unpack_from("=i", body)
    if code:
        raise NetlinkError(f"{what}: {os.strerror(-code)}")


class Rtnl(_Addresses):
    """Our own namespace's links and addresses over a plain ``NETLINK_ROUTE`` socket:
    the requests an ip.host start or stop makes, without pyroute2 (see the module)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_ROUTE)  # fmt: skip
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def _index(self, dev: str) -> int:
        try:
            return socket.if_nametoindex(dev)
        except OSError:
            raise NetlinkError(f"no such link: {dev!r}") from None

    def _request(self, kind: int, flags: int, body: bytes) -> None:
        self._seq += 1
        message = _HEADER.pack(_HEADER.size + len(body), kind, flags, self._seq, 0) + body
        try:
            self._sock.send(message)
        except OSError as exc:
            raise NetlinkError(f"netlink request failed: {exc.strerror}") from None

    def _receive(self) -> bytes:
        try:
            return self._sock.recv(1 << 16)
        except OSError as exc:
            raise NetlinkError(f"netlink answer failed: {exc.strerror}") from None

    def link_exists(self, dev: str) -> bool:
        try:
            socket.if_nametoindex(dev)
        except OSError:
            return False
        return True

    def carrier(self, dev: str) -> bool:
        """True when the link has carrier (``IFF_LOWER_UP``, which SIOCGIFFLAGS lacks)."""
        self._request(RTM_GETLINK, NLM_F_REQUEST,
                      _IFINFOMSG.pack(socket.AF_UNSPEC, 0, self._index(dev), 0, 0))  # fmt: skip
        data = self._receive()
        _, kind, _, _, _ = _HEADER.unpack_from(data)
        if kind == NLMSG_ERROR:
            _raise(data[_HEADER.size :], f"read link {dev}")
        flags = _IFINFOMSG.unpack_from(data, _HEADER.size)[3]
        return bool(flags & IFF_LOWER_UP)

    def addresses(self, dev: str) -> list[Address]:
        """The IPv4 and IPv6 addresses on a link (one dump, filtered here)."""
        index = self._index(dev)
        self._request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP,
                      _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))  # fmt: skip
        found: list[Address] = []
        done = False
        while not done:
            part, done = parse_addresses(self._receive(), index)
            found += part
        return found

    def _addr(self, command: str, dev: str, address: str, prefixlen: int) -> None:
        what = f"add {address}/{prefixlen} to {dev}" if command == "add" else (
            f"delete {address}/{prefixlen} from {dev}")  # fmt: skip
        kind, flags, body = address_request(command, self._index(dev), address, prefixlen)
        self._request(kind, flags, body)
        data = self._receive()
        _, kind, _, _, _ = _HEADER.unpack_from(data)
        if kind == NLMSG_ERROR:
            _raise(data[_HEADER.size :], what)


@contextmanager
def here() -> Iterator[Rtnl]:
    """An :class:`Rtnl` on our own network namespace."""
    try:
        rtnl = Rtnl()
    except OSError as exc:
        raise NetlinkError(f"cannot open netlink: {exc.strerror}") from exc
    try:
        yield rtnl
    finally:
        rtnl.close()


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
