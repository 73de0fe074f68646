"""ip.host and ip.netns (opensvc.md §2.4).

Addresses go through ``runtime/adapters/netlink.py``: pyroute2 for a container's
namespace, plain rtnetlink requests in our own (pyroute2's cost ~20 ms a start). Link
plumbing for ip.netns (veth, macvlan, moving links into a container's netns)
uses the ``ip`` command, which the netlink wrapper does not offer.

Before adding an address, start refuses when the link has no carrier
(``check_carrier``) and when the address already answers: for IPv4 an ARP
probe on ``dev`` (``arp.py``, 100 ms); for IPv6 a ping. An ``om`` start checks
in its abort phase, every ip resource at once (om3 checks there only); the unit's
own start checks again only when no acting ``om`` did. After adding it, a gratuitous
ARP is broadcast. The status probe and the abort check read the own netns without
netlink (``ifaddrs.py``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omc.runtime import safefs

from . import settings
from .arp import arp_alive, gratuitous_arp, in_netns
from .base import ActionLog, DriverError, Probe, ResourceView, Status, acting
from .command import Runner, probe, run, subprocess_runner
from .ifaddrs import IFF_RUNNING, IFF_UP, ipv4_labels, link_flags, local_addresses, next_label


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What an ip resource asks for: the address, its prefix, the link (and label)."""

    address: str
    prefixlen: int
    dev: str
    label: str | None = None
    note: str | None = None  # set when the address comes from the name cache

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version


def resolve(name: str, cache: Path | None = None) -> tuple[str, str | None]:
    """An address as given, or what a DNS name resolves to, with the cache note.

    As OpenSVC does, a resolved name is kept in ``cache``; when a later lookup
    fails, the cached address is used and the note says so (a warning).
    """
    try:
        return str(ipaddress.ip_address(name)), None
    except ValueError:
        pass
    try:
        address = str(socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)[0][4][0])
    except OSError as exc:
        cached = _read_cache(cache, name)
        if cached is None:
            raise DriverError(f"cannot resolve {name!r}: {exc}") from None
        return cached, f"cannot resolve {name!r} ({exc}): using the cached {cached}"
    if cache is not None and _read_cache(cache, name) != address:
        with contextlib.suppress(OSError):
            safefs.write_file(cache, json.dumps({"name": name, "address": address}))
    return address, None


def _read_cache(cache: Path | None, name: str) -> str | None:
    if cache is None:
        return None
    try:
        data = json.loads(safefs.read_text(cache))
    except (OSError, ValueError):
        return None
    return str(data["address"]) if isinstance(data, dict) and data.get("name") == name else None


def name_cache(res: ResourceView) -> Path | None:
    """``<var>/<kind>/<name>/<rid>.ipname``: the last address the name resolved to."""
    from omc.runtime.layout import resource_file

    try:
        return resource_file(res.ref, res.rid, ".ipname")
    except (ValueError, DriverError):
        return None


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
    name = settings.required(res, "name", "ipname")
    address, note = resolve(name, name_cache(res) if _is_name(name) else None)
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
    return Target(address=address, prefixlen=plen, dev=dev, label=label, note=note)


