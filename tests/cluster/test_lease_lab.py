"""The node lease against etcd members that do not answer (issue #12), on a 3-node lab at
the shortest timing the rule allows (``FAST_TIMING``: lease_ttl 4 s, detection 2 s), the
one ``bench/chaos.py`` runs.

A node must stop its failover instances when it cannot refresh its lease, and only then:
while one etcd member answers it, its lease is alive, whatever the other members do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from omc.runtime.lab.api import Lab
from omc.runtime.lab.observe import (
    APP,
    Sampler,
    avails,
    etcd_conf,
    etcd_status,
    make_whole,
    om,
    until,
)
from omc.runtime.lab.services import ETCD_UNIT, FAST_TIMING

from tests.labs import cluster_lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster() -> Iterator[Lab]:
    """Three nodes with the daemon, at ``FAST_TIMING``."""
    yield from cluster_lab("l", timing=FAST_TIMING)


def test_a_member_that_answers_keeps_the_lease_alive(cluster: Lab) -> None:
    """Node X's own etcd member stopped (SIGSTOP: connections to it hang) and the member
    next in X's endpoint list out of X's reach (a partition between the two nodes): the
    third member answers, so X's lease is refreshed and X keeps its failover service up.
    A single client walking the endpoints spent ``keepalive`` on each of the first two
    before reaching the third: 2 s without a refresh, X's detection time, so X stopped
    the service, as healthy nodes did at each death of the etcd leader's node in the
    chaos run (its member without a leader, the dead node's address, then a member that
    answered: too late)."""
    status = {node.name: etcd_status(node) for node in cluster.nodes}
    leader = status["n1"]["leader"]
    x = next(n for n in cluster.nodes if status[n.name]["member"] != leader)  # no election
    second = etcd_conf(x)["endpoints"].split()[1]
    y = next(n for n in cluster.nodes if f"//{n.address}:" in second)
    others = [n.name for n in cluster.nodes if n.name != x.name]
    name = "lease-kept"
    marker = f"/tmp/{name}.up"
    config = (
        f"[DEFAULT]\nnodes = {x.name} {' '.join(others)}\norchestrate = ha\n\n"
        f"[app#0]\ntype = simple\nstart = {APP.format(marker=marker)}\nstop = rm -f {marker}\n"
    )
    x.write_file(f"/root/{name}.conf", config)
    assert om(x, name, "create", "--config", f"/root/{name}.conf").returncode == 0
    until(lambda: avails(x, name).get(x.name) == "up", 60, f"{name} up on {x.name}")
    since = time.time()
    try:
        with Sampler(cluster.name, {name: marker}) as sampler:
            x.run(["systemctl", "kill", "--signal=SIGSTOP", ETCD_UNIT])
            x.partition([y.name])
            time.sleep(8.0)  # four detection times
        fenced = x.run(["journalctl", "-u", "omc-daemon.service", "--since", f"@{since:.0f}",
                        "-o", "cat", "--no-pager"]).stdout  # fmt: skip
        assert "no etcd lease refresh" not in fenced, fenced[-2000:]
        assert all(s.up[name] == {x.name} for s in sampler.samples), "the service left its node"
    finally:
        x.run(["systemctl", "kill", "--signal=SIGCONT", ETCD_UNIT], check=False)
        make_whole(cluster)
        om(x, name, "delete", "--force")
