"""Drivers for real inside lab nodes (real systemd, own netns): ip, fs via units, mount, podman,
ip.netns, rsync between nodes, om exec --pg. Nothing here touches the host's network."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

OM = str(Path(sys.executable).parent / "om")
UNIT_DIR = "/run/systemd/system"


@pytest.fixture
def obj() -> str:
    """An object name no other test uses."""
    return f"dt{os.getpid()}x{os.urandom(2).hex()}"


def write_unit(node: Node, obj: str, rid: str, driver: str, config: Mapping[str, object],
               *, service: str = "") -> str:  # fmt: skip
    """Install a resource unit in the node as the emitter would (the keys drivers read)."""
    name = f"opensvc-svc.{obj}-{rid.replace('#', '.')}.service"
    node.write_file(
        f"{UNIT_DIR}/{name}",
        f"[Unit]\nX-OpenSVC-Path={obj}\nX-OpenSVC-Rid={rid}\nX-OpenSVC-Driver={driver}\n"
        f"X-OpenSVC-Config={json.dumps(config)}\n\n[Service]\nType=oneshot\n{service}",
    )
    return name


def write_target(node: Node, obj: str, config: Mapping[str, object]) -> None:
    node.write_file(
        f"{UNIT_DIR}/opensvc-svc.{obj}.target",
        f"[Unit]\nX-OpenSVC-Path={obj}\nX-OpenSVC-Config={json.dumps(config)}\n",
    )


def om(node: Node, obj: str, action: str, rid: str, *env: str) -> int:
    argv = ["env", *env, OM, obj, "driver", action, "--rid", rid]
    return node.run(argv, check=False, timeout=120).returncode


def journal(node: Node, obj: str, rid: str) -> list[str]:
    """The driver's log lines for one resource, from the node's journal (once journald has
    written what it received: a loaded machine lags)."""
    node.run(["journalctl", "--sync"], check=False)
    argv = ["journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=om", f"OBJ_PATH={obj}"]
    lines = node.run(argv).stdout.splitlines()
    return [ln.removeprefix(f"{rid}: ") for ln in lines if ln.startswith(f"{rid}: ")]


@pytest.fixture
def cleanup(lab: Lab) -> Iterator[list[tuple[Node, list[str]]]]:
    """Commands run in nodes at teardown, last registered first."""
    todo: list[tuple[Node, list[str]]] = []
    yield todo
    for node, argv in reversed(todo):
        node.run(argv, check=False, timeout=60)


def free_address(node: Node) -> str:
    """An address of the lab subnet that no node uses (high host part)."""
    net = ipaddress.ip_network(f"{node.address}/24", strict=False)
    return str(net.network_address + 200 + os.getpid() % 50)


def test_ip_host_add_refuse_alive_and_remove(lab: Lab, obj: str, cleanup: list) -> None:
    """ip.host: added with gratuitous ARP, idempotent, vetoed on a peer (ARP probe), removed."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    address = free_address(n1)
    config = {"ipname": address, "ipdev": "eth0", "netmask": "255.255.255.0"}
    units = [(node, write_unit(node, obj, "ip#0", "ip.host", config)) for node in (n1, n2)]
    cleanup.extend((node, ["rm", "-f", f"{UNIT_DIR}/{unit}"]) for node, unit in units)
    cleanup.append((n1, [OM, obj, "driver", "stop", "--rid", "ip#0"]))
    assert om(n1, obj, "start", "ip#0") == 0
    assert om(n1, obj, "start", "ip#0") == 0
    with n1.netlink() as nl:
        assert (address, 24) in [(a.address, a.prefixlen) for a in nl.addresses("eth0")]
    assert n1.run([OM, obj, "driver", "status", "--rid", "ip#0"]).stdout == "up\n"
    veto = n2.run([OM, obj, "driver", "abort", "--rid", "ip#0"], check=False)
    assert (veto.returncode, veto.stdout) == (1, f"abort! {address} is alive\n")
    assert n1.run([OM, obj, "driver", "abort", "--rid", "ip#0"]).stdout == ""
    assert om(n2, obj, "start", "ip#0") == 1
    assert journal(n2, obj, "ip#0") == [f"abort! {address} is alive"]
    assert om(n1, obj, "stop", "ip#0") == 0
    assert om(n1, obj, "stop", "ip#0") == 0
    with n1.netlink() as nl:
        assert address not in [a.address for a in nl.addresses("eth0")]
    assert journal(n1, obj, "ip#0") == [
        f"add {address}/24 to eth0",
        f"send gratuitous arp for {address} on eth0",
        f"{address} is already up on eth0",
        f"delete {address}/24 from eth0",
        f"{address} is already down on eth0",
    ]


