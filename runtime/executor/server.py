"""The node executor: ``om executor run``, a warm executor for ``om`` commands.

An ``om`` command spends ~100 ms importing Python modules (om's own, pydbus
and gi, pyroute2, the compiler) before a few milliseconds of real work, and
systemd runs one such command per driver-backed resource per action. The executor
imports all of it once, then serves :mod:`omc.runtime.executor.client` requests on
a unix socket by forking: the worker inherits the imported modules (the
zygote pattern of Android and of nailgun), takes over the client's stdin,
stdout and stderr, environment, working directory, umask, resource limits, nice
value and OOM score adjustment, and runs the command.
The worker announces itself and waits for the client's ``go``, which brings the
client's stdin, stdout and stderr: a client that gave up waiting (a hung executor)
runs the command itself, and the worker the executor starts later for it reads end
of file and exits, so nothing runs twice and no queued request holds the client's
pipes open. The client forwards its signals (a unit's stop or timeout reaches the worker),
the worker ends when its client vanishes, driver records carry
``OBJECT_SYSTEMD_UNIT`` (``journalctl -u`` finds them), and the driver
actions that run user commands (tasks, syncs) first join the client's cgroup,
so the resource's slice caps them and its unit's stop kills them (see
:func:`joins_cgroups` for why not every command). The worker, not the executor,
reports the exit code and watches the client, so restarting the executor never
touches commands in flight.

The executor refuses (the client then runs the command itself) clients that are
not root, live in other namespaces, or arrive after om's source changed on
disk (it then re-executes itself to load the new code). It holds no state but
a count of the commands it served (``om executor status``), keeps one spare worker
forked ahead of the next request, and opens no D-Bus connection itself: a
worker's first D-Bus call connects.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import signal
import socket
import struct
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from omc.runtime.adapters.systemd import notify
from omc.runtime.executor import client as wire
from omc.runtime.exitcodes import ExitStatus
from omc.runtime.upgrade import loaded_sources, stale

UNIT = "omc-executor.service"
STATUS_REQUEST = b"omc-status"  # `om executor status`: answered by the executor itself
Request = tuple[str, list[str], dict[str, str], int]  # cwd, argv, environment, umask
NAMESPACES = ("mnt", "net", "uts", "ipc", "pid")
RLIMITS = sorted({getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")})
# What the commands run by units and users import; the lab stays out.
PRELOAD = (
    "omc.runtime.cli", "omc.runtime.objcli", "omc.runtime.drivers.entry",
    "omc.runtime.engine.instance", "omc.runtime.engine.apply", "omc.runtime.engine.plan",
    "omc.runtime.engine.observe", "omc.runtime.engine.syncs", "omc.runtime.engine.triggers",
    "omc.runtime.engine.jobs", "omc.runtime.engine.narrate", "omc.runtime.engine.session",
    "omc.runtime.status", "omc.runtime.views.status", "omc.runtime.views.render",
    "omc.runtime.objects.selection", "omc.runtime.objects.configs", "omc.runtime.objects.install",
    "omc.runtime.objects.model", "omc.runtime.log", "omc.runtime.collector.sink",
    "omc.runtime.nodeconf",
    "omc.runtime.adapters.netlink",
    "omc.runtime.drivers.app", "omc.runtime.drivers.container", "omc.runtime.drivers.disk",
    "omc.runtime.drivers.fs", "omc.runtime.drivers.ip", "omc.runtime.drivers.share",
    "omc.runtime.drivers.sync", "omc.runtime.drivers.task", "omc.compiler.pipeline",
    "omc.compiler.contract.names", "omc.runtime.exec", "hashlib",
    "omc.runtime.cluster.syncs",  # the sync driver's transport (~5 ms to import)
    # orchestrated actions and `om mon` (etcd3gw alone costs ~150 ms to import)
    "omc.runtime.cluster.orchestrate", "omc.runtime.cluster.cli", "omc.runtime.cluster.monitor",
    "omc.runtime.cluster.configs", "omc.runtime.cluster.requests", "etcd3gw",
    # netlink.py imports pyroute2 on first use (~0.4 s): ip.netns starts and stops use it
    # (ip.host's, in the own namespace, do not)
    "pyroute2",
)  # fmt: skip


def preload() -> dict[str, int]:
    """Import what commands need; returns om's source files with their mtimes."""
    from omc.runtime.adapters.systemd import import_gi

    for name in PRELOAD:
        importlib.import_module(name)
    import_gi()
    return loaded_sources()


