"""What a local user can do to root through omc's files and sockets (issue #10, items 1-3).

The tests share one private one-node lab (a fresh node, where ``/dev/shm/opensvc``
and ``/run/opensvc`` do not exist until omc makes them: each test wipes them first),
with a real unprivileged user created in it (``useradd`` inside the node: its /etc
is an overlay; ``-M``: no home directory, the node shares the host's /home). The
user acts with ``setpriv`` (real uid, gid, no supplementary groups); root acts
through ``om`` and the node's executor, as an admin would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest
from omc.runtime.lab.api import Lab, Node

pytestmark = pytest.mark.lab

OM = str(Path(sys.executable).parent / "om")
USER = "omcevil"
OBJ = "h1"
RELAY = f"/run/opensvc/action/root_svc_{OBJ}.sock"
CONFIG = """[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0010

[fs#1]
type = flag

[app#0]
start = /bin/true
check = /bin/true
pre_start = /bin/sh -c "sleep 3; printf '\\033[2Jcleared\\n'"
"""
# What omc may write on a node, and what the tests plant: wiped between tests.
OMC_TREES = ("/dev/shm/opensvc", "/run/opensvc", "/var/lib/opensvc")
VICTIMS = ("/etc/omct-nologin", "/etc/omct-lockvictim")


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    if os.geteuid() != 0:
        pytest.fail("the lab needs root: run the tests as root")
    booted = Lab.up(f"h{os.getpid()}"[:10], nodes=1, etcd=False)
    try:
        n1 = booted.node("n1")
        n1.run(["useradd", "-M", "-s", "/bin/sh", USER])
        yield n1
    finally:
        booted.down()


def uid(node: Node) -> int:
    return int(node.run(["id", "-u", USER]).stdout)


def as_user(node: Node, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by the unprivileged user (sh -c)."""
    setpriv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--"]
    return node.run([*setpriv, "sh", "-c", script], check=False)


def om(node: Node, *args: str, umask: str = "022") -> subprocess.CompletedProcess[str]:
    """``om`` as root, under ``umask`` (the executor's worker takes the client's)."""
    return node.run(["sh", "-c", f'umask {umask}; exec "$@"', "om", OM, *args], check=False,
                    timeout=120)  # fmt: skip


@pytest.fixture
def clean(node: Node) -> Iterator[Node]:
    """A node where omc has written nothing yet; the object is created by each test."""
    node.run(["rm", "-rf", *OMC_TREES, *VICTIMS])
    node.write_file(f"/run/omct/{OBJ}.conf", CONFIG)
    try:
        yield node
    finally:
        om(node, OBJ, "instance", "shutdown")
        om(node, OBJ, "delete")
        node.run(["rm", "-rf", *OMC_TREES, *VICTIMS])


def create(node: Node) -> None:
    proc = om(node, OBJ, "create", "--config", f"/run/omct/{OBJ}.conf")
    assert proc.returncode == 0, proc.stderr


def statuses(node: Node) -> dict[str, str]:
    proc = om(node, OBJ, "print", "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    inst = next(iter(json.loads(proc.stdout)["instances"].values()))
    return {rid: r["status"] for rid, r in inst["resources"].items()}


def test_flag_start_refuses_a_user_planted_symlink(clean: Node) -> None:
    """A user's /dev/shm/opensvc with a flag symlink to /etc: start refuses, naming the owner."""
    planted = as_user(
        clean, f"mkdir -p /dev/shm/opensvc/svc/{OBJ} && "
        f"ln -s /etc/omct-nologin '/dev/shm/opensvc/svc/{OBJ}/fs#1.flag'",
    )  # fmt: skip
    assert planted.returncode == 0, planted.stderr
    create(clean)
    start = om(clean, OBJ, "instance", "start")
    assert not clean.path("/etc/omct-nologin").exists()
    assert start.returncode != 0
    said = start.stdout + start.stderr
    assert f"/dev/shm/opensvc is owned by {USER} (uid {uid(clean)}), not root" in said, said


def test_flag_owned_by_a_user_does_not_count_as_up(clean: Node) -> None:
    """A flag file the user made in a directory of theirs is not the resource being up."""
    create(clean)
    planted = as_user(
        clean,
        f"mkdir -p /dev/shm/opensvc/svc/{OBJ} && touch '/dev/shm/opensvc/svc/{OBJ}/fs#1.flag'",
    )
    assert planted.returncode == 0, planted.stderr
    assert statuses(clean)["fs#1"] != "up"


def test_umask_000_leaves_nothing_group_or_world_writable(clean: Node) -> None:
    """Root's umask 000: every directory and file omc makes still has its fixed mode."""
    create(clean)
    actions = (("start",), ("stop", "--rid", "app#0"), ("freeze",), ("unfreeze",), ("start",))
    for args in (("instance", *a) for a in actions):
        proc = om(clean, OBJ, *args, umask="000")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    found = clean.run(["find", *OMC_TREES, "-perm", "/022", "!", "-type", "l"], check=False)
    assert found.stdout == ""
    assert clean.run(["find", *OMC_TREES, "!", "-user", "root"], check=False).stdout == ""


def test_user_cannot_plant_a_lock_symlink(clean: Node) -> None:
    """After a start under umask 000, the user cannot swap the lock file for a symlink."""
    create(clean)
    assert om(clean, OBJ, "instance", "start", umask="000").returncode == 0
    lock = f"/run/opensvc/lock/root_svc_{OBJ}.lock"
    as_user(clean, f"rm -f {lock}; ln -s /etc/omct-lockvictim {lock}")
    om(clean, OBJ, "instance", "stop", umask="000")
    assert not clean.path("/etc/omct-lockvictim").exists()
    assert clean.path(lock).is_file() and not clean.path(lock).is_symlink()


# Sends one forged record to the relay socket as soon as it appears (as the user:
# setpriv), or reports why it could not; gives up after 60 s.
FORGER = Template("""
import json, socket, sys, time
record = json.dumps({"time": time.time(), "level": 2, "path": "$obj", "rid": None,
                     "message": "forged by user \\x1b[2J"}).encode()
deadline, last = time.time() + 60, "never saw the socket"
while time.time() < deadline:
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(record, "$relay")
        print("sent"); break
    except OSError as exc:
        last = type(exc).__name__
        if isinstance(exc, PermissionError):
            break
    time.sleep(0.01)
print(last)
""").substitute(obj=OBJ, relay=RELAY)


def test_user_cannot_write_on_roots_console_through_the_relay(clean: Node) -> None:
    """Under umask 000, a user finds no relay socket to send forged lines to root's console."""
    create(clean)
    forger = subprocess.Popen(
        clean.argv(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--",
                    sys.executable, "-I", "-c", FORGER]),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        start = om(clean, OBJ, "instance", "start", umask="000")
    finally:
        out, _ = forger.communicate(timeout=90)
    assert start.returncode == 0, start.stdout + start.stderr
    assert "forged" not in start.stdout
    assert "PermissionError" in out  # the user was refused, not merely too late


# Run as root in the node: connects to the relay while root, sends one record, then
# becomes the user and sends another on the same socket (the kernel stamps each
# datagram with the sender's credentials at send time).
IMPERSONATOR = Template("""
import json, os, socket, sys, time
def record(text):
    return json.dumps({"time": time.time(), "level": 2, "path": "$obj", "rid": "app#0",
                       "message": text}).encode()
deadline = time.time() + 60
while not os.path.exists("$relay") and time.time() < deadline:
    time.sleep(0.01)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.connect("$relay")
sock.send(record("from root \\x1b[31mred\\r"))
os.setgid($gid); os.setuid($uid)
sock.send(record("from the user"))
print("sent both")
""")


def test_relay_takes_root_records_only_and_escapes_control_characters(clean: Node) -> None:
    """Records sent with the user's credentials are dropped (and said so); ESC and CR show."""
    create(clean)
    user = uid(clean)
    gid = int(clean.run(["id", "-g", USER]).stdout)
    script = IMPERSONATOR.substitute(obj=OBJ, relay=RELAY, gid=gid, uid=user)
    sender = subprocess.Popen(clean.argv([sys.executable, "-I", "-c", script]),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        start = om(clean, OBJ, "instance", "start")
    finally:
        out, _ = sender.communicate(timeout=90)
    assert "sent both" in out
    assert start.returncode == 0, start.stdout + start.stderr
    assert "\x1b" not in start.stdout and "\r" not in start.stdout
    assert r"INF h1: app#0: from root \x1b[31mred\r" in start.stdout
    assert r"INF h1: app#0: \x1b[2Jcleared" in start.stdout  # the trigger's output
    assert "from the user" not in start.stdout
    assert f"dropped a log record sent by uid {user}" in start.stdout


def test_logs_escape_control_characters(clean: Node) -> None:
    """``om … logs`` shows journald's records with their control characters made visible."""
    create(clean)
    assert om(clean, OBJ, "instance", "start").returncode == 0
    clean.run(["journalctl", "--sync"], check=False)
    logs = om(clean, OBJ, "logs")
    assert "\x1b" not in logs.stdout
    assert r"app#0: \x1b[2Jcleared" in logs.stdout


def test_a_rid_that_climbs_out_is_refused_by_create_and_by_the_driver(clean: Node) -> None:
    """``[fs#x/../../etc/victim]`` is a positioned error; from argv, a usage error."""
    bad = "[DEFAULT]\nid = 1\n\n[fs#x/../../../../../etc/omct-nologin]\ntype = flag\n"
    clean.write_file("/run/omct/h2.conf", bad)
    create = om(clean, "h2", "create", "--config", "/run/omct/h2.conf")
    assert create.returncode != 0
    assert "/run/omct/h2.conf:4:2: error: invalid resource id 'fs#x/../../" in create.stderr
    assert clean.run(["ls", "/etc/opensvc/h2.conf"], check=False).returncode != 0
    driver = om(clean, OBJ, "driver", "start", "--rid", "fs#x/../../../../../etc/omct-nologin")
    assert driver.returncode == 2
    assert "om: error: invalid resource id" in driver.stderr
    assert not clean.path("/etc/omct-nologin").exists()
