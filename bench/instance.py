"""Instance action speed, in a one-node lab: `om` against `systemctl` on the same target.

The node runs the node executor, as an installed node does; the same svc0 cycle is also
measured with the executor stopped.

Measures (median of ROUNDS): `om svc0 instance start` and `stop` of the seed's svc0,
`systemctl start/stop` of its target in the same run (the baseline: what systemd
alone costs), `om svc0 print status`, and 20 apps of `sleep 0.2` started sequentially
and as a parallel subset. Targets: start <= 0.25 s, stop <= 0.15 s, status <= 0.15 s,
parallel 20x0.2 s <= 0.5 s, sequential <= 4.5 s.
Prints a markdown table and rewrites the Runtime section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import functools
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
from omc.runtime.lab.api import Lab, Node  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- runtime:begin -->", "<!-- runtime:end -->"
OM = str(Path(sys.executable).parent / "om")
UNITS = ("opensvc-svc.svc0-app.0.service", "opensvc-svc.svc0-fs.1.service")
PACKAGES = ("runtime", "compiler", "grammar", "unit_templates")
ROUNDS = int(os.environ.get("OMC_BENCH_ROUNDS", "20"))
APP_ROUNDS = 5  # the 20-app rows, each run about 5 s
SVC0 = (ROOT / "examples" / "svc0.conf").read_text()  # the seed's svc0


NOTES = """

