"""ip.host and ip.netns (opensvc.md §2.4).

Addresses go through ``runtime/netlink.py`` (the only pyroute2 importer). Link
plumbing for ip.netns (veth, macvlan, moving links into a container's netns)
uses the ``ip`` command, which the netlink wrapper does not offer.

Before adding an address, start refuses when the link has no carrier
(``check_carrier``) and when the address already answers: for IPv4 an ARP
probe (RFC 5227: sender 0.0.0.0, two probes, 0.5 s) on ``dev``; for IPv6 a
ping. After adding it, a gratuitous ARP (request with sender = target = the
address) is broadcast through a raw AF_PACKET socket (no arping needed).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, probe, run, subprocess_runner

ETH_P_ARP = 0x0806
SIOCGIFHWADDR = 0x8927
BROADCAST = b"\xff" * 6
PROBE_TIMEOUT = 0.5
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What an ip resource asks for: the address, its prefix, the link (and label)."""

    address: str
    prefixlen: int
    dev: str
    label: str | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version


def resolve(name: str) -> str:
    """An address as given, or the first address a DNS name resolves to."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise DriverError(f"cannot resolve {name!r}: {exc}") from None
    return str(infos[0][4][0])


def prefixlen(netmask: str, version: int) -> int:
    """``24`` or ``255.255.255.0`` → 24 (IPv6 takes prefix lengths only)."""
    text = netmask.strip().lstrip("/")
    if text.isdigit():
        value = int(text)
        if value > (32 if version == 4 else 128):
            raise DriverError(f"netmask /{value} is too long for IPv{version}")
        return value
    if version == 6:
        raise DriverError(f"IPv6 netmask must be a prefix length, got {netmask!r}")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        raise DriverError(f"invalid netmask {netmask!r}") from None


def split_dev(dev: str) -> tuple[str, str | None]:
    """``eth0:1`` → (``eth0``, ``eth0:1``): the link, and the label to put on the address."""
    base, sep, _ = dev.partition(":")
    return base, (dev if sep else None)


def target(res: ResourceView, *, existing: list[Any] | None = None) -> Target:
    """The resource's address, prefix and link; a missing netmask borrows the link's."""
    address = resolve(settings.required(res, "name", "ipname"))
    dev, label = split_dev(settings.required(res, "dev", "ipdev"))
    version = ipaddress.ip_address(address).version
    mask = settings.text(res, "netmask")
    if mask:
        plen = prefixlen(mask, version)
    else:
        same = [a for a in existing or () if ipaddress.ip_address(a.address).version == version]
        if not same:
            raise DriverError(f"no netmask set and no IPv{version} address on {dev} to copy")
        plen = int(same[0].prefixlen)
    return Target(address=address, prefixlen=plen, dev=dev, label=label)


SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
IFF_UP, IFF_RUNNING = 0x1, 0x40
IFREQ_SIZE = 40  # sizeof(struct ifreq) on 64-bit Linux


def parse_ifconf(buf: bytes) -> list[tuple[str, str]]:
    """SIOCGIFCONF records → (label, IPv4 address) pairs (pure, tested)."""
    pairs = []
    for off in range(0, len(buf) - IFREQ_SIZE + 1, IFREQ_SIZE):
        label = buf[off : off + 16].split(b"\0", 1)[0].decode()
        pairs.append((label, socket.inet_ntoa(buf[off + 20 : off + 24])))
    return pairs


def parse_if_inet6(text: str) -> list[tuple[str, str]]:
    """/proc/net/if_inet6 lines → (device, IPv6 address) pairs (pure, tested)."""
    pairs = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 6:
            pairs.append((words[5], str(ipaddress.IPv6Address(bytes.fromhex(words[0])))))
    return pairs


def next_label(dev: str, labels: list[str]) -> str:
    """The first ``dev:n`` (n from 0) not in use (pure, tested)."""
    n = 0
    while f"{dev}:{n}" in labels:
        n += 1
    return f"{dev}:{n}"


def ipv4_labels() -> list[tuple[str, str]]:
    """(label, IPv4 address) of every address in our netns (SIOCGIFCONF)."""
    size = IFREQ_SIZE * 64
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while True:
            buf = ctypes.create_string_buffer(size)
            req = struct.pack("iL", size, ctypes.addressof(buf))
            used = struct.unpack("iL", fcntl.ioctl(sock.fileno(), SIOCGIFCONF, req))[0]
            if used < size:
                return parse_ifconf(buf.raw[:used])
            size *= 2


def local_addresses(dev: str) -> list[str]:
    """Addresses on ``dev`` in our own netns, without netlink (fast path for status).

    IPv4 from the SIOCGIFCONF ioctl, which lists every address of every link,
    secondary ones included, under its label (the link name unless labelled
    ``dev:n``); IPv6 from /proc/net/if_inet6. Importing pyroute2 costs several
    hundred milliseconds, too much for ``print status``.
    """
    found = [a for label, a in ipv4_labels() if label.split(":")[0] == dev]
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as f:  # noqa: PTH123
        found += [a for name, a in parse_if_inet6(f.read()) if name == dev]
    return found


def link_flags(dev: str) -> int | None:
    """IFF_* flags of a link in our netns, or None when there is no such link."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            res = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack("16sH22x", dev.encode(), 0))
        except OSError:
            return None
    return int(struct.unpack("16sH22x", res)[1])


