"""Keyword data: drivers that run processes (container, app, task). Data only."""

from __future__ import annotations

from .keywords import Conv, Keyword, Status, kw

LEGACY = Status.LEGACY

OCI = ("oci", "docker", "podman")
VM = ("lxc", "kvm", "vbox")


def _oci(group: str, types: tuple[str, ...]) -> tuple[Keyword, ...]:
    """Container keywords shared by container.oci-likes and task.oci-likes."""
    t = types
    return (
        kw(
            group,
            "image",
            Conv.STRING,
            "image to run",
            aliases=("run_image",),
            types=t,
            default="ghcr.io/opensvc/pause" if group == "container" else None,
            required=group == "task",
        ),
        kw(
            group,
            "image_pull_policy",
            Conv.STRING,
            "once or always",
            default="once",
            types=t,
            candidates=("once", "always"),
        ),
        kw(group, "hostname", Conv.STRING, "container hostname", types=t),
        kw(group, "dns_search", Conv.LIST, "dns search domains", types=t),
        kw(group, "entrypoint", Conv.SHLEX, "entrypoint", types=t),
        kw(group, "run_args", Conv.SHLEX, "extra run arguments", types=t),
        kw(group, "detach", Conv.BOOL, "run detached", default="true", types=t),
        kw(group, "rm", Conv.BOOL, "remove the container on stop", default="false", types=t),
        kw(group, "init", Conv.BOOL, "run an init in the container", default="false", types=t),
        kw(group, "privileged", Conv.BOOL, "privileged container", default="false", types=t),
        kw(group, "interactive", Conv.BOOL, "keep stdin open", default="false", types=t),
        kw(group, "tty", Conv.BOOL, "allocate a tty", default="false", types=t),
        kw(group, "read_only", Conv.BOOL, "read-only root fs", default="false", types=t),
        kw(
            group,
            "netns",
            Conv.STRING,
            "container#x, host, or private (default)",
            aliases=("net",),
            types=t,
        ),
        kw(group, "pidns", Conv.STRING, "pid namespace sharing", types=t),
        kw(group, "ipcns", Conv.STRING, "ipc namespace sharing", types=t),
        kw(group, "utsns", Conv.STRING, "uts namespace sharing", types=t),
        kw(group, "userns", Conv.STRING, "user namespace sharing", types=t),
        kw(group, "volume_mounts", Conv.LIST, "<volume or dir>:<path>[:<opts>] list", types=t),
        kw(group, "devices", Conv.LIST, "devices to expose", types=t),
        kw(group, "sysctl", Conv.LIST, "sysctl settings", types=t),
        kw(group, "registry_creds", Conv.STRING, "sec object holding config.json", types=t),
        kw(group, "pull_timeout", Conv.DURATION, "image pull limit", default="2m", types=t),
        kw(group, "log_outputs", Conv.BOOL, "log the run outputs", default="false", types=t),
        kw(group, "secrets_environment", Conv.SHLEX, "VAR=<sec>/<key> list", types=t),
        kw(group, "configs_environment", Conv.SHLEX, "VAR=<cfg>/<key> list", types=t),
    )


def container_keywords() -> tuple[Keyword, ...]:
    g = "container"
    every = (*OCI, *VM)
    return (
        *_oci(g, OCI),
        kw(
            g,
            "name",
            Conv.STRING,
            "container / guest name",
            types=(*every, "hpvm", "ovm", "esx", "xen", "zone"),
        ),
        kw(
            g,
            "command",
            Conv.SHLEX,
            "command (image default when unset)",
            aliases=("run_command",),
            types=OCI,
        ),
        kw(g, "cwd", Conv.STRING, "working directory", types=OCI),
        kw(g, "user", Conv.STRING, "user in the container", types=OCI),
        kw(g, "environment", Conv.SHLEX, "VAR=value list", types=OCI),
        kw(g, "osvc_root_path", Conv.STRING, "agent path in the guest", types=every),
        kw(
            g,
            "guest_os",
            Conv.STRING,
            "guest os",
            aliases=("guestos",),
            default="unix",
            types=every,
        ),
        kw(g, "rcmd", Conv.SHLEX, "remote command to reach the guest", types=("lxc", "kvm")),
        kw(g, "hostname", Conv.STRING, "guest hostname", types=("lxc",)),
        kw(g, "data_dir", Conv.STRING, "lxc data dir", types=("lxc",)),
        kw(g, "rootfs", Conv.STRING, "lxc rootfs", types=("lxc",)),
        kw(g, "cf", Conv.STRING, "lxc config file", types=("lxc",)),
        kw(g, "template", Conv.STRING, "lxc template", types=("lxc",)),
        kw(g, "template_options", Conv.SHLEX, "lxc template options", types=("lxc",)),
        kw(g, "create_environment", Conv.SHLEX, "lxc create environment", types=("lxc",)),
        kw(g, "create_configs_environment", Conv.SHLEX, "lxc create env", types=("lxc",)),
        kw(g, "create_secrets_environment", Conv.SHLEX, "lxc create env", types=("lxc",)),
        kw(g, "qga", Conv.BOOL, "kvm qemu guest agent", default="false", types=("kvm",)),
        kw(
            g,
            "qga_operational_delay",
            Conv.DURATION,
            "kvm qga delay",
            default="10s",
            types=("kvm",),
        ),
        kw(g, "virtinst", Conv.SHLEX, "kvm virt-install command", types=("kvm",)),
        kw(g, "snap", Conv.STRING, "v2 snapshot", types=every, status=LEGACY),
        kw(g, "snapof", Conv.STRING, "v2 snapshot origin", types=every, status=LEGACY),
    )


