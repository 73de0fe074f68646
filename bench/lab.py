"""Lab speed: boot to `running` (1 and 3 nodes), teardown, and a StartUnit round trip.

Measures (medians): `Lab.up` of 1 node and of 3 nodes (without etcd, and 3 with etcd)
until every node reports `running`; `lab.down()` (clean poweroff, then cleanup); and
from the host, StartUnit of a oneshot `/bin/true` through the D-Bus adapter, waiting
for its job and reading ActiveState (median of 200), against the baseline in the same
run: `nsenter -t PID -m -p systemctl start` of the same unit (median of 50).
Targets: 3 nodes <= 2 s, teardown <= 1 s.
Opts in to the host's cgroup2 `favordynmods` (`om lab up --favordynmods`), as
bench/instance.py does, and says so in the machine line.
Prints a markdown table and rewrites the Lab section of docs/BENCHMARKS.md.

Cluster labs (also alone: ``bench/lab.py --cluster``): `Lab.up(cluster=True)` until
every node runs its daemon, with etcd over TLS + auth (the default) against
``tls=False`` (plain http, no auth: the lab before etcd security), interleaved so that
both see the same machine load; rewrites the "Lab: cluster" section.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".dev"))

from omc.runtime.lab import cgroups  # noqa: E402
from omc.runtime.lab.api import Lab  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- lab:begin -->", "<!-- lab:end -->"
CLUSTER_BEGIN, CLUSTER_END = "<!-- lab-cluster:begin -->", "<!-- lab-cluster:end -->"
CLUSTER_BOOTS = 5
BOOTS = 5
STARTS = 200
BASELINE_STARTS = 50
UNIT = "omcbench-true.service"


def _ms(seconds: float) -> float:
    return seconds * 1000


def boot_cycle(name: str, nodes: int, *, etcd: bool) -> tuple[float, float]:
    """(boot, teardown) in ms of one lab."""
    start = time.perf_counter()
    lab = Lab.up(name, nodes=nodes, etcd=etcd, favordynmods=True)
    booted = time.perf_counter()
    lab.down()
    return _ms(booted - start), _ms(time.perf_counter() - booted)


def boots(nodes: int, *, etcd: bool) -> tuple[list[float], list[float]]:
    up, down = [], []
    for _ in range(BOOTS):
        u, d = boot_cycle(f"b{os.getpid()}", nodes, etcd=etcd)
        up.append(u)
        down.append(d)
    return up, down


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(_ms(time.perf_counter() - start))
    return times


def start_unit_round_trips() -> tuple[list[float], list[float], float]:
    """D-Bus StartUnit+job wait+state read, vs nsenter systemctl start; and connect time."""
    lab = Lab.up(f"s{os.getpid()}", nodes=1, etcd=False, favordynmods=True)
    try:
        node = lab.node("n1")
        node.write_file(
            f"/run/systemd/system/{UNIT}", "[Service]\nType=oneshot\nExecStart=/bin/true\n"
        )
        node.run(["systemctl", "daemon-reload"])
        t0 = time.perf_counter()
        sd = node.systemd()
        sd.state(UNIT)
        connect = _ms(time.perf_counter() - t0)

        def dbus_start() -> None:
            outcome = sd.start([UNIT])[UNIT]
            assert outcome.result == "done" and outcome.state.active_state == "inactive"

        dbus = timed(dbus_start, STARTS)
        sd.close()
        argv = ["nsenter", "-t", str(node.pid), "-m", "-p", "systemctl", "start", UNIT]
        baseline = timed(lambda: subprocess.run(argv, check=True), BASELINE_STARTS)
    finally:
        lab.down()
    return dbus, baseline, connect


def row(
    label: str, values: list[float], target: str = "", baseline: str = "", digits: int = 0
) -> str:
    """One markdown table row: median, min, max, count, target, baseline."""
    stats = " | ".join(
        f"{v:.{digits}f}" for v in (statistics.median(values), min(values), max(values))
    )
    return f"| {label} | {stats} | {len(values)} | {target} | {baseline} |"


def node_cpu_ms(lab: Lab) -> float:
    """CPU time the lab's nodes used so far (cgroup v1 cpuacct), in ms: the work a boot
    costs, which the machine's load does not inflate as it does wall time."""
    total = 0
    for node in lab.nodes:
        for directory in node.info.cgroups:
            usage = Path(directory, "cpuacct.usage")
            if "/cpuacct" in directory and usage.exists():
                total += int(usage.read_text())
    return total / 1e6


