"""The host-side lab API: boot, reach and remove clusters of real systemd nodes.

Used by ``om lab`` and by the test suite (``tests/conftest.py``)::

    lab = Lab.up("demo", nodes=3)           # all nodes `running`
    lab.node("n1").run(["hostname"])        # nsenter into every namespace
    with lab.node("n2").systemd() as sd:    # D-Bus to the node's own systemd
        sd.start(["x.service"])
    lab.down()                              # poweroff, SIGKILL past a deadline, cleanup

A node is systemd as PID 1 in its own pid, mount, net, uts, ipc and cgroup
namespaces (see ``nodeinit``). Nodes boot in parallel; ``up`` waits until each
reports ``running`` and removes everything it made if any node fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from omc.runtime.adapters.systemd import Systemd, SystemdError  # cheap: gi is imported on connect

from . import cgroups, faults, fenceagent, network, nodeinit, services
from .state import (
    LabError,
    LabState,
    NodeInfo,
    allocate,
    check_name,
    lab_dir,
    load,
    node_dir,
    save,
)

if TYPE_CHECKING:
    from omc.runtime.adapters.netlink import Netlink

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Commands run in a node find the project's own `om`/`omc` first: the same venv as the
# host side (bound at its own path in every node: ``shared_dirs``).
NODE_ENV = {
    "PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
# Run by path with -I -S: it needs only the stdlib, so it starts fast and works whatever
# the interpreter's import path (a venv, a wheel, the working tree).
NODEINIT = str(Path(__file__).with_name("nodeinit.py"))
UP_TIMEOUT = 60.0
POWEROFF_DEADLINE = 1.0
KILL_DEADLINE = 5.0


def checkout_dir() -> Path:
    """The source tree this code runs from (``<checkout>/runtime/lab/api.py``)."""
    return Path(__file__).resolve().parents[2]


def venv_dir() -> Path | None:
    """The virtual environment of the running interpreter, if it runs in one."""
    return Path(sys.prefix).resolve() if sys.prefix != sys.base_prefix else None


def outermost(paths: Sequence[Path]) -> list[str]:
    """The paths that are not below another one of them, sorted (pure)."""
    kept: list[Path] = []
    for path in sorted(set(paths)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return [str(p) for p in kept]


def shared_dirs(lab_dir: Path) -> list[str]:
    """Host directories every node sees at their own path, read-write, on purpose: the
    checkout and its venv (wherever they live: under /tmp, which a node has its own of,
    or under the read-only rest of /), and any import directory of this interpreter that
    a node's private /tmp, /run or /dev/shm would hide. Nothing else of the host is
    writable from a node (docs/lab.md, "Shared and private"). omc installed with the
    system's Python is no checkout: it is shared only if hidden."""
    hidden = [Path(h) for h in nodeinit.HIDDEN]
    imports = [Path(p).resolve() for p in sys.path if p and Path(p).is_dir()]
    found = [p for p in imports if any(p.is_relative_to(h) for h in hidden)]
    if not checkout_dir().is_relative_to(Path(sys.base_prefix).resolve()):
        found.append(checkout_dir())
    found += filter(None, [venv_dir()])
    return outermost([p for p in found if not p.is_relative_to(lab_dir.parent)])


def lab_root_problem(root: Path) -> str | None:
    """Why nodes cannot work with their lab directories under ``root``, or None (pure).
    A node's upper layers live there: below a tree the node overlays (/var, /srv …) they
    would overlap their own lower layer, and below /tmp or /dev/shm the node's private
    tmpfs would hide them (/run is the default: the lab directory is bound back there)."""
    for top in nodeinit.OVERLAID:
        if root.is_relative_to(f"/{top}"):
            return f"{root} is below /{top}, which lab nodes overlay"
    for tree in nodeinit.HIDDEN:
        if tree != "/run" and root.is_relative_to(tree):
            return f"{root} is below {tree}, which lab nodes replace by a private tmpfs"
    return None


