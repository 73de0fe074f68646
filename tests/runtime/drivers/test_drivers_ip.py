"""ip.host / ip.netns pure logic: addresses, masks, labels, ARP frames, plumbing argv.

The real add/remove/ARP runs are in test_drivers_lab.py, inside lab nodes:
ip tests never touch this host's addresses.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from omc.runtime.adapters import netlink
from omc.runtime.adapters.netlink import Address
from omc.runtime.drivers import DriverError, Status, arp, ifaddrs, ip

from .helpers import view


@pytest.mark.parametrize(
    ("mask", "version", "expected"),
    [
        ("24", 4, 24),
        ("/16", 4, 16),
        ("255.255.255.0", 4, 24),
        ("255.255.252.0", 4, 22),
        ("64", 6, 64),
    ],
)
def test_prefixlen(mask: str, version: int, expected: int) -> None:
    """Netmasks are prefix lengths or dotted quads (IPv4 only)."""
    assert ip.prefixlen(mask, version) == expected


@pytest.mark.parametrize(("mask", "version"), [("33", 4), ("255.0.255.0", 4), ("ffff::", 6)])
def test_prefixlen_rejects(mask: str, version: int) -> None:
    """Impossible masks are DriverErrors naming the value."""
    with pytest.raises(DriverError):
        ip.prefixlen(mask, version)


@pytest.mark.parametrize(
    ("dev", "expected"), [("eth0", ("eth0", None)), ("eth0:1", ("eth0", "eth0:1"))]
)
def test_split_dev(dev: str, expected: tuple[str, str | None]) -> None:
    """``dev:n`` names the link and the label."""
    assert ip.split_dev(dev) == expected


def test_target_borrows_netmask_from_link() -> None:
    """Without netmask, the prefix of an address of the same family on dev is used."""
    res = view("ip.host", {"name": "10.0.0.10", "dev": "eth0"})
    existing = [Address(address="fe80::1", prefixlen=64), Address(address="10.0.0.2", prefixlen=22)]
    assert ip.target(res, existing=existing) == ip.Target(
        address="10.0.0.10", prefixlen=22, dev="eth0"
    )


def test_target_without_any_mask_is_an_error() -> None:
    """No netmask and nothing to borrow from: a clear error."""
    with pytest.raises(DriverError, match="no netmask"):
        ip.target(view("ip.host", {"ipname": "10.0.0.10", "ipdev": "eth0"}), existing=[])


def test_resolve_names_and_literals() -> None:
    """Literal addresses pass through; names resolve (localhost is always known)."""
    assert ip.resolve("10.1.2.3") == ("10.1.2.3", None)
    assert ip.resolve("localhost")[0] in ("127.0.0.1", "::1")
    with pytest.raises(DriverError, match="cannot resolve"):
        ip.resolve("no-such-host.invalid")


def test_resolved_names_are_cached_for_failed_lookups(tmp_path: Path) -> None:
    """A name resolved once is served from the cache, with a note, when DNS later fails."""
    cache = tmp_path / "ip#0.ipname"
    address, _ = ip.resolve("localhost", cache)
    cache.write_text(cache.read_text().replace('"localhost"', '"no-such-host.invalid"'))
    got, note = ip.resolve("no-such-host.invalid", cache)
    assert got == address
    assert note is not None
    assert note.startswith("cannot resolve 'no-such-host.invalid' (")
    assert note.endswith(f"): using the cached {address}")


MAC = bytes.fromhex("020000000001")


def test_gratuitous_arp_frame_layout() -> None:
    """A broadcast ARP request whose sender and target IP are both the address."""
    frame = arp.arp_frame(op=1, mac=MAC, sender_ip="10.0.0.10", target_ip="10.0.0.10")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12] == MAC
    assert frame[12:14] == b"\x08\x06"
    assert frame[20:22] == b"\x00\x01"
    assert frame[28:32] == frame[38:42] == socket.inet_aton("10.0.0.10")


def test_arp_claims_detects_other_hosts_only() -> None:
    """A frame from another MAC with our address as sender is a claim; our own is not."""
    other = arp.arp_frame(
        op=2, mac=bytes.fromhex("020000000002"), sender_ip="10.0.0.10", target_ip="0.0.0.0"
    )
    mine = arp.arp_frame(op=1, mac=MAC, sender_ip="10.0.0.10", target_ip="10.0.0.10")
    probe = arp.arp_frame(
        op=1, mac=bytes.fromhex("020000000002"), sender_ip="0.0.0.0", target_ip="10.0.0.10"
    )
    assert arp.arp_claims(other, "10.0.0.10", MAC)
    assert not arp.arp_claims(mine, "10.0.0.10", MAC)
    assert not arp.arp_claims(probe, "10.0.0.10", MAC)


def test_an_answer_queued_by_the_deadline_counts() -> None:
    """A claim the kernel queued before the probe's deadline is read after it (a late
    process), behind frames that claim nothing; an empty queue answers at once."""
    other = bytes.fromhex("020000000002")
    claim = arp.arp_frame(op=2, mac=other, sender_ip="10.0.0.10", target_ip="0.0.0.0")
    noise = arp.arp_frame(op=1, mac=other, sender_ip="10.0.0.3", target_ip="10.0.0.4")
    mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with mine, peer:
        assert not arp._queued_claim(mine, "10.0.0.10", MAC)
        peer.send(noise)
        peer.send(claim)
        assert arp._queued_claim(mine, "10.0.0.10", MAC)
        peer.send(noise)
        assert not arp._queued_claim(mine, "10.0.0.10", MAC)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "bridge",
            [
                (
                    "ip",
                    "link",
                    "add",
                    "om42120",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth1",
                    "netns",
                    "4212",
                ),
                ("ip", "link", "set", "om42120", "master", "br0", "up"),
            ],
        ),
        (
            "macvlan",
            [
                (
                    "ip",
                    "link",
                    "add",
                    "link",
                    "br0",
                    "name",
                    "eth1",
                    "netns",
                    "4212",
                    "type",
                    "macvlan",
                    "mode",
                    "bridge",
                )
            ],
        ),
        (
            "ipvlan-l2",
            [
                (
                    "ip",
                    "link",
                    "add",
                    "link",
                    "br0",
                    "name",
                    "eth1",
                    "netns",
                    "4212",
                    "type",
                    "ipvlan",
                    "mode",
                    "l2",
                )
            ],
        ),
    ],
)
def test_netns_plumbing_argv(mode: str, expected: list[tuple[str, ...]]) -> None:
    """Each ip.netns mode creates nsdev inside the container with these ip commands."""
    res = view(
        "ip.netns",
        {"dev": "br0", "nsdev": "eth1", "mode": mode, "netns": "container#0"},
        rid="ip#0",
    )
    assert ip.NetnsIp().plumb_argv(res, 4212) == expected


def test_netns_unknown_mode_is_an_error() -> None:
    """Unsupported modes (ovs) are refused with the list of supported ones."""
    res = view("ip.netns", {"dev": "br0", "mode": "ovs", "netns": "container#0"})
    with pytest.raises(DriverError, match="not supported"):
        ip.NetnsIp().plumb_argv(res, 1)


def test_parse_ifconf_records() -> None:
    """SIOCGIFCONF records give labels and IPv4 addresses (secondary ones share the label)."""

    def record(label: str, address: str) -> bytes:
        sockaddr = struct.pack("H2x4s8x", socket.AF_INET, socket.inet_aton(address))
        return label.encode().ljust(16, b"\0") + sockaddr + b"\0" * 8

    buf = record("eth0", "10.0.0.2") + record("eth0", "10.0.0.10") + record("eth0:1", "10.0.0.11")
    assert ifaddrs.parse_ifconf(buf) == [
        ("eth0", "10.0.0.2"),
        ("eth0", "10.0.0.10"),
        ("eth0:1", "10.0.0.11"),
    ]


def test_parse_if_inet6() -> None:
    """/proc/net/if_inet6 lines give devices and IPv6 addresses."""
    text = (
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
    )
    assert ifaddrs.parse_if_inet6(text) == [("eth0", "fe80::1"), ("lo", "::1")]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"name": "127.0.0.1", "dev": "lo"}, Status.UP),
        ({"name": "127.0.0.199", "dev": "lo"}, Status.DOWN),
        ({"name": "::1", "dev": "lo"}, Status.UP),
        ({"name": "127.0.0.1", "dev": "no-such-link0"}, Status.DOWN),
    ],
)
def test_fast_status_reads_this_host_without_changing_it(
    config: dict[str, object], expected: Status
) -> None:
    """Read-only, on this host's loopback: the ioctl/proc status path (no pyroute2)."""
    assert ip.HostIp().status(view("ip.host", config)).status is expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([], "eth0:0"), (["eth0", "eth0:0"], "eth0:1"), (["eth0:0", "eth0:2"], "eth0:1")],
)
def test_next_label(labels: list[str], expected: str) -> None:
    """alias=false stacks the address under the first free dev:n label."""
    assert ifaddrs.next_label("eth0", labels) == expected


