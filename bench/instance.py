"""Instance action speed, in a one-node lab: `om` against `systemctl` on the same target.

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

from omc.runtime.lab.api import Lab, Node  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- runtime:begin -->", "<!-- runtime:end -->"
OM = str(Path(sys.executable).parent / "om")
UNITS = ("opensvc-svc.svc0-app.0.service", "opensvc-svc.svc0-fs.1.service")
PACKAGES = ("runtime", "compiler", "grammar", "unit_templates")
ROUNDS = int(os.environ.get("OMC_BENCH_ROUNDS", "20"))
SVC0 = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0001

[fs#1]
type = flag

[app#0]
start = touch /tmp/svc0.root.svc.bench
stop = rm -f /tmp/svc0.root.svc.bench
check = test -f /tmp/svc0.root.svc.bench
"""


NOTES = """

Where `om`'s overhead over `systemctl` goes (profiled in a node): the D-Bus import is the
largest fixed cost (pydbus imports gi, whose C module imports asyncio and ssl: ~50-80 ms
of the pydbus row); then the `om` imports (dataclass creation dominates), the driver
process of each driver-backed resource (a Python start-up plus the driver family, for
`fs#1`), the probes run before planning and again for the end-state check (the app
`check` command is a fork/exec each time), and one D-Bus round trip per job.
`print status` avoids D-Bus entirely (one `systemctl list-units`). The job waits themselves
are systemd's: jobs are all enqueued at once and systemd runs them in graph order."""


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
    target = "opensvc-svc.svc0.target"
    nsenter = median(lambda: run(node, "true"))

    def om_cycle(verb: str) -> float:
        return run(node, OM, "svc0", "instance", verb)

    starts, stops, sc_starts, sc_stops = [], [], [], []
    for _ in range(ROUNDS):
        starts.append(om_cycle("start"))
        stops.append(om_cycle("stop"))
        sc_starts.append(run(node, "systemctl", "start", target))
        # All units: `systemctl stop <target>` alone returns before its PartOf= stop jobs end.
        sc_stops.append(run(node, "systemctl", "stop", target, *UNITS))
    om_cycle("start")
    status = median(lambda: run(node, OM, "svc0", "print", "status"))
    om_cycle("stop")
    rows = [
        ("`om svc0 instance start`", statistics.median(starts), statistics.median(sc_starts),
         "<= 0.25 s"),
        ("`om svc0 instance stop`", statistics.median(stops), statistics.median(sc_stops),
         "<= 0.15 s"),
        ("`om svc0 print status`", status, None, "<= 0.15 s"),
    ]  # fmt: skip
    for name, parallel, goal in (("seq20", False, "<= 4.5 s"), ("par20", True, "<= 0.5 s")):
        create(node, name, apps(parallel))
        took = median(functools.partial(start_then_stop, node, name), 3)
        base = median(functools.partial(systemctl_start_then_stop, node, name), 3)
        label = "parallel subset" if parallel else "sequential"
        rows.append((f"20 apps `sleep 0.2`, {label}: start", took, base, goal))
    py = str(Path(sys.executable))
    breakdown = (
        ("where it goes: python start-up", [py, "-c", "pass"]),
        ("where it goes: + om action imports (no D-Bus)",
         [py, "-c", "import omc.runtime.objcli, omc.runtime.actions, omc.runtime.apply"]),
        ("where it goes: + pydbus/gi import", [py, "-c", "import pydbus"]),
        ("where it goes: one driver process (`om svc0 driver status --rid fs#1`)",
         [OM, "svc0", "driver", "status", "--rid", "fs#1"]),
    )  # fmt: skip
    for what, argv in breakdown:
        rows.append((what, median(functools.partial(run, node, *argv)), None, ""))
    rows.append(("(nsenter into the node, included above)", nsenter, None, ""))
    return rows


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
    lab = Lab.up(f"bi{os.getpid()}", nodes=1, etcd=False)
    try:
        rows = measure(lab.node("n1"))
    finally:
        lab.down()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpus = os.cpu_count()
    text = (
        f"Measured {stamp} on {platform.machine()}, {cpus} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} (other work ran "
        f"on the machine), in a one-node lab (times include entering the node with nsenter); "
        f"medians of {ROUNDS} rounds (3 for the 20-app rows).\n\n" + table(rows) + NOTES
    )
    print(text)
    write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