def test_ip_host_labelled_when_alias_is_false(lab: Lab, obj: str, cleanup: list) -> None:
    """alias=false puts the address under the first free dev:n label, and stop removes it."""
    n3 = lab.node("n3")
    address = str(ipaddress.ip_address(free_address(n3)) + 1)
    config = {"name": address, "dev": "eth0", "netmask": "24", "alias": False}
    unit = write_unit(n3, obj, "ip#0", "ip.host", config)
    cleanup.append((n3, ["rm", "-f", f"{UNIT_DIR}/{unit}"]))
    cleanup.append((n3, [OM, obj, "driver", "stop", "--rid", "ip#0"]))
    assert om(n3, obj, "start", "ip#0") == 0
    shown = n3.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert f"{address}/24" in shown
    assert "eth0:0" in shown
    assert n3.run([OM, obj, "driver", "status", "--rid", "ip#0"]).stdout == "up\n"
    assert om(n3, obj, "stop", "ip#0") == 0
    assert address not in n3.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout


def test_flag_through_a_real_oneshot_unit(lab: Lab, obj: str, cleanup: list) -> None:
    """systemd runs the entry point as ExecStart/ExecStop; it finds its unit by its cgroup."""
    n1 = lab.node("n1")
    cmd = f"{OM} {obj} driver %s --rid fs#1"
    service = f"RemainAfterExit=yes\nExecStart={cmd % 'start'}\nExecStop={cmd % 'stop'}\n"
    unit = write_unit(n1, obj, "fs#1", "fs.flag", {"type": "flag"}, service=service)
    cleanup.append((n1, ["rm", "-f", f"{UNIT_DIR}/{unit}"]))
    cleanup.append((n1, ["systemctl", "stop", unit]))
    flag = f"/dev/shm/opensvc/svc/{obj}/fs#1.flag"
    n1.run(["systemctl", "daemon-reload"])
    n1.run(["systemctl", "start", unit])
    assert n1.run(["test", "-f", flag], check=False).returncode == 0
    n1.run(["systemctl", "stop", unit])
    assert n1.run(["test", "-f", flag], check=False).returncode == 1
    assert journal(n1, obj, "fs#1") == [f"install flag file {flag}", f"uninstall flag file {flag}"]


def test_loop_backed_ext4_mount_probe(lab: Lab, obj: str, cleanup: list) -> None:
    """fs.ext4 on an image file: mounted via a loop device, the probe matches its backing file."""
    n1 = lab.node("n1")
    image = lab.dir / f"{obj}.img"
    with image.open("wb") as f:
        f.truncate(16 << 20)
    cleanup.append((n1, ["rm", "-f", str(image)]))
    n1.run(["mkfs.ext4", "-q", str(image)])
    mnt = f"/run/{obj}/data"
    write_unit(n1, obj, "disk#0", "disk.loop", {"file": str(image)})
    write_unit(n1, obj, "fs#0", "fs.ext4", {"dev": "{disk#0.exposed_devs[0]}", "mnt": mnt})
    cleanup.append((n1, [OM, obj, "driver", "stop", "--rid", "fs#0"]))
    assert om(n1, obj, "start", "fs#0") == 0
    assert n1.run([OM, obj, "driver", "status", "--rid", "fs#0"]).stdout == "up\n"
    assert om(n1, obj, "stop", "fs#0") == 0
    assert n1.run([OM, obj, "driver", "status", "--rid", "fs#0"]).stdout == "down\n"
    assert journal(n1, obj, "fs#0")[0] == f"run: mount -t ext4 -o loop {image} {mnt}"


