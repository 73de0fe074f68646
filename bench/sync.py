"""sync.rsync between two cluster nodes against plain `rsync -a` between the same nodes.

A two-node cluster lab (the daemons provision the rsync transport, nothing is set by
hand). n1 holds FILES files of SIZE bytes (10,000 x 100 KiB = 1 GiB by default;
OMC_BENCH_SYNC_FILES and OMC_BENCH_SYNC_KIB make it smaller). Measured: `om bsync sync
update --target nodes` (the whole action: lock, status, rsync with om3's options and
--delay-updates, the logs) and, in the same run, plain rsync of the same tree to other
directories of n2 through the same rsync daemon: `rsync -a` (the target's baseline),
`-a` plus one group of om's options at a time (what each costs by itself, among them
the killed-transfer guarantee `--delay-updates --delete-delay`), om3's option set, and
om's own (om3's plus the guarantee). First FULL_ROUNDS full copies (each into an
emptied destination, after a throw-away copy: the first writes after deleting 1 GiB
pay for the freed blocks), then ROUNDS rounds where 1% of the files changed; the order
rotates from round to round. Before each copy the host's dirty pages are written out
(`sync`, not timed): the nodes' trees are on the host's disk and a round writes 8 GiB,
so without it the kernel's writeback throttling fell on whichever copy came after the
dirty limit (full copies of one command varied by up to 1.5x from round to round).
Every measured command runs in n1's cgroup, as a shell of the node would (`om lab exec`
moves itself there): the plain rsync client as well as `om`, whose executor worker and
rsync run in the node anyway. Left in this process's cgroup (the host's root), the plain
client would get a CPU share of its own next to the whole lab on a loaded host, an edge
no copy made on the node has. Each copy's wall time and CPU time (both nodes' cgroups:
the sending rsync and `om`, the receiving rsync daemon, journald; net of the idle lab's
rate, measured first). The object has no schedule: no timer sync (the default window
is 04:00-06:00) runs during a measurement. Target: om <= 1.1 x rsync -a. Rewrites the
sync section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from benchlib import OM, cgroup2_root, cpu_usage, create, header, in_lab, median, timed
from omc.runtime.drivers.sync import DEFAULT_OPTIONS
from omc.runtime.lab.api import NODE_ENV, Node

FILES = int(os.environ.get("OMC_BENCH_SYNC_FILES", "10000"))
KIB = int(os.environ.get("OMC_BENCH_SYNC_KIB", "100"))
ROUNDS = int(os.environ.get("OMC_BENCH_ROUNDS", "9"))
FULL_ROUNDS = int(os.environ.get("OMC_BENCH_SYNC_FULL_ROUNDS", "5"))
TREE = "/var/lib/benchsync"
CONFIG = f"""\
[DEFAULT]
nodes = n1 n2

