"""`stop` acts on what the probes see: resources up while their units are inactive
(started some other way) are really stopped (issue #10.7)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, console, created, om, status

OUTSIDE = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0b01

[fs#1]
type = flag

[app#fork]
type = forking
start = /bin/touch /run/omct/outside.fork
stop = /bin/rm -f /run/omct/outside.fork
check = /bin/test -e /run/omct/outside.fork

[app#simple]
type = simple
start = /bin/sleep 1000
"""


@pytest.fixture
def n1(lab: Lab) -> Iterator[Node]:
    node = lab.node("n1")
    yield node
    node.run(["pkill", "-fx", "/bin/sleep 1000"], check=False)  # whatever the outcome
    node.run(["rm", "-f", "/run/omct/outside.fork"])


def sleepers(node: Node) -> list[str]:
    return node.run(["pgrep", "-fx", "/bin/sleep 1000"], check=False).stdout.split()


def test_stop_stops_resources_started_outside_their_units(n1: Node) -> None:
    """A flag installed by its driver, a forking app started by hand and a simple app
    started by its driver are up with inactive units: stop runs each driver's stop
    (flag removed, stop command run, process ended) and the instance ends down."""
    with created(n1, "outside", OUTSIDE) as path:
        assert n1.run([OM, path, "driver", "start", "--rid", "fs#1"]).returncode == 0
        n1.run(["touch", "/run/omct/outside.fork"])
        assert n1.run([OM, path, "driver", "start", "--rid", "app#simple"]).returncode == 0
        assert sleepers(n1)
        assert status(n1, path) == {"avail": "up", "fs#1": "up", "app#fork": "up",
                                    "app#simple": "up"}  # fmt: skip
        stop = om(n1, path, "instance", "stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        lines = console(stop)
        for rid in ("app#simple", "app#fork", "fs#1"):
            assert f"INF {path}: {rid}: up outside its unit: driver stop" in lines, lines
        assert f"INF {path}: app#fork: run: /bin/rm -f /run/omct/outside.fork" in lines
        assert (
            f"INF {path}: fs#1: uninstall flag file /dev/shm/opensvc/svc/{path}/fs#1.flag" in lines
        )
        assert [ln for ln in lines if ln.startswith(f"INF {path}: app#simple: send SIGTERM")]
        assert not n1.path("/run/omct/outside.fork").exists()
        assert not sleepers(n1)
        assert status(n1, path) == {"avail": "down", "fs#1": "down", "app#fork": "down",
                                    "app#simple": "down"}  # fmt: skip


def test_a_selected_stop_of_a_resource_up_outside_its_unit(n1: Node) -> None:
    """`stop --rid` of such a resource stops it (and only it), leaving the restart flag."""
    with created(n1, "outside", OUTSIDE) as path:
        n1.run(["touch", "/run/omct/outside.fork"])
        assert n1.run([OM, path, "driver", "start", "--rid", "fs#1"]).returncode == 0
        stop = om(n1, path, "instance", "stop", "--rid", "app#fork")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not n1.path("/run/omct/outside.fork").exists()
        assert status(n1, path)["fs#1"] == "up"
        assert om(n1, path, "instance", "stop").returncode == 0
        assert status(n1, path)["avail"] == "down"


MOUNTED = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0b02

[fs#0]
type = ext4
dev = /var/lib/outmnt/disk0.img
mnt = /srv/outmnt
"""


def test_a_mount_made_by_hand_is_its_unit_and_stop_unmounts_it(n1: Node) -> None:
    """systemd follows the mount table: a mount made by hand makes the mount unit active,
    so stop's StopUnit unmounts it (no driver stop is needed for mounts)."""
    n1.run(["mkdir", "-p", "/var/lib/outmnt", "/srv/outmnt"])
    n1.run(["truncate", "-s", "32M", "/var/lib/outmnt/disk0.img"])
    n1.run(["mkfs.ext4", "-q", "-F", "/var/lib/outmnt/disk0.img"])
    with created(n1, "outmnt", MOUNTED) as path:
        n1.run(["mount", "-o", "loop", "/var/lib/outmnt/disk0.img", "/srv/outmnt"])
        try:
            assert status(n1, path) == {"avail": "up", "fs#0": "up"}
            state = n1.run(["systemctl", "is-active", "srv-outmnt.mount"], check=False)
            assert state.stdout.strip() == "active"
            stop = om(n1, path, "instance", "stop")
            assert stop.returncode == 0, stop.stdout + stop.stderr
            assert "outside its unit" not in stop.stdout
            assert n1.run(["findmnt", "/srv/outmnt"], check=False).returncode == 1
        finally:
            n1.run(["umount", "/srv/outmnt"], check=False)
