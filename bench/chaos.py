"""Chaos run on a 3-node cluster lab (issue #12): random faults, invariants checked all along.

Ten services, each with an app that leaves a marker file while it runs (`sleep` under
`sh`, `restart = 1`): seven failover (`orchestrate = ha`) and three flex (`flex_target =
2`), their node lists rotated so that every node leads some. One fault at a time, chosen
at random (seeded): a node killed (`om lab kill`, booted back after its services
recovered), a node partitioned (healed after its services recovered), a daemon
SIGKILLed (systemd restarts it; it keeps its lease: nothing should move), an app killed
(the daemon restarts the resource). The host samples every node every 100 ms
(`runtime/lab/observe.py`) and checks, continuously:

* never two actives of a failover service (any sample counts);
* after each fault, every service is whole again (failover: up on one node that is not
  the faulty one; flex: up on 2 nodes besides the faulty one) within the target
  (`lease_ttl + grace + RECOVERY_SLACK`), and in any case within `BOUND`;
* no orchestration left stuck: once the faults are undone, every object settles (no
  intent left, no instance busy, as many up as expected) within `BOUND`.

The report: availability per service (share of samples with the service up somewhere;
flex: up on 2 nodes), each fault's recovery time, the double-active samples per
service, stuck faults and orchestrations. `--json FILE` writes it as data (the slow test
`tests/cluster/test_chaos_lab.py` runs this script and checks it); without `--no-write`
the markdown goes to the Chaos section of docs/BENCHMARKS.md. Exit status 1 when an
invariant broke.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".dev"))

from omc.runtime.cluster.settings import timing_from  # noqa: E402
from omc.runtime.lab.api import Lab  # noqa: E402
from omc.runtime.lab.observe import APP, Sampler, Where, make_whole, mon, om, until  # noqa: E402
from omc.runtime.lab.services import FAST_TIMING, LAB_TIMING  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
NODES = ("n1", "n2", "n3")
FAILOVER = tuple(f"fo{i}" for i in range(1, 8))
FLEX = tuple(f"fx{i}" for i in range(1, 4))
FLEX_TARGET = 2
FAULTS = ("node-kill", "partition", "daemon-kill", "app-kill")
RECOVERY_SLACK = 10.0  # the start itself on a loaded machine, beyond lease expiry + grace
BOUND = 120.0  # a recovery that never comes (stuck), not the target
BUSY = {"starting", "stopping", "restarting", "freezing", "thawing"}
# The shortest timing the rule allows with a 1.5 s stop budget (bench/ha.py explains it).
BENCH_TIMING = FAST_TIMING


def marker(name: str) -> str:
    return f"/tmp/{name}.up"


def config(name: str, index: int) -> str:
    """The service ``name``: failover or flex, its node list rotated by ``index``."""
    nodes = " ".join(NODES[(index + k) % len(NODES)] for k in range(len(NODES)))
    flex = f"topology = flex\nflex_target = {FLEX_TARGET}\nflex_min = 1\n" if name in FLEX else ""
    app = APP.format(marker=marker(name))
    return (
        f"[DEFAULT]\nnodes = {nodes}\norchestrate = ha\n{flex}\n"
        f"[app#0]\ntype = simple\nstart = {app}\nstop = rm -f {marker(name)}\nrestart = 1\n"
    )


@dataclass(slots=True)
class Fault:
    kind: str
    node: str
    service: str = ""  # app-kill: whose app
    at: float = 0.0  # seconds since the run started
    recovery: float | None = None  # seconds until every service was whole again (None: stuck)
    late: bool = False  # recovered, but after the target


@dataclass(slots=True)
class Report:
    seed: int
    duration: float
    timing: dict[str, str]
    target: float
    faults: list[Fault] = field(default_factory=list)
    availability: dict[str, float] = field(default_factory=dict)
    double_active: dict[str, int] = field(default_factory=dict)
    double_windows: list[str] = field(default_factory=list)  # when, which service, where
    stuck_orchestrations: list[str] = field(default_factory=list)
    samples: int = 0

    @property
    def broken(self) -> list[str]:
        """The invariants that did not hold (empty: all held)."""
        found = [f"{s}: {n} double-active samples" for s, n in self.double_active.items() if n]
        found += [f"fault {f.kind} {f.node}{' ' + f.service if f.service else ''} at "
                  f"{f.at:.0f}s: not recovered in {BOUND:g}s"
                  for f in self.faults if f.recovery is None]  # fmt: skip
        return found + [f"stuck orchestration: {s}" for s in self.stuck_orchestrations]


def whole(up: Where, faulty: str) -> bool:
    """Every service whole again, not counting the faulty node (pure)."""
    for name in FAILOVER:
        if len(up[name]) != 1 or faulty in up[name]:
            return False
    return all(len(up[name] - {faulty}) >= FLEX_TARGET for name in FLEX)


def settled(lab: Lab) -> list[str]:
    """The objects not settled yet, as the cluster sees them ([] when all are)."""
    objects = mon(lab.node("n3")).get("objects", {})
    found = []
    for name in (*FAILOVER, *FLEX):
        data = objects.get(name, {})
        busy = [n for n, i in data.get("instances", {}).items() if i.get("state") in BUSY]
        if data.get("intent") or busy or data.get("up") != data.get("expected"):
            found.append(f"{name} (intent {data.get('intent')}, busy {busy}, up "
                         f"{data.get('up')}/{data.get('expected')})")  # fmt: skip
    return found


class StuckError(Exception):
    """The lab could not be made whole again: the run stops (reported)."""


class Chaos:
    def __init__(self, lab: Lab, sampler: Sampler, rng: random.Random, report: Report) -> None:
        self.lab, self.sampler, self.rng, self.report = lab, sampler, rng, report
        self.start = time.monotonic()
        print(f"  faults from {time.strftime('%H:%M:%S')} (the times below count from it)")

    def inject(self, fault: Fault) -> Callable[[], object]:
        """Inject ``fault``; what undoes it."""
        node = self.lab.node(fault.node)
        if fault.kind == "node-kill":
            node.kill()
            return node.boot
        if fault.kind == "partition":
            node.partition()
            return node.heal
        if fault.kind == "daemon-kill":
            node.run(["systemctl", "kill", "--signal=SIGKILL", "omc-daemon.service"])
            # systemd restarts it; three kills in a minute would leave it failed for good
            revive = "systemctl reset-failed omc-daemon.service; systemctl start omc-daemon.service"
            return lambda: node.run(["sh", "-c", revive], check=False)
        unit = f"opensvc-svc.{fault.service}-app.0.service"
        node.run(["systemctl", "kill", "--signal=SIGKILL", unit], check=False)
        return lambda: None

    def pick(self) -> Fault:
        kind = self.rng.choice(FAULTS)
        running = [(s, n) for s, up in self.sampler.running().items() for n in sorted(up)]
        if kind == "app-kill" and running:
            service, node = self.rng.choice(sorted(running))
            return Fault(kind, node, service)
        return Fault(self.rng.choice(FAULTS[:3]) if kind == "app-kill" else kind,
                     self.rng.choice(NODES))  # fmt: skip

    def one(self) -> None:
        fault = self.pick()
        fault.at = time.monotonic() - self.start
        injected = time.monotonic()
        undo = self.inject(fault)
        faulty = fault.node if fault.kind in ("node-kill", "partition") else ""
        time.sleep(0.5)  # let the fault show (an app kill's restart may be quicker)
        try:
            until(lambda: whole(self.sampler.latest_all(), faulty), BOUND, "whole again")
            fault.recovery = time.monotonic() - injected
            fault.late = fault.recovery > self.report.target
        except TimeoutError:
            pass
        self.report.faults.append(fault)
        shown = "stuck" if fault.recovery is None else f"{fault.recovery:.1f}s"
        print(f"  {fault.at:6.1f}s {fault.kind:<11} {fault.node} {fault.service:<4} {shown}",
              flush=True)  # fmt: skip
        undo()
        try:
            make_whole(self.lab)
        except TimeoutError as exc:  # a node that does not come back: the run ends here
            self.report.stuck_orchestrations.append(f"after {fault.kind} {fault.node}: {exc}")
            raise StuckError from exc
        with_stuck = []
        try:
            until(lambda: not settled(self.lab), BOUND, "settled")
        except TimeoutError:
            with_stuck = settled(self.lab)
        self.report.stuck_orchestrations += [f"after {fault.kind} {fault.node}: {s}"
                                             for s in with_stuck]  # fmt: skip
        time.sleep(self.rng.uniform(0.5, 2.0))

    def run(self, duration: float) -> None:
        until(lambda: not settled(self.lab), BOUND, "settled at start")
        while time.monotonic() - self.start < duration:
            try:
                self.one()
            except StuckError:
                return


def windows(sampler: Sampler, start: float) -> list[str]:
    """Each stretch of samples with a failover service on two nodes: when (seconds into
    the run), how long, where: to lay beside the faults' times."""
    found: list[str] = []
    for name in FAILOVER:
        run: list[tuple[float, frozenset[str]]] = []
        for sample in [*sampler.samples, None]:
            if sample is not None and len(sample.up[name]) > 1:
                run.append((sample.at, sample.up[name]))
                continue
            if run:
                nodes = " ".join(sorted(set().union(*(up for _, up in run))))
                took = run[-1][0] - run[0][0] + sampler.period
                found.append(f"{name} at {run[0][0] - start:.1f}s for {took:.1f}s on {nodes}")
                run = []
    return found


