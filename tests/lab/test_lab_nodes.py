"""A booted 3-node lab: isolation, network, cgroups, etcd, rsync and mounts, checked for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from omc.runtime.lab import services
from omc.runtime.lab.api import Lab, Node

ETCD_CLIENT = """
import sys
from omc.runtime.adapters.etcd import Etcd, endpoints_from_file
etcd = Etcd(endpoints_from_file(), timeout=3)
etcd.put(sys.argv[1], sys.argv[2])
print(etcd.get(sys.argv[1]).decode())
"""


def _etcd_put_get(lab: Lab, node: str, key: str, value: str) -> str:
    argv = [sys.executable, "-I", "-c", ETCD_CLIENT, key, value]
    return lab.node(node).run(argv, timeout=30).stdout.strip()


def test_every_node_is_running(lab: Lab) -> None:
    """All nodes are up with systemd as PID 1 (`Lab.up` only returns once all were
    `running`; tests sharing the lab may since have left a failed unit: `degraded`)."""
    for node in lab.nodes:
        assert node.system_state() in {"running", "degraded"}
        assert node.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"


def test_nodes_have_own_hostname_machine_id_and_address(lab: Lab) -> None:
    """Each node has its own hostname, a distinct machine-id and its lab address on eth0."""
    ids = set()
    for node in lab.nodes:
        assert node.run(["hostname"]).stdout.strip() == node.name
        ids.add(node.read_file("/etc/machine-id").strip())
        assert f"inet {node.address}/24" in node.run(["ip", "-o", "addr", "show", "eth0"]).stdout
    assert len(ids) == 3
    assert Path("/etc/machine-id").read_text().strip() not in ids


def test_nodes_ping_each_other(lab: Lab) -> None:
    """Full mesh: every node reaches every other node's address."""
    for src in lab.nodes:
        for dst in lab.nodes:
            if src is not dst:
                src.run(["ping", "-c", "1", "-W", "2", "-q", dst.address])


def test_bridge_has_no_host_address(lab: Lab) -> None:
    """The host side of the lab (bridge, veths) carries no address at all."""
    for dev in (lab.state.bridge, *(n.veth for n in lab.state.nodes)):
        assert Path("/sys/class/net", dev).exists()
        assert not [ln for ln in _host_ip(["-o", "addr", "show", "dev", dev]) if "inet" in ln]


def _host_ip(args: list[str]) -> list[str]:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_private_tmp_run_etc(lab: Lab) -> None:
    """/tmp and /run are private tmpfs; /etc writes stay in the node's overlay."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    n1.run(["sh", "-c", "echo n1 > /tmp/omct-private && echo n1 > /etc/omct-etc"])
    assert n2.run(["ls", "/tmp/omct-private", "/etc/omct-etc"], check=False).returncode != 0
    assert not Path("/tmp/omct-private").exists()
    assert not Path("/etc/omct-etc").exists()
    for mnt in ("/tmp", "/run", "/dev/shm"):
        assert _top_fstype(n1, mnt) == "tmpfs"
    for tree in ("/etc", "/var", "/root"):
        assert _top_fstype(n1, tree) == "overlay"
    assert "/run/netns" not in n1.read_file("/proc/1/mountinfo")


def test_root_home_writes_stay_in_the_node(lab: Lab) -> None:
    """Tools writing under root's home (caches, keys) never reach the host's /root."""
    n1 = lab.node("n1")
    n1.run(["sh", "-c", "mkdir -p /root/.cache/omct && echo n1 > /root/.cache/omct/x"])
    assert n1.read_file("/root/.cache/omct/x") == "n1\n"
    assert not Path("/root/.cache/omct").exists()


def _top_fstype(node: Node, mountpoint: str) -> str:
    """The filesystem type of the topmost mount at ``mountpoint`` in the node."""
    return node.run(["findmnt", "-n", "-o", "FSTYPE", mountpoint]).stdout.split()[-1]


def test_opensvc_slice_in_two_nodes_does_not_clash(lab: Lab, unit_name: str) -> None:
    """n1 and n2 both create opensvc.slice; each lands in its own cgroup subtree."""
    dirs = []
    unit = f"{unit_name}.service"
    for node in lab.nodes[:2]:
        node.run(["systemd-run", f"--unit={unit}", "--slice=opensvc.slice", "sleep", "300"])
        assert "0::/init.scope" in node.run(["cat", "/proc/1/cgroup"]).stdout
        inside = node.run(["systemctl", "show", "-P", "ControlGroup", unit]).stdout.strip()
        assert inside == f"/opensvc.slice/{unit}"
        unified = next(d for d in node.info.cgroups if "/unified/" in d)
        dirs.append(Path(unified, "opensvc.slice", unit))
    try:
        assert all(d.is_dir() for d in dirs)
        assert dirs[0] != dirs[1]
        assert not Path("/sys/fs/cgroup/unified/opensvc.slice").exists()
    finally:
        for node in lab.nodes[:2]:
            node.run(["systemctl", "stop", unit])


def test_unit_started_in_one_node_is_invisible_in_others(lab: Lab, unit_name: str) -> None:
    """A unit started in n1 is active there and unknown to n2 and n3."""
    unit = f"{unit_name}.service"
    lab.node("n1").run(["systemd-run", f"--unit={unit}", "sleep", "300"])
    try:
        assert lab.node("n1").run(["systemctl", "is-active", unit]).stdout.strip() == "active"
        for other in ("n2", "n3"):
            proc = lab.node(other).run(["systemctl", "is-active", unit], check=False)
            assert proc.stdout.strip() == "inactive"
            shown = lab.node(other).run(["systemctl", "show", "-P", "LoadState", unit])
            assert shown.stdout.strip() == "not-found"
    finally:
        lab.node("n1").run(["systemctl", "stop", unit])


def test_limits_land_in_the_node_subtree(lab: Lab, unit_name: str) -> None:
    """MemoryMax set inside n2 shows up in n2's memory cgroup directory on the host."""
    unit = f"{unit_name}.service"
    lab.node("n2").run(["systemd-run", f"--unit={unit}", "-p", "MemoryMax=100M", "sleep", "300"])
    try:
        memory = next(d for d in lab.node("n2").info.cgroups if "/memory/" in d)
        limit = Path(memory, "system.slice", unit, "memory.limit_in_bytes").read_text()
        assert int(limit) == 100 * 1024 * 1024
    finally:
        lab.node("n2").run(["systemctl", "stop", unit])


