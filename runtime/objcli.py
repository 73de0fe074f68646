"""The object CLI: ``om <selector> [instance] <action> [flags]`` (opensvc.md §8).

The hot path of every ``om`` call: a hand-written parser (argparse's exit
code 2 would mean "object not found" here), and modules imported only by the
commands that need them — ``print status`` never imports D-Bus.
Exit codes: :mod:`omc.runtime.exitcodes`.
"""

from __future__ import annotations

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
       om <selector> instance status | print status [--format json|yaml] | resource ls | ls
       om <path> create --config FILE | delete | config show|edit|validate
       om <cfg|sec|usr path> create | add|change --key K [--value V | --from FILE|-]
       om <cfg|sec|usr path> keys [--match GLOB] | decode --key K | remove --key K
       om <path> driver start|stop|status --rid RID      (run by the units)
       om exec --pg CGROUP -- CMD...
       om mon [SELECTOR] [--watch] [--verbose] [--format text|json|yaml] [--color auto|yes|no]
       om daemon run|status | om cluster config show | om node freeze|unfreeze
       om lab up|down|status|list|exec|run|logs    (om lab --help)
flags: --rid RIDS --tag TAGS --subset SUBSETS --force --disable-rollback --dry-run
       --local --waitlock DURATION (30s) -q/--quiet --debug --format text|json|yaml"""

ACTIONS = frozenset(
    {"start", "stop", "restart", "startstandby", "shutdown", "run", "freeze", "unfreeze"}
)
_VALUED = {"--rid": "rid", "--tag": "tag", "--tags": "tag", "--subset": "subset",
           "--subsets": "subset", "--format": "format", "-o": "format", "--output": "format",
           "--config": "config", "--node": "node", "--target": "target", "--to": "to",
           "--time": "time", "--waitlock": "waitlock",
           "--key": "key", "--value": "value", "--from": "from", "--match": "match"}  # fmt: skip
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
        if os.geteuid() != 0:
            # Objects are root's: configs 0600, units, locks and state under /etc, /run
            # and /var. One sentence instead of the first EACCES deep in an action.
            _err(f"om must run as root (uid {os.geteuid()})")
            return ExitStatus.ERROR
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
        if not exc.logged:  # a lock wait that timed out, a refusal before any log line
            _err(str(exc))
        return ExitStatus.ERROR
    if isinstance(exc, OSError) and exc.filename is not None:  # root, yet refused: say where
        _err(f"cannot access {exc.filename}: {exc.strerror}")
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
        "add": _key_add,
        "change": _key_change,
        "keys": _keys,
        "decode": _decode,
        "remove": _key_remove,
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
        waitlock=_waitlock(cmd),
    )
    console = _console(cmd)
    return _each_object(cmd, console, lambda path: instance.run(path, verb, opts, console=console))


def _sync(cmd: Command, argv: list[str], verb: str) -> int:
    from omc.runtime.engine import syncs

    selector, target, console = _selector(cmd), cmd.values.get("target"), _console(cmd)
    waitlock = _waitlock(cmd)
    return _each_object(cmd, console, lambda path: syncs.run(path, verb, target=target,
        selector=selector, argv=argv, console=console, waitlock=waitlock))  # fmt: skip


def _waitlock(cmd: Command) -> float:
    """``--waitlock DURATION`` in seconds (``10s``, ``1m``, a bare number is seconds)."""
    from omc.runtime.drivers.base import DriverError
    from omc.runtime.drivers.settings import parse_duration
    from omc.runtime.engine.session import WAITLOCK

    text = cmd.values.get("waitlock")
    if text is None:
        return WAITLOCK
    wrong = UsageError(f"--waitlock expects a duration like 30s, 1m or 10, got {text!r}")
    if not text.strip():
        raise wrong
    try:
        return parse_duration(text, what="--waitlock")
    except (DriverError, ValueError):
        raise wrong from None


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
    """Run ``act`` on every selected object; a failure is reported and the others run.

    Resource options that match nothing in an object skip it; they are an error
    (exit :attr:`ExitStatus.NO_MATCH`) only when they matched nothing in every object,
    so ``om '*' stop --tag db`` stops the db resources wherever there are some.
    """
    from omc.runtime.engine.session import ActionError
    from omc.runtime.objects.configs import select_objects
    from omc.runtime.objects.selection import NoMatchError

    worst = ExitStatus.OK
    paths = select_objects(cmd.selector)
    unmatched: list[str] = []
    for path in paths:
        try:
            act(path)
        except NoMatchError as exc:
            unmatched.append(str(exc))
        except ActionError as exc:
            if console is None or not exc.logged:
                _err(str(exc))
            worst = ExitStatus.ERROR
    if len(unmatched) == len(paths):
        for message in unmatched:
            _err(message)
        return ExitStatus.NO_MATCH
    for message in unmatched:
        print(f"om: {message}, skipped", file=sys.stderr)
    return worst


def _print_status(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects.configs import select_objects
    from omc.runtime.views import status as status_view

    fmt = cmd.values.get("format", "text")
    if fmt not in ("text", "json", "yaml"):
        raise UsageError(f"--format {fmt!r}: expected text, json or yaml")
    printed = cmd.words[:1] == ["print"]  # print status has the cluster part; instance status not
    code = 0
    for path in select_objects(cmd.selector):
        text, avail_code = status_view.show(path, fmt=fmt, cluster=printed)
        sys.stdout.write(text)
        code = max(code, avail_code)
    exit_with_avail = cmd.words[-1:] == ["status"] and not printed
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


def _reload(gone: tuple[str, ...]) -> None:
    """One daemon-reload, on a connection of its own (``delete``)."""
    from omc.runtime.adapters.systemd import Systemd
    from omc.runtime.engine.config_change import reload

    with Systemd.system() as sd:
        reload(sd, gone)


def _create(cmd: Command, argv: list[str]) -> int:
    from omc.compiler.contract.paths import parse_path
    from omc.runtime.objects import install, kv

    source = cmd.values.get("config")
    path = parse_path(cmd.selector)
    if not source and kv.is_store(path):
        source, text = "<new>", kv.new_config()  # om3: an empty store, keys added later
    elif not source:
        raise UsageError("create expects --config FILE (or - for stdin)")
    else:
        text = _read(source)
    compiled = install.compile_config(path, text, filename=source)
    if compiled.diagnostics:
        sys.stderr.write(compiled.diagnostics)
    if not compiled.ok:
        return ExitStatus.ERROR
    if "local" not in cmd.switches and _cluster_configured():
        return _create_in_cluster(path, text, compiled.units)
    _save(cmd, path, text, "create", units=compiled.units)
    return ExitStatus.OK


def _cluster_configured() -> bool:
    from omc.runtime.cluster.settings import configured

    return configured()


def _create_in_cluster(path: ObjectPath, text: str, units: dict[str, str]) -> int:
    """The config goes to etcd; the daemons of its scope install it (cluster/configs.py)."""
    return _in_cluster(path, text, units, base=None)


def _in_cluster(path: ObjectPath, text: str, units: dict[str, str], *, base: str | None) -> int:
    """Store a new config (``base`` None) or a change of one in etcd; report the nodes
    where it did not install."""
    from omc.runtime.cluster import configs as cluster_configs
    from omc.runtime.cluster.orchestrate import OrchestrationError
    from omc.runtime.cluster.settings import load

    try:
        if base is None:
            problems = cluster_configs.create(load(), path, text, units)
        else:
            problems = cluster_configs.update(load(), path, text, units, base=base)
    except OrchestrationError as exc:
        _err(str(exc))
        return ExitStatus.ERROR
    for problem in problems:
        _err(f"{path}: {problem}")
    return ExitStatus.ERROR if problems else ExitStatus.OK


def _save(
    cmd: Command,
    path: ObjectPath,
    text: str,
    action: str,
    *,
    units: dict[str, str],
    edited: str = "",
) -> None:
    """Write an object's config and install its units under the object lock: a config
    change must never cut through a running action (it would swap units under its
    jobs). The config, its units and their marker land all together or not at all
    (:func:`omc.runtime.objects.install.commit`). ``edited``: the text an editor
    started from, which must still be the config (a change made meanwhile is not
    overwritten)."""
    from omc.runtime.engine.config_change import commit_config
    from omc.runtime.engine.session import object_lock
    from omc.runtime.objects import configs

    with object_lock(path, action=action, wait=_waitlock(cmd)):
        if edited and configs.read_config(path) != edited:
            raise configs.StoreError(f"{path}: config changed while it was edited: not saved")
        commit_config(path, text, units, action=action, console=_console(cmd))


def _read(source: str) -> str:
    """A config given on the command line (``-``: stdin), read as ``omc`` reads one:
    bounded, a regular file (a FIFO or a device is refused, never waited on), UTF-8."""
    from omc.compiler.contract.node import ConfigFileError, read_config_bytes, read_config_file
    from omc.runtime.objects.configs import StoreError

    try:
        if source != "-":
            return read_config_file(Path(source), errors="strict").text
        data = read_config_bytes(sys.stdin.fileno(), name="stdin")
    except ConfigFileError as exc:
        raise StoreError(str(exc)) from None
    except OSError as exc:
        raise StoreError(f"cannot read stdin: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = f"byte {exc.start} is {data[exc.start]:#04x}"
        raise StoreError(f"cannot read stdin: not UTF-8 text ({at})") from None


def _delete(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.engine.session import object_lock
    from omc.runtime.objects import configs

    if "local" not in cmd.switches and _cluster_configured():
        return _delete_in_cluster(cmd)
    for path in configs.select_objects(cmd.selector):
        with object_lock(path, action="delete", wait=_waitlock(cmd)):
            _delete_one(path, forced="force" in cmd.switches)
    return ExitStatus.OK


def _delete_one(path: ObjectPath, *, forced: bool) -> None:
    """Remove one object's units and config (the caller holds the object lock)."""
    from omc.compiler.contract.node import config_file
    from omc.runtime.objects import configs, install
    from omc.runtime.objects.model import load

    model = load(path)
    active = _active_units(model) if model is not None and not forced else []
    if active:
        raise configs.StoreError(
            f"{path}: units are active ({', '.join(active)}): "
            "run 'instance shutdown' first, or delete --force"
        )
    install.remove_units(path, reload=_reload)
    config_file(path).unlink()


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

    from omc.compiler.contract.paths import parse_path
    from omc.runtime.objects import configs

    path = parse_path(cmd.selector)
    text = configs.read_config(path)
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".conf", delete=False) as fh:
        fh.write(text)
    try:
        subprocess.run([*shlex.split(editor), fh.name], check=False)
        new = _read(fh.name)
    finally:
        Path(fh.name).unlink()
    if new == text:
        return ExitStatus.OK
    return _change(cmd, path, new, "config edit", base=text)


