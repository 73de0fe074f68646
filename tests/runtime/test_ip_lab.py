"""ip.host's "address alive elsewhere" check on real lab nodes: once per start, in the
abort phase, as om3 does; the unit's start does not probe again."""

from __future__ import annotations

import ipaddress
import os
import sys
import time

import pytest
from omc.runtime.lab.api import Lab

from .test_instance_lab import created, om

pytestmark = pytest.mark.lab
# Counts the RFC 5227 probes for one address seen on eth0 (sender 0.0.0.0), one line each.
LISTENER = """\
import socket, sys
target = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("eth0", 0x0806))
open("/run/arp-ready", "w").close()
while True:
    frame = s.recv(128)
    if frame[28:32] == bytes(4) and frame[38:42] == target:
        with open("/run/arp-probes", "a") as out:
            out.write("probe\\n")
"""


def test_an_om_start_probes_the_address_once(lab: Lab) -> None:
    """n2 counts the ARP probes for the address while n1 starts the service: the abort
    phase's two (sent 50 ms apart), none from the unit's own start."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    net = ipaddress.ip_network(f"{n1.address}/24", strict=False)
    address = str(net.network_address + 150 + os.getpid() % 40)
    n2.run(["rm", "-f", "/run/arp-probes", "/run/arp-ready"])
    n2.run(["systemd-run", "--unit=omct-arp", "--collect", sys.executable, "-c", LISTENER,
            address])  # fmt: skip
    config = f"[DEFAULT]\nnodes = n1\n\n[ip#0]\nipname = {address}\nipdev = eth0\nnetmask = 24\n"
    try:
        deadline = time.monotonic() + 20
        while not n2.path("/run/arp-ready").exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with created(n1, "arpone", config):
            proc = om(n1, "arpone", "instance", "start")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            time.sleep(1)  # frames in flight reach the listener
            probes = n2.path("/run/arp-probes").read_text().splitlines()
            assert probes == ["probe", "probe"]
    finally:
        n2.run(["systemctl", "stop", "omct-arp"], check=False)
