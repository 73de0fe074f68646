"""Optional lab services (TLS etcd, sshd, DRP nodes) and the etcd adapter, inside nodes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import pytest
from omc.runtime.lab.api import Lab

pytestmark = pytest.mark.lab  # every test here boots labs of its own

ETCD_OPS = """
import json
from omc.runtime.adapters.etcd import Etcd, endpoints_from_file
eps = endpoints_from_file()
etcd = Etcd(["http://127.0.0.1:1"] + eps, timeout=3)   # a dead endpoint first: fail over
out = {}
out["create1"] = etcd.create("/omct/lock", "n1")
out["create2"] = etcd.create("/omct/lock", "n2")
out["swap_ok"] = etcd.replace("/omct/lock", "n1", "n3")
out["swap_stale"] = etcd.replace("/omct/lock", "n1", "n2")
out["value"] = etcd.get("/omct/lock").decode()
lease = etcd.lease(30)
etcd.put("/omct/leased", "x", lease=lease)
out["leased"] = etcd.get("/omct/leased") is not None
lease.revoke()
out["revoked"] = etcd.get("/omct/leased") is None
etcd.put("/omct/p/a", "1"); etcd.put("/omct/p/b", "2")
out["prefix"] = sorted(etcd.get_prefix("/omct/p/"))
out["deleted"] = etcd.delete("/omct/p/a")
out["health"] = sorted(etcd.health().values())
print(json.dumps(out))
"""


def test_etcd_adapter_operations_with_failover(lab: Lab) -> None:
    """create/replace/lease/prefix/delete/health work through a dead first endpoint."""
    proc = lab.node("n2").run([sys.executable, "-I", "-c", ETCD_OPS], timeout=60)
    out = json.loads(proc.stdout)
    assert out == {
        "create1": True, "create2": False, "swap_ok": True, "swap_stale": False,
        "value": "n3", "leased": True, "revoked": True,
        "prefix": ["/omct/p/a", "/omct/p/b"], "deleted": True, "health": [False, True, True, True],
    }  # fmt: skip


@pytest.fixture(scope="module")
def tls_lab() -> Iterator[Lab]:
    """Two nodes plus a DRP node, etcd over https with the lab's CA, and sshd."""
    lab = Lab.up(f"s{os.getpid()}", nodes=2, drp=1, etcd=True, ssh=True, tls=True)
    try:
        yield lab
    finally:
        lab.down()


def test_etcd_over_tls(tls_lab: Lab) -> None:
    """Members serve https with certificates of the lab's CA; the client cert is in /etc/opensvc."""
    n1 = tls_lab.node("n1")
    endpoints = n1.read_file("/etc/opensvc/etcd.endpoints").split()
    assert all(e.startswith("https://") for e in endpoints) and len(endpoints) == 2
    certs = ["--cacert=/etc/opensvc/etcd-ca.pem", "--cert=/etc/opensvc/etcd-client.pem",
             "--key=/etc/opensvc/etcd-client.key"]  # fmt: skip
    put = n1.run(["etcdctl", f"--endpoints={endpoints[1]}", *certs, "put", "/omct/tls", "yes"])
    assert put.stdout.strip() == "OK"
    plain = n1.run(["etcdctl", f"--endpoints={endpoints[0]}", "--dial-timeout=1s", "get", "/x"],
                   check=False)  # fmt: skip
    assert plain.returncode != 0, "https endpoints must refuse clients without the CA"


def test_drp_node_is_a_client_not_a_member(tls_lab: Lab) -> None:
    """d1 runs no etcd member but knows the members' endpoints."""
    d1 = tls_lab.node("d1")
    assert d1.run(["hostname"]).stdout.strip() == "d1"
    assert d1.address.endswith(".101")
    assert len(d1.read_file("/etc/opensvc/etcd.endpoints").split()) == 2
    state = d1.run(["systemctl", "is-active", "omc-lab-etcd.service"], check=False)
    assert state.stdout.strip() == "inactive"


def test_ssh_between_nodes_with_lab_keys(tls_lab: Lab) -> None:
    """n1 runs a command on n2 over ssh with the per-lab client key."""
    key = f"{tls_lab.dir}/ssh/id_ed25519"
    opts = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
    ]
    argv = ["ssh", "-i", key, *opts, f"root@{tls_lab.node('n2').address}", "hostname"]
    assert tls_lab.node("n1").run(argv, timeout=30).stdout.strip() == "n2"