def _change(cmd: Command, path: ObjectPath, new: str, action: str, *, base: str) -> int:
    """A changed config (``config edit``, a store's key): compiled here first (with errors
    nothing is saved); then to the cluster when it holds the object (its daemons install
    it, this node's included), else installed on this node. ``base``: the text the change
    started from, which must still be the config (a change made meanwhile is kept)."""
    from omc.compiler.contract.node import config_file
    from omc.runtime.objects import install

    compiled = install.compile_config(path, new, filename=str(config_file(path)))
    sys.stderr.write(compiled.diagnostics)
    if not compiled.ok:
        _err("config not saved: it has errors")
        return ExitStatus.ERROR
    if _cluster_holds(cmd, path):
        return _in_cluster(path, new, compiled.units, base=base)
    _save(cmd, path, new, action, units=compiled.units, edited=base)
    return ExitStatus.OK


def _cluster_holds(cmd: Command, path: ObjectPath) -> bool:
    """Whether the object's config is the cluster's (replicated here by the daemon),
    unless ``--local`` says to change this node's copy only."""
    from omc.runtime import safefs
    from omc.runtime.layout import replicated_marker

    return (
        "local" not in cmd.switches
        and _cluster_configured()
        and safefs.is_file(replicated_marker(path))
    )


# ---------------------------------------------------------------------------
# Keys of cfg, sec and usr objects (om3's ``om <path> add|change|keys|decode|remove``)