def test_pyroute2_adds_and_removes_an_address_in_a_node(lab: Lab) -> None:
    """From the host, netlink in n3's netns adds then removes an address the node sees."""
    node = lab.node("n3")
    extra = node.address.rsplit(".", 1)[0] + ".200"
    with node.netlink() as nl:
        assert nl.link_up("eth0") and nl.carrier("eth0")
        nl.add_address("eth0", extra, 24)
        assert f"inet {extra}/24" in node.run(["ip", "-o", "addr", "show", "eth0"]).stdout
        lab.node("n1").run(["ping", "-c", "1", "-W", "2", "-q", extra])
        nl.del_address("eth0", extra, 24)
        assert extra not in node.run(["ip", "-o", "addr", "show", "eth0"]).stdout
    assert not [ln for ln in _host_ip(["-o", "addr"]) if extra in ln]


def test_etcd_cluster_is_healthy(lab: Lab) -> None:
    """Three members, all healthy, and om's client finds them via /etc/opensvc/etcd.endpoints."""
    n1 = lab.node("n1")
    endpoints = n1.read_file("/etc/opensvc/etcd.endpoints").split()
    assert endpoints[0] == f"http://{n1.address}:2379" and len(endpoints) == 3
    health = n1.run(["etcdctl", f"--endpoints={','.join(endpoints)}", "endpoint", "health"])
    assert health.stderr.count("is healthy") + health.stdout.count("is healthy") == 3
    members = n1.run(["etcdctl", "member", "list"]).stdout.splitlines()
    assert sorted(m.split(", ")[2] for m in members) == ["n1", "n2", "n3"]
    assert _etcd_put_get(lab, "n2", "/omct/health", "ok") == "ok"


def test_etcd_keeps_quorum_when_one_member_dies(lab: Lab) -> None:
    """After SIGKILL of n3's member, writes through n1 and n2 still succeed."""
    n3 = lab.node("n3")
    n3.run(["systemctl", "kill", "--signal=SIGKILL", services.ETCD_UNIT])
    try:
        n3.run(
            ["sh", "-c", f"while systemctl -q is-active {services.ETCD_UNIT}; do sleep 0.05; done"]
        )
        assert _etcd_put_get(lab, "n1", "/omct/quorum", "kept") == "kept"
        assert _etcd_put_get(lab, "n2", "/omct/quorum", "still") == "still"
    finally:
        n3.run(["systemctl", "reset-failed", services.ETCD_UNIT], check=False)
        n3.run(["systemctl", "start", services.ETCD_UNIT])
    assert n3.run(["systemctl", "is-active", services.ETCD_UNIT]).stdout.strip() == "active"


