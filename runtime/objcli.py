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
    from omc.runtime.log import Sink
    from omc.runtime.objects.model import ObjectModel
    from omc.runtime.objects.selection import Selector

USAGE = """\
usage: om <selector> [instance] start|stop|restart|startstandby|shutdown|run|freeze|unfreeze
       om <selector> sync update|full [--target nodes|drp|drpnodes|local] | update
       om <selector> instance status | print status [--format json] | resource ls | ls
       om <path> create --config FILE | delete | config show|edit|validate
       om <cfg|sec|usr path> create | add|change --key K [--value V | --from FILE|-]
       om <cfg|sec|usr path> keys [--match GLOB] | decode --key K | remove --key K
       om <path> driver start|stop|status --rid RID      (run by the units)
       om exec --pg CGROUP -- CMD...
       om lab up|down|status|list|exec|run|logs    (om lab --help)
flags: --rid RIDS --tag TAGS --subset SUBSETS --force --disable-rollback --dry-run
       -q/--quiet --debug --format json|text"""

ACTIONS = frozenset(
    {"start", "stop", "restart", "startstandby", "shutdown", "run", "freeze", "unfreeze"}
)
_VALUED = {"--rid": "rid", "--tag": "tag", "--tags": "tag", "--subset": "subset",
           "--subsets": "subset", "--format": "format", "-o": "format", "--output": "format",
           "--config": "config", "--node": "node", "--target": "target",
           "--key": "key", "--value": "value", "--from": "from", "--match": "match"}  # fmt: skip
_SWITCHES = {"--force": "force", "--disable-rollback": "disable_rollback", "--dry-run": "dry_run",
             "-q": "quiet", "--quiet": "quiet", "--debug": "debug", "--local": "local",
             "-r": "refresh", "--refresh": "refresh",
             "-f": "follow", "--follow": "follow"}  # fmt: skip


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

    if isinstance(exc, configs.NotFoundError):
        _err(str(exc))
        return ExitStatus.NOT_FOUND
    if isinstance(exc, InstanceNotFoundError):
        _err(str(exc))
        return ExitStatus.INSTANCE_NOT_FOUND
    if isinstance(exc, configs.ConfigError):
        print(str(exc), file=sys.stderr)
        return ExitStatus.ERROR
    if isinstance(exc, configs.StoreError | PathError):
        _err(str(exc))
        return ExitStatus.ERROR
    if isinstance(exc, ActionError):
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
    if len(words) == 1 and words[0] in ACTIONS:
        return _action(cmd, argv, words[0])
    if verb in ("update", "sync update", "sync full"):  # "update" is the seed's Sync All
        return _sync(cmd, argv, "full" if verb == "sync full" else "update")
    raise UsageError(f"unknown action {verb!r}" if verb else "missing action")


def _action(cmd: Command, argv: list[str], verb: str) -> int:
    from omc.runtime.engine import instance

    opts = instance.Options(
        selector=_selector(cmd),
        force="force" in cmd.switches,
        disable_rollback="disable_rollback" in cmd.switches,
        dry_run="dry_run" in cmd.switches,
        argv=tuple(argv),
    )
    console = _console(cmd)
    return _each_object(cmd, console, lambda path: instance.run(path, verb, opts, console=console))


def _sync(cmd: Command, argv: list[str], verb: str) -> int:
    from omc.runtime.engine import syncs

    selector, target, console = _selector(cmd), cmd.values.get("target"), _console(cmd)
    return _each_object(cmd, console, lambda path: syncs.run(
        path, verb, target=target, selector=selector, argv=argv, console=console))  # fmt: skip


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
    install.commit(path, text, compiled.units, reload=_reload)
    return ExitStatus.OK


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
    from omc.compiler.contract.node import config_file
    from omc.runtime.objects import configs, install
    from omc.runtime.objects.model import load

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
        new = _read(fh.name)
    finally:
        Path(fh.name).unlink()
    if new == text:
        return ExitStatus.OK
    compiled = install.compile_config(path, new, filename=str(config_file(path)))
    sys.stderr.write(compiled.diagnostics)
    if not compiled.ok:
        _err("config not saved: it has errors")
        return ExitStatus.ERROR
    install.commit(path, new, compiled.units, reload=_reload)
    return ExitStatus.OK


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
    from omc.runtime.engine.session import object_lock
    from omc.runtime.objects import kv

    path, key, value = _store_path(cmd), _key_name(cmd), _key_value(cmd)
    with object_lock(path):  # read-modify-write of the config
        kv.set_key(path, key, value, replace=replace)
    return ExitStatus.OK


def _key_add(cmd: Command, argv: list[str]) -> int:
    return _set_key(cmd, replace=False)


def _key_change(cmd: Command, argv: list[str]) -> int:
    return _set_key(cmd, replace=True)


def _key_remove(cmd: Command, argv: list[str]) -> int:
    from omc.runtime.engine.session import object_lock
    from omc.runtime.objects import kv

    path, key = _store_path(cmd), _key_name(cmd)
    with object_lock(path):
        kv.remove_key(path, key)
    return ExitStatus.OK


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
