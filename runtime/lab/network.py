"""Host side of a lab's network: one bridge, and per node a netns and a veth pair.

Created with two kinds of ``ip -batch`` runs (one for the host side, one per node's
namespace, all started together), because a dozen single ``ip`` calls per node
would dominate boot time. The bridge and the host ends of the veths get no address
at all (``addrgenmode none`` also stops IPv6 link-local addresses): the lab's subnet
exists only inside the namespaces it created.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .state import LabError, LabState, NodeInfo


def _batch(
    lines: list[str], *, netns: str | None = None, force: bool = False
) -> subprocess.Popen[str]:
    argv = ["ip"]
    if netns is not None:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    proc = subprocess.Popen(
        [*argv, "-batch", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.close()
    return proc


def _finish(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise LabError(f"{what} failed: {out.strip()}")


def host_lines(state: LabState) -> list[str]:
    """``ip -batch`` commands for the bridge, the namespaces and the veths (pure)."""
    br = state.bridge
    lines = [f"link add {br} type bridge", f"link set {br} addrgenmode none", f"link set {br} up"]
    for node in state.nodes:
        lines += node_host_lines(state, node)
    return lines


def node_host_lines(state: LabState, node: NodeInfo) -> list[str]:
    """``ip -batch`` commands for one node's namespace and veth on the bridge (pure)."""
    return [
        f"netns add {node.netns}",
        f"link add {node.veth} type veth peer name eth0 netns {node.netns}",
        f"link set {node.veth} addrgenmode none",
        f"link set {node.veth} master {state.bridge} up",
    ]


def node_lines(address: str) -> list[str]:
    """``ip -n <netns> -batch`` commands inside one node's namespace (pure)."""
    return ["link set lo up", f"addr add {address}/24 dev eth0", "link set eth0 up"]


def create(state: LabState) -> None:
    """Bridge, namespaces and veths; then each namespace's addresses, in parallel."""
    _finish(_batch(host_lines(state)), f"lab {state.name}: host network")
    procs = [(n, _batch(node_lines(n.address), netns=n.netns)) for n in state.nodes]
    for node, proc in procs:
        _finish(proc, f"lab {state.name}: network of {node.name}")


def create_node(state: LabState, node: NodeInfo) -> None:
    """One node's namespace and veth again, on the lab's existing bridge (``om lab boot``)."""
    _finish(_batch(node_host_lines(state, node)), f"lab {state.name}: host network of {node.name}")
    _finish(_batch(node_lines(node.address), netns=node.netns),
            f"lab {state.name}: network of {node.name}")  # fmt: skip


def destroy_node(state: LabState, node: NodeInfo) -> list[str]:
    """Remove one node's veth (its ``eth0`` goes with it, and with it every address the
    node had on the lab's subnet) and its namespace. Returns leftovers."""
    lines = [f"link del {node.veth}"] if _link_exists(node.veth) else []
    if Path("/run/netns", node.netns).exists():
        lines.append(f"netns del {node.netns}")
    _delete(lines)
    left = [node.veth] if _link_exists(node.veth) else []
    return left + ([f"netns {node.netns}"] if Path("/run/netns", node.netns).exists() else [])


def destroy(state: LabState) -> list[str]:
    """Delete the host veths (explicitly: ``netns del`` frees them asynchronously and a
    fast re-``up`` would then clash), the namespaces and the bridge. Returns leftovers."""
    lines = [f"link del {n.veth}" for n in state.nodes if _link_exists(n.veth)]
    lines += [f"netns del {n.netns}" for n in state.nodes if Path("/run/netns", n.netns).exists()]
    if _link_exists(state.bridge):
        lines.append(f"link del {state.bridge}")
    _delete(lines)
    return leftovers(state)


def _delete(lines: list[str]) -> None:
    """Run ``ip -force -batch`` deletions, whatever fails (the caller checks what is left)."""
    if lines:
        proc = _batch(lines, force=True)
        assert proc.stdout is not None
        proc.stdout.read()
        proc.wait()


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def leftovers(state: LabState) -> list[str]:
    """Host-visible network objects of the lab that still exist."""
    left = [n.veth for n in state.nodes if _link_exists(n.veth)]
    left += [f"netns {n.netns}" for n in state.nodes if Path("/run/netns", n.netns).exists()]
    if _link_exists(state.bridge):
        left.append(state.bridge)
    return left