def test_raw_address_requests_carry_what_pyroute2_sends() -> None:
    """RTM_NEWADDR with create+exclusive for ``add`` (IFA_LOCAL and IFA_ADDRESS for IPv4),
    RTM_DELADDR for ``del`` (IFA_ADDRESS only for IPv6)."""
    kind, flags, body = netlink.address_request("add", 7, "10.0.0.10", 24)
    assert (kind, flags) == (netlink.RTM_NEWADDR, 0x1 | 0x4 | 0x400 | 0x200)
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET, 24, 0, 0, 7)
    ten = socket.inet_aton("10.0.0.10")
    assert body[8:] == struct.pack("=HH", 8, 2) + ten + struct.pack("=HH", 8, 1) + ten
    kind, flags, body = netlink.address_request("del", 3, "fd00::5", 64)
    assert (kind, flags) == (netlink.RTM_DELADDR, 0x1 | 0x4)
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET6, 64, 0, 0, 3)
    assert body[8:] == struct.pack("=HH", 20, 1) + socket.inet_pton(socket.AF_INET6, "fd00::5")


def _newaddr(index: int, family: int, address: bytes, plen: int) -> bytes:
    body = struct.pack("=BBBBI", family, plen, 0, 0, index)
    body += struct.pack("=HH", 4 + len(address), 1) + address
    return struct.pack("=IHHII", 16 + len(body), netlink.RTM_NEWADDR, 2, 1, 0) + body