def refusal(pid: int, uid: int) -> str:
    """Why a client may not be served here, or ``""``."""
    if uid != 0 or pid <= 0:
        return "not a root client of this pid namespace"
    try:
        for ns in NAMESPACES:
            if Path(f"/proc/{pid}/ns/{ns}").readlink() != Path(f"/proc/self/ns/{ns}").readlink():
                return f"client in another {ns} namespace"
        mine, theirs = Path("/").stat(), Path(f"/proc/{pid}/root/").stat()
    except OSError as exc:
        return f"cannot inspect the client: {exc.strerror}"
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        return "client in another root directory"
    return ""


def listen(path: str) -> socket.socket:
    """The executor's socket: 0600 in a 0700 directory of root's (checked, whatever the
    umask), so only root reaches it; :func:`refusal` then checks each client anyway."""
    from omc.runtime import safefs

    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    safefs.bind_socket(server, Path(path), mode=0o600, dir_mode=0o700)
    server.listen(64)
    return server


def serve(path: str) -> int:
    """Accept requests until SIGTERM; re-execute when om's code changed."""
    # Ready as soon as the socket listens: a client that comes during the imports
    # waits in the backlog, and a node's boot does not wait for them (~0.3 s).
    executor = Executor(server=listen(path))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(ExitStatus.OK))
    notify(f"READY=1\nSTATUS=importing, then serving {path}")
    sources = preload()
    gc.collect()
    gc.freeze()  # workers then share the imported modules' pages instead of copying them
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    executor.respawn()
    notify(f"STATUS=serving {path}")
    while True:
        conn, _ = executor.server.accept()
        with conn:
            if stale(sources):
                conn.send(b"fallback stale")
                executor.close()
                notify("RELOADING=1")
                os.execv(sys.executable, [sys.executable, *sys.argv])
            executor.handle(conn)
        executor.respawn()


def joins_cgroups(argv: list[str]) -> bool:
    """Whether the worker moves into its client's cgroup (pure).

    Only for the driver actions that run user commands, possibly for long,
    that the resource's slice caps and its unit's stop must kill: task ``run``,
    sync ``update``/``full``. A cgroup migration costs the kernel an RCU grace
    period (~15 ms on a small VM), more than the whole of a short driver
    action; the others stay in the executor's cgroup, their signals forwarded by
    the client and their journal records tagged ``OBJECT_SYSTEMD_UNIT``.
    """
    return len(argv) >= 3 and argv[1] == "driver" and argv[2] in ("run", "update", "full")


