"""The object CLI: ``om <selector> [instance] <action> [flags]`` (opensvc.md §8).

The hot path of every ``om`` call: a hand-written parser (argparse's exit
code 2 would mean "object not found" here), and modules imported only by the
commands that need them — ``print status`` never imports D-Bus.
Exit codes: :mod:`omc.runtime.exitcodes`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omc.runtime.exitcodes import ExitStatus

if TYPE_CHECKING:
    from omc.compiler.contract.paths import ObjectPath
    from omc.runtime.cluster.settings import ClusterSettings
    from omc.runtime.cluster.state import ClusterState
    from omc.runtime.log import Sink
    from omc.runtime.objects.model import ObjectModel
    from omc.runtime.objects.selection import Selector

USAGE = """\
usage: om <selector> instance start|stop|restart|startstandby|shutdown|run|freeze|unfreeze
       om <selector> start|stop|freeze|unfreeze|restart|switch --to N|takeover|giveback
                     |clear [--node N]|abort [--wait] [--time D] [--watch] [--dry-run]
                                                    (orchestrated, on a cluster)
       om <selector> sync update|full [--target nodes|drp|drpnodes|local] | update
       om <selector> instance status | print status [--format json] | resource ls | ls
       om <path> create --config FILE | delete | config show|edit|validate
       om <path> driver start|stop|status --rid RID      (run by the units)
       om exec --pg CGROUP -- CMD...
       om mon [SELECTOR] [--watch] [--format json|yaml]
       om daemon run|status | om cluster config show | om node freeze|unfreeze
       om lab up|down|status|list|exec|run|logs    (om lab --help)
