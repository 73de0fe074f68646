"""Collector: what a silent, unreachable or refusing collector costs an action, and
whether what it missed arrives once, in order, when it comes back.

In a one-node lab (no cluster, so the short-lived sender does the posting), 100
actions (`om coll instance start` / `stop`, alternately, on an fs.flag service) per
mode: no collector (the baseline), a collector that accepts and never answers, one at
an address nobody owns (ARP fails), one refusing connections. The modes take turns
action by action (node.conf is rewritten between two actions; each `om` reads it), so
that all see the same phases of a shared machine; each action is compared with the
baseline action of its round. Then the three come back (a real XML-RPC server each,
tests/collector_server.py) and the bench waits for the spool to empty, then counts and
compares: every call applied exactly once, each mode's begin_action in the order its
actions ran. Also measured in the node: what the collector code of one action costs
(two spool appends and the sender check), without the noise of a whole command.
Target: each mode's median within 5 ms of the baseline.
Rewrites the Collector section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys

from benchlib import (
    OM,
    ROOT,
    create,
    header,
    in_lab,
    median,
    ms,
    serve,
    timed,
    until,
)
from omc.runtime.lab.api import Node

ACTIONS = int(os.environ.get("OMC_BENCH_ACTIONS", "100"))
SID = re.compile(r"sid ([0-9a-f-]{36})")
FLAG = "[DEFAULT]\nnodes = n1\n\n[fs#1]\ntype = flag\n"


def applied(node: Node, out: str) -> list[tuple[str, str, list[object]]]:
    path = node.path(out)
    if not path.exists():
        return []
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def main() -> int:
    return in_lab("collector", "bc", lambda lab: measure(lab.node("n1")), nodes=1, etcd=False)


COST = """\
import os, sys, time
sys.path.insert(0, sys.argv[1])
from omc.runtime.collector.sink import CollectorSink
from omc.runtime.collector.spool import Spool
from omc.runtime.log import action_log
os.environ["OMC_VAR"] = "/var/tmp/costbench"
sink = CollectorSink("http://127.0.0.1:9/", node_uuid="u", spool=Spool(),
                     start_sender=lambda s: None)
log = action_log("coll", action="start", journal=False, extra_sinks=(sink,))
times = []
for i in range(200):
    t = time.perf_counter()
    log.info(">>> do start [om coll instance start] (origin user, sid x)")
    for n in range(3):
        log.info(f"line {n}", rid="fs#1")
    log.info("<<< done start [om coll instance start] in 1s, instance status is now up")
    from omc.runtime.collector.sender import holding
    with holding(sink.spool):
        pass
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2], times[int(len(times) * 0.9)])
"""


def measure(node: Node) -> str:
    node.run(["mkdir", "-p", "/run/omct"])
    create(node, "coll", FLAG)
    net = ipaddress.ip_network(f"{node.address}/24", strict=False)
    nobody = str(net.network_address + 199)
    modes = {  # mode: (url, port)
        "silent": ("http://127.0.0.1:8741/", 8741),
        "unreachable": (f"http://{nobody}:8743/", 8743),
        "refusing": ("http://127.0.0.1:8742/", 8742),
    }
    confs = {"none": "", **{m: f"[node]\ndbopensvc = {u}\n" for m, (u, _) in modes.items()}}
    order = list(confs)
    times: dict[str, list[float]] = {m: [] for m in order}
    sids: dict[str, list[str]] = {m: [] for m in order}
    serve(node, "omct-silent", 8741, "silent", "/run/omct/unused")
    for i in range(ACTIONS + 1):  # the first round warms caches and the executor up
        for mode in order[i % 4 :] + order[: i % 4]:
            node.write_file("/etc/opensvc/node.conf", confs[mode])
            took, out = timed(node, OM, "coll", "instance", "stop" if i % 2 else "start")
            found = SID.search(out)
            if i:
                times[mode].append(took)
            if mode != "none":
                sids[mode].append(found.group(1) if found else "")
    node.run(["rm", "-f", "/etc/opensvc/node.conf"])
    pending = node.run([OM, "collector", "status"]).stdout.strip()
    node.run(["systemctl", "stop", "omct-silent"])
    node.run(["ip", "addr", "add", f"{nobody}/32", "dev", "lo"])
    for mode, (_, port) in modes.items():
        serve(node, f"omct-{mode}", port, "normal", f"/run/omct/{mode}.jsonl")
    waited = until(node, f"{OM} collector status | grep -q ' 0 calls pending'", 600)
    cost = node.run([sys.executable, "-c", COST, str(ROOT / ".dev")]).stdout.split()
    rows = ["| collector | median | mean | vs none, paired (median) | delivered when back |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    ok = True
    for mode in order:
        got = times[mode]
        verdict, diff = "", ""
        if mode != "none":
            calls = applied(node, f"/run/omct/{mode}.jsonl")
            keys = [k for k, _, _ in calls]
            begun = [args[1][3] for _, m, args in calls if m == "begin_action"]  # type: ignore[index]
            once = len(keys) == len(set(keys)) == 3 * (ACTIONS + 1)
            ordered = begun == sids[mode]
            paired = median([a - b for a, b in zip(got, times["none"], strict=True)])
            ok &= once and ordered and paired <= 0.005
            diff = f"{paired * 1000:+.1f} ms"
            verdict = (f"{len(keys)} calls, {len(set(keys))} distinct"
                       f"{', in order' if ordered else ', OUT OF ORDER'}")  # fmt: skip
        rows.append(f"| {mode} | {ms(median(got))} | {ms(sum(got) / len(got))} | {diff} | "
                    f"{verdict} |")  # fmt: skip
    return (
        header(
            f"in a one-node lab, {ACTIONS} actions per mode (start and stop of an fs.flag "
            "service, alternately, the modes taking turns; times include entering the "
            "node with nsenter)"
        )
        + "\n\n"
        + "\n".join(rows)
        + "\n\n"
        + f"The collector's own work in one action (its records turned into calls, two "
        f"spool appends, the sender check), measured in the node: median "
        f"{float(cost[0]) * 1000:.2f} ms, 90th percentile {float(cost[1]) * 1000:.2f} ms.\n\n"
        + f"Spool before the collectors came back: `{pending}`. Everything was delivered "
        f"{waited:.0f} s after they came back (the sender was in its backoff, at most 60 s "
        "between attempts).\n\n"
        + f"Targets met: {'yes' if ok else 'NO'} (each mode within 5 ms of none, every call "
        "exactly once, in order).\n\n"
        "How: an action appends its calls to the node's spool (a few hard links under a "
        "lock, no fsync, no network) and starts a sender only when none holds the spool's "
        "lock; the sender posts with a 5 s timeout and backs off (1 s doubling to 60 s). "
        "The collectors here apply a call once per idempotency key (a retry after a lost "
        'reply is acknowledged, not applied again): "distinct" counts the keys applied.'
    )


if __name__ == "__main__":
    sys.exit(main())
