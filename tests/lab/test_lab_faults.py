"""The lab's fault verbs on real nodes: kill, boot, partition, heal, freeze, thaw, fence.

One cluster lab for the module (a fence agent needs one); each test leaves it whole.
Reachability is checked with ping between nodes: what a peer's etcd member, daemon or
``ip`` resource would see.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.runtime.lab import faults
from omc.runtime.lab.api import Lab, Node
from omc.runtime.lab.observe import etcd_status, make_whole, until
from omc.runtime.lab.state import LabError, fence_socket

from tests.labs import cluster_lab

pytestmark = pytest.mark.lab
OM = str(Path(sys.executable).parent / "om")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Three nodes with etcd, the daemon and the lab's fence agent."""
    yield from cluster_lab("f")


@pytest.fixture
def whole(lab: Lab) -> Iterator[Lab]:
    """The lab, made whole again after the test (healed, thawed, booted)."""
    yield lab
    make_whole(lab)


def reaches(src: Node, dst: Node) -> bool:
    """One ping from ``src`` to ``dst``'s address is answered."""
    argv = ["ping", "-c", "1", "-W", "1", "-q", dst.address]
    return src.run(argv, check=False, timeout=10).returncode == 0


def fence(
    node: Node | None, lab: Lab, target: str, *prefix: str
) -> subprocess.CompletedProcess[str]:
    """``om lab fence --socket … target`` from inside ``node`` (None: from the host)."""
    argv = [*prefix, OM, "lab", "fence", "--socket", str(fence_socket(lab.name)), target]
    if node is None:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return node.run(argv, check=False, timeout=60)


def test_kill_takes_the_network_with_the_node_and_boot_brings_it_back(whole: Lab) -> None:
    """kill: PID 1 gone, netns and veth gone, its address answers no peer; killing it again
    is refused; boot: running again, reachable, and booting a running node is refused."""
    n1, n2 = whole.node("n1"), whole.node("n2")
    info = n1.info
    assert reaches(n2, n1)
    n1.kill()
    assert not n1.alive()
    assert not Path("/run/netns", info.netns).exists()
    assert not Path("/sys/class/net", info.veth).exists()
    assert not reaches(n2, n1)
    assert [s.state for s in whole.status()] == ["down", "running", "running"]
    with pytest.raises(LabError, match="is not running"):
        whole.kill("n1")
    n1.boot()
    assert n1.alive() and n1.pid != info.pid
    assert n1.system_state() in ("running", "degraded")
    assert reaches(n2, n1)
    with pytest.raises(LabError, match="already running"):
        whole.boot("n1")


def test_partition_cuts_only_the_chosen_links_and_heal_restores_them(whole: Lab) -> None:
    """partition n1 --from n2: n1 and n2 no longer reach each other, n3 reaches both;
    status says so; heal n1 restores the link and removes the lab's nftables table."""
    n1, n2, n3 = (whole.node(n) for n in ("n1", "n2", "n3"))
    assert whole.partition("n1", ["n2"]) == ["n2"]
    assert not reaches(n1, n2) and not reaches(n2, n1)
    assert reaches(n1, n3) and reaches(n3, n2)
    assert {s.name: s.cut_from for s in whole.status()} == {"n1": ("n2",), "n2": ("n1",), "n3": ()}
    assert whole.heal("n1") == ["n1-n2"]
    assert reaches(n1, n2)
    table = ["nft", "list", "table", "bridge", faults.table(whole.state)]
    assert subprocess.run(table, capture_output=True, check=False).returncode != 0


def test_freeze_pauses_every_process_of_the_node_and_thaw_resumes(whole: Lab) -> None:
    """freeze: the node's cgroup subtree is frozen (status `frozen`), a second freeze says
    so; thaw: it runs again and answers systemctl."""
    n2 = whole.node("n2")
    assert whole.freeze("n2") is True
    assert faults.frozen(n2.info)
    assert n2.system_state() == "frozen"
    assert whole.freeze("n2") is False
    assert whole.thaw("n2") is True
    assert whole.thaw("n2") is False
    assert n2.system_state() in ("running", "degraded")


def test_fence_from_a_node_kills_the_target(whole: Lab) -> None:
    """[stonith] cmd run in n2 kills n1 (even frozen); fencing it again succeeds (it does
    not run); the agent logs both."""
    n1, n2 = whole.node("n1"), whole.node("n2")
    whole.freeze("n1")
    proc = fence(n2, whole, "n1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok: n1 killed"
    assert not n1.alive()
    again = fence(n2, whole, "n1")
    assert (again.returncode, again.stdout.strip()) == (0, "ok: n1 was already down")
    log = (whole.dir / "fence.log").read_text()
    assert "ok: n1 killed" in log and "ok: n1 was already down" in log


def test_fence_refusals(whole: Lab) -> None:
    """A node may not fence itself, an unknown node is refused, and a caller outside the
    lab (a root process in a network namespace of its own) is refused: exit 1, one line."""
    n2 = whole.node("n2")
    itself = fence(n2, whole, "n2")
    assert itself.returncode == 1
    assert itself.stderr.strip() == "error: n2 asks to fence itself: a node does not fence itself"
    unknown = fence(None, whole, "n9")
    assert unknown.returncode == 1 and "has no node n9" in unknown.stderr
    stranger = fence(None, whole, "n1", "unshare", "--net")
    assert stranger.returncode == 1
    assert "the caller is neither the host nor a node of lab" in stranger.stderr
    assert whole.node("n1").alive()


def test_a_member_back_from_a_partition_does_not_depose_the_etcd_leader(whole: Lab) -> None:
    """A follower's member cut off for several election timeouts (500 ms), then healed,
    rejoins without an election: etcd's pre-vote (``services.etcd_unit``). Without it the
    cut member campaigned alone, raising its raft term at each try (measured: from 2 to
    13 in 5 s), and the first leader message it answered after the heal made the leader
    step down: every member was without a leader for about a second, and the election cut
    every node's lease refreshes, on a loaded host for longer than the detection time
    (bench/chaos.py: healthy nodes stopped their failover instances, those that missed
    the stop budget rebooted, and the quorum was lost). The term a member reports is its
    last applied entry's: it moves on an election only, so one election (a spurious one,
    under load) is tolerated; the rejoin without pre-vote costs one per campaign."""
    status = {node.name: etcd_status(node) for node in whole.nodes}
    leader, term = status["n1"]["leader"], status["n1"]["term"]
    cut = next(n for n in whole.nodes if status[n.name]["member"] != leader)
    peer = next(n for n in whole.nodes if n.name != cut.name)
    cut.partition()
    try:
        until(lambda: etcd_status(cut)["leader"] == 0, 30, f"{cut.name}'s member alone")
        time.sleep(4.0)  # several election timeouts: a member campaigns in each
    finally:
        cut.heal()
    until(lambda: etcd_status(cut)["leader"] != 0, 30, f"{cut.name}'s member follows a leader")
    time.sleep(2.0)  # what the rejoin may disrupt, within a few election timeouts
    after = etcd_status(peer)
    assert after["term"] - term <= 1, f"the rejoin forced elections: term {term} → {after['term']}"