@dataclass
class Executor:
    """The listening socket, and the spare worker forked ahead of the next request
    (its fork, ~2-8 ms here, is then paid between requests, not during one)."""

    server: socket.socket
    spare: socket.socket | None = None
    served: int = 0  # requests handed to a worker since the executor started

    def handle(self, conn: socket.socket) -> None:
        """One request: check the client, then hand it to a worker (never raises)."""
        fds: list[int] = []
        try:
            conn.settimeout(2.0)
            payload, fds, flags, _ = socket.recv_fds(conn, 1 << 20, 3)  # none are expected
            conn.settimeout(None)
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                conn.send(b"fallback request too large")
                return
            if payload == STATUS_REQUEST:
                conn.send(f"pid {os.getpid()} served {self.served}".encode())
                return
            pid, uid, _ = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )
            why = refusal(pid, uid) or ("unexpected file descriptors" if fds else "")
            request = wire.decode(payload)
            if why:
                conn.send(f"fallback {why}".encode())
                return
            if not self._hand_over(conn, pid, payload) and os.fork() == 0:
                self.close()
                worker(conn, pid, request)  # never returns
            self.served += 1
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                conn.send(f"fallback {exc}".encode())
        finally:
            for fd in fds:
                os.close(fd)

    def _hand_over(self, conn: socket.socket, client: int, payload: bytes) -> bool:
        """Give the request to the spare worker; False when there is none (or it died)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return False
        with spare:
            try:
                socket.send_fds(spare, [f"{client}\0".encode() + payload], [conn.fileno()])
            except OSError:
                return False
        return True

    def respawn(self) -> None:
        """Fork a new spare when the last one was used (or died)."""
        if self.spare is None:
            self.spare = fork_spare(self.server)

    def close(self) -> None:
        self.server.close()
        if self.spare is not None:
            self.spare.close()  # the spare sees end-of-file and exits
            self.spare = None


def fork_spare(server: socket.socket) -> socket.socket:
    """Fork a worker that waits for its request; the executor's end of their channel."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        server.close()
        ours.close()
        _wait_for_request(theirs)  # never returns
    theirs.close()
    return ours


def _wait_for_request(channel: socket.socket) -> None:
    """The spare: wait for one request handed over by the executor, then serve it."""
    _reset_signals()
    try:
        header, fds, _, _ = socket.recv_fds(channel, 1 << 20, 1)
        client, _, payload = header.partition(b"\0")
        request = wire.decode(payload)
    except (OSError, ValueError):
        os._exit(ExitStatus.OK)  # the executor closed (stopping, or re-executing): nothing to do
    channel.close()
    if len(fds) != 1:
        os._exit(ExitStatus.OK)
    worker(socket.socket(fileno=fds[0]), int(client), request)


def _reset_signals() -> None:
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def worker(conn: socket.socket, client: int, request: Request) -> None:
    """The forked worker: become the client (pid ``client``), announce itself, and
    run the command once the client says ``go`` (handing over its standard streams);
    report its exit code."""
    cwd, argv, env, umask = request
    try:
        _become(client, cwd, env, umask, join=joins_cgroups(argv))
    except BaseException as exc:  # nothing ran: the client runs it itself
        with contextlib.suppress(OSError):
            conn.send(f"fallback worker set-up failed: {exc}".encode())
        os._exit(ExitStatus.ERROR)
    streams = _go(conn)
    if streams is None:
        os._exit(ExitStatus.OK)  # the client gave up waiting and runs the command itself
    take_streams(streams)
    code: int = ExitStatus.ERROR
    try:
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        sys.argv = ["om", *argv]
        code = _run(argv)
    except BaseException:  # the worker must always report and exit
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            conn.send(f"exit {code}".encode())
        os._exit(code)


def _go(conn: socket.socket) -> list[int] | None:
    """Announce this worker; the client's stdin, stdout and stderr come with its ``go``.

    None when the client does not say go: its deadline passed, it fell back to running
    the command itself and closed its socket (end of file here), and the command must
    not run twice. The streams travel only with ``go``, so a request queued in a hung
    executor holds no client pipe open (a ``$(om …)`` would wait for it).
    """
    try:
        conn.send(f"pid {os.getpid()}".encode())
        message, fds, _, _ = socket.recv_fds(conn, 64, 3)
    except OSError:
        return None
    if message == b"go" and len(fds) == 3:
        return fds
    for fd in fds:
        os.close(fd)
    return None


def _become(client: int, cwd: str, env: dict[str, str], umask: int, *, join: bool) -> None:
    """Take the place of the client, pid ``client``: its cgroups first when ``join``
    (a failure here changes nothing the client sees), its resource limits, nice
    value and OOM score adjustment, directory, umask and environment."""
    from omc.runtime.exec import join_cgroups_of

    if join:
        join_cgroups_of(client, os.getpid())
    adopt_process_settings(client)
    _reset_signals()
    os.chdir(cwd)
    os.umask(umask)
    os.environ.clear()
    os.environ.update(env)
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text("om-worker")