def test_an_address_dump_is_filtered_by_link_until_done() -> None:
    """One link's addresses out of a dump's parts; NLMSG_DONE ends it; an error raises."""
    part = _newaddr(2, socket.AF_INET, socket.inet_aton("10.0.0.2"), 24) + _newaddr(
        1, socket.AF_INET, socket.inet_aton("127.0.0.1"), 8
    )
    six = socket.inet_pton(socket.AF_INET6, "fe80::1")
    assert netlink.parse_addresses(part, 2) == ([Address(address="10.0.0.2", prefixlen=24)], False)
    done = struct.pack("=IHHII", 20, netlink.NLMSG_DONE, 2, 1, 0) + bytes(4)
    got = netlink.parse_addresses(_newaddr(2, socket.AF_INET6, six, 64) + done, 2)
    assert got == ([Address(address="fe80::1", prefixlen=64)], True)
    error = struct.pack("=IHHII", 36, netlink.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -19)
    with pytest.raises(netlink.NetlinkError, match="No such device"):
        netlink.parse_addresses(error + bytes(16), 2)


def test_raw_netlink_reads_what_pyroute2_reads() -> None:
    """Read-only, on this host's loopback: the pyroute2-free requests of an ip.host start
    see the same link, carrier and addresses as pyroute2."""
    with netlink.here() as raw, netlink.netns(None) as full:
        assert raw.link_exists("lo") and not raw.link_exists("no-such-link0")
        assert raw.carrier("lo") == full.carrier("lo")
        assert raw.addresses("lo") == full.addresses("lo")
        with pytest.raises(netlink.NetlinkError, match="no such link"):
            raw.addresses("no-such-link0")
