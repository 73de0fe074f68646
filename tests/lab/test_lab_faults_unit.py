"""The pure parts of the lab's faults: partition pairs, the nftables script, the fence
agent's decision, ``--daemon`` settings."""

from __future__ import annotations

import pytest
from omc.runtime.lab import faults, fenceagent, services
from omc.runtime.lab.cli import _settings
from omc.runtime.lab.state import LabError, LabState, plan

STATE: LabState = plan("demo", 7, nodes=3, drp=0, etcd=True, ssh=False, tls=False, cluster=True)


def test_partition_cuts_every_other_node_by_default() -> None:
    """partition n1 without --from cuts n1-n2 and n1-n3, not n2-n3."""
    assert faults.cut(STATE, "n1") == {frozenset({"n1", "n2"}), frozenset({"n1", "n3"})}


def test_partition_from_chosen_peers() -> None:
    """--from n3 cuts only n2-n3."""
    assert faults.cut(STATE, "n2", ["n3"]) == {frozenset({"n2", "n3"})}


@pytest.mark.parametrize(("node", "peers", "error"), [
    ("n9", [], "has no node 'n9'"),
    ("n1", ["n7"], "has no node 'n7'"),
    ("n1", ["n1"], "cannot partition n1 from itself"),
])  # fmt: skip
def test_partition_refuses_unknown_nodes_and_itself(
    node: str, peers: list[str], error: str
) -> None:
    """Unknown names and a node cut from itself are refused, naming the culprit."""
    with pytest.raises(LabError, match=error):
        faults.cut(STATE, node, peers)


def test_heal_one_node_keeps_the_other_cuts() -> None:
    """heal n1 restores n1's links only; heal without a node restores all."""
    cuts = {frozenset({"n1", "n2"}), frozenset({"n2", "n3"})}
    assert faults.healed(cuts, "n1") == {frozenset({"n2", "n3"})}
    assert faults.healed(cuts, None) == set()
    assert faults.peers_cut(cuts, "n2") == ["n1", "n3"]


def test_nft_script_drops_both_directions_of_each_cut_pair() -> None:
    """The table is declared, deleted and rebuilt atomically; each pair drops both ways
    between the two veths, on the bridge's forward hook."""
    script = faults.nft_script(STATE, {frozenset({"n1", "n2"})})
    a, b = STATE.node("n1").veth, STATE.node("n2").veth
    lines = script.splitlines()
    assert lines[:2] == ["table bridge omclab_demo", "delete table bridge omclab_demo"]
    assert f'    iifname "{a}" oifname "{b}" drop' in lines
    assert f'    iifname "{b}" oifname "{a}" drop' in lines
    assert "    type filter hook forward priority 0; policy accept;" in lines
    assert STATE.node("n3").veth not in script


def test_nft_script_without_cuts_only_removes_the_table() -> None:
    """Healing everything leaves no table behind (the delete is always valid)."""
    assert faults.nft_script(STATE, set()) == (
        "table bridge omclab_demo\ndelete table bridge omclab_demo\n"
    )


def test_fence_agent_kills_a_peer_for_a_node() -> None:
    """A root caller in node n2's netns may fence n1."""
    assert fenceagent.check_request(b"n1\n", asker="n2", uid=0, state=STATE) == "n1"
    assert fenceagent.check_request(b"n3", asker="host", uid=0, state=STATE) == "n3"


@pytest.mark.parametrize(("raw", "asker", "uid", "error"), [
    (b"n1\n", "n2", 1000, "only root"),
    (b"n1\n", None, 0, "neither the host nor a node of lab demo"),
    (b"n2\n", "n2", 0, "n2 asks to fence itself"),
    (b"n9\n", "n2", 0, "has no node n9"),
    (b"../x\n", "n2", 0, r"has no node \(not a node name\)"),
])  # fmt: skip
def test_fence_agent_refusals(raw: bytes, asker: str | None, uid: int, error: str) -> None:
    """Non-root callers, callers outside the lab, self-fencing and unknown names are refused
    (a name that is not alphanumeric is not echoed)."""
    with pytest.raises(fenceagent.RefusedError, match=error):
        fenceagent.check_request(raw, asker=asker, uid=uid, state=STATE)


def test_stonith_command_names_the_labs_socket() -> None:
    """cluster.conf's [stonith] cmd is `om lab fence --socket <lab dir>/fence.sock {node}`."""
    cmd = services.fence_command(STATE)
    assert cmd.endswith(" lab fence --socket /run/omc-lab/demo/fence.sock {node}")


def test_daemon_settings_parse_and_check() -> None:
    """--daemon KEY=VALUE pairs; a pair without '=' and an unknown key are refused, and so is
    a value that breaks the timing rule, before any node boots."""
    assert _settings(["lease_ttl=4s", " keepalive = 1s"]) == {"lease_ttl": "4s", "keepalive": "1s"}
    with pytest.raises(LabError, match="expected KEY=VALUE"):
        _settings(["lease_ttl"])
    with pytest.raises(LabError, match="unknown daemon setting 'foo'"):
        services.check_timing({"foo": "1"})
    with pytest.raises(LabError, match="keepalive = 1s is more than lease_ttl/3"):
        services.check_timing({"lease_ttl": "2s"})
