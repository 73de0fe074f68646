"""The client side of the node executor: hand an ``om`` command to a warm worker.

Every ``om`` call, and every driver-backed unit's ``om <path> driver …``, used
to pay a Python start-up plus ~100 ms of imports (om's modules, pydbus and gi,
pyroute2) before doing a few milliseconds of work. The node executor
(:mod:`omc.runtime.executor.server`) holds those modules imported; this client sends it
the command line, environment, working directory and its own stdin, stdout and
stderr (``SCM_RIGHTS``, once a worker is there to take them), and the executor
forks a worker that takes this process's settings and runs the command as if it
were this process. The client then only relays signals and returns the worker's
exit code.

Anything unusual means "run it here instead" (``None``): no executor, not root,
the executor refuses (another namespace, stale code), or no worker within
:data:`FIRST_ANSWER` seconds (a hung or stopped executor must not hang every
``om``, nor the ``om … driver start`` of every oneshot unit). A command never runs
twice: a worker runs it only after the client's ``go``, which the client sends only
when the ``pid`` came before its deadline; a client that gave up has closed the
socket, so a worker the executor starts later reads end of file and exits. Once
the worker has started, a lost worker is an error, never a second run.

Import-light on purpose: the C modules ``_socket`` and ``_signal`` only (the
``socket`` and ``signal`` wrappers import ``enum`` and ``selectors``, ~20 ms
on a small VM, more than the rest of the client).
The wire format, one ``SOCK_SEQPACKET`` message each way:

* request: ``omc3\\0<cwd>\\0<umask, octal>\\0<argc>\\0<argv…>\\0<KEY=VALUE…>``;
* executor: ``fallback <reason>`` (nothing ran), or from the worker
  ``pid <n>`` then, after the client's ``go``, ``exit <code>``;
* client: ``go`` with fds 0, 1, 2 (run it: the client waits for you), then
  ``sig <n>`` to forward a signal to the worker.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # C module of `signal`, no stub
import _socket
import os
import sys
import time

SOCKET_PATH = "/run/omc/executor.sock"
MAGIC = "omc3"
# Seconds the executor has to hand a command to a worker (or refuse it) before the
# client runs it itself: far above a busy executor's answer (milliseconds, about a
# second while it imports after a start or an upgrade), far below a unit's timeout.
FIRST_ANSWER = 5.0
# ``om`` words that never go to the executor: the lab runs on the host, ``exec``
# replaces its own process, ``executor`` manages the executor itself, ``daemon run`` is a
# service's main process.
LOCAL_WORDS = frozenset({"lab", "exec", "executor", "daemon", "-h", "--help", "help"})
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


def encode(cwd: str, argv: list[str], env: dict[str, str], umask: int = 0o022) -> bytes:
    """The request payload (pure). NUL cannot occur in argv, env or paths."""
    head = [MAGIC, cwd, f"{umask:o}", str(len(argv))]
    fields = [*head, *argv, *(f"{k}={v}" for k, v in env.items())]
    return "\0".join(fields).encode("utf-8", "surrogateescape")


def decode(payload: bytes) -> tuple[str, list[str], dict[str, str], int]:
    """Inverse of :func:`encode`: cwd, argv, env, umask; raises ValueError on anything else."""
    fields = payload.decode("utf-8", "surrogateescape").split("\0")
    if len(fields) < 4 or fields[0] != MAGIC or not fields[3].isdigit():
        raise ValueError("not an omc executor request")
    umask = int(fields[2], 8)
    argc = int(fields[3])
    argv, rest = fields[4 : 4 + argc], fields[4 + argc :]
    if len(argv) != argc:
        raise ValueError("truncated argv")
    env = dict(item.partition("=")[::2] for item in rest if "=" in item)
    return fields[1], argv, env, umask


def wanted(argv: list[str]) -> bool:
    """Whether this command line may run in the executor (pure)."""
    if not argv or argv[0] in LOCAL_WORDS or "edit" in argv:
        return False
    return os.environ.get("OMC_EXECUTOR", "1") != "0"


def delegate(argv: list[str]) -> int | None:
    """Run ``om argv`` in the executor; its exit code, or None to run it here."""
    if not wanted(argv) or os.geteuid() != 0:
        return None
    deadline = time.monotonic() + FIRST_ANSWER
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        try:
            sock.settimeout(FIRST_ANSWER)  # a full backlog blocks connect and send
            sock.connect(os.environ.get("OMC_EXECUTOR_SOCKET", SOCKET_PATH))
            umask = os.umask(0o022)  # reading the umask means setting it
            os.umask(umask)
            sock.send(encode(os.getcwd(), argv, dict(os.environ), umask))  # noqa: PTH109
        except OSError:  # nothing was sent, or no one took it in time: run it here
            return None
        return _wait(sock, deadline)
    finally:
        sock.close()  # after a fallback: a worker started later reads end of file


def _go(sock: _socket.socket) -> None:
    """Tell the worker to run the command, handing it our stdin, stdout and stderr
    (only now: a request left in a hung executor's queue must not hold them open)."""
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    try:  # noqa: SIM105 - contextlib is one import too many here
        sock.sendmsg([b"go"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    except OSError:  # the worker is gone: its end of file tells the rest
        pass


def read_message(sock: _socket.socket) -> tuple[str, str]:
    """One ``<word> <value>`` message; ``("", "")`` at end of file or on an error."""
    try:
        message = sock.recv(4096).decode(errors="replace")
    except OSError:
        return "", ""
    word, _, value = message.partition(" ")
    return word, value


def _wait(sock: _socket.socket, deadline: float) -> int | None:
    """Wait for a worker until ``deadline`` (monotonic), tell it to go, then relay
    signals to it until it reports its exit code."""
    started, forwarded = False, 0

    def send(message: str) -> None:
        try:  # noqa: SIM105 - contextlib is one import too many here
            sock.send(message.encode())
        except OSError:  # the worker is gone: its end of file tells the rest
            pass

    def forward(signum: int, _frame: object) -> None:
        nonlocal forwarded
        forwarded = signum
        if started:
            send(f"sig {signum}")

    previous = {sig: _signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            if not started:  # 0 would mean non-blocking: its error is a fallback too
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
            word, value = read_message(sock)
            if word == "pid" and not started:
                sock.settimeout(None)  # the command runs as long as it needs
                _go(sock)
                started = True
                if forwarded:
                    send(f"sig {forwarded}")
            elif word == "exit" and value.lstrip("-").isdigit():
                return int(value)
            elif word == "fallback" or not started:
                return 128 + forwarded if forwarded else None
            else:  # the worker vanished without an exit code
                if forwarded:
                    return 128 + forwarded
                print("om: error: the executor's worker died without an exit code", file=sys.stderr)
                return 1
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
