"""``om mon`` and ``print status``'s cluster part on a 3-node lab: real systemd, real
etcd, the daemon on every node; the states shown are the ones the nodes reached.

Each test works on its own objects (named after the test), deleted after it, so the
module's lab is shared.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from omc.runtime.cluster.records import instance_summary
from omc.runtime.exitcodes import ExitStatus
from omc.runtime.lab.api import NODE_ENV, Lab, Node
from omc.runtime.lab.observe import etcdctl
from omc.runtime.lab.services import ETCD_UNIT, LAB_TIMING
from ruamel.yaml import YAML

from tests.labs import cluster_lab

from .test_cluster_lab import OM, config, create, mon, om
from .test_cluster_lab import until as until_within

NODES = ("n1", "n2", "n3")
WAIT = 60.0  # seconds for a state to show: generous, the machine may be loaded

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster() -> Iterator[Lab]:
    """Three nodes n1..n3, an etcd member each, cluster.conf and the daemon on each."""
    yield from cluster_lab("m")


def created(node: Node, name: str, text: str) -> None:
    proc = create(node, name, text)
    assert proc.returncode == 0, proc.stderr


def until(check: Callable[[], bool]) -> None:
    until_within(check, timeout=WAIT)


def cluster_data(node: Node) -> Any:
    """``om mon --format json``, as untyped data."""
    return mon(node)


def row(text: str, name: str) -> list[str]:
    """The ``om mon`` object row of ``name``, split on runs of spaces."""
    for line in text.splitlines():
        if line.startswith(f" {name} "):
            return line.split()
    raise AssertionError(f"no row for {name} in:\n{text}")


def instance_line(text: str, node: str) -> list[str]:
    """``print status``'s instance line of ``node``, split on runs of spaces."""
    for line in text.splitlines():
        if re.match(rf"^  [├└] {node} ", line):
            return line.split()[2:]
    raise AssertionError(f"no instance line for {node} in:\n{text}")


@pytest.fixture
def names(request: pytest.FixtureRequest, cluster: Lab) -> Iterator[list[str]]:
    """Object names unique to the test (``<stem>-a``, ``-b``); deleted after it."""
    words = request.node.name.removeprefix("test_").split("_")
    stem = "-".join(w[:4] for w in words[:3])
    chosen = [f"{stem}-{x}" for x in "ab"]
    yield chosen
    for name in chosen:
        om(cluster.node("n1"), name, "delete", "--force")