def test_rsync_copies_a_directory_between_nodes(lab: Lab) -> None:
    """rsync from n1 to n2's rsync daemon copies a tree of files intact."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    n1.run(["sh", "-c", "mkdir -p /tmp/omct-src/sub && for i in 1 2 3; do "
            "head -c 10000 /dev/urandom > /tmp/omct-src/sub/f$i; done"])  # fmt: skip
    dest = f"rsync://{n2.address}/{services.RSYNC_MODULE}/tmp/omct-dst/"
    n1.run(["rsync", "-a", "/tmp/omct-src/", dest])
    digest = ["sh", "-c", "cd /tmp/omct-%s && find . -type f | sort | xargs sha256sum"]
    src = n1.run([*digest[:2], digest[2] % "src"]).stdout
    dst = n2.run([*digest[:2], digest[2] % "dst"]).stdout
    assert src == dst and src.count("\n") == 3


def test_loop_ext4_mount_unit(lab: Lab, unit_name: str) -> None:
    """A loop-backed ext4 .mount unit mounts and unmounts inside n1 only."""
    n1 = lab.node("n1")
    img = f"/var/lib/{unit_name}.img"
    n1.run(["truncate", "-s", "32M", img])
    n1.run(["mkfs.ext4", "-q", img])
    where = f"/run/{unit_name}"
    unit = n1.run(["systemd-escape", "--path", "--suffix=mount", where]).stdout.strip()
    n1.write_file(f"/run/systemd/system/{unit}",
                  f"[Mount]\nWhat={img}\nWhere={where}\nType=ext4\nOptions=loop\n")  # fmt: skip
    with n1.systemd() as sd:
        sd.daemon_reload()
        started = sd.start([unit])[unit]
        assert started.ok and started.state.active_state == "active"
        assert n1.run(["findmnt", "-n", "-o", "FSTYPE", where]).stdout.strip() == "ext4"
        assert where not in Path("/proc/self/mountinfo").read_text()
        stopped = sd.stop([unit])[unit]
        assert stopped.ok and stopped.state.active_state == "inactive"
    assert n1.run(["findmnt", where], check=False).returncode != 0
    assert n1.run(["losetup", "-j", img]).stdout.strip() == ""
    n1.run(["rm", "-f", img, f"/run/systemd/system/{unit}"])


def test_netlink_routes_and_links_in_a_node(lab: Lab) -> None:
    """From the host, netlink lists n2's links and adds then removes a route there."""
    node = lab.node("n2")
    with node.netlink() as nl:
        assert nl.links() == ["eth0", "lo"]
        assert nl.link_exists("eth0") and not nl.link_exists("omct0")
        nl.route_add("10.232.0.0/16", gateway=lab.node("n1").address)
        assert "10.232.0.0/16 via" in node.run(["ip", "route"]).stdout
        nl.route_del("10.232.0.0/16", gateway=lab.node("n1").address)
        assert "10.232.0.0/16" not in node.run(["ip", "route"]).stdout


def test_kernel_settings_are_read_only_but_net_is_per_node(lab: Lab) -> None:
    """A node cannot change host-wide sysctls; its own netns sysctls are writable."""
    n1 = lab.node("n1")
    pid_max = Path("/proc/sys/kernel/pid_max").read_text()
    denied = n1.run(["sh", "-c", "echo 40000 > /proc/sys/kernel/pid_max"], check=False)
    assert denied.returncode != 0 and "Read-only" in denied.stderr
    assert Path("/proc/sys/kernel/pid_max").read_text() == pid_max
    host_forward = Path("/proc/sys/net/ipv4/conf/lo/forwarding").read_text()
    n1.run(["sysctl", "-q", "-w", "net.ipv4.conf.lo.forwarding=1"])
    inside = n1.run(["cat", "/proc/sys/net/ipv4/conf/lo/forwarding"]).stdout  # reader's netns
    assert inside.strip() == "1"
    assert Path("/proc/sys/net/ipv4/conf/lo/forwarding").read_text() == host_forward
    n1.run(["sysctl", "-q", "-w", "net.ipv4.conf.lo.forwarding=0"])


def test_project_commands_run_inside_a_node(lab: Lab) -> None:
    """The repo and its venv are visible in a node: `omc`, `om` and the lab's Python run there."""
    n2 = lab.node("n2")
    assert "[DEFAULT]" in n2.run(["omc", "keywords"]).stdout  # found on the node's PATH
    assert n2.run(["sh", "-c", "command -v om"]).stdout.strip() == str(
        Path(sys.executable).parent / "om"
    )
    code = "import socket, omc.runtime.adapters.systemd; print(socket.gethostname())"
    assert n2.run([sys.executable, "-c", code]).stdout.strip() == "n2"
