"""The lab's fence agent: what a cluster's ``[stonith] cmd`` calls to power a node off.

A real cluster fences through a node's BMC (IPMI, Redfish) on a management network: a
request that ends the machine whatever state it is in (hung, paused, cut off from its
peers). A lab node cannot kill a sibling from inside its namespaces, so the host does
it: every cluster lab (``om lab up --cluster``) runs one agent, a host process serving
``<lab dir>/fence.sock``. The lab directory is bound into each of its nodes at the same
path (and into no other lab's node), so the socket is the lab's management network:
reachable from every node whatever its own network's state (a partitioned node can
fence too, as with a real BMC network).

Protocol: the client sends one line, the node's name; the agent answers one line,
``ok: …`` or ``error: …``, then closes. ``om lab fence NODE`` is the client, and what
the lab writes as ``[stonith] cmd`` in every node's ``cluster.conf``.

Safety: the caller is known by the kernel (``SO_PEERCRED``): it must be root and in the
network namespace of a live node of this lab (not the target: a node does not fence
itself) or in the host's own. The name must be one of the lab's nodes (checked against
``state.json``, read again for every request); nothing from the request becomes a path,
an argument or a log line unchecked. Fencing a node that is already down succeeds (what
a fence promises is that it does not run); the kill itself is :meth:`Lab.kill`, under
the lab's fault lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from .state import LabError, LabState, fence_socket, load

HOST = "host"
REQUEST_MAX = 64
READY_DEADLINE = 20.0
STOP_DEADLINE = 2.0
AGENT_VERB = "fence-agent"


class RefusedError(Exception):
    """A fence request the agent does not carry out; the message says why."""


# -- the decision (pure) -----------------------------------------------------------------


def check_request(raw: bytes, *, asker: str | None, uid: int, state: LabState) -> str:
    """The node to fence, or :class:`RefusedError`: ``asker`` is the caller's node (``host``,
    or None: neither this lab's host nor one of its nodes)."""
    if uid != 0:
        raise RefusedError("only root may fence a node")
    if asker is None:
        raise RefusedError(f"the caller is neither the host nor a node of lab {state.name}")
    text = raw.decode("ascii", errors="replace").strip()
    names = [n.name for n in state.nodes]
    if text not in names:
        shown = text[:20] if text.isalnum() else "(not a node name)"
        raise RefusedError(f"lab {state.name} has no node {shown} (nodes: {', '.join(names)})")
    if text == asker:
        raise RefusedError(f"{asker} asks to fence itself: a node does not fence itself")
    return text


def _netns_inode(pid: int | str) -> int | None:
    try:
        return Path(f"/proc/{pid}/ns/net").stat().st_ino
    except OSError:
        return None


def asker_of(pid: int, state: LabState) -> str | None:
    """The lab node (or ``host``) whose network namespace the process ``pid`` is in."""
    inode = _netns_inode(pid)
    if inode is None:
        return None
    if inode == _netns_inode("self"):
        return HOST
    for info in state.nodes:
        try:
            if info.pid > 0 and Path(f"/run/netns/{info.netns}").stat().st_ino == inode:
                return info.name
        except OSError:
            continue
    return None


# -- the server ------------------------------------------------------------------------


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= REQUEST_MAX:
        chunk = conn.recv(REQUEST_MAX + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0][:REQUEST_MAX]


def handle(conn: socket.socket, name: str) -> str:
    """Serve one request; the reply line (also logged by the caller)."""
    from .api import Lab

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    try:
        state = load(name)
        target = check_request(_read_line(conn), asker=asker_of(pid, state), uid=uid, state=state)
        killed = Lab.attach(name).kill(target, missing_ok=True)
    except (RefusedError, LabError, OSError) as exc:
        return f"error: {exc}"
    return f"ok: {target} {'killed' if killed else 'was already down'}"


def serve(name: str) -> int:
    """``om lab fence-agent --name LAB``: serve the lab's socket until the lab is gone."""
    state = load(name)
    path = fence_socket(name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket of this lab's own directory
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)  # 0600 from the start: no window where others may connect
    try:
        server.bind(str(path))
    finally:
        os.umask(umask)
    server.listen(16)
    server.settimeout(1.0)
    print(f"fence agent of lab {state.name} on {path}", flush=True)
    while (state.dir / "state.json").exists():  # the lab removed: the agent goes too
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(5.0)
            reply = handle(conn, name)
            print(f"{time.strftime('%H:%M:%S')} {reply}", flush=True)
            with contextlib.suppress(OSError):
                conn.sendall(reply.encode() + b"\n")
    return 0


# -- its life, from the lab ---------------------------------------------------------------


def start(state: LabState) -> subprocess.Popen[bytes]:
    """Start the lab's agent (a host process in its own session; its output goes to
    ``<lab dir>/fence.log``) and wait until it listens."""
    from omc.compiler.contract.node import om_path

    log = (state.dir / "fence.log").open("ab")
    argv = [om_path(), "lab", AGENT_VERB, "--name", state.name]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    log.close()
    deadline = time.monotonic() + READY_DEADLINE
    while not fence_socket(state.name).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            text = (state.dir / "fence.log").read_text(errors="replace")[-1000:]
            raise LabError(f"lab {state.name}: the fence agent did not start\n{text}")
        time.sleep(0.01)
    return proc


def _is_agent(pid: int, lab: str) -> bool:
    """Whether ``pid`` is this lab's agent (guards against a reused PID)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return AGENT_VERB.encode() in argv and lab.encode() in argv


def stop(state: LabState, proc: subprocess.Popen[bytes] | None) -> list[str]:
    """End the lab's agent (teardown); what is left of it."""
    pid = state.agent_pid
    if pid <= 0 or not _is_agent(pid, state.name):
        return []
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE
    while _is_agent(pid, state.name) and time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.01)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_DEADLINE)
    return [f"fence agent pid {pid}"] if _is_agent(pid, state.name) else []


# -- the client ---------------------------------------------------------------------------


def request(path: Path, node: str, *, timeout: float = 30.0) -> str:
    """Ask the agent at ``path`` to fence ``node``; its reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(node.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        except OSError as exc:
            raise LabError(f"fence agent {path}: {exc.strerror or exc}") from None
    return data.decode(errors="replace").strip() or "error: no answer from the fence agent"