def test_mon_shows_started_failed_and_frozen(cluster: Lab, names: list[str]) -> None:
    """Up on n1 (O^, X, X); a start failing everywhere (X start failed on each node);
    then that object frozen (X* on each node); every daemon holds its lease (O)."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    good, bad = names
    created(n1, good, config())
    created(n1, bad, config(app="/bin/false"))
    assert om(n1, good, "start", "--wait").returncode == 0
    assert om(n1, bad, "start", "--wait").returncode == 1
    text = om(n2, "mon").stdout
    assert row(text, good) == [good, "up", "no", "1/1", "|", "O^", "X", "X"]
    assert len(re.findall(r"X!? start failed", " ".join(row(text, bad)))) == 3
    lines = text.splitlines()
    assert lines[0].split() == ["Daemon", "n1", "n2", "n3"]
    assert lines[2].split() == ["state", "|", "O", "O", "O"]
    assert len({len(line) for line in lines}) == 1  # one table: every line as wide
    assert om(n1, bad, "freeze", "--wait").returncode == 0
    frozen = re.compile(r"X!?\*")  # ! : the failed app leaves the overall status warn
    until(lambda: all(frozen.fullmatch(c) for c in row(om(n2, "mon").stdout, bad)[-3:]))


def test_mon_formats_and_selectors(cluster: Lab, names: list[str]) -> None:
    """``--format yaml`` is the JSON data in YAML; ``om mon '<stem>-a*'`` keeps only
    matching objects and says so in the title; a bad --format is a usage error."""
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    first, second = names
    created(n1, first, config())
    created(n1, second, config())
    until(lambda: first in cluster_data(n3)["objects"] and second in cluster_data(n3)["objects"])
    proc = om(n3, "mon", "--format", "yaml")
    assert proc.returncode == 0, proc.stderr
    data = YAML(typ="safe").load(proc.stdout)
    assert data["objects"][first]["instances"]["n1"]["avail"] == "down"
    assert set(data["nodes"]) == {"n1", "n2", "n3"}
    assert all(node["alive"] for node in data["nodes"].values())
    chosen = om(n3, "mon", f"{first[:-1]}a*")
    assert chosen.returncode == 0, chosen.stderr
    assert f"Objects ~ {first[:-1]}a*" in chosen.stdout
    assert f" {first} " in chosen.stdout
    assert f" {second} " not in chosen.stdout
    assert om(n3, "mon", "--format", "xml").returncode == ExitStatus.USAGE


def test_print_status_has_the_cluster_part(cluster: Lab, names: list[str]) -> None:
    """On n2, an object started on n1: the object line up, n1 and n3 folded (n1 up, idle,
    kept started), n2 expanded with its resources; json and yaml carry the same; a frozen
    instance says frozen."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    name = names[0]
    created(n1, name, config())
    assert om(n1, name, "start", "--wait").returncode == 0
    until(lambda: "started" in instance_line(om(n2, name, "print", "status").stdout, "n1"))
    text = om(n2, name, "print", "status").stdout
    lines = text.splitlines()
    assert lines[0].split() == [name, "up"]
    assert [ln.split()[1] for ln in lines[2:5]] == ["n1", "n3", "n2"]
    assert instance_line(text, "n1") == ["up", "idle", "started"]
    assert instance_line(text, "n3") == ["down", "idle"]
    assert instance_line(text, "n2") == ["down", "idle"]
    assert "    └ resources" in lines
    data = json.loads(om(n2, name, "print", "status", "--format", "json").stdout)
    assert (data["avail"], data["placement"]) == ("up", "optimal")
    assert list(data["instances"]) == ["n1", "n3", "n2"]
    assert data["instances"]["n1"]["monitor"]["local_expect"] == "started"
    assert "app#0" in data["instances"]["n2"]["resources"]
    yaml_out = om(n2, name, "print", "status", "--format", "yaml").stdout
    assert YAML(typ="safe").load(yaml_out)["instances"]["n1"]["notes"] == ["idle", "started"]
    assert om(n1, name, "freeze", "--wait").returncode == 0
    frozen = om(n2, name, "print", "status").stdout
    assert instance_line(frozen, "n1")[:2] == ["up", "frozen"]
    assert instance_line(frozen, "n2")[:2] == ["down", "frozen"]
    assert frozen.splitlines()[0].split() == [name, "up", "non-optimal", "placement"]
    data = json.loads(om(n2, name, "print", "status", "--format", "json").stdout)
    assert data["notes"] == ["non-optimal placement"]


