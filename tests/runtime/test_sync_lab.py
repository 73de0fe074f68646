"""`om <path> sync update --target nodes|drp` and `om <path> update` (Sync All), in the lab."""

from __future__ import annotations

from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, console, created

CONFIG = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0b01
nodes = n1 n2
drpnodes = n3

[fs#1]
type = flag

[sync#0]
src = /var/lib/synct/src/
dst = /var/lib/synct/dst
target = nodes drpnodes
"""


def sync(node: Node, *args: str) -> list[str]:
    proc = node.run(["env", "OMC_RSYNC_MODULE=root", OM, "synct", *args], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return console(proc)


def copied(node: Node) -> bool:
    return node.path("/var/lib/synct/dst/hello.txt").exists()


def test_sync_update_by_target_then_all(lab: Lab) -> None:
    """Refused (no-op) while down; `--target nodes` copies to n2 only, `--target drp` to n3,
    `update` to both."""
    n1, n2, n3 = (lab.node(n) for n in ("n1", "n2", "n3"))
    try:
        n1.write_file("/var/lib/synct/src/hello.txt", "from n1\n")
        for peer in (n2, n3):
            peer.run(["mkdir", "-p", "/var/lib/synct"])
        with created(n1, "synct", CONFIG):
            lines = sync(n1, "sync", "update", "--target", "nodes")
            assert "INF synct: sync#0: no-op: the local instance is not up (fs#1 is down)" in lines
            assert not copied(n2)
            assert n1.run([OM, "synct", "instance", "start"]).returncode == 0
            lines = sync(n1, "sync", "update", "--target", "nodes")
            assert lines[0].startswith("INF synct: >>> do sync update [om synct sync update")
            assert lines[-1].startswith("INF synct: <<< done sync update [om synct sync update")
            assert (copied(n2), copied(n3)) == (True, False)
            sync(n1, "sync", "update", "--target", "drp")
            assert copied(n3)
            for peer in (n2, n3):
                peer.run(["rm", "-rf", "/var/lib/synct/dst"])
            sync(n1, "update")
            assert (copied(n2), copied(n3)) == (True, True)
    finally:
        for node in (n1, n2, n3):
            node.run(["rm", "-rf", "/var/lib/synct"], check=False)


def test_unknown_sync_target_is_a_usage_error(lab: Lab) -> None:
    """A target word that is not nodes, drp, drpnodes or local fails with the list."""
    n1 = lab.node("n1")
    with created(n1, "synct", CONFIG):
        proc = n1.run([OM, "synct", "sync", "update", "--target", "peers"], check=False)
        assert proc.returncode == 1
        assert "unknown sync target 'peers': expected nodes, drp, drpnodes or local" in proc.stderr
