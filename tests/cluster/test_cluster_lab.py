"""The cluster on a 3-node lab: real systemd, real etcd, the daemon on every node.

Each test works on its own objects (named after the test) so that the module's
lab is shared; objects are deleted at the end of each test. The acceptance of
issue #11, point by point.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

from tests.labs import cluster_lab

OM = str(Path(sys.executable).parent / "om")
pytestmark = pytest.mark.lab


def om(node: Node, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return node.run([OM, *args], check=False, timeout=timeout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Lab]:
    """Three nodes n1..n3, an etcd member each, cluster.conf and the daemon on each."""
    yield from cluster_lab("c")


def config(nodes: str = "n1 n2 n3", app: str = "", **default: str) -> str:
    """A failover service: a flag fs and an app whose marker file says it runs."""
    extra = "".join(f"{k} = {v}\n" for k, v in default.items())
    start = app or "touch /tmp/{name}.up"
    return (
        f"[DEFAULT]\nnodes = {nodes}\n{extra}\n"
        "[fs#1]\ntype = flag\n\n"
        f"[app#0]\nstart = {start}\nstop = rm -f /tmp/{{name}}.up\n"
        "check = test -f /tmp/{name}.up\n"
    )


def create(node: Node, name: str, text: str) -> subprocess.CompletedProcess[str]:
    node.write_file(f"/root/{name}.conf", text)
    return om(node, name, "create", "--config", f"/root/{name}.conf")


def mon(node: Node) -> dict[str, object]:
    proc = om(node, "mon", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def avails(node: Node, name: str) -> dict[str, str]:
    objects = mon(node)["objects"]
    assert isinstance(objects, dict)
    instances = objects[name]["instances"]
    return {n: i["avail"] for n, i in instances.items()}


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture
def name(request: pytest.FixtureRequest, cluster: Lab) -> Iterator[str]:
    """An object name unique to the test; the object is deleted everywhere after it."""
    words = request.node.name.split("[")[0].removeprefix("test_").split("_")
    stem = "-".join(w[:4] for w in words[:4])
    yield stem
    n1 = cluster.node("n1")
    om(n1, stem, "delete", "--force")


def test_create_installs_on_every_node_of_the_scope(cluster: Lab, name: str) -> None:
    """create on n2 → the config and units are on n1, n2 and n3; delete removes them all."""
    n2 = cluster.node("n2")
    proc = create(n2, name, config())
    assert proc.returncode == 0, proc.stderr
    for node in cluster.nodes:
        assert node.path(f"/etc/opensvc/{name}.conf").exists(), node.name
        assert om(node, name, "print", "status").returncode == 0
    assert om(n2, name, "delete").returncode == 0
    for node in cluster.nodes:
        until(lambda node=node: not node.path(f"/etc/opensvc/{name}.conf").exists())


def test_create_out_of_scope_stays_off_other_nodes(cluster: Lab, name: str) -> None:
    """A config whose nodes are n1 n2 is not installed on n3."""
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    assert create(n1, name, config(nodes="n1 n2")).returncode == 0
    assert cluster.node("n2").path(f"/etc/opensvc/{name}.conf").exists()
    assert not n3.path(f"/etc/opensvc/{name}.conf").exists()


def test_a_node_whose_daemon_was_down_catches_up(cluster: Lab, name: str) -> None:
    """n3's daemon stopped during create: once it runs again, n3 gets the config."""
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    n3.run(["systemctl", "stop", "omc-daemon.service"])
    try:
        assert create(n1, name, config()).returncode == 0
        assert not n3.path(f"/etc/opensvc/{name}.conf").exists()
    finally:
        n3.run(["systemctl", "start", "omc-daemon.service"])
    until(lambda: n3.path(f"/etc/opensvc/{name}.conf").exists())


