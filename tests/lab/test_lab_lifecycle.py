"""Lab life cycle: the `om lab` CLI, coexisting labs, crash clean-up, and 20 leak-free cycles."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from omc.runtime.lab import cgroups
from omc.runtime.lab import cli as lab_cli
from omc.runtime.lab.api import Lab
from omc.runtime.lab.state import ROOT, LabError, names, plan

OM = str(Path(sys.executable).parent / "om")

pytestmark = pytest.mark.lab  # every test here boots labs of its own


def om(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [OM, "lab", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _processes() -> set[str]:
    """Every process that is, or was launched as, part of a lab: ``pid cgroup|cmdline``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cgroup = (entry / "cgroup").read_text().replace("\n", ";")
            zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if zombie:
            continue  # exited; its namespaces are gone, only its parent has yet to reap it
        if "/omc-lab/" in cgroup or "omc-lab" in cmdline or "lab.nodeinit" in cmdline:
            found.add(f"{entry.name} {cgroup} {cmdline}")
    return found


def _cgroup_dirs() -> set[str]:
    tops = [h.dir_for(cgroups.SUBTREE) for h in cgroups.host_hierarchies()]
    return {root for top in tops for root, _d, _f in os.walk(top)}


def snapshot() -> dict[str, set[str]]:
    """What a lab could leak on the host, listed."""
    netns = Path("/run/netns")
    return {
        "processes": _processes(),
        "mounts": {ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()},
        "netns": {p.name for p in netns.iterdir()} if netns.is_dir() else set(),
        "links": {p.name for p in Path("/sys/class/net").iterdir()},
        "cgroups": _cgroup_dirs(),
        # os.walk skips a directory another run's lab removes while we walk (rglob raises)
        "files": {str(Path(d, n)) for d, subs, files in os.walk(ROOT) for n in subs + files},
        "tmp": {p.name for p in Path("/tmp").iterdir()},
    }


def leaks(
    before: dict[str, set[str]], after: dict[str, set[str]], labs: list[Lab]
) -> dict[str, set[str]]:
    """New host objects that belong to one of ``labs`` (other runs' labs may come and go,
    and take an index one of ``labs`` had: their links are theirs, not a leak)."""
    taken = _indices_of_other_labs({lab.name for lab in labs})
    marks = set()
    links = re.compile(
        "|".join(rf"olbr{i}|ol{i}[nd]\d+" for i in {lab.state.index for lab in labs} - taken)
        or "(?!)"
    )
    for lab in labs:
        marks |= {f"omc-{lab.name}-", f"/omc-lab/{lab.name}"}
    found = {
        kind: {
            item
            for item in after[kind] - before[kind]
            if any(m in item for m in marks) or (kind == "links" and links.fullmatch(item))
        }
        for kind in after
    }
    return {kind: items for kind, items in found.items() if items}


def _indices_of_other_labs(ours: set[str]) -> set[int]:
    """The indices held by labs other than ``ours`` that exist now (state.json is written
    before a lab creates anything and removed after it deleted its links)."""
    taken = set()
    for name in set(names()) - ours:
        with suppress(LabError):
            taken.add(Lab.attach(name).state.index)
    return taken


def test_twenty_up_down_cycles_leak_nothing() -> None:
    """20 real 1-node cycles: each boots to running; afterwards nothing of them remains."""
    canary = Path(f"/tmp/omct-canary-{os.getpid()}")
    canary.write_text("the lab must never empty the host's /tmp\n")
    try:
        before = snapshot()
        labs = []
        for _ in range(20):
            lab = Lab.up(f"c{os.getpid()}", nodes=1, etcd=False)
            labs.append(lab)
            assert lab.node("n1").alive()
            lab.down()
        after = snapshot()
        assert leaks(before, after, labs) == {}
        assert canary.exists()
        assert not Path(ROOT, f"c{os.getpid()}").exists()
    finally:
        canary.unlink()