def test_all_frozen_started_by_hand_off_the_leader(cluster: Lab, names: list[str]) -> None:
    """Every instance frozen, then ``instance start`` on n2 (n1 is first in nodes): no
    frozen instance is a leader, so both views say non-optimal (om3's): ``print status``
    on n1 has the note, ``om mon`` the ``up^`` row with no ``^`` cell."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    name = names[0]
    created(n1, name, config())
    assert om(n1, name, "freeze", "--wait").returncode == 0
    proc = om(n2, name, "instance", "start")
    assert proc.returncode == 0, proc.stderr
    expected = [name, "up^", "no", "1/1", "|", "X*", "O*", "X*"]
    until(lambda: row(om(n1, "mon").stdout, name) == expected)
    text = om(n1, name, "print", "status").stdout
    assert text.splitlines()[0].split() == [name, "up", "non-optimal", "placement"]
    assert instance_line(text, "n2")[:2] == ["up", "frozen"]
    data = json.loads(om(n1, name, "print", "status", "--format", "json").stdout)
    assert (data["avail"], data["placement"]) == ("up", "non-optimal")


def test_print_status_degrades_without_daemon_or_etcd(cluster: Lab, names: list[str]) -> None:
    """n3's daemon stopped: n1 shows n3 ``daemon down``, n3 shows itself so; with etcd
    unreachable, the local instance alone, ``no-monitor``, and a warning saying why."""
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    name = names[0]
    created(n1, name, config())
    until(lambda: n3.path(f"/etc/opensvc/{name}.conf").exists())
    n3.run(["systemctl", "stop", "omc-daemon.service"])
    try:
        until(lambda: not cluster_data(n1)["nodes"]["n3"]["alive"])
        text = om(n1, name, "print", "status").stdout
        assert instance_line(text, "n3") == ["undef", "daemon", "down"]
        mine = om(n3, name, "print", "status")
        assert mine.returncode == 0, mine.stderr
        assert instance_line(mine.stdout, "n3") == ["down", "daemon", "down"]
    finally:
        n3.run(["systemctl", "start", "omc-daemon.service"])
    conf = n1.read_file("/etc/opensvc/cluster.conf")
    etc = "/root/etc-no-etcd"
    n1.run(["cp", "-a", "/etc/opensvc/.", etc])
    n1.write_file(f"{etc}/cluster.conf",
                  re.sub(r"(?m)^endpoints\s*=.*$", "endpoints = http://127.0.0.1:9", conf),
                  mode=0o600)  # fmt: skip
    proc = n1.run(["env", f"OMC_ETC={etc}", OM, name, "print", "status"], check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cluster state unavailable" in proc.stderr
    assert instance_line(proc.stdout, "n1") == ["down", "no-monitor"]
    assert not re.search(r"(?m)^  ├ ", proc.stdout)  # no peer: nothing is known of them


def test_mon_watch_redraws_on_change(cluster: Lab, names: list[str]) -> None:
    """``om mon --watch`` in the background: it draws once, then again when the object
    starts (etcd events, no polling): a later frame shows it up on n1."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    name = names[0]
    created(n1, name, config())
    until(lambda: name in cluster_data(n2)["objects"])
    pidfile = f"/tmp/{name}.watch.pid"
    script = f"echo $$ > {pidfile}; exec timeout -s INT 60 {OM} mon --watch {name}"
    watcher = subprocess.Popen(n2.argv(["sh", "-c", script]), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               env=NODE_ENV)  # fmt: skip
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(watcher.stdout or ()), daemon=True)
    reader.start()
    try:
        until(lambda: "eventsets" in "".join(out))
        assert om(n1, name, "start", "--wait").returncode == 0
        until(lambda: any(ln.split()[-3:] == ["O^", "X", "X"] for ln in list(out)
                          if ln.startswith(f" {name} ")))  # fmt: skip
    finally:  # timeout(1) passes the SIGINT on to om mon, which ends (exit 130)
        n2.run(["kill", "-INT", n2.read_file(pidfile).strip()], check=False)
        assert watcher.wait(timeout=30) == 130
        reader.join(timeout=10)
    text = "".join(out)
    headers = re.findall(r"^Client n2 received (\d+) eventsets from etcd, cluster \S+, last on ",
                         text, flags=re.MULTILINE)  # fmt: skip
    assert headers[0] == "0" and len(headers) >= 2
    first = text.split("Client n2")[1]
    assert row(first, name)[-3:] == ["X^", "X", "X"]


