"""What a lab is on disk: its state directory, names, addresses and allocation.

Every lab lives under ``/run/omc-lab/<name>/`` (``OMC_LAB_ROOT`` overrides the
root). The host's /tmp and /var are never used. ``state.json`` is written *before*
anything is created on the host, so that ``om lab down --force`` can always find and
remove what a crashed run left behind.

Each lab takes a small integer *index* (1…250) under a file lock; the index names
everything that lives in a host-wide namespace, so that labs never clash, even when
started concurrently by several pytest processes:

* network namespaces ``omc-<lab>-<node>``,
* host-side veths ``ol<index><node>`` and the bridge ``olbr<index>``,
* the private subnet ``10.231.<index>.0/24`` (node ``nK`` is ``.10+K``, ``dK`` is
  ``.100+K``); the bridge has no host address, so the subnet is reachable only from
  inside the lab's own namespaces.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(os.environ.get("OMC_LAB_ROOT", "/run/omc-lab"))
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
MAX_INDEX = 250
MAX_NODES = 40
SUBNET_PREFIX = "10.231"


class LabError(Exception):
    """A lab could not be created, found, reached or removed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """One node: names in host namespaces, address, and PIDs once booted."""

    name: str
    drp: bool
    address: str
    netns: str
    veth: str
    cgroups: tuple[str, ...] = ()
    pid: int = 0
    launcher_pid: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LabState:
    """Everything needed to reach or remove a lab, persisted as ``state.json``."""

    name: str
    index: int
    bridge: str
    subnet: str
    owner_pid: int
    created: float
    etcd: bool
    ssh: bool
    tls: bool
    nodes: tuple[NodeInfo, ...]
    cluster: bool = False  # cluster.conf and the node daemon in every node (needs etcd)
    timing: dict[str, str] = field(default_factory=dict)  # cluster.conf [daemon] overrides
    agent_pid: int = 0  # the lab's fence agent (a cluster lab), a host process

    @property
    def dir(self) -> Path:
        return lab_dir(self.name)

    def node(self, name: str) -> NodeInfo:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise LabError(f"lab {self.name!r} has no node {name!r} (nodes: {known})")

    def with_node(self, node: NodeInfo) -> LabState:
        nodes = tuple(node if n.name == node.name else n for n in self.nodes)
        return replace(self, nodes=nodes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        nodes = tuple(
            NodeInfo(**{**n, "cgroups": tuple(n.get("cgroups", ()))}) for n in raw.pop("nodes")
        )
        return cls(**raw, nodes=nodes)


def lab_dir(name: str) -> Path:
    return ROOT / name


def node_dir(lab: str, node: str) -> Path:
    return lab_dir(lab) / "nodes" / node


def fence_socket(lab: str) -> Path:
    """The lab's fence agent socket: in the lab directory, which every node of the lab
    sees at the same path (and no other lab's node does)."""
    return lab_dir(lab) / "fence.sock"


def check_name(name: str) -> str:
    """A lab name short enough for interface and netns names; error says why."""
    if not NAME_RE.match(name):
        raise LabError(
            f"invalid lab name {name!r}: use 1-10 lowercase letters or digits, "
            "starting with a letter (it becomes part of netns and link names)"
        )
    return name


def node_names(nodes: int, drp: int) -> list[tuple[str, bool]]:
    """``n1…nN`` then ``d1…dM`` (DRP nodes), each with its DRP flag."""
    if not 1 <= nodes <= MAX_NODES or not 0 <= drp <= MAX_NODES:
        raise LabError(f"--nodes must be 1..{MAX_NODES} and --drp 0..{MAX_NODES}")
    return [(f"n{i}", False) for i in range(1, nodes + 1)] + [
        (f"d{i}", True) for i in range(1, drp + 1)
    ]


def node_address(index: int, node: str) -> str:
    base = 100 if node.startswith("d") else 10
    return f"{SUBNET_PREFIX}.{index}.{base + int(node[1:])}"


def plan(
    name: str,
    index: int,
    *,
    nodes: int,
    drp: int,
    etcd: bool,
    ssh: bool,
    tls: bool,
    cluster: bool = False,
    timing: dict[str, str] | None = None,
) -> LabState:
    """The full naming of a lab with a given index (pure)."""
    infos = tuple(
        NodeInfo(
            name=node,
            drp=is_drp,
            address=node_address(index, node),
            netns=f"omc-{name}-{node}",
            veth=f"ol{index}{node}",
        )
        for node, is_drp in node_names(nodes, drp)
    )
    return LabState(
        name=name,
        index=index,
        bridge=f"olbr{index}",
        subnet=f"{SUBNET_PREFIX}.{index}.0/24",
        owner_pid=os.getpid(),
        created=time.time(),
        etcd=etcd,
        ssh=ssh,
        tls=tls,
        nodes=infos,
        cluster=cluster,
        timing=dict(timing or {}),
    )


@contextmanager
def _locked() -> Iterator[None]:
    ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (ROOT / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _used_indices() -> set[int]:
    used: set[int] = set()
    for path in ROOT.glob("*/state.json"):
        try:
            used.add(int(json.loads(path.read_text())["index"]))
        except (OSError, ValueError, KeyError):
            continue
    return used


def allocate(
    name: str,
    *,
    nodes: int,
    drp: int,
    etcd: bool,
    ssh: bool,
    tls: bool,
    cluster: bool = False,
    timing: dict[str, str] | None = None,
) -> LabState:
    """Reserve a free index and the state directory, and write ``state.json``."""
    check_name(name)
    with _locked():
        if lab_dir(name).exists():
            raise LabError(
                f"lab {name!r} already exists ({lab_dir(name)}); om lab down --name {name}"
            )
        used = _used_indices()
        free = [
            i for i in range(1, MAX_INDEX + 1)
            if i not in used and not Path(f"/sys/class/net/olbr{i}").exists()
        ]  # fmt: skip
        if not free:
            raise LabError("no free lab index: too many labs on this host")
        state = plan(name, free[0], nodes=nodes, drp=drp, etcd=etcd, ssh=ssh, tls=tls,
                     cluster=cluster, timing=timing)  # fmt: skip
        lab_dir(name).mkdir(mode=0o755)
        save(state)
    return state


def save(state: LabState) -> None:
    """Write ``state.json`` atomically (rename), so a reader never sees half a file."""
    path = lab_dir(state.name) / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)


def load(name: str) -> LabState:
    path = lab_dir(check_name(name)) / "state.json"
    try:
        return LabState.from_json(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} (no {path})") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(f"{path}: unreadable lab state: {exc}") from exc


def names() -> list[str]:
    """Names of the labs that have a state directory on this host."""
    if not ROOT.is_dir():
        return []
    return sorted(p.parent.name for p in ROOT.glob("*/state.json"))
