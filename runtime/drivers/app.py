"""app.forking and app.simple (opensvc.md §2.9).

Starting and stopping apps is the native units' job (``Type=forking`` /
``Type=simple``); the runtime needs from here the status probe: the ``check``
command mapped through ``retcodes``, with the ``OPENSVC_*`` environment and
``status_log``; for app.simple without ``check``, the processes carrying the
resource's ``OPENSVC_ID``/``OPENSVC_RID`` environment. start/stop are also
implemented (same semantics as OpenSVC) so ``om … driver start`` works alone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Completed, Runner, capture, run
from .settings import command

DEFAULT_RETCODES = "0:up 1:down"
STATUS_TIMEOUT = 60.0  # status_timeout default (opensvc.md §3.2) when check has none


def parse_retcodes(text: str) -> dict[int, Status]:
    """``0:up 1:down`` → {0: up, 1: down}. Unknown status names are errors."""
    table: dict[int, Status] = {}
    for item in text.split():
        code, sep, name = item.partition(":")
        try:
            table[int(code)] = Status(name)
        except ValueError:
            raise DriverError(
                f"retcodes: {item!r} is not <code>:<status> with status in up down warn n/a undef"
            ) from None
        if not sep:
            raise DriverError(f"retcodes: {item!r} is not <code>:<status>")
    return table


def status_of(code: int, table: Mapping[int, Status]) -> Status:
    """The status for an exit code; unlisted codes mean warn."""
    return table.get(code, Status.WARN)


def environment(res: ResourceView, action: str) -> dict[str, str]:
    """The OPENSVC_* variables plus the ``environment`` keyword, over our own env."""
    ref = res.ref
    env = dict(os.environ)
    env.update(
        OPENSVC_RID=res.rid,
        OPENSVC_NAME=res.path,
        OPENSVC_KIND=ref.kind,
        OPENSVC_ID=res.object_id or ref.name,
        OPENSVC_NAMESPACE=ref.namespace,
        OPENSVC_SVCPATH=res.path,
        OPENSVC_SVCNAME=ref.name,
        OPENSVC_ACTION=action,
    )
    for item in settings.argv(res, "environment"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DriverError(f"{res.rid}: environment item {item!r} is not VAR=value")
        env[key] = value
    env.update(kv_environment(res))
    return env


def kv_environment(res: ResourceView) -> dict[str, str]:
    """The variables of ``configs_environment``/``secrets_environment`` (om3 passes them
    to every command of the resource); a missing object or key is a :class:`DriverError`."""
    if "configs_environment" not in res.config and "secrets_environment" not in res.config:
        return {}
    from omc.runtime.objects import kv  # only for resources that take keys

    try:
        return kv.environment(res.ref.namespace, res.config)
    except kv.KvReferenceError as exc:
        raise DriverError(f"{res.rid}: {exc}") from None


def _timeout(res: ResourceView, action: str, default: float | None) -> float | None:
    return settings.seconds(res, f"{action}_timeout", "timeout", default=default)


def retcodes(res: ResourceView) -> dict[int, Status]:
    """The ``retcodes`` table: compiled ``[[0, "up"], …]`` pairs, or ``0:up 1:down`` text."""
    value = res.config.get("retcodes")
    if isinstance(value, list | tuple):
        return parse_retcodes(" ".join(_pair(item) for item in value))
    return parse_retcodes(str(value) if value else DEFAULT_RETCODES)


def _pair(item: object) -> str:
    if isinstance(item, list | tuple) and len(item) == 2:
        return f"{item[0]}:{item[1]}"
    raise DriverError(f"retcodes: {item!r} is not a (code, status) pair")


class AppCommands:
    """Runs one action's command of a resource, with its env, cwd and user."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner

    def _exec(
        self, res: ResourceView, argv: tuple[str, ...], action: str, timeout: float | None
    ) -> Completed:
        env = environment(res, action)
        if self.runner is not None:
            return self.runner(argv, env=env, timeout=timeout)
        try:
            user, group = settings.text(res, "user"), settings.text(res, "group")
            cwd = settings.text(res, "cwd")
            return capture(argv, env=env, timeout=timeout, cwd=cwd, user=user, group=group)
        except FileNotFoundError:
            raise DriverError(f"command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise DriverError(f"{action} timed out after {timeout}s") from None
        except (KeyError, OSError, ValueError) as exc:
            raise DriverError(f"cannot run {argv[0]}: {exc}") from None

    def check(self, res: ResourceView) -> Probe | None:
        """The ``check`` verdict, or None when there is no check command."""
        argv = command(res, "check")
        if not argv:
            return None
        table = retcodes(res)
        try:
            done = self._exec(res, argv, "status", _timeout(res, "check", STATUS_TIMEOUT))
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        if not settings.boolean(res, "status_log", default=False):
            return Probe(status=status_of(done.returncode, table))
        return Probe(
            status=status_of(done.returncode, table),
            messages=tuple(x for x in done.stdout.splitlines() if x.strip()),
            warnings=tuple(x for x in done.stderr.splitlines() if x.strip()),
        )

    def act(self, res: ResourceView, action: str, log: ActionLog) -> None:
        """Run the start or stop command, logging ``run:`` and its outputs; raise on failure."""
        argv = command(res, action)
        if not argv:
            log.info(f"{action} is not set: nothing to run")
            return
        env_action = "run" if action == "command" else action  # task.command runs on "run"
        timeout = _timeout(res, env_action, None)
        run(argv, log=log, runner=lambda a, **kw: self._exec(res, tuple(a), env_action, timeout))


EXEC_READS = 10  # reads of an empty environment, 2 ms apart: an execve in progress ends
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread (it has no environment)


def _environ(pid: Path) -> dict[str, str]:
    """The process's environment. A process in the middle of an ``execve`` shows none for
    a moment (its old memory is gone, the new one not laid out yet), and an app's start
    is a chain of them (``systemd-cat`` → ``sh -c '…; exec tail …'``): the status read
    right after a start found no process, the start failed while the app ran, and the
    daemon handed the ownership to the next node, which started it too (bench/chaos.py:
    4.9 s on two nodes). Measured on the host: 1.5 % of the reads in the 50 ms after a
    ``sh`` that execs. So an empty one is read again, briefly, unless the process is a
    kernel thread or a zombie (they never have one)."""
    for _ in range(EXEC_READS):
        try:
            raw = (pid / "environ").read_bytes()
        except OSError:
            return {}
        if raw or _no_environment(pid):
            break
        time.sleep(0.002)
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _no_environment(pid: Path) -> bool:
    """A kernel thread, a zombie, or a process gone: nothing to wait for."""
    try:
        fields = (pid / "stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_KTHREAD)
    except (OSError, IndexError, ValueError):
        return True


def app_processes(res: ResourceView, proc: Path = Path("/proc")) -> Iterator[int]:
    """Pids whose environment marks them as this resource's (OPENSVC_RID and the object)."""
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        env = _environ(entry)
        if env.get("OPENSVC_RID") != res.rid:
            continue
        if _owner_matches(res, env):
            yield int(entry.name)


def _owner_matches(res: ResourceView, env: Mapping[str, str]) -> bool:
    """By object id when known, else by object path (OPENSVC_NAME, or OPENSVC_PATH)."""
    if res.object_id:
        return env.get("OPENSVC_ID") == res.object_id
    return res.path in (env.get("OPENSVC_NAME"), env.get("OPENSVC_PATH"))


class _App:
    def __init__(self, runner: Runner | None = None) -> None:
        self.commands = AppCommands(runner)

    def label(self, res: ResourceView) -> str:
        desc = settings.text(res, "desc")
        if desc:
            return desc
        argv = command(res, "start")  # shell-quoted: the words as they run, unambiguous
        return shlex.join(argv) if argv else (settings.text(res, "script") or "")


class Forking(_App):
    """The start command daemonizes (or just runs to completion) and ``check`` tells the state."""

    def status(self, res: ResourceView) -> Probe:
        found = self.commands.check(res)
        return found or Probe(status=Status.NA, messages=("check is not set",))

    def start(self, res: ResourceView, log: ActionLog) -> None:
        if self.status(res).status is Status.UP:
            log.info("already up")
            return
        self.commands.act(res, "start", log)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        if self.status(res).status is Status.DOWN:
            log.info("already down")
            return
        self.commands.act(res, "stop", log)


class Simple(_App):
    """The start command stays in the foreground; its processes carry the resource env."""

    def status(self, res: ResourceView) -> Probe:
        found = self.commands.check(res)
        if found is not None:
            return found
        return Probe(status=Status.UP if any(app_processes(res)) else Status.DOWN)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        if self.status(res).status is Status.UP:
            log.info("already up")
            return
        argv = command(res, "start")
        if not argv:
            raise DriverError(f"{res.rid}: start is not set")
        log.info(f"run: {shlex.join(argv)}")
        try:
            child = subprocess.Popen(
                argv, env=environment(res, "start"), cwd=settings.text(res, "cwd"),
                start_new_session=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise DriverError(f"cannot run {argv[0]}: {exc.strerror}") from None
        time.sleep(0.02)
        if child.poll() is not None:
            raise DriverError(f"{argv[0]} exited with code {child.returncode} right after start")

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        if command(res, "stop"):
            self.commands.act(res, "stop", log)
            return
        pids = list(app_processes(res))
        if not pids:
            log.info("already down")
            return
        for pid in pids:
            log.info(f"send SIGTERM to pid {pid}")
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(app_processes(res)):
            time.sleep(0.05)
        left = list(app_processes(res))
        if left:
            raise DriverError(f"processes still running after SIGTERM: {left}")


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