def test_start_stop_switch_giveback_takeover(cluster: Lab, name: str) -> None:
    """start → up on n1 only; switch → n2, non-optimal; giveback → n1; takeover from n3 →
    n3; stop → down and frozen everywhere, and it stays down."""
    n1, n3 = cluster.node("n1"), cluster.node("n3")
    assert create(n1, name, config()).returncode == 0
    proc = om(n1, name, "start", "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "accepted" in proc.stdout
    assert avails(n1, name) == {"n1": "up", "n2": "down", "n3": "down"}
    assert om(n1, name, "switch", "--node", "n2", "--wait").returncode == 0
    assert avails(n1, name) == {"n1": "down", "n2": "up", "n3": "down"}
    objects = mon(n1)["objects"]
    assert isinstance(objects, dict)
    assert objects[name]["placement"] == "non-optimal"
    assert om(n3, name, "giveback", "--wait").returncode == 0
    assert avails(n1, name) == {"n1": "up", "n2": "down", "n3": "down"}
    assert om(n3, name, "takeover", "--wait").returncode == 0
    assert avails(n1, name) == {"n1": "down", "n2": "down", "n3": "up"}
    assert om(n1, name, "stop", "--wait").returncode == 0
    state = mon(n1)["objects"][name]  # type: ignore[index]
    found = {n: (i["avail"], i["frozen"]) for n, i in state["instances"].items()}
    assert found == dict.fromkeys(("n1", "n2", "n3"), ("down", True))
    time.sleep(2)  # nothing starts it again
    assert set(avails(n1, name).values()) == {"down"}


def test_flex_target_two(cluster: Lab, name: str) -> None:
    """flex with flex_target = 2: start brings exactly two instances up."""
    n1 = cluster.node("n1")
    text = config(topology="flex", flex_target="2", flex_min="1")
    assert create(n1, name, text).returncode == 0
    assert om(n1, name, "start", "--wait").returncode == 0
    assert sorted(avails(n1, name).values()) == ["down", "up", "up"]


def test_a_failed_start_moves_to_the_next_node(cluster: Lab, name: str) -> None:
    """The app fails on n1: start failed there, up on n2, --wait succeeds."""
    n1 = cluster.node("n1")
    app = "sh -c 'test $(hostname) != n1 && touch /tmp/{name}.up'"
    assert create(n1, name, config(app=app)).returncode == 0
    proc = om(n1, name, "start", "--wait")
    assert proc.returncode == 0, proc.stderr
    state = mon(n1)["objects"][name]["instances"]  # type: ignore[index]
    assert state["n2"]["avail"] == "up"
    # n1 failed first (its `start failed` is cleared once the object is up, as om3 does)
    journal = n1.run(["journalctl", f"OBJ_PATH={name}", "-o", "cat", "--no-pager"]).stdout
    assert "<<< failed start" in journal


def test_failing_everywhere_then_clear_and_abort(cluster: Lab, name: str) -> None:
    """Every node fails: --wait exits 1 naming them; clear resets; abort ends an
    orchestration that cannot finish."""
    n1 = cluster.node("n1")
    assert create(n1, name, config(app="/bin/false")).returncode == 0
    proc = om(n1, name, "start", "--wait")
    assert proc.returncode == 1
    for node in ("n1", "n2", "n3"):
        assert f"{node}: start failed" in proc.stderr
    assert om(n1, name, "clear").returncode == 0
    states = {n: i["state"] for n, i in mon(n1)["objects"][name]["instances"].items()}  # type: ignore[index]
    assert set(states.values()) == {"idle"}
    assert om(n1, name, "freeze", "--wait").returncode == 0
    proc = om(n1, name, "start")  # all frozen... then start unfreezes, and fails again
    assert proc.returncode == 0
    assert om(n1, name, "abort", "--wait").returncode == 0
    objects = mon(n1)["objects"]
    assert objects[name]["intent"] is None  # type: ignore[index]


def test_time_bound_dry_run_and_watch(cluster: Lab, name: str) -> None:
    """--time 1s on a 5 s start exits 124 and the start goes on; --dry-run writes
    nothing; --watch shows the object converging."""
    n1 = cluster.node("n1")
    app = "sh -c 'sleep 5; touch /tmp/{name}.up'"
    assert create(n1, name, config(app=app)).returncode == 0
    dry = om(n1, name, "start", "--dry-run")
    assert dry.returncode == 0
    assert "n1: take, start" in dry.stdout
    assert mon(n1)["objects"][name]["intent"] is None  # type: ignore[index]
    proc = om(n1, name, "start", "--wait", "--time", "1s")
    assert proc.returncode == 124
    until(lambda: avails(n1, name)["n1"] == "up", timeout=30)
    assert om(n1, name, "stop", "--wait").returncode == 0
    watched = om(n1, name, "start", "--watch")
    assert watched.returncode == 0
    assert "starting" in watched.stdout


def test_daemon_restart_during_a_start_completes_it_once(cluster: Lab, name: str) -> None:
    """Restarting n1's daemon while its start runs: the action completes, once, and the
    orchestration ends."""
    n1 = cluster.node("n1")
    app = "sh -c 'sleep 2; echo x >> /root/{name}.count; touch /tmp/{name}.up'"
    assert create(n1, name, config(app=app)).returncode == 0
    assert om(n1, name, "start").returncode == 0
    until(lambda: mon(n1)["objects"][name]["instances"]["n1"]["state"] == "starting")  # type: ignore[index]
    n1.run(["systemctl", "restart", "omc-daemon.service"])
    until(lambda: mon(n1)["objects"][name]["intent"] is None, timeout=30)  # type: ignore[index]
    assert avails(n1, name)["n1"] == "up"
    assert n1.read_file(f"/root/{name}.count") == "x\n"


def test_orchestrated_actions_need_the_daemon(cluster: Lab, name: str) -> None:
    """With n2's daemon stopped, `om … start` on n2 says so and exits 1."""
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    assert create(n1, name, config()).returncode == 0
    n2.run(["systemctl", "stop", "omc-daemon.service"])
    try:
        until(lambda: "n2" not in [n for n, v in mon(n1)["nodes"].items() if v["alive"]],  # type: ignore[union-attr]
              timeout=15)  # fmt: skip
        proc = om(n2, name, "start")
        assert proc.returncode == 1
        assert "the daemon is not running on n2" in proc.stderr
    finally:
        n2.run(["systemctl", "start", "omc-daemon.service"])


def test_orchestrate_ha_starts_it_and_drain_moves_it(cluster: Lab, name: str) -> None:
    """orchestrate = ha: the cluster starts it on n1 by itself; `om node drain` on n1
    freezes n1 and shuts it down there, and n2 takes it; unfreeze n1 afterwards."""
    n1 = cluster.node("n1")
    assert create(n1, name, config(nodes="n1 n2", orchestrate="ha")).returncode == 0
    until(lambda: avails(n1, name).get("n1") == "up")
    try:
        proc = om(n1, "node", "drain")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        until(lambda: avails(n1, name) == {"n1": "down", "n2": "up"})
        assert mon(n1)["nodes"]["n1"]["frozen"] is True  # type: ignore[index]
    finally:
        om(n1, "node", "unfreeze")
    time.sleep(2)  # no flapping back once n1 is unfrozen
    assert avails(n1, name) == {"n1": "down", "n2": "up"}


def test_config_changes_go_through_the_cluster(cluster: Lab, name: str) -> None:
    """config edit on n2 reaches n1 and n3; an edit that started before another one
    landed is refused, never overwrites it; a sec store made and changed on n1 is on
    every node."""
    n1, n2, n3 = cluster.node("n1"), cluster.node("n2"), cluster.node("n3")
    assert create(n1, name, config(priority="50")).returncode == 0
    n2.write_file("/root/to40.sh", "#!/bin/sh\nsed -i 's/priority = 50/priority = 40/' \"$1\"\n")
    n2.run(["chmod", "755", "/root/to40.sh"])
    proc = n2.run(["env", "EDITOR=/root/to40.sh", OM, name, "config", "edit"], check=False)
    assert proc.returncode == 0, proc.stderr
    for node in cluster.nodes:
        assert "priority = 40" in node.path(f"/etc/opensvc/{name}.conf").read_text(), node.name
    # n1: an editor that lets another edit land before it saves its own
    n1.write_file("/root/to30.sh", "#!/bin/sh\nsed -i 's/priority = 40/priority = 30/' \"$1\"\n")
    n1.write_file(
        "/root/late.sh",
        f"#!/bin/sh\nEDITOR=/root/to30.sh {OM} {name} config edit || exit 1\n"
        "sed -i 's/priority = 40/priority = 60/' \"$1\"\n",
    )
    n1.run(["chmod", "755", "/root/to30.sh", "/root/late.sh"])
    proc = n1.run(["env", "EDITOR=/root/late.sh", OM, name, "config", "edit"], check=False)
    assert proc.returncode == 1
    assert "changed in the cluster meanwhile" in proc.stderr
    for node in cluster.nodes:
        text = node.path(f"/etc/opensvc/{name}.conf").read_text()
        assert "priority = 30" in text and "priority = 60" not in text, node.name
    store = f"sec/{name}"
    assert om(n1, store, "create").returncode == 0
    proc = om(n1, store, "add", "--key", "password", "--value", "s3cret")
    assert proc.returncode == 0, proc.stderr
    for node in cluster.nodes:
        proc = om(node, store, "decode", "--key", "password")
        assert (proc.returncode, proc.stdout) == (0, "s3cret"), (node.name, proc.stderr)
    assert om(n3, store, "delete").returncode == 0
    for node in cluster.nodes:
        until(lambda node=node: om(node, store, "keys").returncode != 0)


PROBE = """
import json, sys
from omc.runtime.adapters.etcd import AuthError, Etcd, Tls, TlsError
from omc.runtime.cluster import connect, settings
conf = settings.load()
out = {}
def attempt(name, etcd, key):
    try:
        etcd.range(key)
        out[name] = "ok"
    except (AuthError, TlsError) as exc:
        out[name] = type(exc).__name__
attempt("cluster user, own prefix", connect.etcd(conf), conf.prefix)
attempt("cluster user, other prefix", connect.etcd(conf), "/omc/another/")
attempt("no user", Etcd(conf.endpoints, tls=connect.tls(conf)), conf.prefix)
attempt("no client certificate", Etcd(conf.endpoints, tls=Tls(ca_cert=conf.ca)), conf.prefix)
print(json.dumps(out))
"""


def test_etcd_is_tls_with_auth_by_default(cluster: Lab) -> None:
    """A cluster lab runs etcd with client certificates and auth: the cluster user gets
    its prefix only, a client without user or certificate nothing; the password sits in
    0600 files only (cluster.conf in the nodes, root's in the lab directory)."""
    n2 = cluster.node("n2")
    conf = n2.read_file("/etc/opensvc/cluster.conf")
    assert "insecure" not in conf
    assert f"user = omc-{cluster.name}\n" in conf
    for path in ("/etc/opensvc/cluster.conf", "/etc/opensvc/etcd-client.key"):
        assert n2.path(path).stat().st_mode & 0o777 == 0o600, path
    assert (cluster.dir / "tls/etcd-root.password").stat().st_mode & 0o777 == 0o600
    probe = json.loads(n2.run([sys.executable, "-I", "-c", PROBE]).stdout)
    assert probe == {
        "cluster user, own prefix": "ok",
        "cluster user, other prefix": "PermissionDeniedError",
        "no user": "AuthError",
        "no client certificate": "TlsError",
    }


def test_the_daemon_names_a_refused_login(cluster: Lab) -> None:
    """The daemon with a wrong password stops with one line naming the user (not the
    password), exit 1."""
    n3 = cluster.node("n3")
    conf = n3.read_file("/etc/opensvc/cluster.conf")
    wrong = "".join("password = wrong-one\n" if ln.startswith("password") else ln
                    for ln in conf.splitlines(keepends=True))  # fmt: skip
    n3.write_file("/root/wrongpw/cluster.conf", wrong, mode=0o600)
    proc = n3.run(["env", "OMC_ETC=/root/wrongpw", OM, "daemon", "run"], check=False)
    assert proc.returncode == 1
    (line,) = (proc.stdout + proc.stderr).splitlines()
    assert f"etcd refused user 'omc-{cluster.name}': unknown user or wrong password" in line
    assert "wrong-one" not in line