def test_mon_verbose_shows_leases_and_takeover_reasons(cluster: Lab, names: list[str]) -> None:
    """``--verbose``: every lease's seconds left (at most the lease TTL) and, per
    object, the last takeover and its reason: the ha start, then a switch."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    name = names[0]
    created(n1, name, config(orchestrate="ha"))
    until(lambda: row(om(n2, "mon").stdout, name)[5] == "O^")
    text = om(n2, "mon", "--verbose").stdout
    lease = next(ln.split() for ln in text.splitlines() if ln.startswith("  lease left"))
    ttl = int(LAB_TIMING["lease_ttl"].removesuffix("s"))
    assert all(0 < int(s.removesuffix("s")) <= ttl for s in lease[-3:]), lease
    assert re.search(rf"(?m)^ {name} on n1, \S+ ago: orchestrate = ha: not up on any node$", text)
    assert om(n2, name, "switch", "--node", "n2", "--wait").returncode == 0
    text = om(n1, "mon", "--verbose").stdout
    assert re.search(rf"(?m)^ {name} on n2, \S+ ago: placed on n2$", text), text
    data = cluster_data(n1)
    assert data["objects"][name]["instances"]["n2"]["took_over_why"] == "placed on n2"


def instance_keys(node: Node, name: str) -> dict[tuple[str, str], tuple[Any, int]]:
    """(space, node) → (decoded value, lease) of ``name``'s keys in the ``instances`` and
    ``summaries`` spaces, as etcd holds them."""
    cluster = om(node, "cluster", "config", "get", "cluster.name").stdout.strip()
    out = node.run(etcdctl(node, "get", "--prefix", f"/omc/{cluster}/", "-w", "json")).stdout
    found = {}
    for kv in json.loads(out).get("kvs", []):
        parts = base64.b64decode(kv["key"]).decode().split("/")  # /omc/<c>/<space>/root/svc/…
        if parts[3] in ("instances", "summaries") and parts[6] == name:
            value = json.loads(base64.b64decode(kv["value"]))
            found[(parts[3], parts[7])] = (value, int(kv.get("lease", 0)))
    return found


def test_each_instance_record_has_its_summary_under_the_same_lease(
    cluster: Lab, names: list[str]
) -> None:
    """What ``om mon`` reads (``summaries/``) is written beside every instance record,
    under the same lease (a dead node's summaries go with its records), follows the
    record's changes, and goes when the object is deleted."""
    n1, name = cluster.node("n1"), names[0]
    created(n1, name, config())
    assert om(n1, name, "start", "--wait").returncode == 0

    def consistent() -> bool:
        found = instance_keys(n1, name)
        pairs = [(found.get(("instances", n)), found.get(("summaries", n))) for n in NODES]
        return all(
            record is not None
            and summary is not None
            and record[0]["avail"]
            and summary == (instance_summary(record[0]), record[1])
            and record[1] != 0
            for record, summary in pairs
        )

    until(consistent)
    assert instance_keys(n1, name)[("summaries", "n1")][0]["avail"] == "up"
    assert om(n1, name, "stop", "--wait").returncode == 0
    until(
        lambda: consistent() and instance_keys(n1, name)[("summaries", "n1")][0]["avail"] == "down"
    )
    assert om(n1, name, "delete", "--force").returncode == 0
    until(lambda: instance_keys(n1, name) == {})


def test_mon_on_a_node_without_etcd_quorum_says_partitioned(cluster: Lab) -> None:
    """With n2's and n3's etcd members stopped, n1's member has no quorum: ``om mon`` on
    n1 still shows its member's last state, n1 marked partitioned, and warns; with
    quorum back, the mark goes."""
    n1 = cluster.node("n1")
    others = [cluster.node("n2"), cluster.node("n3")]
    for node in others:
        node.run(["systemctl", "stop", ETCD_UNIT])
    try:
        proc = om(n1, "mon")
        assert proc.returncode == 0, proc.stderr
        assert "n1 is partitioned: etcd has no quorum here" in proc.stderr
        state = next(ln.split() for ln in proc.stdout.splitlines() if ln.startswith(" state ")
                     and "partitioned" in ln)  # fmt: skip
        assert state[2] == "partitioned"
        assert cluster_data(n1)["nodes"]["n1"]["partitioned"] is True
    finally:
        for node in others:
            node.run(["systemctl", "start", ETCD_UNIT])
    until(lambda: om(n1, "mon").stderr == "" and "partitioned" not in om(n1, "mon").stdout)
