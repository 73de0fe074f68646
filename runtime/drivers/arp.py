"""ARP on a raw AF_PACKET socket: the "is this address alive?" probe and the announce.

No arping is installed here, and a raw socket is all it takes: an RFC 5227
probe (sender 0.0.0.0; any other host using the address answers or claims it)
before adding an address, and a gratuitous ARP (request with sender = target =
the address) after. The probe is sent twice within :data:`PROBE_TIMEOUT` (100 ms):
a host on the link answers an ARP request in well under a millisecond (its kernel
does, no process is involved), and a start waits for this probe (RFC 5227's own 3-7 s
are meant for hosts configuring an address they picked themselves, not for a takeover
that must be quick; docs/drivers.md, ip.host, says why the bound is enough). Raw
sockets belong to the network namespace they are created in, so :func:`in_netns` runs
the work in a forked child that has entered a container's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

from .base import DriverError

ETH_P_ARP = 0x0806
SIOCGIFHWADDR = 0x8927
BROADCAST = b"\xff" * 6
PROBE_TIMEOUT = 0.1
CLONE_NEWNET = 0x40000000


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
    """A raw ARP socket on ``dev``. Created with protocol 0, then bound with ARP's: a
    socket created with a protocol receives on every link at once, and binding it then
    waits for an RCU grace period (``synchronize_net()``) to move it, 100 ms and more
    on a busy host."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((dev, ETH_P_ARP))
        yield sock, _mac(sock, dev)
    finally:
        # Closing a packet socket waits for a grace period too: not on the action's time.
        threading.Thread(target=sock.close, name="arp-close", daemon=True).start()


def arp_alive(dev: str, address: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """RFC 5227 probe: does any other host answer for ``address`` on ``dev``?

    The first answer ends the wait; no answer waits ``timeout``. Frames the kernel
    queued before the deadline are read even when this process runs late (a loaded
    host): an answer in time is never lost to our own scheduling."""
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
        return _queued_claim(sock, address, mac)


def _queued_claim(sock: socket.socket, address: str, mac: bytes) -> bool:
    """Whether a frame already in the socket's queue claims ``address`` (no wait)."""
    while True:
        try:
            frame = sock.recv(128, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        if arp_claims(frame, address, mac):
            return True


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