def _proc_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie counts: its namespaces are released)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def _in_final_stage(pid: int) -> bool:
    """True once PID 1 has stopped every unit and exec'ed ``systemd-shutdown``. What is
    left (kill the rest, unmount, a host-wide ``sync()``: 0.4 s under load) is moot for
    a node whose namespaces vanish with it, so the teardown SIGKILLs it from there."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("systemd-shutdow")
    except OSError:
        return True


def _netns_inode(path: str) -> int | None:
    try:
        return Path(path).stat().st_ino
    except OSError:
        return None


def _belongs(pid: int, lab: str, node: NodeInfo) -> bool:
    """True when ``pid`` is (still) a process of this lab node: in its cgroup subtree, or
    (before its init joined that) in its network namespace. Guards against PID reuse."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    if f"/{cgroups.SUBTREE}/{lab}/{node.name}" in text:
        return True
    ns = _netns_inode(f"/run/netns/{node.netns}")
    return ns is not None and ns == _netns_inode(f"/proc/{pid}/ns/net")


def _pids_in_netns(netns: str) -> set[int]:
    """Every process whose network namespace is the named one (what a crash leaves)."""
    target = _netns_inode(f"/run/netns/{netns}")
    if target is None:
        return set()
    return {
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _netns_inode(f"/proc/{p.name}/ns/net") == target
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """One line of ``om lab status``."""

    name: str
    pid: int
    address: str
    state: str
    cut_from: tuple[str, ...] = ()  # partitioned from these nodes


class Node:
    """A booted lab node: run commands in it, reach its systemd and its netns."""

    def __init__(self, lab: Lab, info: NodeInfo) -> None:
        self._lab = lab
        self._name = info.name

    def __repr__(self) -> str:
        return f"<Node {self._lab.name}/{self.name} pid={self.pid} {self.address}>"

    @property
    def info(self) -> NodeInfo:
        """As the lab knows it now (a boot changes the PID)."""
        return self._lab.state.node(self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def address(self) -> str:
        return self.info.address

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.info.netns}"

    @property
    def bus_address(self) -> str:
        return f"unix:path=/proc/{self.pid}/root/run/dbus/system_bus_socket"

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside every namespace of the node (nsenter -a)."""
        return ["nsenter", "-t", str(self.pid), "-a", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the node (its namespaces, the caller's cgroup); capture output."""
        proc = subprocess.run(
            self.argv(argv),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=NODE_ENV,
            check=False,
        )
        if check and proc.returncode != 0:
            raise LabError(
                f"{self.name}: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def run_unit(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
        properties: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as a transient unit of the node's systemd (right cgroup placement):
        ``systemd-run --wait --pipe``; ``properties`` are ``-p`` values (``MemoryMax=64M``)."""
        props = [f"--property={p}" for p in properties]
        run = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", *props, "--", *argv]
        return self.run(run, check=check, input=input, timeout=timeout)

    def systemd(self, *, timeout: float = 90.0) -> Systemd:
        """A D-Bus connection to the node's systemd, through its system bus socket."""
        return Systemd.system(self.bus_address, timeout=timeout)

    def netlink(self) -> AbstractContextManager[Netlink]:
        """A pyroute2 socket inside the node's network namespace (context manager)."""
        from omc.runtime.adapters.netlink import netns

        return netns(self.netns_path)

    def path(self, path: str) -> Path:
        """A path as the node sees it (through ``/proc/PID/root``: its mounts, its /etc)."""
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def write_file(self, path: str, text: str, *, mode: int = 0o644) -> None:
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def read_file(self, path: str) -> str:
        return self.path(path).read_text()

    def join_cgroups(self) -> None:
        """Move the calling process into the node's root cgroup in every hierarchy, so
        that after ``nsenter -a`` its cgroup paths are the node's ``/`` rather than
        ``/../..`` (what ``om lab exec`` does before exec'ing nsenter). Best effort."""
        for directory in self.info.cgroups:
            with suppress(OSError):
                Path(directory, "cgroup.procs").write_text("0\n")

    def alive(self) -> bool:
        return (
            self.pid > 0
            and not _proc_gone(self.pid)
            and _belongs(self.pid, self._lab.name, self.info)
        )

    def system_state(self) -> str:
        """``systemctl is-system-running`` of the node, or ``down``, or ``frozen`` (asking
        a frozen systemd would hang)."""
        if not self.alive():
            return "down"
        if faults.frozen(self.info):
            return "frozen"
        proc = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
        return proc.stdout.strip() or "unknown"

    # -- faults (see :mod:`.faults`) -------------------------------------------------------

    def kill(self) -> None:
        """Node death: PID 1 SIGKILLed, network gone (:meth:`Lab.kill`)."""
        self._lab.kill(self.name)

    def boot(self, *, timeout: float = UP_TIMEOUT) -> None:
        """Bring the dead node back (:meth:`Lab.boot`)."""
        self._lab.boot(self.name, timeout=timeout)

    def freeze(self) -> None:
        self._lab.freeze(self.name)

    def thaw(self) -> None:
        self._lab.thaw(self.name)

    def partition(self, peers: Sequence[str] = ()) -> None:
        """Cut this node's link to ``peers`` (none: every other node)."""
        self._lab.partition(self.name, peers)

    def heal(self) -> None:
        self._lab.heal(self.name)


class Lab:
    """A running (or half-built, or crashed) lab, known by its ``state.json``."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self._launchers: dict[str, subprocess.Popen[bytes]] = {}
        self._agent: subprocess.Popen[bytes] | None = None  # the fence agent, when we started it
        self.notes: tuple[str, ...] = ()  # what ``up`` changed on the host, for the user

    def __repr__(self) -> str:
        return f"<Lab {self.name} {len(self.state.nodes)} nodes {self.state.subnet}>"

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def dir(self) -> Path:
        return self.state.dir

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(Node(self, info) for info in self.state.nodes)

    def node(self, name: str) -> Node:
        return Node(self, self.state.node(name))

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    # -- boot ---------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        name: str | None = None,
        *,
        nodes: int = 3,
        drp: int = 0,
        etcd: bool = True,
        ssh: bool = False,
        tls: bool | None = None,
        cluster: bool = False,
        timeout: float = UP_TIMEOUT,
        favordynmods: bool = False,
        timing: dict[str, str] | None = None,
    ) -> Lab:
        """Boot a lab and wait for every node to be ``running``; on any failure, remove
        everything already created and raise :class:`LabError` with the node's log.
        Only with ``favordynmods`` (an opt-in: it changes the host's kernel behaviour
        until reboot), first turn on the host's cgroup ``favordynmods``
        (:func:`cgroups.favor_dynmods`); what that did is in :attr:`notes`. ``tls``
        defaults to ``cluster``: a cluster lab runs etcd over TLS with client
        certificates and etcd auth unless ``tls=False`` (docs/lab.md). ``timing``:
        ``cluster.conf`` ``[daemon]`` values of a cluster lab, over the lab's defaults."""
        name = default_name() if name is None else check_name(name)
        problem = lab_root_problem(lab_dir(name).parent)
        if problem is not None:
            raise LabError(f"cannot keep labs there (OMC_LAB_ROOT): {problem}")
        if cluster and not etcd:
            raise LabError("a cluster lab needs etcd (drop --no-etcd)")
        if timing and not cluster:
            raise LabError("daemon settings need a cluster lab")
        services.check_timing(timing or {})
        tuned = cgroups.favor_dynmods() if favordynmods else None
        tls = cluster if tls is None else tls
        lab = cls(allocate(name, nodes=nodes, drp=drp, etcd=etcd, ssh=ssh, tls=tls,
                           cluster=cluster, timing=timing))  # fmt: skip
        lab.notes = () if tuned is None else (tuned,)
        try:
            lab._build()
            if cluster:
                lab._agent = fenceagent.start(lab.state)
                lab.state = replace(lab.state, agent_pid=lab._agent.pid)
                save(lab.state)
            lab._launch()
            lab._wait_running(timeout)
        except BaseException:
            with suppress(LabError):
                lab.down(force=True)
            raise
        return lab

    @classmethod
    def attach(cls, name: str) -> Lab:
        """The lab of that name, as ``state.json`` describes it (alive or not)."""
        return cls(load(name))

    def _build(self) -> None:
        hierarchies = cgroups.host_hierarchies()
        state = self.state
        for info in state.nodes:
            dirs = tuple(h.dir_for(cgroups.SUBTREE, state.name, info.name) for h in hierarchies)
            state = state.with_node(replace(info, cgroups=dirs))
        self.state = state
        save(state)
        secrets = services.prepare(state)
        masks = services.masks()
        shared = shared_dirs(state.dir)
        for info in state.nodes:
            base = services.prepare_node(state, info, secrets)
            init = {
                "lab_dir": str(state.dir),
                "node_dir": str(base),
                "shared": shared,
                "target": services.TARGET,
                "masks": masks,
                "cgroups": [
                    {"mountpoint": h.mountpoint, "fstype": h.fstype, "data": h.data, "host_dir": d}
                    for h, d in zip(hierarchies, info.cgroups, strict=True)
                ],
            }
            (base / "init.json").write_text(json.dumps(init, indent=1))
        network.create(state)
        cgroups.create([d for info in state.nodes for d in info.cgroups])

    def _launch(self, infos: Sequence[NodeInfo] | None = None) -> None:
        """Start the nodes' init at once (every node by default), then learn each PID 1."""
        chosen = list(self.state.nodes if infos is None else infos)
        for info in chosen:
            log = (node_dir(self.name, info.name) / "init.log").open("wb")
            argv = [
                "nsenter", f"--net=/run/netns/{info.netns}", "--",
                "unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "--ipc",
                "--propagation", "private", "--",
                sys.executable, "-I", "-S", NODEINIT, str(self.dir), info.name,
            ]  # fmt: skip
            self._launchers[info.name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=NODE_ENV,
            )  # fmt: skip
            log.close()
        for info in chosen:
            launcher = self._launchers[info.name].pid
            pid = self._child_of(launcher, info.name)
            known = self.state.node(info.name)
            self.state = self.state.with_node(replace(known, pid=pid, launcher_pid=launcher))
        save(self.state)

    def _child_of(self, launcher: int, node: str, timeout: float = 10.0) -> int:
        children = Path(f"/proc/{launcher}/task/{launcher}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(OSError):
                text = children.read_text().split()
                if text:
                    return int(text[0])
            if self._launchers[node].poll() is not None:
                break
            time.sleep(0.002)
        raise LabError(f"{self.name}/{node}: init did not start\n{self._log(node)}")

    def _log(self, node: str) -> str:
        with suppress(OSError):
            return (node_dir(self.name, node) / "init.log").read_text()[-2000:]
        return ""

    def _wait_running(self, timeout: float, nodes: Sequence[Node] | None = None) -> None:
        """Poll each node's manager over D-Bus until all (or ``nodes``) are ``running``."""
        deadline = time.monotonic() + timeout
        conns: dict[str, Systemd] = {}
        refused: dict[str, str] = {}  # the last connection error of each node, if any
        pending = list(self.nodes if nodes is None else nodes)
        try:
            while pending:
                if time.monotonic() > deadline:
                    names = ", ".join(
                        n.name + (f" ({refused[n.name]})" if n.name in refused else "")
                        for n in pending
                    )
                    raise LabError(f"{self.name}: nodes not running after {timeout:.0f}s: {names}")
                pending = [n for n in pending if not self._is_running(n, conns, refused)]
                if pending:
                    time.sleep(0.005)
        finally:
            for conn in conns.values():
                conn.close()

    def _is_running(self, node: Node, conns: dict[str, Systemd], refused: dict[str, str]) -> bool:
        if _proc_gone(node.pid):
            raise LabError(
                f"{self.name}/{node.name}: PID 1 exited during boot\n{self._log(node.name)}"
            )
        if node.name not in conns:
            if not node.path("/run/dbus/system_bus_socket").exists():
                return False
            try:
                conns[node.name] = node.systemd(timeout=30)
            except SystemdError as exc:
                # The socket file exists from bind() on, before listen(): a refused
                # connection early in the boot is "not yet"; the deadline still holds.
                refused[node.name] = str(exc)
                return False
        sd = conns[node.name]
        try:
            state = sd.system_state()
        except SystemdError as exc:
            raise LabError(f"{self.name}/{node.name}: during boot: {exc}") from exc
        if state in {"degraded", "maintenance"}:
            failed = sd.manager("ListUnitsFiltered", "as", ["failed"])[0]
            names = ", ".join(str(row[0]) for row in failed)
            raise LabError(f"{self.name}/{node.name}: boot {state}; failed units: {names}")
        return state == "running"

    # -- status -------------------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        self._reload()
        cuts = faults.load_cuts(self.state)
        return [
            NodeStatus(
                name=n.name,
                pid=n.pid,
                address=n.address,
                state=n.system_state(),
                cut_from=tuple(faults.peers_cut(cuts, n.name)),
            )
            for n in self.nodes
        ]

    # -- faults (docs/lab.md, "Faults") ---------------------------------------------------

    def _reload(self) -> None:
        """Read ``state.json`` again: another process (the fence agent, another ``om lab``)
        may have killed or booted a node since."""
        self.state = load(self.name)

    def _running(self, name: str) -> Node:
        node = self.node(name)
        if not node.alive():
            raise LabError(f"node {self.name}/{name} is not running (om lab boot {name})")
        return node

    def kill(self, name: str, *, missing_ok: bool = False) -> bool:
        """Node death: SIGKILL its PID 1 (and with it every process of the node), delete
        its veth and namespace (its addresses vanish from the bridge), free its cgroups.
        Its disk (overlay layers, etcd data) stays for :meth:`boot`. A node already dead
        is an error, unless ``missing_ok`` (fencing: then False is returned)."""
        with faults.locked(self.state):
            self._reload()
            node = self.node(name)
            if not node.alive():
                if not missing_ok:
                    raise LabError(f"node {self.name}/{name} is not running (already dead?)")
                self._bury(node.info, pid=0)  # whatever a death outside `kill` left
                return False
            self._bury(node.info, pid=node.pid)
        return True

    def _bury(self, info: NodeInfo, *, pid: int) -> None:
        """Kill what is left of a node (``pid``: its live PID 1, 0 for none), its network
        and its cgroups, and record it dead."""
        left = faults.kill_processes(info, pid)
        launcher = self._launchers.pop(info.name, None)
        if launcher is not None:
            with suppress(subprocess.TimeoutExpired):
                launcher.wait(timeout=KILL_DEADLINE)
        left += network.destroy_node(self.state, info)
        left += faults.remove_cgroups(info)
        self.state = self.state.with_node(replace(info, pid=0, launcher_pid=0))
        save(self.state)
        if left:
            raise LabError(f"node {self.name}/{info.name}: left behind: {', '.join(left)}")

    def boot(self, name: str, *, timeout: float = UP_TIMEOUT) -> None:
        """Bring a dead node back: its namespace and veth, fresh cgroups, its init, and
        wait until it is ``running`` (its etcd member rejoined with the data it kept, its
        daemon started). A node that fails to boot is killed again."""
        with faults.locked(self.state):
            self._reload()
            node = self.node(name)
            if node.alive():
                raise LabError(f"node {self.name}/{name} is already running")
            self._bury(node.info, pid=0)
            info = self.state.node(name)
            try:
                network.create_node(self.state, info)
                cgroups.create(list(info.cgroups))
                self._launch([info])
                self._wait_running(timeout, [self.node(name)])
            except BaseException:
                with suppress(LabError):
                    self._bury(self.state.node(name), pid=0)
                raise

    def freeze(self, name: str) -> bool:
        """Pause the node (cgroup v2 freezer of its whole subtree); False if it was."""
        with faults.locked(self.state):
            self._reload()
            node = self._running(name)
            if faults.frozen(node.info):
                return False
            faults.set_frozen(node.info, True)
        return True

    def thaw(self, name: str) -> bool:
        """Resume a frozen node; False if it was not frozen."""
        with faults.locked(self.state):
            self._reload()
            node = self._running(name)
            if not faults.frozen(node.info):
                return False
            faults.set_frozen(node.info, False)
        return True

    def partition(self, name: str, peers: Sequence[str] = ()) -> list[str]:
        """Cut the node's link to ``peers`` (none: every other node), on top of the cuts
        already made; the nodes it is now cut from."""
        with faults.locked(self.state):
            self._reload()
            cuts = faults.load_cuts(self.state) | faults.cut(self.state, name, peers)
            faults.apply_cuts(self.state, cuts)
        return faults.peers_cut(cuts, name)

    def heal(self, name: str | None = None) -> list[str]:
        """Restore every cut link of the node (None: of every node); the cut pairs healed,
        as ``a-b`` strings."""
        with faults.locked(self.state):
            self._reload()
            if name is not None:
                self.node(name)
            before = faults.load_cuts(self.state)
            after = faults.healed(before, name)
            faults.apply_cuts(self.state, after)
        return ["-".join(sorted(c)) for c in sorted(before - after, key=sorted)]

    def cut_from(self, name: str) -> list[str]:
        """The nodes ``name`` is cut from."""
        return faults.peers_cut(faults.load_cuts(self.state), name)

    # -- teardown -----------------------------------------------------------------------

    def down(self, *, force: bool = False, deadline: float = POWEROFF_DEADLINE) -> None:
        """Power the nodes off (``force``: skip straight to SIGKILL), SIGKILL whatever is
        left past ``deadline``, then remove veths, bridge, netns, cgroups and the state
        directory. Raises :class:`LabError` listing anything that could not be removed."""
        left = fenceagent.stop(self.state, self._agent)
        live = [n for n in self.nodes if n.alive()]
        for node in live:  # a frozen systemd cannot power off
            with suppress(OSError, LabError):
                if faults.frozen(node.info):
                    faults.set_frozen(node.info, False)
        if not force:
            for node in live:
                with suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGRTMIN + 4)  # systemd: poweroff
            self._wait_gone(live, deadline, final_stage_is_gone=True)
        live = [n for n in live if not _proc_gone(n.pid)]
        for node in live:
            with suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
        dirs = [d for info in self.state.nodes for d in info.cgroups]
        strays = {p for n in self.state.nodes for p in _pids_in_netns(n.netns)}
        for pid in cgroups.pids_in(dirs) | strays:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left += [f"{n.name} pid {n.pid}" for n in self._wait_gone(live, KILL_DEADLINE)]
        for launcher in self._launchers.values():
            with suppress(subprocess.TimeoutExpired):
                launcher.wait(timeout=KILL_DEADLINE)
        left += faults.remove_cuts(self.state)
        left += network.destroy(self.state)
        tops = sorted({str(Path(d).parent.parent) for d in dirs if d})
        left += cgroups.remove([str(Path(t, self.name)) for t in tops])
        shutil.rmtree(self.dir, ignore_errors=True)
        if left:
            raise LabError(f"lab {self.name}: left behind: {', '.join(left)}")

    @staticmethod
    def _wait_gone(
        nodes: list[Node], timeout: float, *, final_stage_is_gone: bool = False
    ) -> list[Node]:
        """Wait until the nodes' PID 1 exited (or reached ``systemd-shutdown``); return
        those still running at the deadline."""

        def running(node: Node) -> bool:
            if _proc_gone(node.pid):
                return False
            return not (final_stage_is_gone and _in_final_stage(node.pid))

        deadline = time.monotonic() + timeout
        while nodes and time.monotonic() < deadline:
            nodes = [n for n in nodes if running(n)]
            if nodes:
                time.sleep(0.003)
        return [n for n in nodes if running(n)]


def default_name() -> str:
    """A name unique to this process (``p<pid>``), so concurrent runs never clash."""
    return f"p{os.getpid()}"