def make_rootfs(root: Path) -> None:
    """A tiny rootfs: sh, sleep and their libraries, copied from the host."""
    for binary in ("/bin/sh", "/usr/bin/sleep"):
        for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", binary):
            dest = root / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(lib).resolve(), dest)


def test_podman_container_and_ip_netns(lab: Lab, obj: str, cleanup: list) -> None:
    """container.podman runs in the resource slice; ip.netns plumbs a veth+address into it."""
    n1 = lab.node("n1")
    rootfs = lab.dir / f"{obj}-rootfs"
    make_rootfs(rootfs)
    cleanup.append((n1, ["rm", "-rf", str(rootfs)]))
    bridge = f"br{os.getpid() % 100000}"
    n1.run(["ip", "link", "add", bridge, "type", "bridge"])
    cleanup.append((n1, ["ip", "link", "del", bridge]))
    n1.run(["ip", "link", "set", bridge, "up"])
    name = f"{obj}-c0"
    write_unit(n1, obj, "container#0", "container.podman", {
        "name": name, "image": str(rootfs), "command": "/usr/bin/sleep 600",
        "run_args": "--network=none", "stop_timeout": 1, "rm": True,
    })  # fmt: skip
    write_unit(n1, obj, "ip#1", "ip.netns", {
        "netns": "container#0", "ipname": "10.250.0.2", "netmask": "24", "ipdev": bridge,
        "nsdev": "eth1", "mode": "bridge",
    })  # fmt: skip
    cleanup.append((n1, ["podman", "rm", "--force", name]))
    assert om(n1, obj, "start", "container#0") == 0
    inspect = ["podman", "inspect", "--format", "{{.State.Pid}} {{.HostConfig.CgroupParent}}", name]
    pid, parent = n1.run(inspect).stdout.split()
    assert parent == f"opensvc-svc.{obj}-container.0.slice"
    assert om(n1, obj, "start", "ip#1") == 0
    inside = n1.run(["nsenter", "-t", pid, "-n", "ip", "-br", "addr", "show", "eth1"]).stdout
    assert "10.250.0.2/24" in inside
    assert n1.run([OM, obj, "driver", "status", "--rid", "ip#1"]).stdout == "up\n"
    assert om(n1, obj, "stop", "ip#1") == 0
    assert n1.run(["ip", "link", "show", f"om{pid}1"[:15]], check=False).returncode != 0
    assert om(n1, obj, "stop", "container#0") == 0
    assert n1.run([OM, obj, "driver", "status", "--rid", "container#0"]).stdout == "down\n"
    task = {"image": str(rootfs), "command": "/bin/sh -c 'exit 3'", "check": "last_run",
            "run_args": "--network=none"}  # fmt: skip
    write_unit(n1, obj, "task#0", "task.podman", task)
    assert om(n1, obj, "run", "task#0", f"OMC_VAR=/var/lib/{obj}") == 1
    cleanup.append((n1, ["rm", "-rf", f"/var/lib/{obj}"]))
    status = n1.run(
        ["env", f"OMC_VAR=/var/lib/{obj}", OM, obj, "driver", "status", "--rid", "task#0"]
    )
    assert status.stdout == "warn\n"


