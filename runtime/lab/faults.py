"""Faults a lab injects into its nodes: death, partitions, a pause (host side).

What each fault is, as the cluster must see it:

* **death** (``kill``): the node's PID 1 is SIGKILLed (the kernel ends every process of
  its pid namespace: systemd, the etcd member, the daemon, the apps) *and* its network
  goes: its veth and namespace are deleted, so none of its addresses answers any more
  (a real dead machine answers no ARP; a namespace outliving its processes would, and a
  peer's ``ip`` resource would refuse to start an address "still alive"). Its disk
  stays: the overlay layers in the lab directory, its etcd data among them.
* **partition**: frames between the node's veth and its peers' are dropped on the lab's
  bridge by a per-lab nftables table (``bridge omclab_<lab>``), rebuilt from the list of
  cut pairs each time, so that ``heal`` restores exactly what was there. The node keeps
  running, and sees its link up (a switch-side cut).
* **pause** (``freeze``): the cgroup v2 freezer of the node's whole subtree
  (``cgroup.freeze``), as a paused VM: nothing in it runs, its kernel objects (addresses,
  sockets) stay.

Every change of a lab's faults or of a node's life runs under the lab's fault lock
(``<lab dir>/faults.lock``): ``om lab`` commands, the tests and the fence agent may act
on the same lab at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from . import cgroups
from .state import LabError, LabState, NodeInfo

CUTS_FILE = "cuts.json"
KILL_DEADLINE = 5.0
FREEZE_DEADLINE = 5.0

Cut = frozenset[str]  # two node names whose link is cut


@contextmanager
def locked(state: LabState) -> Iterator[None]:
    """The lab's fault lock (every kill, boot, freeze, thaw, partition and heal)."""
    with (state.dir / "faults.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- partitions -------------------------------------------------------------------------


def table(state: LabState) -> str:
    """The lab's nftables table (bridge family): its name holds the lab's name only."""
    return f"omclab_{state.name}"


def cut(state: LabState, node: str, peers: Iterable[str] = ()) -> set[Cut]:
    """The pairs a partition of ``node`` from ``peers`` (none: every other node) cuts
    (pure); unknown names and a node cut from itself are refused."""
    state.node(node)
    chosen = list(peers) or [n.name for n in state.nodes if n.name != node]
    for peer in chosen:
        state.node(peer)
        if peer == node:
            raise LabError(f"cannot partition {node} from itself")
    return {frozenset((node, peer)) for peer in chosen}


def healed(cuts: Iterable[Cut], node: str | None) -> set[Cut]:
    """What remains cut once ``node``'s links (None: every link) are healed (pure)."""
    return set() if node is None else {c for c in cuts if node not in c}


def nft_script(state: LabState, cuts: Iterable[Cut]) -> str:
    """``nft -f`` input that replaces the lab's table atomically by one dropping, in the
    bridge's forward hook, every frame between the veths of a cut pair (pure). With no
    cut it only deletes the table (declaring it first makes the delete always valid)."""
    name = table(state)
    lines = [f"table bridge {name}", f"delete table bridge {name}"]
    rules = []
    for pair in sorted(sorted(c) for c in cuts):
        a, b = (state.node(n).veth for n in pair)
        rules += [f'    iifname "{a}" oifname "{b}" drop', f'    iifname "{b}" oifname "{a}" drop']
    if rules:
        lines += [
            f"table bridge {name} {{",
            "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
            *rules,
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def load_cuts(state: LabState) -> set[Cut]:
    try:
        pairs = json.loads((state.dir / CUTS_FILE).read_text())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise LabError(f"{state.dir / CUTS_FILE}: unreadable: {exc}") from exc
    return {frozenset(p) for p in pairs if isinstance(p, list) and len(p) == 2}


def apply_cuts(state: LabState, cuts: set[Cut]) -> None:
    """Put the lab's table in line with ``cuts`` and record them."""
    proc = subprocess.run(["nft", "-f", "-"], input=nft_script(state, cuts), text=True,
                          capture_output=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"lab {state.name}: nft: {proc.stderr.strip()}")
    path = state.dir / CUTS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(sorted(c) for c in cuts)))
    tmp.replace(path)


def remove_cuts(state: LabState) -> list[str]:
    """Drop the lab's table (teardown); what could not be removed."""
    if not (state.dir / CUTS_FILE).exists():
        return []
    proc = subprocess.run(["nft", "-f", "-"], input=nft_script(state, ()), text=True,
                          capture_output=True, check=False)  # fmt: skip
    return [] if proc.returncode == 0 else [f"nft table bridge {table(state)}"]


def peers_cut(cuts: Iterable[Cut], node: str) -> list[str]:
    """The nodes ``node`` is cut from (pure), sorted."""
    return sorted(n for c in cuts if node in c for n in c if n != node)


# -- the freezer ------------------------------------------------------------------------


def unified_dir(info: NodeInfo) -> Path:
    """The node's directory in the cgroup v2 hierarchy (the freezer and ``cgroup.kill``)."""
    for directory in info.cgroups:
        if Path(directory, "cgroup.freeze").exists():
            return Path(directory)
    raise LabError(f"node {info.name}: no cgroup v2 directory with cgroup.freeze (kernel >= 5.2)")


def frozen(info: NodeInfo) -> bool:
    """Whether the node's subtree is frozen (what ``cgroup.events`` says)."""
    with suppress(OSError, LabError):
        events = (unified_dir(info) / "cgroup.events").read_text().split()
        return events[events.index("frozen") + 1] == "1"
    return False


def set_frozen(info: NodeInfo, on: bool) -> None:
    """Freeze or thaw the node's whole subtree, and wait until the kernel says it is."""
    directory = unified_dir(info)
    (directory / "cgroup.freeze").write_text("1\n" if on else "0\n")
    deadline = time.monotonic() + FREEZE_DEADLINE
    while frozen(info) != on:
        if time.monotonic() > deadline:
            raise LabError(f"node {info.name}: not {'frozen' if on else 'thawed'} after "
                           f"{FREEZE_DEADLINE:g}s")  # fmt: skip
        time.sleep(0.01)


# -- death ------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def kill_processes(info: NodeInfo, pid: int) -> list[str]:
    """SIGKILL the node's PID 1 (``pid``, checked alive by the caller; 0: none) and
    everything in its cgroups (``cgroup.kill``: frozen tasks die too), then wait for
    them; the PIDs still there at the deadline."""
    if pid > 0:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(OSError, LabError):
        (unified_dir(info) / "cgroup.kill").write_text("1\n")
    deadline = time.monotonic() + KILL_DEADLINE
    while True:
        left = {p for p in cgroups.pids_in(list(info.cgroups)) if not _gone(p)}
        if pid > 0 and not _gone(pid):
            left.add(pid)
        if not left or time.monotonic() > deadline:
            return [str(p) for p in sorted(left)]
        for stray in left:  # a task that was forking when cgroup.kill ran
            with suppress(ProcessLookupError):
                os.kill(stray, signal.SIGKILL)
        time.sleep(0.01)


def remove_cgroups(info: NodeInfo) -> list[str]:
    """The node's cgroup directories (its systemd's subtree), so that a boot starts from
    empty ones (cgroup v2 lets no process join a directory that delegates controllers)."""
    return cgroups.remove(list(info.cgroups))