def _exec_context(group: str, types: tuple[str, ...] | None) -> tuple[Keyword, ...]:
    """User, limits and environment of app and task commands."""
    limits = (
        "as",
        "cpu",
        "core",
        "data",
        "fsize",
        "memlock",
        "nofile",
        "nproc",
        "rss",
        "stack",
        "vmem",
    )
    limit_conv = {"cpu": Conv.DURATION, "nofile": Conv.SIZE, "nproc": Conv.SIZE}
    return (
        kw(group, "user", Conv.STRING, "run as this user", types=types),
        kw(group, "group", Conv.STRING, "run as this group", types=types),
        kw(group, "cwd", Conv.STRING, "working directory", types=types),
        kw(group, "umask", Conv.UMASK, "umask", types=types),
        kw(group, "environment", Conv.SHLEX, "VAR=value list", types=types),
        kw(group, "configs_environment", Conv.SHLEX, "VAR=<cfg>/<key> list", types=types),
        kw(group, "secrets_environment", Conv.SHLEX, "VAR=<sec>/<key> list", types=types),
        kw(
            group,
            "retcodes",
            Conv.RETCODES,
            "exit code to status map",
            default="0:up 1:down",
            types=types,
        ),
        kw(group, "timeout", Conv.DURATION, "action timeout", types=types),
        *(
            kw(group, f"limit_{n}", limit_conv.get(n, Conv.SIZE), f"rlimit {n}", types=types)
            for n in limits
        ),
    )


def app_keywords() -> tuple[Keyword, ...]:
    g = "app"
    return (
        kw(g, "script", Conv.STRING, "launcher called as <script> start|stop|status|info"),
        kw(g, "start", Conv.APPCMD, "true, a sequence number, false, or a command"),
        kw(g, "stop", Conv.APPCMD, "true, a sequence number, false, or a command"),
        kw(g, "check", Conv.APPCMD, "true, a sequence number, false, or a command"),
        kw(g, "info", Conv.APPCMD, "true, a sequence number, false, or a command"),
        kw(g, "check_timeout", Conv.DURATION, "check limit"),
        kw(g, "info_timeout", Conv.DURATION, "info limit"),
        kw(g, "status_log", Conv.BOOL, "send check outputs to the status log", default="false"),
        kw(g, "netns", Conv.STRING, "run inside this resource's netns"),
        kw(g, "desc", Conv.STRING, "label shown in print status"),
        kw(g, "kill", Conv.STRING, "v2: removed in om3", status=LEGACY),
        *_exec_context(g, None),
    )


def task_keywords() -> tuple[Keyword, ...]:
    g = "task"
    return (
        kw(g, "command", Conv.COMMAND, "command run on 'run'", types=("host",)),
        kw(g, "command", Conv.SHLEX, "container command (image default when unset)", types=OCI),
        kw(g, "stop", Conv.COMMAND, "command run on stop", types=("host",)),
        kw(g, "schedule", Conv.SCHEDULE, "when to run", default_option="run_schedule"),
        kw(g, "confirmation", Conv.BOOL, "ask before running", default="false"),
        kw(
            g,
            "check",
            Conv.STRING,
            "last_run or last_run_warn",
            candidates=("last_run", "last_run_warn"),
        ),
        kw(g, "on_error", Conv.COMMAND, "command run when command fails"),
        kw(g, "log", Conv.BOOL, "log the outputs", default="true"),
        kw(g, "max_parallel", Conv.INT, "concurrent runs allowed", default="1"),
        kw(g, "snooze", Conv.DURATION, "snooze applied before running"),
        kw(g, "run_timeout", Conv.DURATION, "run limit"),
        *_exec_context(g, None),
        *(k for k in _oci(g, OCI) if k.name not in ("secrets_environment", "configs_environment")),
    )