def cluster_boots() -> dict[bool, tuple[list[float], list[float]]]:
    """Per TLS setting (True: TLS + auth, False: plain http), the wall time to boot a
    3-node cluster lab and the nodes' CPU time by then, both in ms, interleaved."""
    found: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for _ in range(CLUSTER_BOOTS):
        for tls in (True, False):
            start = time.perf_counter()
            lab = Lab.up(f"c{os.getpid()}"[:10], nodes=3, cluster=True, tls=tls)
            found[tls][0].append(_ms(time.perf_counter() - start))
            found[tls][1].append(node_cpu_ms(lab))
            lab.down()
    return found


def rewrite(begin: str, end: str, table: str) -> None:
    """Replace the text between ``begin`` and ``end`` in docs/BENCHMARKS.md."""
    text = BENCH_MD.read_text()
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    BENCH_MD.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


def cluster_main() -> None:
    load_before = Path("/proc/loadavg").read_text().split()[0]
    found = cluster_boots()
    (secure, secure_cpu), (plain, plain_cpu) = found[True], found[False]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = Path("/proc/loadavg").read_text().split()[0]
    table = "\n".join([
        f"Machine: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}, "
        f"Python {platform.python_version()}; {when}; load average {load_before} before, "
        f"{load} after. 3 nodes, 3 etcd members, the daemon on each, until all `running`; "
        "the two kinds interleaved.",
        "",
        "| measure (ms) | median | min | max | n | target | baseline (same run) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row("boot a cluster lab, etcd TLS + auth (default)", secure,
            baseline=f"plain http: {statistics.median(plain):.0f}"),
        row("boot a cluster lab, `--no-tls` (plain http, no auth)", plain),
        row("nodes' CPU time to boot, TLS + auth", secure_cpu,
            baseline=f"plain http: {statistics.median(plain_cpu):.0f}"),
        row("nodes' CPU time to boot, `--no-tls`", plain_cpu),
    ])  # fmt: skip
    print(table)
    rewrite(CLUSTER_BEGIN, CLUSTER_END, table)


def main() -> int:
    if sys.argv[1:] == ["--cluster"]:
        cluster_main()
        return 0
    up1, down1 = boots(1, etcd=False)
    up3, down3 = boots(3, etcd=False)
    up3e, down3e = boots(3, etcd=True)
    dbus, baseline, connect = start_unit_round_trips()
    ok = statistics.median(up3) <= 2000 and statistics.median(down3) <= 1000
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = Path("/proc/loadavg").read_text().split()[0]
    favor = "on" if cgroups.favordynmods_on(Path("/proc/self/mountinfo").read_text()) else "off"
    lines = [
        f"Machine: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()} "
        f"(cgroup2 favordynmods {favor}), Python {platform.python_version()}; {when}; "
        f"load average {load} at the end.",
        "",
        "| measure (ms) | median | min | max | n | target | baseline (same run) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row("boot 1 node to `running`", up1),
        row("boot 3 nodes to `running` (no etcd)", up3, "<= 2000"),
        row("boot 3 nodes + 3-member etcd to `running`", up3e),
        row("teardown 1 node", down1),
        row("teardown 3 nodes", down3, "<= 1000"),
        row("teardown 3 nodes + etcd", down3e),
        row(
            "StartUnit oneshot via D-Bus adapter (job wait + ActiveState)",
            dbus,
            baseline=f"`nsenter … systemctl start`: {statistics.median(baseline):.2f}",
            digits=2,
        ),
        row("`nsenter -m -p systemctl start` (baseline)", baseline, digits=2),
        f"| D-Bus connect + first state read | {connect:.1f} |  |  | 1 |  |  |",
        "",
        f"Targets met: {'yes' if ok else 'NO'}.",
    ]
    table = "\n".join(lines)
    print(table)
    rewrite(BEGIN, END, table)
    cluster_main()
    return 0  # a missed target is reported in the table; it must not stop `make bench`


if __name__ == "__main__":
    sys.exit(main())