def _is_name(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return True
    return False


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
        """Veto a start when the link has no carrier or the address answers elsewhere
        (the "address alive" check: om3 runs it here, in the abort phase, only).

        Read with two ioctls (:mod:`.ifaddrs`), not netlink: pyroute2's import alone
        would cost more than the whole check."""
        dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
        flags = link_flags(dev)
        if flags is None:
            return f"no link {dev}"
        name = settings.required(res, "name", "ipname")
        address, _ = resolve(name, name_cache(res) if _is_name(name) else None)
        if address in local_addresses(dev):
            return None
        carrier = flags & IFF_UP and flags & IFF_RUNNING
        if settings.boolean(res, "check_carrier", default=True) and not carrier:
            return f"{dev} has no carrier"
        tgt = Target(address=address, prefixlen=0, dev=dev)
        return f"{address} is alive" if self._alive(tgt, None) else None

    def status(self, res: ResourceView) -> Probe:
        return self._fast_status(res) if self._netns(res) is None else self._netlink_status(res)

    def _fast_status(self, res: ResourceView) -> Probe:
        """The status in our own netns with two ioctls and one /proc read."""
        dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
        flags = link_flags(dev)
        if flags is None:
            return Probe(status=Status.DOWN, warnings=(f"no link {dev}",))
        try:
            name = settings.required(res, "name", "ipname")
            address, note = resolve(name, name_cache(res) if _is_name(name) else None)
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        up = address in local_addresses(dev)
        notes = (note,) if note else ()
        carrier = flags & IFF_UP and flags & IFF_RUNNING
        if not carrier and settings.boolean(res, "check_carrier", default=True):
            return Probe(
                status=Status.WARN if up else Status.DOWN, warnings=(*notes, f"{dev} no carrier")
            )
        return Probe(status=Status.UP if up else Status.DOWN, warnings=notes)

    def _netlink_status(self, res: ResourceView) -> Probe:
        from omc.runtime.adapters.netlink import NetlinkError, netns

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
        from omc.runtime.adapters.netlink import NetlinkError

        try:
            with _netlink(self._netns(res)) as nl:
                self._start(res, log, nl, vetted=acting(log))
        except NetlinkError as exc:
            raise DriverError(str(exc)) from None

    def _start(
        self,
        res: ResourceView,
        log: ActionLog,
        nl: Any,
        netns_path: str | None = None,
        *,
        vetted: bool = False,
    ) -> None:
        """Add the address. ``vetted``: the acting ``om`` checked it is not alive in its
        abort phase a moment ago; otherwise (a ``driver start`` run by hand, a container's
        address, which has no abort phase) the check runs here."""
        dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
        if not nl.link_exists(dev):
            raise DriverError(f"no link {dev}")
        present = nl.addresses(dev)
        tgt = target(res, existing=present)
        if tgt.note:
            log.warning(tgt.note)
        if any(a.address == tgt.address for a in present):
            log.info(f"{tgt.address} is already up on {dev}")
            return
        if settings.boolean(res, "check_carrier", default=True) and not nl.carrier(dev):
            raise DriverError(f"abort! {dev} has no carrier")
        if not vetted and self._alive(tgt, netns_path):
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
        from omc.runtime.adapters.netlink import NetlinkError

        try:
            with _netlink(self._netns(res)) as nl:
                dev = split_dev(settings.required(res, "dev", "ipdev"))[0]
                present = nl.addresses(dev) if nl.link_exists(dev) else []
                tgt = target(res, existing=present)
                found = [a for a in present if a.address == tgt.address]
                if not found:
                    log.info(f"{tgt.address} is already down on {dev}")
                    return
                for a in found:
                    log.info(f"delete {a.address}/{a.prefixlen} from {dev}")
                    nl.del_address(dev, a.address, a.prefixlen)
        except NetlinkError as exc:
            raise DriverError(str(exc)) from None


def _netlink(path: str | None) -> contextlib.AbstractContextManager[Any]:
    """Netlink in the namespace at ``path``; our own (``None``) without pyroute2, whose
    requests cost ~20 ms of an ip.host start (:func:`netlink.here`)."""
    from omc.runtime.adapters.netlink import here, netns

    return here() if path is None else netns(path)


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
        from . import get
        from .unitfile import load

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
        nsdev, ns = self._nsdev(res), str(pid)
        if mode == "bridge":
            host = host_ifname(pid, res.rid)
            veth = ("type", "veth", "peer", "name", nsdev, "netns", ns)
            return [
                ("ip", "link", "add", host, *veth),
                ("ip", "link", "set", host, "master", dev, "up"),
            ]
        if mode == "macvlan" or mode.startswith("ipvlan-"):
            kind, _, sub = mode.partition("-")
            child = ("link", dev, "name", nsdev, "netns", ns, "type", kind, "mode", sub or "bridge")
            return [("ip", "link", "add", *child)]
        if mode == "dedicated":
            rename = ("nsenter", "-t", ns, "-n", "ip", "link", "set", dev, "name", nsdev)
            return [("ip", "link", "set", dev, "netns", ns), rename]
        supported = "bridge, macvlan, ipvlan-l2, ipvlan-l3, ipvlan-l3s, dedicated"
        raise DriverError(f"ip.netns mode {mode!r} is not supported ({supported})")

    def start(self, res: ResourceView, log: ActionLog) -> None:
        from omc.runtime.adapters.netlink import NetlinkError, netns

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