def test_cli_up_status_exec_run_logs_down(lab: Lab) -> None:
    """`om lab up --nodes 3` runs beside the session lab; exec, run, logs and down work."""
    name = f"k{os.getpid()}"
    up = om("up", "--nodes", "3", "--no-etcd", "--name", name)
    assert up.stdout.count(" running") == 3
    try:
        status = json.loads(om("status", "--name", name, "--format", "json").stdout)
        assert [n["state"] for n in status["nodes"]] == ["running"] * 3
        assert status["subnet"] != lab.state.subnet
        assert om("exec", "--name", name, "n2", "--", "hostname").stdout.strip() == "n2"
        inside = om("exec", "--name", name, "n2", "--", "cat", "/proc/self/cgroup").stdout
        assert "0::/\n" in inside and "/.." not in inside
        cgroup = om("run", "--name", name, "n1", "--", "cat", "/proc/self/cgroup").stdout
        assert "0::/system.slice/run-" in cgroup
        logs = om("logs", "--name", name, "n1", "-u", "omc-lab.target").stdout
        assert "Reached target omc-lab.target" in logs
        other = lab.node("n1").address
        ping = om("exec", "--name", name, "n1", "--", "ping", "-c1", "-W1", other, check=False)
        assert ping.returncode != 0, "labs must not reach each other"
        assert name in om("list").stdout.split()
    finally:
        om("down", "--name", name)
    gone = om("status", "--name", name, check=False)
    assert gone.returncode == 1
    assert gone.stderr.startswith("om lab: error: no lab named") and "Traceback" not in gone.stderr


def test_up_leaves_the_host_cgroup2_alone_by_default(
    lab_factory: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lab booted without opting in (`make test`, `make demo`) never remounts the
    host's cgroup2 hierarchy: the spy on the one function that does stays uncalled."""
    calls: list[str] = []
    monkeypatch.setattr(cgroups, "favor_dynmods", lambda: calls.append("remount"))
    assert lab_factory(nodes=1).node("n1").system_state() == "running"
    assert calls == []


def test_up_favordynmods_asks_for_it_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`om lab up --favordynmods` (as `make bench` asks) calls the one function that
    remounts the host's cgroup2, once, and shows what it said. A spy stands in for it:
    the real remount is host-wide until reboot, which `make test` must never cause
    (issue #10 item 19); the remount's mount options are tested in tests/lab/test_lab_layout.py."""
    calls: list[str] = []

    def spy() -> str:
        calls.append("remount")
        return "cgroup2 favordynmods set on /sys/fs/cgroup (spy)"

    monkeypatch.setattr(cgroups, "favor_dynmods", spy)
    name = f"g{os.getpid()}"
    try:
        assert (
            lab_cli.main(["up", "--nodes", "1", "--no-etcd", "--favordynmods", "--name", name]) == 0
        )
    finally:
        lab_cli.main(["down", "--name", name])
    assert calls == ["remount"]
    assert "note: cgroup2 favordynmods set on /sys/fs/cgroup (spy)" in capsys.readouterr().err


def test_down_force_cleans_a_crashed_lab() -> None:
    """After SIGKILL of every node and launcher (a crashed run), `down --force` removes all."""
    before = snapshot()
    om("up", "--nodes", "2", "--no-etcd", "--name", f"x{os.getpid()}")
    lab = Lab.attach(f"x{os.getpid()}")
    for info in lab.state.nodes:
        os.kill(info.launcher_pid, signal.SIGKILL)
        os.kill(info.pid, signal.SIGKILL)
    assert Path("/run/netns", lab.state.nodes[0].netns).exists()
    om("down", "--force", "--name", lab.name)
    assert leaks(before, snapshot(), [lab]) == {}


def test_up_refuses_an_existing_name(lab: Lab) -> None:
    """A second lab with a taken name is refused with a hint, and the first one survives."""
    proc = om("up", "--nodes", "1", "--name", lab.name, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert lab.node("n1").system_state() == "running"


def test_failed_boot_removes_everything() -> None:
    """A boot that misses its deadline raises LabError and leaves nothing behind."""
    before = snapshot()
    name = f"f{os.getpid()}"
    with pytest.raises(LabError, match="not running after"):
        Lab.up(name, nodes=1, etcd=False, timeout=0.01)
    attempt = Lab(plan(name, 0, nodes=1, drp=0, etcd=False, ssh=False, tls=False))
    assert leaks(before, snapshot(), [attempt]) == {}
    assert name not in names()


def test_lab_factory_gives_fresh_isolated_labs(lab_factory: Callable[..., Lab]) -> None:
    """Two fresh labs from the factory are distinct, running, and on different subnets."""
    first, second = lab_factory(), lab_factory(nodes=2)
    assert first.name != second.name and first.state.subnet != second.state.subnet
    assert [n.system_state() for n in (*first.nodes, *second.nodes)] == ["running"] * 3