def take_streams(fds: list[int]) -> None:
    """Make the client's stdin, stdout and stderr (``fds``) the worker's own."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def adopt_process_settings(pid: int) -> None:
    """Take the resource limits, nice value and OOM score adjustment of process
    ``pid``: what systemd set up for the client's unit (``LimitNOFILE=``, ``Nice=``,
    ``OOMScoreAdjust=`` …) then holds for the command the worker runs for it."""
    for limit in RLIMITS:
        resource.setrlimit(limit, resource.prlimit(pid, limit))
    os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, pid))
    Path("/proc/self/oom_score_adj").write_text(Path(f"/proc/{pid}/oom_score_adj").read_text())


def _run(argv: list[str]) -> int:
    from omc.runtime.cli import dispatch

    try:
        return dispatch(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or ExitStatus.OK
        print(exc.code, file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


def _watch(conn: socket.socket) -> None:
    """Forward the client's signals; a vanished client means SIGTERM (as systemd's
    stop of the unit would have sent to a command running in it)."""
    while True:
        word, value = wire.read_message(conn)
        if word == "sig" and value.isdigit():
            os.kill(os.getpid(), int(value))
        elif not word:
            os.kill(os.getpid(), signal.SIGTERM)
            return


UNIT_TEXT = """\
[Unit]
Description=omc node executor: runs om commands with warm imports
After=dbus.socket

[Service]
Type=notify
ExecStart={om} executor run
# Workers report to their clients themselves: a restart of the executor never
# touches commands in flight.
KillMode=process
Restart=on-failure
RestartSec=1s

[Install]
WantedBy=multi-user.target
"""


def unit_text(om: str) -> str:
    """The executor's unit; ``om`` is the absolute path of the ``om`` command."""
    return UNIT_TEXT.format(om=om)


def query_status(path: str) -> str | None:
    """The executor's status line (``pid <n> served <n>``), or None when none answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            sock.settimeout(5.0)
            sock.connect(path)
            sock.send(STATUS_REQUEST)
            return sock.recv(256).decode(errors="replace") or None
        except OSError:
            return None


def install(om: str, unit_dir: Path) -> int:
    """Write the unit, reload systemd, enable and start the executor."""
    import subprocess

    (unit_dir / UNIT).write_text(unit_text(om))
    for argv in (["daemon-reload"], ["enable", "--now", UNIT]):
        if subprocess.run(["systemctl", *argv], check=False).returncode != 0:
            return ExitStatus.ERROR
    return ExitStatus.OK


USAGE = "usage: om executor run|status|install|start|stop|restart [--socket PATH]"


def main(argv: list[str]) -> int:
    """``om executor …``: run the executor in the foreground, or manage its unit."""
    path = os.environ.get("OMC_EXECUTOR_SOCKET", wire.SOCKET_PATH)
    words = list(argv)
    if "--socket" in words[:-1]:
        at = words.index("--socket")
        path = words.pop(at + 1)
        words.pop(at)
    if words == ["run"]:
        return serve(path)
    if words == ["status"]:
        status = query_status(path)
        print(
            f"executor running ({path}): {status}" if status else f"executor not running ({path})"
        )
        return ExitStatus.OK if status else ExitStatus.NOT_RUNNING
    if words == ["install"]:
        from omc.compiler.contract.node import om_path
        from omc.compiler.contract.units import unit_dir

        return install(om_path(), unit_dir())
    if len(words) == 1 and words[0] in ("start", "stop", "restart"):
        import subprocess

        return subprocess.run(["systemctl", words[0], UNIT], check=False).returncode
    print(USAGE, file=sys.stderr)
    return ExitStatus.USAGE