def _mac(sock: socket.socket, dev: str) -> bytes:
    ifreq = struct.pack("256s", dev.encode()[:15])
    return fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, ifreq)[18:24]


def arp_frame(*, op: int, mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    """An Ethernet broadcast ARP frame (pure, tested)."""
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    arp += mac + socket.inet_aton(sender_ip) + b"\x00" * 6 + socket.inet_aton(target_ip)
    return eth + arp


def arp_claims(frame: bytes, address: str, own_mac: bytes) -> bool:
    """Does this received frame show another host using ``address`` (reply or claim)?"""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return False
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    return sender_ip == socket.inet_aton(address) and sender_mac != own_mac


@contextlib.contextmanager
def _arp_socket(dev: str) -> Iterator[tuple[socket.socket, bytes]]:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((dev, ETH_P_ARP))
        yield sock, _mac(sock, dev)
    finally:
        sock.close()


def arp_alive(dev: str, address: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """RFC 5227 probe: does any other host answer for ``address`` on ``dev``?"""
    with _arp_socket(dev) as (sock, mac):
        frame = arp_frame(op=1, mac=mac, sender_ip="0.0.0.0", target_ip=address)
        deadline = time.monotonic() + timeout
        sock.send(frame)
        resent = False
        while (left := deadline - time.monotonic()) > 0:
            if not resent and left < timeout / 2:
                sock.send(frame)
                resent = True
            ready, _, _ = select.select([sock], [], [], min(left, timeout / 2))
            if ready and arp_claims(sock.recv(128), address, mac):
                return True
    return False


def gratuitous_arp(dev: str, address: str) -> bool:
    """Announce ``address`` on ``dev`` so neighbours update their caches."""
    with _arp_socket(dev) as (sock, mac):
        sock.send(arp_frame(op=1, mac=mac, sender_ip=address, target_ip=address))
    return True


def in_netns(path: str | None, probe_fn: Callable[[], bool]) -> bool:
    """Run ``probe_fn`` inside the network namespace at ``path`` (None: here).

    Raw sockets belong to the namespace they are created in, so the ARP work
    for a container's address runs in a forked child that ``setns()``es into
    it (Python 3.11 has no ``os.setns``: libc through ctypes); the answer
    comes back as the exit code.
    """
    if path is None:
        return probe_fn()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, seen through its exit code
        code = 2
        try:
            fd = os.open(path, os.O_RDONLY)
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) == 0:
                code = 1 if probe_fn() else 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise DriverError(f"arp in network namespace {path} failed")
    return code == 1


class HostIp:
    """An address on a host interface."""

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def label(self, res: ResourceView) -> str:
        name = settings.text(res, "name", "ipname") or "?"
        return f"{name}@{settings.text(res, 'dev', 'ipdev') or '?'}"

    def _netns(self, res: ResourceView) -> str | None:
        """Where the address lives: the node's own namespace for ip.host."""
        return None

    def _label(self, res: ResourceView, tgt: Target, netns_path: str | None) -> str | None:
        """``dev:n`` given, or the next free ``dev:n`` when ``alias = false`` (IPv4, own netns)."""
        if tgt.version != 4 or netns_path is not None:
            return None
        if tgt.label:
            return tgt.label
        if settings.boolean(res, "alias", default=True):
            return None
        return next_label(tgt.dev, [label for label, _ in ipv4_labels()])

    def _alive(self, tgt: Target, netns_path: str | None) -> bool:
        if tgt.version == 4:
            try:
                return in_netns(netns_path, lambda: arp_alive(tgt.dev, tgt.address))
            except OSError as exc:
                raise DriverError(f"arp probe on {tgt.dev} failed: {exc.strerror}") from None
        done = probe(("ping", "-6", "-c", "1", "-W", "1", "-q", tgt.address), runner=self.runner)
        return done.ok

    def abort(self, res: ResourceView) -> str | None:
        """Veto a start when the link has no carrier or the address answers elsewhere."""
        from omc.runtime.netlink import NetlinkError, netns  # noqa: PLC0415

        try:
            with netns(self._netns(res)) as nl:
                dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
                if not nl.link_exists(dev):
                    return f"no link {dev}"
                present = nl.addresses(dev)
                tgt = target(res, existing=present)
                if any(a.address == tgt.address for a in present):
                    return None
                if settings.boolean(res, "check_carrier", default=True) and not nl.carrier(dev):
                    return f"{dev} has no carrier"
        except NetlinkError as exc:
            return str(exc)
        return f"{tgt.address} is alive" if self._alive(tgt, None) else None

    def status(self, res: ResourceView) -> Probe:
        return self._fast_status(res) if self._netns(res) is None else self._netlink_status(res)

    def _fast_status(self, res: ResourceView) -> Probe:
        """The status in our own netns with two ioctls and one /proc read."""
        dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
        flags = link_flags(dev)
        if flags is None:
            return Probe(status=Status.DOWN, warnings=(f"no link {dev}",))
        try:
            address = resolve(settings.required(res, "name", "ipname"))
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        up = address in local_addresses(dev)
        carrier = flags & IFF_UP and flags & IFF_RUNNING
        if not carrier and settings.boolean(res, "check_carrier", default=True):
            return Probe(status=Status.WARN if up else Status.DOWN, warnings=(f"{dev} no carrier",))
        return Probe(status=Status.UP if up else Status.DOWN)

    def _netlink_status(self, res: ResourceView) -> Probe:
        from omc.runtime.netlink import NetlinkError, netns  # noqa: PLC0415 - pyroute2 is heavy

        try:
            with netns(self._netns(res)) as nl:
                dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
                if not nl.link_exists(dev):
                    return Probe(status=Status.DOWN, warnings=(f"no link {dev}",))
                existing = nl.addresses(dev)
                tgt = target(res, existing=existing)
                carrier = nl.carrier(dev)
        except (NetlinkError, DriverError) as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        up = any(a.address == tgt.address for a in existing)
        if not carrier and settings.boolean(res, "check_carrier", default=True):
            return Probe(status=Status.WARN if up else Status.DOWN, warnings=(f"{dev} no carrier",))
        return Probe(status=Status.UP if up else Status.DOWN)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        from omc.runtime.netlink import NetlinkError, netns  # noqa: PLC0415

        try:
            with netns(self._netns(res)) as nl:
                self._start(res, log, nl)
        except NetlinkError as exc:
            raise DriverError(str(exc)) from None

    def _start(
        self, res: ResourceView, log: ActionLog, nl: Any, netns_path: str | None = None
    ) -> None:
        dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
        if not nl.link_exists(dev):
            raise DriverError(f"no link {dev}")
        tgt = target(res, existing=nl.addresses(dev))
        if any(a.address == tgt.address for a in nl.addresses(dev)):
            log.info(f"already up: {tgt.address} is on {dev}")
            return
        if settings.boolean(res, "check_carrier", default=True) and not nl.carrier(dev):
            raise DriverError(f"abort! {dev} has no carrier")
        if self._alive(tgt, netns_path):
            raise DriverError(f"abort! {tgt.address} is alive")
        label = self._label(res, tgt, netns_path)
        if label:
            # netlink.py takes no label: the ip command sets it (IPv4 only, as in the kernel).
            cidr = f"{tgt.address}/{tgt.prefixlen}"
            run(
                ("ip", "addr", "add", cidr, "dev", dev, "label", label), log=log, runner=self.runner
            )
        else:
            log.info(f"add {tgt.address}/{tgt.prefixlen} to {dev}")
            nl.add_address(dev, tgt.address, tgt.prefixlen)
        if tgt.version == 4:
            try:
                in_netns(netns_path, lambda: gratuitous_arp(dev, tgt.address))
                log.info(f"send gratuitous arp for {tgt.address} on {dev}")
            except OSError as exc:
                log.warning(f"gratuitous arp on {dev} failed: {exc.strerror}")

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        from omc.runtime.netlink import NetlinkError, netns  # noqa: PLC0415

        try:
            with netns(self._netns(res)) as nl:
                dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
                present = nl.addresses(dev) if nl.link_exists(dev) else []
                tgt = target(res, existing=present)
                found = [a for a in present if a.address == tgt.address]
                if not found:
                    log.info(f"already down: {tgt.address} is not on {dev}")
                    return
                for a in found:
                    log.info(f"delete {a.address}/{a.prefixlen} from {dev}")
                    nl.del_address(dev, a.address, a.prefixlen)
        except NetlinkError as exc:
            raise DriverError(str(exc)) from None


def host_ifname(pid: int, rid: str) -> str:
    """The host side of an ip.netns veth: short (IFNAMSIZ 15) and unique per container+rid."""
    return f"om{pid}{rid.split('#', 1)[-1]}"[:15]


class NetnsIp(HostIp):
    """An address inside a container's network namespace (``netns = container#x``).

    Modes: ``bridge`` (default: a veth pair, host side enslaved to the bridge
    ``dev``), ``macvlan``/``ipvlan-*`` (a child link of ``dev``), ``dedicated``
    (``dev`` itself moved in). When ``nsdev`` already exists in the container
    (a podman network's eth0), only the address is added.
    """

    def label(self, res: ResourceView) -> str:
        name = settings.text(res, "name", "ipname") or "?"
        return f"{name}@{self._nsdev(res)}@{settings.text(res, 'netns') or '?'}"

    def abort(self, res: ResourceView) -> str | None:
        """No veto: the container holding the netns is not started yet at abort time."""
        return None

    def _nsdev(self, res: ResourceView) -> str:
        return settings.text(res, "nsdev") or "eth0"

    def _pid(self, res: ResourceView) -> int:
        from . import get  # noqa: PLC0415 - the container driver, for the pid
        from .unitfile import load  # noqa: PLC0415

        other = load(res.path, settings.required(res, "netns"))
        driver = get(other.driver)
        if not hasattr(driver, "pid"):
            raise DriverError(f"{other.rid} ({other.driver}) has no network namespace to join")
        return int(driver.pid(other))

    def _netns(self, res: ResourceView) -> str | None:
        return f"/proc/{self._pid(res)}/ns/net"

    def _settings_view(self, res: ResourceView) -> ResourceView:
        """The same resource with ``dev`` pointing at the link inside the container."""
        config = dict(res.config)
        config["dev"] = self._nsdev(res)
        config.pop("ipdev", None)
        config["check_carrier"] = False
        return ResourceView(
            path=res.path, rid=res.rid, driver=res.driver, config=config, tags=res.tags,
            subset=res.subset, flags=res.flags, unit=res.unit, object_id=res.object_id,
        )  # fmt: skip

    def status(self, res: ResourceView) -> Probe:
        try:
            return super().status(self._settings_view(res))
        except DriverError as exc:
            return Probe(status=Status.DOWN, messages=(str(exc),))

    def plumb_argv(self, res: ResourceView, pid: int) -> list[tuple[str, ...]]:
        """The ``ip`` commands creating ``nsdev`` inside the container (pure, tested)."""
        mode = settings.text(res, "mode") or "bridge"
        dev = settings.required(res, "dev", "ipdev")
        nsdev = self._nsdev(res)
        if mode == "bridge":
            host = host_ifname(pid, res.rid)
            return [
                (
                    "ip",
                    "link",
                    "add",
                    host,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    nsdev,
                    "netns",
                    str(pid),
                ),
                ("ip", "link", "set", host, "master", dev, "up"),
            ]
        if mode == "macvlan" or mode.startswith("ipvlan-"):
            kind, _, sub = mode.partition("-")
            extra = ("mode", "bridge") if kind == "macvlan" else ("mode", sub)
            return [
                (
                    "ip",
                    "link",
                    "add",
                    "link",
                    dev,
                    "name",
                    nsdev,
                    "netns",
                    str(pid),
                    "type",
                    kind,
                    *extra,
                )
            ]
        if mode == "dedicated":
            return [
                ("ip", "link", "set", dev, "netns", str(pid)),
                ("nsenter", "-t", str(pid), "-n", "ip", "link", "set", dev, "name", nsdev),
            ]
        raise DriverError(
            f"ip.netns mode {mode!r} is not supported (bridge, macvlan, ipvlan-*, dedicated)"
        )

    def start(self, res: ResourceView, log: ActionLog) -> None:
        from omc.runtime.netlink import NetlinkError, netns  # noqa: PLC0415

        pid = self._pid(res)
        inner = self._settings_view(res)
        nsdev = self._nsdev(res)
        path = f"/proc/{pid}/ns/net"
        try:
            with netns(path) as nl:
                if not nl.link_exists(nsdev):
                    for argv in self.plumb_argv(res, pid):
                        run(argv, log=log, runner=self.runner)
                if not nl.link_up(nsdev):
                    nl.set_up(nsdev)
                self._start(inner, log, nl, path)
                gateway = settings.text(res, "gateway")
                if gateway:
                    with contextlib.suppress(NetlinkError):
                        nl.route_add("default", gateway=gateway, dev=nsdev)
        except NetlinkError as exc:
            raise DriverError(str(exc)) from None

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        try:
            pid = self._pid(res)
        except DriverError as exc:
            log.info(f"already down: {exc}")
            return
        super().stop(self._settings_view(res), log)
        host = host_ifname(pid, res.rid)
        if probe(("ip", "link", "show", host), runner=self.runner).ok:
            run(("ip", "link", "del", host), log=log, runner=self.runner)
