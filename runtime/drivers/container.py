"""container.podman / container.docker (opensvc.md §2.8), through the engine's CLI.

The same argv shape serves both engines; podman runs with
``--cgroup-manager=systemd`` and ``--cgroup-parent=<resource slice>`` so the
container lands in the resource's slice, as the other resources' processes do.
An ``image`` that is an absolute directory runs as ``--rootfs DIR`` (no registry
in the lab: lab-notes §5). The default name follows om3:
``<namespace>..<name>.container.<index>`` (``#`` is not valid in container names).
"""

from __future__ import annotations

import os

from . import settings
from .app import kv_environment
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, probe, run, subprocess_runner

DEFAULT_IMAGE = "ghcr.io/opensvc/pause"
_FLAGS = ("init", "privileged", "interactive", "tty", "read_only")
_NAMESPACES = ("pidns", "ipcns", "utsns", "userns")


def container_name(res: ResourceView) -> str:
    """``name`` if set, else om3's ``<namespace>..<name>.container.<index>``."""
    name = settings.text(res, "name")
    if name:
        return name
    ref = res.ref
    return f"{ref.namespace}..{ref.name}.{res.rid.replace('#', '.')}"


def _slice(res: ResourceView) -> str | None:
    """The resource's systemd slice (the compiler's naming rule), for --cgroup-parent."""
    from omc.compiler.contract.names import resource_slice

    try:
        return resource_slice(res.ref, res.rid, res.subset)
    except (ValueError, DriverError):
        return None


def _netns(res: ResourceView, value: str) -> str:
    """``container#x`` → ``container:<its name>``; ``host`` and others pass through."""
    if not value.startswith("container#"):
        return value
    from .unitfile import load

    try:
        other = load(res.path, value)
    except DriverError:
        return f"container:{container_name(_sibling(res, value))}"
    return f"container:{container_name(other)}"


def _sibling(res: ResourceView, rid: str) -> ResourceView:
    return ResourceView(path=res.path, rid=rid, driver=res.driver, config={})


def _options(res: ResourceView, env_names: tuple[str, ...] = ()) -> list[str]:
    """The run flags that come straight from keywords; ``env_names``: variables whose
    values the engine takes from its own environment (cfg/sec keys: never in argv)."""
    argv: list[str] = []
    for key, flag in (("hostname", "--hostname"), ("cwd", "--workdir"), ("user", "--user")):
        value = settings.text(res, key)
        if value:
            argv.append(f"{flag}={value}")
    argv += [f"--dns-search={d}" for d in settings.words(res, "dns_search")]
    entrypoint = settings.text(res, "entrypoint")
    if entrypoint:
        argv.append(f"--entrypoint={entrypoint}")
    argv += [f"--{f.replace('_', '-')}" for f in _FLAGS if settings.boolean(res, f, default=False)]
    netns = settings.text(res, "netns", "net")
    if netns:
        argv.append(f"--network={_netns(res, netns)}")
    for key in _NAMESPACES:
        value = settings.text(res, key)
        if value:
            argv.append(f"--{key.removesuffix('ns')}={value}")
    argv += [f"--volume={v}" for v in settings.words(res, "volume_mounts")]
    argv += [f"--device={d}" for d in settings.words(res, "devices")]
    argv += [f"--sysctl={s}" for s in settings.words(res, "sysctl")]
    argv += [f"--env={e}" for e in settings.argv(res, "environment")]
    argv += [f"--env={name}" for name in env_names]
    return argv


def run_argv(
    res: ResourceView, *, engine: str, detach: bool = True, env_names: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The full ``<engine> run …`` command line of a resource (pure but for the slice name)."""
    argv = [engine]
    if engine == "podman":
        argv.append("--cgroup-manager=systemd")
    argv += ["run", f"--name={container_name(res)}"]
    if detach and settings.boolean(res, "detach", default=True):
        argv.append("--detach")
    else:
        argv.append("--rm")
    parent = _slice(res)
    if parent:
        argv.append(f"--cgroup-parent={parent}")
    if settings.text(res, "image_pull_policy") == "always":
        argv.append("--pull=always")
    argv += _options(res, env_names)
    argv += settings.argv(res, "run_args")
    image = settings.text(res, "image", "run_image") or DEFAULT_IMAGE
    argv += ["--rootfs", image] if image.startswith("/") else [image]
    argv += settings.argv(res, "command", "run_command")
    return tuple(argv)


class _Container:
    engine = "podman"

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def _cli(self, *args: str) -> tuple[str, ...]:
        return (self.engine, *args)

    def label(self, res: ResourceView) -> str:
        return f"{container_name(res)} {settings.text(res, 'image', 'run_image') or DEFAULT_IMAGE}"

    def state(self, res: ResourceView) -> str | None:
        """``running``, ``stopped`` or None when the container does not exist."""
        fmt = "{{.State.Running}}"
        done = probe(self._cli("inspect", "--format", fmt, container_name(res)), runner=self.runner)
        if not done.ok:
            return None
        return "running" if done.stdout.strip() == "true" else "stopped"

    def status(self, res: ResourceView) -> Probe:
        try:
            state = self.state(res)
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        return Probe(status=Status.UP if state == "running" else Status.DOWN)

    def start(self, res: ResourceView, log: ActionLog) -> None:
        state = self.state(res)
        if state == "running":
            log.info(f"already up: container {container_name(res)} is running")
            return
        if state == "stopped":
            run(self._cli("rm", container_name(res)), log=log, runner=self.runner)
        timeout = settings.seconds(res, "start_timeout", default=None)
        keys = kv_environment(res)  # by name only in argv (`ps` shows argv to everyone)
        argv = run_argv(res, engine=self.engine, env_names=tuple(keys))
        env = {**os.environ, **keys} if keys else None
        run(argv, log=log, runner=self.runner, timeout=timeout, env=env)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        name = container_name(res)
        state = self.state(res)
        if state is None or (state == "stopped" and not settings.boolean(res, "rm", default=False)):
            log.info(f"already down: container {name} is not running")
            return
        if state == "running":
            grace = str(round(settings.seconds(res, "stop_timeout", default=10.0) or 0))
            run(self._cli("stop", "--time", grace, name), log=log, runner=self.runner)
        if settings.boolean(res, "rm", default=False):
            run(self._cli("rm", "--force", name), log=log, runner=self.runner)

    def pid(self, res: ResourceView) -> int:
        """The container's init pid, for joining its network namespace (ip.netns)."""
        done = probe(
            self._cli("inspect", "--format", "{{.State.Pid}}", container_name(res)),
            runner=self.runner,
        )
        try:
            pid = int(done.stdout.strip()) if done.ok else 0
        except ValueError:
            pid = 0
        if pid <= 0:
            raise DriverError(f"container {container_name(res)} is not running")
        return pid


class Podman(_Container):
    engine = "podman"


class Docker(_Container):
    engine = "docker"