flags: --rid RIDS --tag TAGS --subset SUBSETS --force --disable-rollback --dry-run
       --local -q/--quiet --debug --format json|text"""

ACTIONS = frozenset(
    {"start", "stop", "restart", "startstandby", "shutdown", "run", "freeze", "unfreeze"}
)
_VALUED = {"--rid": "rid", "--tag": "tag", "--tags": "tag", "--subset": "subset",
           "--subsets": "subset", "--format": "format", "-o": "format", "--output": "format",
           "--config": "config", "--node": "node", "--target": "target", "--to": "to",
           "--time": "time"}  # fmt: skip
_SWITCHES = {"--force": "force", "--disable-rollback": "disable_rollback", "--dry-run": "dry_run",
             "-q": "quiet", "--quiet": "quiet", "--debug": "debug", "--local": "local",
             "-r": "refresh", "--refresh": "refresh",
             "-f": "follow", "--follow": "follow", "--wait": "wait", "--watch": "watch",
             "-w": "watch"}  # fmt: skip


class UsageError(Exception):
    """The command line is wrong; the message says what was expected."""


@dataclass(slots=True)
class Command:
    selector: str
    words: list[str]
    values: dict[str, str] = field(default_factory=dict)
    switches: set[str] = field(default_factory=set)


def parse(argv: list[str]) -> Command:
    """Split ``argv`` into selector, verb words, valued flags and switches."""
    if not argv:
        raise UsageError("missing object selector")
    cmd = Command(selector=argv[0], words=[])
    rest = list(argv[1:])
    while rest:
        word = rest.pop(0)
        name, eq, inline = word.partition("=")
        if name in _VALUED:
            if not eq and not rest:
                raise UsageError(f"option {name} expects a value")
            cmd.values[_VALUED[name]] = inline if eq else rest.pop(0)
        elif word in _SWITCHES:
            cmd.switches.add(_SWITCHES[word])
        elif word.startswith("-"):
            raise UsageError(f"unknown option {word!r}")
        else:
            cmd.words.append(word)
    return cmd


def _err(msg: str) -> None:
    print(f"om: error: {msg}", file=sys.stderr)


def main(argv: list[str]) -> int:
    """Run one ``om`` object command; the only place exit codes are decided."""
    if argv[:1] == ["exec"]:
        from omc.runtime.exec import main as exec_main

        return exec_main(argv[1:])
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE.rstrip())  # asked for: usage on stdout, success
        return ExitStatus.OK
    if len(argv) >= 2 and argv[1] == "driver":
        from omc.runtime.drivers.entry import main as driver_main

        return driver_main(argv[0], argv[2:])
    try:
        cmd = parse(argv)
        return int(dispatch(cmd, argv))
    except UsageError as exc:
        _err(f"{exc}\n{USAGE}")
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except Exception as exc:
        return _unexpected(exc, debug="--debug" in argv)


def _unexpected(exc: Exception, *, debug: bool) -> int:
    from omc.compiler.contract.paths import PathError
    from omc.runtime.engine.session import ActionError
    from omc.runtime.objects import configs
    from omc.runtime.objects.model import InstanceNotFoundError
    from omc.runtime.safefs import UnsafePathError

    if isinstance(exc, configs.NotFoundError):
        _err(str(exc))
        return ExitStatus.NOT_FOUND
    if isinstance(exc, InstanceNotFoundError):
        _err(str(exc))
        return ExitStatus.INSTANCE_NOT_FOUND
    if isinstance(exc, configs.ConfigError):
        print(str(exc), file=sys.stderr)
        return ExitStatus.ERROR
    if isinstance(exc, configs.StoreError | PathError | UnsafePathError):
        _err(str(exc))
        return ExitStatus.ERROR
    if isinstance(exc, ActionError):
        return ExitStatus.ERROR
    if type(exc).__name__ in ("SystemdError", "InstallError", "ModelError"):
        _err(str(exc))
        return ExitStatus.ERROR
    if debug:
        raise exc
    _err(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return ExitStatus.INTERNAL


def dispatch(cmd: Command, argv: list[str]) -> int:
    words = cmd.words[1:] if cmd.words[:1] == ["instance"] else cmd.words
    verb = " ".join(words)
    table: dict[str, Callable[[Command, list[str]], int]] = {
        "print status": _print_status,
        "status": _print_status,
        "resource ls": _resource_ls,
        "ls": _ls,
        "create": _create,
        "delete": _delete,
        "config show": _config_show,
        "config validate": _config_validate,
        "config edit": _config_edit,
        "logs": _logs,
    }
    if verb in table:
        return table[verb](cmd, argv)
    if _orchestrated(cmd, words):
        return _orchestrate(cmd, words[0])
    if len(words) == 1 and words[0] in ACTIONS:
        return _action(cmd, argv, words[0])
    if verb in ("update", "sync update", "sync full"):  # "update" is the seed's Sync All
        return _sync(cmd, argv, "full" if verb == "sync full" else "update")
    raise UsageError(f"unknown action {verb!r}" if verb else "missing action")


ORCHESTRATED = frozenset({"start", "stop", "freeze", "unfreeze", "thaw", "restart", "switch",
                          "takeover", "giveback", "abort", "clear"})  # fmt: skip
ONLY_ORCHESTRATED = frozenset({"switch", "takeover", "giveback", "abort", "clear", "thaw"})


def _orchestrated(cmd: Command, words: list[str]) -> bool:
    """``om <path> start`` (not ``instance start``) on a node of a cluster, without a
    resource selection or ``--local``: the cluster decides (opensvc.md §4.1)."""
    from omc.runtime.cluster.settings import configured

    if cmd.words[:1] == ["instance"] or len(words) != 1 or words[0] not in ORCHESTRATED:
        return False
    local = "local" in cmd.switches or any(v in cmd.values for v in ("rid", "tag", "subset"))
    if local and words[0] in ONLY_ORCHESTRATED:
        raise UsageError(f"{words[0]} is orchestrated: it takes no --local/--rid/--tag/--subset")
    if local:
        return False
    if configured():
        return True
    if words[0] in ONLY_ORCHESTRATED:
        raise UsageError(f"{words[0]} needs a cluster (no /etc/opensvc/cluster.conf here)")
    return False


def _duration(text: str) -> float:
    """``--time`` as seconds (0: not given)."""
    from omc.runtime.cluster.settings import SettingsError, duration

    if not text:
        return 0.0
    try:
        return duration(text, key="--time")
    except SettingsError as exc:
        raise UsageError(f"--time {text!r}: expected a duration such as 10s, 2m") from exc


def _orchestrate(cmd: Command, verb: str) -> int:
    """Hand an orchestrated action to the cluster (runtime/cluster/orchestrate.py)."""
    from omc.compiler.contract.node import node_name
    from omc.runtime.cluster import orchestrate
    from omc.runtime.cluster.settings import SettingsError, load
    from omc.runtime.objects.configs import select_objects

    settings = load()
    if verb == "clear":
        return _clear(cmd, settings)
    destination: tuple[str, ...] = ()
    if verb == "switch":
        to = cmd.values.get("to") or cmd.values.get("node")
        if not to:
            raise UsageError("switch expects --to NODE (om3) or --node NODE (the seed's spelling)")
        destination = tuple(n for n in to.replace(",", " ").split() if n)
    elif verb == "takeover":
        destination = (node_name(),)
    worst = ExitStatus.OK
    for path in select_objects(cmd.selector):
        request = orchestrate.Request(
            path=path, expect=orchestrate.VERBS[verb], destination=destination,
            wait="wait" in cmd.switches, watch="watch" in cmd.switches,
            dry_run="dry_run" in cmd.switches,
            time=_duration(cmd.values.get("time", "")) or orchestrate.DEFAULT_TIME,
        )  # fmt: skip
        try:
            orchestrate.run(settings, request, render=_monitor_frame)
        except orchestrate.Timeout as exc:
            _err(f"{path}: {exc}")
            worst = max(worst, ExitStatus.TIMEOUT)
        except (orchestrate.OrchestrationError, SettingsError) as exc:
            _err(str(exc))
            worst = max(worst, ExitStatus.ERROR)
    return worst


def _monitor_frame(state: ClusterState, path: ObjectPath) -> str:
    from omc.runtime.cluster.monitor import render_watch

    return render_watch(state, path)


def _clear(cmd: Command, settings: ClusterSettings) -> int:
    from omc.runtime.cluster import requests
    from omc.runtime.objects.configs import select_objects

    for path in select_objects(cmd.selector):
        requests.clear(settings, path, node=cmd.values.get("node"))
    return ExitStatus.OK


def _action(cmd: Command, argv: list[str], verb: str) -> int:
    from omc.runtime.engine import instance

    opts = instance.Options(
        selector=_selector(cmd),
        force="force" in cmd.switches,
        disable_rollback="disable_rollback" in cmd.switches,
        dry_run="dry_run" in cmd.switches,
        argv=tuple(argv),
        origin=os.environ.get("OSVC_ACTION_ORIGIN") or "user",  # the daemon sets it (om3's)
    )
    console = _console(cmd)
    return _each_object(cmd, console, lambda path: instance.run(path, verb, opts, console=console))


def _sync(cmd: Command, argv: list[str], verb: str) -> int:
    from omc.runtime.engine import syncs

    selector, target, console = _selector(cmd), cmd.values.get("target"), _console(cmd)
    origin = os.environ.get("OSVC_ACTION_ORIGIN") or "user"  # the daemon's syncs say so
    return _each_object(cmd, console, lambda path: syncs.run(
        path, verb, target=target, selector=selector, argv=argv, console=console,
        origin=origin))  # fmt: skip


def _selector(cmd: Command) -> Selector:
    from omc.runtime.objects.selection import Selector

    return Selector(rid=cmd.values.get("rid"), tag=cmd.values.get("tag"),
                    subset=cmd.values.get("subset"))  # fmt: skip


def _console(cmd: Command) -> Sink | None:
    """The console sink of an action (None with ``-q``)."""
    from omc.runtime.log import ConsoleSink, Level

    if "quiet" in cmd.switches:
        return None
    return ConsoleSink(sys.stdout, level=Level.DEBUG if "debug" in cmd.switches else Level.INFO)


def _each_object(cmd: Command, console: Sink | None, act: Callable[[ObjectPath], object]) -> int:
    """Run ``act`` on every selected object; a failure is reported and the others run."""
    from omc.runtime.engine.session import ActionError
    from omc.runtime.objects.configs import select_objects

    worst = ExitStatus.OK
    for path in select_objects(cmd.selector):
        try:
            act(path)
        except ActionError as exc:
            if console is None or not exc.logged:
                _err(str(exc))
            worst = ExitStatus.ERROR
    return worst


def _print_status(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects.configs import select_objects
    from omc.runtime.views import status as status_view

    as_json = cmd.values.get("format", "text") == "json"
    code = 0
    for path in select_objects(cmd.selector):
        text, avail_code = status_view.show(path, as_json=as_json)
        sys.stdout.write(text)
        code = max(code, avail_code)
    exit_with_avail = cmd.words[-1:] == ["status"] and cmd.words[:1] != ["print"]
    return code if exit_with_avail else ExitStatus.OK


def _resource_ls(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.engine.instance import load_model
    from omc.runtime.objects.configs import select_objects
    from omc.runtime.views.render import render_resource_list

    for path in select_objects(cmd.selector):
        model = load_model(path, None)
        rows = [(r.rid, r.driver, r.unit) for r in model.resources]
        sys.stdout.write(render_resource_list(rows))
    return ExitStatus.OK


def _logs(cmd: Command, argv: list[str]) -> int:
    """``om <selector> logs [-f]``: the objects' journald records, in the console format."""
    import subprocess

    from omc.runtime.log import record_from_journal
    from omc.runtime.objects.configs import select_objects

    matches = [f"OBJ_PATH={p}" for p in select_objects(cmd.selector)]
    follow = ["-f"] if "follow" in cmd.switches else []
    journal = ["journalctl", "--no-pager", "-o", "json", *follow, *matches]  # same field: OR
    with subprocess.Popen(journal, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            record = record_from_journal(line)
            if record is not None:
                print(record.console_line(), flush=True)
    return ExitStatus.OK


def _ls(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects.configs import select_objects

    for path in select_objects(cmd.selector):
        print(path)
    return ExitStatus.OK


def _reload(forget: tuple[str, ...] = ()) -> None:
    """One daemon-reload; then the failed state of ``forget`` (units just removed) is
    reset, so a deleted object's units do not linger "not-found failed" and keep
    the node ``degraded``."""
    from omc.runtime.adapters.systemd import Systemd, SystemdError

    with Systemd.system() as sd:
        sd.daemon_reload()
        for unit in forget:
            with contextlib.suppress(SystemdError):  # not loaded, or not failed
                sd.reset_failed(unit)


def _create(cmd: Command, argv: list[str]) -> int:
    from omc.compiler.contract.paths import parse_path
    from omc.runtime.objects import configs, install

    source = cmd.values.get("config")
    if not source:
        raise UsageError("create expects --config FILE (or - for stdin)")
    text = sys.stdin.read() if source == "-" else _read(Path(source))
    path = parse_path(cmd.selector)
    compiled = install.compile_config(path, text, filename=source)
    if compiled.diagnostics:
        sys.stderr.write(compiled.diagnostics)
    if not compiled.ok:
        return ExitStatus.ERROR
    if "local" not in cmd.switches and _cluster_configured():
        return _create_in_cluster(path, text, compiled.units)
    configs.write_config(path, text)
    install.ensure_units(path, reload=_reload)
    return ExitStatus.OK


def _cluster_configured() -> bool:
    from omc.runtime.cluster.settings import configured

    return configured()


def _create_in_cluster(path: ObjectPath, text: str, units: dict[str, str]) -> int:
    """The config goes to etcd; the daemons of its scope install it (cluster/configs.py)."""
    from omc.runtime.cluster import configs as cluster_configs
    from omc.runtime.cluster.orchestrate import OrchestrationError
    from omc.runtime.cluster.settings import load

    try:
        problems = cluster_configs.create(load(), path, text, units)
    except OrchestrationError as exc:
        _err(str(exc))
        return ExitStatus.ERROR
    for problem in problems:
        _err(f"{path}: {problem}")
    return ExitStatus.ERROR if problems else ExitStatus.OK


def _read(file: Path) -> str:
    from omc.runtime.objects.configs import StoreError

    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot read {file}: {exc.strerror}") from None


def _delete(cmd: Command, argv: list[str]) -> int:
    from omc.compiler.contract.node import config_file
    from omc.runtime.objects import configs, install
    from omc.runtime.objects.model import load

    if "local" not in cmd.switches and _cluster_configured():
        return _delete_in_cluster(cmd)
    for path in configs.select_objects(cmd.selector):
        model = load(path)
        units = () if model is None else (*(r.unit for r in model.resources), model.target)
        forced = "force" in cmd.switches
        active = _active_units(model) if model is not None and not forced else []
        if active:
            raise configs.StoreError(
                f"{path}: units are active ({', '.join(active)}): "
                "run 'instance shutdown' first, or delete --force"
            )
        install.remove_units(path, reload=functools.partial(_reload, units))
        config_file(path).unlink()
    return ExitStatus.OK


def _delete_in_cluster(cmd: Command) -> int:
    """Remove objects from the cluster (every node); ``--force`` stops them first."""
    from omc.runtime.cluster import configs as cluster_configs
    from omc.runtime.cluster import orchestrate
    from omc.runtime.cluster.settings import load
    from omc.runtime.objects.configs import select_objects

    settings = load()
    worst = ExitStatus.OK
    for path in select_objects(cmd.selector):
        try:
            if "force" in cmd.switches:
                stop = orchestrate.Request(path=path, expect=orchestrate.VERBS["stop"], wait=True)
                orchestrate.run(settings, stop)
            cluster_configs.delete(settings, path)
        except orchestrate.OrchestrationError as exc:
            _err(str(exc))
            worst = ExitStatus.ERROR
    return worst


def _active_units(model: ObjectModel) -> list[str]:
    """The object's installed units that systemd runs (a delete would orphan them)."""
    from omc.runtime.engine.observe import ACTIVE, states_via_systemctl

    states = states_via_systemctl([r.unit for r in model.resources])
    return [unit for unit, state in states.items() if state in ACTIVE]


def _config_show(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects import configs

    for path in configs.select_objects(cmd.selector):
        sys.stdout.write(configs.read_config(path))
    return ExitStatus.OK


def _config_validate(cmd: Command, argv: list[str]) -> int:
    from omc.compiler.contract.node import config_file
    from omc.runtime.objects import configs, install

    worst = ExitStatus.OK
    for path in configs.select_objects(cmd.selector):
        text = configs.read_config(path)
        compiled = install.compile_config(path, text, filename=str(config_file(path)))
        sys.stderr.write(compiled.diagnostics)
        if not compiled.ok:
            worst = ExitStatus.ERROR
    return worst


def _config_edit(cmd: Command, argv: list[str]) -> int:
    """Edit a copy; install it only if it compiles (the last good config stays otherwise)."""
    import shlex
    import subprocess
    import tempfile

    from omc.compiler.contract.node import config_file
    from omc.compiler.contract.paths import parse_path
    from omc.runtime.objects import configs, install

    path = parse_path(cmd.selector)
    text = configs.read_config(path)
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".conf", delete=False) as fh:
        fh.write(text)
    try:
        subprocess.run([*shlex.split(editor), fh.name], check=False)
        new = Path(fh.name).read_text(encoding="utf-8")
    finally:
        Path(fh.name).unlink()
    if new == text:
        return ExitStatus.OK
    compiled = install.compile_config(path, new, filename=str(config_file(path)))
    sys.stderr.write(compiled.diagnostics)
    if not compiled.ok:
        _err("config not saved: it has errors")
        return ExitStatus.ERROR
    configs.write_config(path, new)
    install.ensure_units(path, reload=_reload)
    return ExitStatus.OK
