"""Typed resource builders: evaluated keyword map → one ``ir.*Resource`` per driver family.

``lower.py`` evaluates and converts every keyword of a section into a
:class:`Keywords` map; the builders here only pick fields. Problems found
while picking (an ``environment`` word without ``=``, ``start = true``
without a ``script``) are reported through the :class:`Keywords` reporter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import ir
from .convert import ConvertError, to_command
from .diagnostics import Collector, Span
from .evaluate import REFERENCE

LIMITS = {
    "limit_as": "LimitAS",
    "limit_cpu": "LimitCPU",
    "limit_core": "LimitCORE",
    "limit_data": "LimitDATA",
    "limit_fsize": "LimitFSIZE",
    "limit_memlock": "LimitMEMLOCK",
    "limit_nofile": "LimitNOFILE",
    "limit_nproc": "LimitNPROC",
    "limit_rss": "LimitRSS",
    "limit_stack": "LimitSTACK",
    "limit_vmem": "LimitAS",
}
APP_ACTIONS = {"start": "start", "stop": "stop", "check": "status", "info": "info"}


@dataclass(slots=True, kw_only=True)
class Keywords:
    """The converted keywords of one resource, with their spans for late diagnostics."""

    rid: str
    values: dict[str, Any]
    spans: dict[str, Span | None]
    section_span: Span
    diags: Collector
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value

    def opt_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        text = value if isinstance(value, str) else " ".join(map(str, value))
        return text if text.strip() else None

    def tuple_of(self, name: str) -> tuple[Any, ...]:
        value = self.values.get(name)
        if value is None:
            return ()
        return value if isinstance(value, tuple) else (value,)

    def argv(self, name: str) -> tuple[str, ...] | None:
        value = self.values.get(name)
        return value if isinstance(value, tuple) and value else None

    def error(
        self, name: str, message: str, hint: str | None = None, code: str = "invalid-value"
    ) -> None:
        span = self.spans.get(name) or self.section_span
        self.diags.error(span, message, code=code, hint=hint)

    def program(self, name: str, argv: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """``argv`` unless its program is only known at run time (then an error)."""
        if argv and "{" in argv[0] and REFERENCE.search(argv[0]):
            self.error(
                name,
                f"the program of '{name}' in [{self.rid}] is known only at run time: {argv[0]}",
                "use an absolute path, or '/bin/sh -c \"...\"' to let a shell find it",
                code="unsupported-reference",
            )
            return None
        return argv

    def abs_path(self, name: str) -> str | None:
        """A keyword that systemd takes as an absolute path (``cwd`` →
        ``WorkingDirectory=``): anything else is an error at the keyword, not later at
        the section when the unit is written."""
        value = self.opt_str(name)
        if value is not None and not value.startswith("/"):
            self.error(name, f"{name} {value!r} in [{self.rid}] must be an absolute path",
                       f"write {name} = /{value.lstrip('./')}")  # fmt: skip
            return None
        return value

    def warning(self, name: str, message: str, hint: str | None = None) -> None:
        span = self.spans.get(name) or self.section_span
        self.diags.warning(span, message, code="ignored-value", hint=hint)


def environment(kws: Keywords, name: str = "environment") -> tuple[tuple[str, str], ...]:
    """``VAR=value`` words → pairs; names are kept as written (om3)."""
    out: list[tuple[str, str]] = []
    for word in kws.tuple_of(name):
        var, sep, value = str(word).partition("=")
        if not sep or not var:
            kws.error(name, f"invalid {name} entry {word!r} in [{kws.rid}]", "write VAR=value")
            continue
        out.append((var, value))
    return tuple(out)


def kv_refs(kws: Keywords) -> tuple[ir.KvRef, ...]:
    """``configs_environment``/``secrets_environment`` items as references; a malformed
    item is ignored with a warning (om3 ignores it silently)."""
    from .kvstore import ENV_KINDS, KvError, parse_ref

    out: list[ir.KvRef] = []
    for keyword, kind in ENV_KINDS.items():
        span = kws.spans.get(keyword) or kws.section_span
        where = ir.SourceSpan(file=span.file, line=span.line, column=span.column)
        for item in kws.tuple_of(keyword):
            try:
                ref = parse_ref(str(item))
            except KvError as exc:
                kws.warning(keyword, f"{keyword} in [{kws.rid}]: {exc}: ignored",
                            "write VAR=<object>/<key> or <object>/<key glob>")  # fmt: skip
                continue
            out.append(ir.KvRef(keyword=keyword, kind=kind, name=ref.name, key=ref.key,
                                var=ref.var, span=where))  # fmt: skip
    return tuple(out)


def limits(kws: Keywords) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for keyword, directive in LIMITS.items():
        value = kws.values.get(keyword)
        if value is None or (keyword == "limit_vmem" and directive in out):
            continue
        if isinstance(value, str):  # "60%" forms make no sense for rlimits
            kws.error(keyword, f"invalid {keyword} {value!r}", "use a size or a count")
            continue
        out[directive] = int(value)
    return tuple(out.items())


def _ip(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    return ir.IpResource(
        **base,
        ipname=kws.opt_str("name"),
        netmask=kws.opt_str("netmask"),
        dev=kws.opt_str("dev"),
        gateway=kws.opt_str("gateway"),
        netns=kws.opt_str("netns"),
        mode=kws.opt_str("mode") if base["driver"] == "ip.netns" else None,
        network=kws.opt_str("network"),
        nsdev=kws.opt_str("nsdev"),
        alias=bool(kws.get("alias", True)),
        check_carrier=bool(kws.get("check_carrier", True)),
        expose=kws.tuple_of("expose"),
    )


def _disk(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    size = kws.get("size")
    return ir.DiskResource(
        **base,
        disk_name=kws.opt_str("name"),
        file=kws.opt_str("file"),
        size=size if isinstance(size, int) else None,
        pvs=kws.tuple_of("pvs"),
        devs=kws.tuple_of("devs"),
        uuid=kws.opt_str("uuid"),
    )


def _fs(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    fs_type = base["driver"].split(".", 1)[1]
    mountable = fs_type not in ("flag", "directory")
    return ir.FsResource(
        **base,
        fs_type=fs_type,
        is_mountable=mountable,
        dev=kws.opt_str("dev"),
        mnt=kws.opt_str("mnt"),
        mnt_opt=kws.opt_str("mnt_opt"),
        mkfs_opt=kws.tuple_of("mkfs_opt"),
        stat_timeout=float(kws.get("stat_timeout", 5.0)),
        check_read=bool(kws.get("check_read", False)),
        path=kws.opt_str("path"),
        user=kws.opt_str("user"),
        user_group=kws.opt_str("group"),
        perm=kws.get("perm"),
    )


def _share(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    return ir.ShareResource(**base, path=kws.opt_str("path"), opts=kws.opt_str("opts"))


def _container(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    return ir.ContainerResource(
        **base,
        image=kws.opt_str("image"),
        image_pull_policy=kws.opt_str("image_pull_policy") or "once",
        container_name=kws.opt_str("name") or kws.extra.get("default_name"),
        hostname=kws.opt_str("hostname"),
        entrypoint=kws.argv("entrypoint"),
        command=kws.argv("command"),
        run_args=kws.tuple_of("run_args"),
        netns=kws.opt_str("netns"),
        pidns=kws.opt_str("pidns"),
        ipcns=kws.opt_str("ipcns"),
        utsns=kws.opt_str("utsns"),
        userns=kws.opt_str("userns"),
        volume_mounts=kws.tuple_of("volume_mounts"),
        devices=kws.tuple_of("devices"),
        environment=environment(kws),
        detach=bool(kws.get("detach", True)),
        rm=bool(kws.get("rm", False)),
        init=bool(kws.get("init", False)),
        privileged=bool(kws.get("privileged", False)),
        interactive=bool(kws.get("interactive", False)),
        tty=bool(kws.get("tty", False)),
        read_only=bool(kws.get("read_only", False)),
        user=kws.opt_str("user"),
        cwd=kws.opt_str("cwd"),
        pull_timeout=kws.get("pull_timeout"),
    )


def _app_command(kws: Keywords, name: str, script: str | None) -> tuple[str, ...] | None:
    value = kws.values.get(name)
    if value is None or value is False:
        return None
    if isinstance(value, tuple):
        return kws.program(name, value) if value else None
    if script == "":
        return None  # a script known only at run time, reported once by _app
    if script is None:
        kws.warning(
            name,
            f"'{name} = {kws.values.get(name)}' in [{kws.rid}] runs the script, "
            "but no 'script' is set: nothing will run",
            "set 'script = <path>' or give a command",
        )
        return None
    try:  # om3 runs "<script> <action>" through CmdArgsFromString
        return to_command(f"{script} {APP_ACTIONS[name]}")
    except ConvertError as exc:
        kws.error("script", f"invalid script in [{kws.rid}]: {exc.message}", exc.hint)
        return None


def _app(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    script = kws.opt_str("script")
    if script is not None and kws.program("script", (script,)) is None:
        script = ""
    start = kws.values.get("start")
    sequence = start if isinstance(start, int) and not isinstance(start, bool) else None
    return ir.AppResource(
        **base,
        kind=ir.AppKind.SIMPLE if base["driver"] == "app.simple" else ir.AppKind.FORKING,
        script=script or None,
        start=_app_command(kws, "start", script),
        stop=_app_command(kws, "stop", script),
        check=_app_command(kws, "check", script),
        info=_app_command(kws, "info", script),
        sequence=sequence,
        environment=environment(kws),
        configs_environment=kws.tuple_of("configs_environment"),
        secrets_environment=kws.tuple_of("secrets_environment"),
        user=kws.opt_str("user"),
        user_group=kws.opt_str("group"),
        cwd=kws.abs_path("cwd"),
        umask=kws.get("umask"),
        limits=limits(kws),
        retcodes=kws.get("retcodes", ((0, "up"), (1, "down"))),
        timeout=kws.get("timeout"),
        check_timeout=kws.get("check_timeout"),
        info_timeout=kws.get("info_timeout"),
        status_log=bool(kws.get("status_log", False)),
        netns=kws.opt_str("netns"),
    )


def _sync_targets(kws: Keywords) -> tuple[ir.SyncTarget, ...]:
    out: list[ir.SyncTarget] = []
    for word in kws.tuple_of("target"):
        try:
            out.append(ir.SyncTarget(word))
        except ValueError:
            kws.error("target", f"invalid sync target {word!r}", "use nodes, drpnodes or local")
    return tuple(out)


def _sync(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    return ir.SyncResource(
        **base,
        src=kws.tuple_of("src"),
        dst=kws.opt_str("dst"),
        dstfs=kws.opt_str("dstfs"),
        target=_sync_targets(kws),
        options=kws.tuple_of("options"),
        reset_options=bool(kws.get("reset_options", False)),
        bwlimit=kws.opt_str("bwlimit"),
        timeout=kws.get("timeout"),
        schedule=kws.get("schedule"),
        max_delay=kws.get("max_delay"),
    )


def _task(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    return ir.TaskResource(
        **base,
        command=kws.program("command", kws.argv("command"))
        if base["driver"] == "task.host"
        else kws.argv("command"),
        stop_command=kws.program("stop", kws.argv("stop")),
        on_error=kws.program("on_error", kws.argv("on_error")),
        schedule=kws.get("schedule"),
        confirmation=bool(kws.get("confirmation", False)),
        max_parallel=int(kws.get("max_parallel", 1)),
        check=kws.opt_str("check"),
        retcodes=kws.get("retcodes", ((0, "up"), (1, "down"))),
        log=bool(kws.get("log", True)),
        snooze=kws.get("snooze"),
        timeout=kws.get("run_timeout", kws.get("timeout")),
        user=kws.opt_str("user"),
        user_group=kws.opt_str("group"),
        cwd=kws.abs_path("cwd"),
        umask=kws.get("umask"),
        environment=environment(kws),
        limits=limits(kws),
        image=kws.opt_str("image") if base["driver"] != "task.host" else None,
        run_args=kws.tuple_of("run_args"),
        run_requires=kws.tuple_of("run_requires"),
    )


def _volume(kws: Keywords, base: dict[str, Any]) -> ir.Resource:
    size = kws.get("size")
    return ir.VolumeResource(
        **base,
        volume_name=kws.opt_str("name"),
        pool=kws.opt_str("pool"),
        size=size if isinstance(size, int) else None,
        access=kws.opt_str("access") or "rwo",
        format=bool(kws.get("format", True)),
        pool_type=kws.opt_str("type"),
        configs=kws.tuple_of("configs"),
        secrets=kws.tuple_of("secrets"),
        directories=kws.tuple_of("directories"),
    )


BUILDERS: dict[ir.Group, Callable[[Keywords, dict[str, Any]], ir.Resource]] = {
    ir.Group.IP: _ip,
    ir.Group.DISK: _disk,
    ir.Group.FS: _fs,
    ir.Group.SHARE: _share,
    ir.Group.CONTAINER: _container,
    ir.Group.APP: _app,
    ir.Group.SYNC: _sync,
    ir.Group.TASK: _task,
    ir.Group.VOLUME: _volume,
}