How: every node runs the node executor (`omc-executor.service`, docs/runtime.md), which holds
om's modules, pydbus/gi and pyroute2 imported and forks a worker per command; `om` and
the `om <path> driver …` that driver-backed units run are thin clients (a Python
start-up plus ~3 ms). The "executor stopped" rows run the same actions with the executor
stopped (every `om` imports its own modules again), the "where it goes" rows give this
run's sizes of the parts: a Python start-up, a client round trip through the executor, the
imports the executor saves. What is left over `systemctl` is the Python start-up of `om`
(and of the unit's driver client), the hand-over to the executor's spare worker (forked
ahead of the request), the config check and model load
(the units read back, ~5-10 ms), one `ListUnitsByNames` plus the driver probes, and the
action's logs. A whole-object start or stop is one transaction through the object's
target, as `systemctl start|stop <target>` is, and the unit states are re-read once
after the jobs, so PID 1 serves five calls per action (Subscribe, two
ListUnitsByNames, the target job, ListJobs) whatever the number of resources.
The sequential row is systemd's own pace: 20 x 0.2 s plus a few ms per unit, and `om`
follows its chain with no extra job. The bench opts in to the host's cgroup2
`favordynmods` (`om lab up --favordynmods`, docs/lab.md): without it, each move of a
unit's process into its cgroup waits for an RCU grace period, and the same chain took
`systemctl` 4.40-4.46 s here (4.17-4.19 s with it, measured one after the other on
2026-11-26). On this
2-core VM the same imports take up to ~40% longer from one run to the next when other
work runs: compare rows of one run, not across runs."""


def apps(parallel: bool) -> str:
    head = "[DEFAULT]\nid = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0ben\n\n"
    if parallel:
        head += "[subset#app:par]\nparallel = true\n\n"
    body = "".join(
        f"[app#s{i:02d}]\nstart = /bin/sleep 0.2\n" + ("subset = par\n" if parallel else "") + "\n"
        for i in range(20)
    )
    return head + body


def run(node: Node, *argv: str) -> float:
    """Wall time of one command in the node, in seconds; fails loudly."""
    start = time.perf_counter()
    proc = node.run(list(argv), check=False, timeout=300)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
    return elapsed


def median(fn: Callable[[], float], rounds: int = ROUNDS) -> float:
    return statistics.median(fn() for _ in range(rounds))


def create(node: Node, name: str, text: str) -> None:
    node.write_file(f"/run/omct/{name}.conf", text)
    proc = node.run([OM, name, "create", "--config", f"/run/omct/{name}.conf"], check=False)
    if proc.returncode != 0:
        raise SystemExit(f"create {name}: {proc.stderr}")


def measure(node: Node) -> list[tuple[str, float, float | None, str]]:
    """Rows: (what, om seconds, systemctl seconds or None, target)."""
    create(node, "svc0", SVC0)
    nsenter = median(lambda: run(node, "true"))
    rows = svc0_rows(node, ROUNDS, "", ("<= 0.25 s", "<= 0.15 s", "<= 0.15 s"))
    node.run(["systemctl", "stop", "omc-executor.service"])
    try:  # the same cycle with every process importing again
        rows += svc0_rows(node, max(3, ROUNDS // 4), "executor stopped: ", ("", "", ""))
    finally:
        node.run(["systemctl", "start", "omc-executor.service"])
    for name, parallel, goal in (("seq20", False, "<= 4.5 s"), ("par20", True, "<= 0.5 s")):
        create(node, name, apps(parallel))
        # Interleaved, so that both see the same phases of a shared machine.
        pairs = [(start_then_stop(node, name), systemctl_start_then_stop(node, name))
                 for _ in range(APP_ROUNDS)]  # fmt: skip
        took = statistics.median(p[0] for p in pairs)
        base = statistics.median(p[1] for p in pairs)
        label = "parallel subset" if parallel else "sequential"
        rows.append((f"20 apps `sleep 0.2`, {label}: start", took, base, goal))
    py = str(Path(sys.executable))
    breakdown = (
        ("where it goes: python start-up", [py, "-c", "pass"]),
        ("where it goes: a driver status through the executor (`om svc0 driver status --rid fs#1`)",
         [OM, "svc0", "driver", "status", "--rid", "fs#1"]),
        ("where it goes: the same without the executor (`OMC_EXECUTOR=0`)",
         ["env", "OMC_EXECUTOR=0", OM, "svc0", "driver", "status", "--rid", "fs#1"]),
        ("where it goes: what the executor saves: python + om imports + `import_gi()`",
         [py, "-c", "import omc.runtime.objcli, omc.runtime.engine.instance;"
          "import omc.runtime.engine.apply;"
          "from omc.runtime.adapters.systemd import import_gi; import_gi()"]),
    )  # fmt: skip
    for what, argv in breakdown:
        rows.append((what, median(functools.partial(run, node, *argv)), None, ""))
    rows.append(("(nsenter into the node, included above)", nsenter, None, ""))
    return rows


def svc0_rows(
    node: Node, rounds: int, prefix: str, goals: tuple[str, str, str]
) -> list[tuple[str, float, float | None, str]]:
    """svc0's start and stop, om and systemctl interleaved, then `print status` with
    svc0 up: three rows, named with ``prefix``, with the start/stop/status goals."""
    target = "opensvc-svc.svc0.target"
    starts, stops, sc_starts, sc_stops = [], [], [], []
    for _ in range(rounds):
        starts.append(run(node, OM, "svc0", "instance", "start"))
        stops.append(run(node, OM, "svc0", "instance", "stop"))
        sc_starts.append(run(node, "systemctl", "start", target))
        # All units: `systemctl stop <target>` alone returns before its PartOf= stop jobs end.
        sc_stops.append(run(node, "systemctl", "stop", target, *UNITS))
    run(node, OM, "svc0", "instance", "start")
    status = median(lambda: run(node, OM, "svc0", "print", "status"), rounds)
    run(node, OM, "svc0", "instance", "stop")
    return [
        (f"{prefix}`om svc0 instance start`", statistics.median(starts),
         statistics.median(sc_starts), goals[0]),
        (f"{prefix}`om svc0 instance stop`", statistics.median(stops),
         statistics.median(sc_stops), goals[1]),
        (f"{prefix}`om svc0 print status`", status, None, goals[2]),
    ]  # fmt: skip


def start_then_stop(node: Node, name: str) -> float:
    """Time a start; the stop that follows is not timed."""
    took = run(node, OM, name, "instance", "start")
    run(node, OM, name, "instance", "stop")
    return took


def systemctl_start_then_stop(node: Node, name: str) -> float:
    """The baseline: ``systemctl start`` of the object's target (the stop is not timed)."""
    took = run(node, "systemctl", "start", f"opensvc-svc.{name}.target")
    run(node, OM, name, "instance", "stop")
    return took


def table(rows: list[tuple[str, float, float | None, str]]) -> str:
    lines = ["| measure | om | systemctl | overhead | target |", "| --- | --- | --- | --- | --- |"]
    for what, took, base, goal in rows:
        sc = f"{base * 1000:.0f} ms" if base is not None else ""
        over = f"+{(took - base) * 1000:.0f} ms" if base is not None else ""
        lines.append(f"| {what} | {took * 1000:.0f} ms | {sc} | {over} | {goal} |")
    return "\n".join(lines)


def write_section(text: str) -> None:
    doc = BENCH_MD.read_text()
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    BENCH_MD.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    # Bytecode caches, as an installed package has them (PYTHONDONTWRITEBYTECODE may be set).
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    lab = Lab.up(f"bi{os.getpid()}", nodes=1, etcd=False, favordynmods=True)
    try:
        rows = measure(lab.node("n1"))
    finally:
        lab.down()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpus = os.cpu_count()
    favor = "on" if cgroups.favordynmods_on(Path("/proc/self/mountinfo").read_text()) else "off"
    text = (
        f"Measured {stamp} on {platform.machine()}, {cpus} CPUs, Python "
        f"{platform.python_version()}, kernel {platform.release()} (cgroup2 favordynmods "
        f"{favor}), load average {os.getloadavg()[0]:.1f} (other work ran "
        f"on the machine), in a one-node lab (times include entering the node with nsenter); "
        f"medians of {ROUNDS} rounds ({APP_ROUNDS}, om and systemctl interleaved, for the "
        "20-app rows).\n\n" + table(rows) + NOTES
    )
    print(text)
    write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
