"""sync.rsync between two cluster nodes against plain `rsync -a` between the same nodes.

A two-node cluster lab (the daemons provision the rsync transport, nothing is set by
hand). n1 holds FILES files of SIZE bytes (10,000 x 100 KiB = 1 GiB by default;
OMC_BENCH_SYNC_FILES and OMC_BENCH_SYNC_KIB make it smaller). Measured: `om bsync sync
update --target nodes` (the whole action: lock, status, rsync with om3's options and
--delay-updates, the logs) and, in the same run, `rsync -a` of the
same tree to another directory of n2 through the same rsync daemon; first the full
copy, then ROUNDS rounds where 1% of the files changed (the two alternate who goes
first). Target: om <= 1.1 x plain rsync.
Rewrites the sync section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys

from benchlib import OM, create, header, in_lab, median, timed
from omc.runtime.lab.api import Node

FILES = int(os.environ.get("OMC_BENCH_SYNC_FILES", "10000"))
KIB = int(os.environ.get("OMC_BENCH_SYNC_KIB", "100"))
ROUNDS = int(os.environ.get("OMC_BENCH_ROUNDS", "5"))
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


def plain(n1: Node) -> float:
    """Plain ``rsync -a`` of the same tree to n2, through the same rsync daemon."""
    dst = f"rsync://n1@n2:1873/omc{TREE}/plain"
    password = "--password-file=/var/lib/opensvc/node/sync/password"
    return timed(n1, "rsync", "-a", password, f"{TREE}/src/", dst)[0]


def ours(n1: Node) -> float:
    return timed(n1, OM, "bsync", "sync", "update", "--target", "nodes")[0]


def change(n1: Node, round_: int) -> None:
    """Rewrite 1% of the files (new random content)."""
    count = max(1, FILES // 100)
    n1.run([sys.executable, "-c", MAKE, f"{TREE}/src", str(count), str(KIB * 1024),
            str(round_ * count % FILES)], timeout=600)  # fmt: skip


def measure(n1: Node, n2: Node) -> str:
    n1.run(["mkdir", "-p", "/run/omct", f"{TREE}/src"])
    n2.run(["mkdir", "-p", TREE])
    n1.run([sys.executable, "-c", MAKE, f"{TREE}/src", str(FILES), str(KIB * 1024), "0"],
           timeout=1800)  # fmt: skip
    create(n1, "bsync", CONFIG)
    timed(n1, OM, "bsync", "instance", "start")  # local: no start sync by the daemon
    full_om, full_plain = ours(n1), plain(n1)
    pairs = []
    for r in range(ROUNDS):
        change(n1, r + 1)
        first, second = (ours, plain) if r % 2 == 0 else (plain, ours)
        a, b = first(n1), second(n1)
        pairs.append((a, b) if first is ours else (b, a))
    one_om, one_plain = median([p[0] for p in pairs]), median([p[1] for p in pairs])
    rows = [
        "| copy | om sync update | plain rsync -a | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        f"| full ({FILES} files, {FILES * KIB // 1024} MiB) | {full_om:.2f} s | "
        f"{full_plain:.2f} s | {full_om / full_plain:.2f} | <= 1.1 |",
        f"| 1% changed (median of {ROUNDS}) | {one_om:.2f} s | {one_plain:.2f} s | "
        f"{one_om / one_plain:.2f} | <= 1.1 |",
    ]
    met = full_om / full_plain <= 1.1 and one_om / one_plain <= 1.1
    return (
        header("in a two-node cluster lab (times include entering the node with nsenter)")
        + "\n\n"
        + "\n".join(rows)
        + "\n\n"
        + f"Targets met: {'yes' if met else 'NO'}.\n\n"
        "How: both go through the rsync daemon the node daemons provisioned (per-node "
        "passwords, docs/cluster.md). `om` adds its action (lock, the end state's status, "
        "logs: `-v` lists every file it sends, each a log record), om3's options "
        "(`-HAXpogDtrlvx --stats --delete --force`), `--delay-updates --delete-delay` (a "
        "transfer killed midway leaves the old tree); the receiving daemon records the copy "
        "after it (post-xfer exec), so there is one rsync per peer."
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