def test_rsync_update_between_nodes(lab: Lab, obj: str, cleanup: list) -> None:
    """sync update: a no-op while the instance is down, then copies n1's src to n2's dst."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    base = f"/var/lib/{obj}"
    n1.write_file(f"{base}/src/hello.txt", "from n1\n")
    n2.run(["mkdir", "-p", base])
    cleanup.extend((node, ["rm", "-rf", base]) for node in (n1, n2))
    write_target(n1, obj, {"nodes": ["n1", "n2"]})
    write_unit(
        n1,
        obj,
        "sync#0",
        "sync.rsync",
        {"src": f"{base}/src/", "dst": f"{base}/dst", "target": ["nodes"]},
    )
    write_unit(n1, obj, "fs#1", "fs.flag", {})
    cleanup.append((n1, [OM, obj, "driver", "stop", "--rid", "fs#1"]))
    module = "OMC_RSYNC_MODULE=root"
    assert om(n1, obj, "update", "sync#0", module) == 0
    assert not n2.path(f"{base}/dst").exists()
    assert om(n1, obj, "start", "fs#1") == 0
    assert om(n1, obj, "update", "sync#0", module) == 0
    assert n2.read_file(f"{base}/dst/hello.txt") == "from n1\n"
    assert n1.run([OM, obj, "driver", "status", "--rid", "sync#0"]).stdout == "up\n"
    assert journal(n1, obj, "sync#0")[0] == "no-op: the local instance is not up (fs#1 is down)"


def test_exec_pg_places_command_in_the_slice(lab: Lab, obj: str, cleanup: list) -> None:
    """om exec --pg moves the command into the cgroup in the node's hybrid hierarchies."""
    n1 = lab.node("n1")
    pg = f"/opensvc.slice/opensvc-svc.{obj}.slice/opensvc-svc.{obj}-app.0.slice"
    for root in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"):
        cleanup.append((n1, ["rmdir", f"{root}/opensvc.slice/opensvc-svc.{obj}.slice"]))
        cleanup.append((n1, ["rmdir", root + pg]))
    out = n1.run([OM, "exec", "--pg", pg, "--", "cat", "/proc/self/cgroup"]).stdout
    lines = out.splitlines()
    assert f"0::{pg}" in lines
    assert any(line.endswith(f":name=systemd:{pg}") for line in lines)


SSHD_CONFIG = (
    "Port 22\nHostKey {keys}/host\nAuthorizedKeysFile {keys}/authorized_keys\n"
    "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
    "StrictModes no\nPidFile none\n"
)


@pytest.fixture
def peer_sshd(lab: Lab, obj: str, cleanup: list) -> Path:
    """sshd on n2 with test keys (the session lab runs none); returns the client key."""
    keys = lab.dir / f"{obj}-ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "id"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    shutil.copyfile(keys / "id.pub", keys / "authorized_keys")
    (keys / "sshd_config").write_text(SSHD_CONFIG.format(keys=keys))
    n2 = lab.node("n2")
    unit = f"{obj}-sshd.service"
    n2.run(["systemd-run", f"--unit={unit}", "-p", "RuntimeDirectory=sshd",
            "/usr/sbin/sshd", "-D", "-f", str(keys / "sshd_config")])  # fmt: skip
    cleanup.append((n2, ["systemctl", "stop", unit]))
    cleanup.append((n2, ["rm", "-rf", str(keys)]))
    probe = "(echo > /dev/tcp/n2/22) 2>/dev/null"
    wait = f"for i in $(seq 100); do {probe} && exit 0; sleep 0.05; done; exit 1"
    lab.node("n1").run(["bash", "-c", wait])
    return keys / "id"


def test_flag_veto_and_rsync_over_real_ssh(
    lab: Lab, obj: str, cleanup: list, peer_sshd: Path
) -> None:
    """Over real ssh: n1's start is vetoed while n2 holds the flag; then rsync -e ssh copies."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    key = f"OMC_SSH_KEY={peer_sshd}"
    base = f"/var/lib/{obj}"
    n1.write_file(f"{base}/src/f.txt", "over ssh\n")
    n2.run(["mkdir", "-p", base])
    cleanup.extend((node, ["rm", "-rf", base]) for node in (n1, n2))
    for node in (n1, n2):
        write_target(node, obj, {"nodes": ["n1", "n2"], "topology": "failover"})
        write_unit(node, obj, "fs#1", "fs.flag", {})
        cleanup.append((node, [OM, obj, "driver", "stop", "--rid", "fs#1"]))
    config = {"src": f"{base}/src/", "dst": f"{base}/dst", "target": ["nodes"]}
    write_unit(n1, obj, "sync#0", "sync.rsync", config)
    assert om(n2, obj, "start", "fs#1") == 0
    veto = n1.run(["env", key, OM, obj, "driver", "abort", "--rid", "fs#1"], check=False)
    assert (veto.returncode, veto.stdout) == (1, "abort! already up on peer n2\n")
    assert om(n2, obj, "stop", "fs#1") == 0
    assert n1.run(["env", key, OM, obj, "driver", "abort", "--rid", "fs#1"]).stdout == ""
    assert om(n1, obj, "start", "fs#1") == 0
    assert om(n1, obj, "update", "sync#0", key) == 0
    assert n2.read_file(f"{base}/dst/f.txt") == "over ssh\n"