def _store_path(cmd: Command) -> ObjectPath:
    """The one cfg/sec/usr object a key command acts on (it must exist)."""
    from omc.runtime.objects import kv
    from omc.runtime.objects.configs import select_objects

    found = select_objects(cmd.selector)
    if len(found) != 1:
        raise UsageError(f"key commands act on one object; {cmd.selector!r} selects {len(found)}")
    kv.require_store(found[0])
    return found[0]


def _key_name(cmd: Command) -> str:
    key = cmd.values.get("key")
    if not key:
        raise UsageError("expected --key NAME")
    return key


def _key_value(cmd: Command) -> bytes:
    """``--value V``, ``--from FILE`` (``-``: stdin), or empty (om3)."""
    from omc.compiler.contract.node import ConfigFileError, read_config_bytes, read_regular_file
    from omc.runtime.objects.configs import StoreError
    from omc.runtime.objects.kv import MAX_VALUE_BYTES

    value, source = cmd.values.get("value"), cmd.values.get("from")
    if value is not None and source is not None:
        raise UsageError("give --value or --from, not both")
    if value is not None:
        return value.encode()
    if source is None:
        return b""
    what = "a key value"
    try:
        if source == "-":
            return read_config_bytes(sys.stdin.fileno(), name="stdin", limit=MAX_VALUE_BYTES,
                                     what=what)  # fmt: skip
        return read_regular_file(Path(source), limit=MAX_VALUE_BYTES, what=what)[0]
    except ConfigFileError as exc:
        raise StoreError(str(exc)) from None


def _set_key(cmd: Command, *, replace: bool) -> int:
    from omc.runtime.objects import kv

    path, key, value = _store_path(cmd), _key_name(cmd), _key_value(cmd)
    store = kv.load(path)
    new = kv.key_set(store, path, key, value, replace=replace)
    return _change(cmd, path, new, "change" if replace else "add", base=store.text)


def _key_add(cmd: Command, argv: list[str]) -> int:
    return _set_key(cmd, replace=False)


def _key_change(cmd: Command, argv: list[str]) -> int:
    return _set_key(cmd, replace=True)


def _key_remove(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects import kv

    path, key = _store_path(cmd), _key_name(cmd)
    store = kv.load(path)
    return _change(cmd, path, kv.key_removed(store, path, key), "remove", base=store.text)


def _keys(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.objects import kv

    for key in kv.keys(_store_path(cmd), cmd.values.get("match")):
        print(key)
    return ExitStatus.OK


def _decode(cmd: Command, argv: list[str]) -> int:
    """The value's bytes as stored, nothing added (om3: no trailing newline)."""
    from omc.runtime.objects import kv

    value = kv.decode(_store_path(cmd), _key_name(cmd))
    sys.stdout.flush()
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()
    return ExitStatus.OK