[fs#1]
type = flag

[sync#0]
src = {TREE}/src/
dst = {TREE}/om
target = nodes
schedule =
"""
MAKE = """\
import os, sys
root, files, size, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(start, start + files):
    d = os.path.join(root, f"d{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(size))
"""
PASSWORD = "--password-file=/var/lib/opensvc/node/sync/password"
OM_SYNC = "om sync update"
BASELINE = "rsync -a"


OM3_OPTIONS = tuple(o for o in DEFAULT_OPTIONS if o not in ("--delay-updates", "--delete-delay"))
GUARANTEE = ("--delay-updates", "--delete-delay")  # a killed copy leaves the old tree intact
OURS = "rsync, om's options"
# Plain rsync runs: label -> options. `-a` (the target's baseline) plus one group of om's
# options at a time (what each costs by itself), om3's set, then om's own (om3's set plus
# the killed-transfer guarantee): the rows that say what bounds the ratio.
PLAIN = {
    BASELINE: ["-a"],
    "`-a` + `--delay-updates --delete-delay` (the killed-transfer guarantee alone)": [
        "-a",
        *GUARANTEE,
    ],
    "`-a` + `-A -X` (ACLs, xattrs)": ["-aAX"],
    "`-a` + `-H` (hard links)": ["-aH"],
    "`-a` + `--delete --force`": ["-a", "--delete", "--force"],
    "om3's options": list(OM3_OPTIONS),
    OURS: list(DEFAULT_OPTIONS),
}
# The other way to keep the old tree (the "temp dir + swap"): `rsync -a` into a
# new directory, unchanged files hard-linked from the current one (`--link-dest`), then
# the two swapped by renames on n2 (in the time) and the old one removed (in the CPU).
SWAP = "`-a --link-dest` into a new directory, then swapped (the guarantee done otherwise)"
RUNS = [OM_SYNC, *PLAIN, SWAP]


def directory(label: str) -> str:
    return "p" + "".join(c for c in label if c.isalnum())[:40]


class Meter:
    """Wall and CPU time of commands in the lab, net of the idle lab's CPU rate."""

    def __init__(self, n1: Node, n2: Node) -> None:
        self.n1, self.n2 = n1, n2
        self.roots = [cgroup2_root(n1), cgroup2_root(n2)]
        before, start = self.cpu(), time.monotonic()
        time.sleep(5)
        self.idle = (self.cpu() - before) / (time.monotonic() - start)

    def cpu(self) -> float:
        return sum(cpu_usage(root) or 0.0 for root in self.roots)

    def run(self, label: str) -> tuple[float, float]:
        before = self.cpu()
        if label == OM_SYNC:
            wall = on_node(self.n1, OM, "bsync", "sync", "update", "--target", "nodes")
        elif label == SWAP:
            stage, live = f"{TREE}/{directory(label)}.new", f"{TREE}/{directory(label)}"
            wall = on_node(self.n1, "rsync", "-a", f"--link-dest={live}", PASSWORD,
                           f"{TREE}/src/", f"rsync://n1@n2:1873/omc{stage}")  # fmt: skip
            wall += on_node(self.n2, "sh", "-c", f"mkdir -p {live} && mv {live} {live}.old "
                            f"&& mv {stage} {live}")  # fmt: skip
            on_node(self.n2, "rm", "-rf", f"{live}.old")
        else:
            dst = f"rsync://n1@n2:1873/omc{TREE}/{directory(label)}"
            wall = on_node(self.n1, "rsync", *PLAIN[label], PASSWORD, f"{TREE}/src/", dst)
        return wall, self.cpu() - before - self.idle * wall


def on_node(node: Node, *argv: str) -> float:
    """Wall time of a command run in the node's namespaces and cgroup (see the module)."""
    start = time.perf_counter()
    proc = subprocess.run(node.argv(argv), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=NODE_ENV, preexec_fn=node.join_cgroups, timeout=600,
                          check=False)  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return elapsed


def change(n1: Node, round_: int) -> None:
    """Rewrite 1% of the files (new random content)."""
    count = max(1, FILES // 100)
    n1.run([sys.executable, "-c", MAKE, f"{TREE}/src", str(count), str(KIB * 1024),
            str(round_ * count % FILES)], timeout=600)  # fmt: skip


def rounds(meter: Meter, count: int, before: Callable[[int], None]) -> dict[
        str, list[tuple[float, float]]]:  # fmt: skip
    """``count`` rounds of every run, ``before(round)`` first; the order rotates."""
    found: dict[str, list[tuple[float, float]]] = {label: [] for label in RUNS}
    for r in range(count):
        before(r)
        for label in RUNS[r % len(RUNS) :] + RUNS[: r % len(RUNS)]:
            os.sync()  # no copy pays for the previous one's writeback (see the module)
            found[label].append(meter.run(label))
    return found


def measure(n1: Node, n2: Node) -> str:
    n1.run(["mkdir", "-p", "/run/omct", f"{TREE}/src"])
    n2.run(["mkdir", "-p", TREE])
    n1.run([sys.executable, "-c", MAKE, f"{TREE}/src", str(FILES), str(KIB * 1024), "0"],
           timeout=1800)  # fmt: skip
    create(n1, "bsync", CONFIG)
    timed(n1, OM, "bsync", "instance", "start")  # local: no start sync by the daemon
    meter = Meter(n1, n2)

    def empty(_: int) -> None:
        n2.run(["sh", "-c", f"rm -rf {TREE}/om {TREE}/p* {TREE}/warm; sync; sleep 2"],
               timeout=600)  # fmt: skip
        timed(n1, "rsync", "-a", PASSWORD, f"{TREE}/src/", f"rsync://n1@n2:1873/omc{TREE}/warm")

    full = rounds(meter, FULL_ROUNDS, empty)
    delta = rounds(meter, ROUNDS, lambda r: change(n1, r + 1))
    return report(full, delta, meter.idle)


def report(full: dict[str, list[tuple[float, float]]], delta: dict[str, list[tuple[float, float]]],
           idle: float) -> str:  # fmt: skip
    def wall(runs: dict[str, list[tuple[float, float]]], label: str) -> float:
        return median([w for w, _ in runs[label]])

    def cpu(runs: dict[str, list[tuple[float, float]]], label: str) -> float:
        return median([c for _, c in runs[label]])

    rows = [
        f"| copy | full ({FILES} files, {FILES * KIB // 1024} MiB), median of {FULL_ROUNDS}: "
        f"wall (CPU), s | vs rsync -a | 1% changed, median of {ROUNDS}: wall (CPU), s "
        "| vs rsync -a |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label in RUNS:
        name = f"`{label}`" if label in (OM_SYNC, BASELINE) else label
        if label == OURS:
            name = f"rsync `{' '.join(DEFAULT_OPTIONS)}` (om's)"
        elif label == "om3's options":
            name = f"rsync `{' '.join(OM3_OPTIONS)}` (om3's)"
        rows.append(
            f"| {name} | {wall(full, label):.2f} ({cpu(full, label):.2f}) | "
            f"{wall(full, label) / wall(full, BASELINE):.2f} | {wall(delta, label):.2f} "
            f"({cpu(delta, label):.2f}) | {wall(delta, label) / wall(delta, BASELINE):.2f} |"
        )
    ratio_full = wall(full, OM_SYNC) / wall(full, BASELINE)
    ratio_delta = wall(delta, OM_SYNC) / wall(delta, BASELINE)
    met = ratio_full <= 1.1 and ratio_delta <= 1.1
    ours = OURS
    alone = next(label for label in PLAIN if "guarantee alone" in label)
    return (
        header("in a two-node cluster lab (times include entering the node with nsenter)")
        + "\n\n"
        + "\n".join(rows)
        + "\n\n"
        + f"Target (`om sync update` <= 1.1 x `rsync -a`, wall): full {ratio_full:.2f}, 1% "
        f"changed {ratio_delta:.2f}: {'met' if met else 'NOT met'}. Split: om's action over "
        f"rsync with the same options: full {wall(full, OM_SYNC) / wall(full, ours):.2f}x "
        f"(CPU {cpu(full, OM_SYNC) / cpu(full, ours):.2f}x), 1% changed "
        f"{wall(delta, OM_SYNC) / wall(delta, ours):.2f}x (CPU "
        f"{cpu(delta, OM_SYNC) / cpu(delta, ours):.2f}x); those options over `rsync -a`: "
        f"full {wall(full, ours) / wall(full, BASELINE):.2f}x (CPU "
        f"{cpu(full, ours) / cpu(full, BASELINE):.2f}x), 1% changed "
        f"{wall(delta, ours) / wall(delta, BASELINE):.2f}x (CPU "
        f"{cpu(delta, ours) / cpu(delta, BASELINE):.2f}x). The killed-transfer guarantee "
        f"alone (`rsync -a {' '.join(GUARANTEE)}`) over `rsync -a`: full "
        f"{wall(full, alone) / wall(full, BASELINE):.2f}x, 1% changed "
        f"{wall(delta, alone) / wall(delta, BASELINE):.2f}x; done otherwise (a new "
        f"directory, then a swap): full {wall(full, SWAP) / wall(full, BASELINE):.2f}x, 1% "
        f"changed {wall(delta, SWAP) / wall(delta, BASELINE):.2f}x.\n\n"
        f"How: every copy goes through the rsync daemon the node daemons provisioned "
        "(per-node passwords, docs/cluster.md), and the receiving daemon's post-xfer exec "
        "records it (`om node sync-received`), for the plain runs too. Every copy is "
        "started in n1's cgroup (nsenter, the rsync or `om` client, as `om lab exec` does). "
        "CPU: both nodes' cgroups (the sending rsync, `om` and its executor worker, the "
        f"receiving rsync, journald), net of the idle lab ({idle * 1000:.0f} ms/s, measured "
        "first)."
    )


def main() -> int:
    return in_lab(
        "sync",
        "bs",
        lambda lab: measure(lab.node("n1"), lab.node("n2")),
        nodes=2,
        etcd=True,
        cluster=True,
    )


if __name__ == "__main__":
    sys.exit(main())