def availability(sampler: Sampler, since: float) -> dict[str, float]:
    samples = [s for s in sampler.samples if s.at >= since]
    found = {}
    for name in (*FAILOVER, *FLEX):
        need = FLEX_TARGET if name in FLEX else 1
        found[name] = sum(len(s.up[name]) >= need for s in samples) / max(1, len(samples))
    return found


def markdown(report: Report, lines_before: list[str]) -> str:
    rows = []
    for kind in FAULTS:
        chosen = [f for f in report.faults if f.kind == kind]
        times = [f.recovery for f in chosen if f.recovery is not None]
        med = f"{statistics.median(times):.1f}" if times else "-"
        worst = f"{max(times):.1f}" if times else "-"
        late = sum(f.late for f in chosen)
        stuck = sum(f.recovery is None for f in chosen)
        rows.append(f"| {kind} | {len(chosen)} | {med} | {worst} | {late} | {stuck} |")
    avail = " ".join(f"{s} {100 * a:.1f}%" for s, a in report.availability.items())
    doubles = sum(report.double_active.values())
    each = "; ".join(f"{f.at:.0f}s {f.kind} {f.node}{' ' + f.service if f.service else ''} "
                     f"{'stuck' if f.recovery is None else f'{f.recovery:.1f}s'}"
                     for f in report.faults)  # fmt: skip
    shown = [f"Double-active windows: {'; '.join(report.double_windows)}."] * bool(
        report.double_windows
    )
    return "\n".join([
        *lines_before,
        "",
        f"| fault | n | recovery median (s) | max (s) | over the {report.target:g} s target "
        "| stuck |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Availability (share of {report.samples} samples, every 100 ms, with the service up; "
        f"flex: on {FLEX_TARGET} nodes): {avail}.",
        "",
        f"Double-active samples of failover services: **{doubles}**. Stuck orchestrations: "
        f"{len(report.stuck_orchestrations)}. Invariants: "
        f"{'all held' if not report.broken else '; '.join(report.broken)}.",
        *shown,
        "",
        f"Each fault (time into the run, kind, node, recovery): {each}.",
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of faults")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--lab-timing", action="store_true",
                        help="the lab's default timing (lease_ttl 8 s) instead")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the report there")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true",
                        help="leave the lab up afterwards (its journals; om lab down)")  # fmt: skip
    args = parser.parse_args()
    settings = {} if args.lab_timing else BENCH_TIMING
    timing = timing_from({**LAB_TIMING, **settings})
    target = timing.lease_ttl + timing.grace + RECOVERY_SLACK
    report = Report(args.seed, args.duration, {**LAB_TIMING, **settings}, target)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    lab = Lab.up(f"x{os.getpid()}"[:10], nodes=3, etcd=True, cluster=True, timing=settings)
    try:
        n1 = lab.node("n1")
        for index, name in enumerate((*FAILOVER, *FLEX)):
            n1.write_file(f"/root/{name}.conf", config(name, index))
            proc = om(n1, name, "create", "--config", f"/root/{name}.conf")
            if proc.returncode != 0:
                raise RuntimeError(f"create {name}: {proc.stderr}")
        markers = {name: marker(name) for name in (*FAILOVER, *FLEX)}
        with Sampler(lab.name, markers) as sampler:
            chaos = Chaos(lab, sampler, random.Random(args.seed), report)
            chaos.run(args.duration)
        report.samples = len([s for s in sampler.samples if s.at >= chaos.start])
        report.availability = availability(sampler, chaos.start)
        report.double_active = {s: sampler.doubles(s) for s in FAILOVER}
        report.double_windows = windows(sampler, chaos.start)
    finally:
        if args.keep:
            print(f"lab {lab.name} kept (om lab down --name {lab.name})")
        else:
            lab.down(force=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = [
        f"Machine: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}, "
        f"Python {platform.python_version()}; {when}; load average {' '.join(load_before)} "
        f"before, {' '.join(load_after)} after. Seed {args.seed}, {args.duration:g} s of faults, "
        f"{len(report.faults)} faults; lease_ttl {timing.lease_ttl}s, keepalive "
        f"{timing.keepalive:g}s, grace {timing.grace:g}s; recovery target {target:g} s.",
    ]
    text = markdown(report, head)
    print(text)
    if args.json:
        data = {**asdict(report), "broken": report.broken}
        args.json.write_text(json.dumps(data, indent=1))
    if not args.no_write:
        doc = BENCH_MD.read_text()
        before, rest = doc.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        BENCH_MD.write_text(f"{before}{BEGIN}\n{text}\n{END}{after}")
    return 1 if report.broken else 0


if __name__ == "__main__":
    sys.exit(main())
