"""Addresses and link flags of our own network namespace, read without netlink.

``print status`` probes every ip.host resource in-process, and importing
pyroute2 costs several hundred milliseconds. Two ioctls and one /proc file
give what the probe needs: SIOCGIFCONF lists every IPv4 address of every link
(secondary ones included) under its label (the link name, or ``dev:n``),
SIOCGIFFLAGS gives IFF_UP/IFF_RUNNING, and /proc/net/if_inet6 lists IPv6
addresses. Changes still go through ``runtime/netlink.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

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
    with contextlib.suppress(OSError), Path("/proc/net/if_inet6").open() as f:
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
