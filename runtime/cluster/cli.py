"""``om mon``, ``om daemon …``, ``om cluster …``, ``om node …``: the cluster's commands.

``om mon [SELECTOR] [--watch] [--format json|yaml]`` — the cluster at a glance
(:mod:`.monitor`); ``--watch`` redraws at every etcd event (no polling).
``om daemon run|status|start|stop|restart`` — the node daemon (``omc-daemon.service``).
``om cluster config show|get KEY``, ``om cluster status`` — ``cluster.conf`` and the cluster.
``om node freeze|unfreeze|drain|config show|get KEY`` — this node (``node.conf``).
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from omc.compiler.contract.node import CLUSTER_CONF, NODE_CONF, etc_dir
from omc.runtime.cluster.settings import SettingsError, load
from omc.runtime.exitcodes import ExitStatus

DAEMON_UNIT = "omc-daemon.service"
USAGE = """\
usage: om mon [SELECTOR] [--watch] [--format json|yaml]
       om daemon run|status|start|stop|restart|fence
       om cluster status | config show | config get KEY
       om node freeze | unfreeze | drain | config show | config get KEY"""


class UsageError(Exception):
    """The command line is wrong."""


def main(argv: list[str]) -> int:
    """Dispatch the first word: mon, daemon, cluster, node."""
    table: dict[str, Callable[[list[str]], int]] = {
        "mon": mon, "monitor": mon, "daemon": daemon, "cluster": cluster, "node": node,
    }  # fmt: skip
    try:
        return table[argv[0]](argv[1:])
    except UsageError as exc:
        print(f"om: error: {exc}\n{USAGE}", file=sys.stderr)
        return ExitStatus.USAGE
    except SettingsError as exc:
        print(f"om: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


def _options(
    argv: list[str], valued: tuple[str, ...], switches: tuple[str, ...]
) -> tuple[list[str], dict[str, str], set[str]]:
    words, values, flags = [], {}, set()
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        name, eq, inline = word.partition("=")
        if name in valued:
            if not eq and not rest:
                raise UsageError(f"option {name} expects a value")
            values[name] = inline if eq else rest.pop(0)
        elif word in switches:
            flags.add(word)
        elif word.startswith("-"):
            raise UsageError(f"unknown option {word!r}")
        else:
            words.append(word)
    return words, values, flags


def mon(argv: list[str]) -> int:
    from omc.runtime.cluster import monitor
    from omc.runtime.cluster.orchestrate import Cluster, OrchestrationError

    words, values, flags = _options(argv, ("--format", "-o"), ("--watch", "-w"))
    selector = words[0] if words else ""
    fmt = values.get("--format") or values.get("-o") or "text"
    if fmt not in ("text", "json", "yaml"):
        raise UsageError(f"--format {fmt!r}: expected text, json or yaml")
    try:
        cluster = Cluster.open(load())
    except OrchestrationError as exc:
        print(f"om: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def show(_: object = None) -> None:
        snap = cluster.snapshot()
        if fmt == "text":
            started = {n: float(v.get("started", 0.0)) for n, v in cluster.state.nodes.items()}
            text = monitor.frame(snap, selector=selector, colour=colour, started=started)
            if "--watch" in flags or "-w" in flags:
                text = "\033[H\033[2J" + text if colour else text + "\n"
            sys.stdout.write(text)
        else:
            data = monitor.to_data(snap, selector=selector)
            if fmt == "json":
                sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            else:
                from omc.runtime.views.yaml import dump

                sys.stdout.write(dump(data))
        sys.stdout.flush()

    show()
    if "--watch" in flags or "-w" in flags:
        cluster.follow(lambda state: False, time.monotonic() + 10 * 365 * 86400, show)
    return ExitStatus.OK


def daemon(argv: list[str]) -> int:
    if argv == ["fence"]:
        from omc.runtime.cluster.fence import main as fence_main

        return fence_main(argv)
    if argv == ["run"]:
        from omc.runtime.cluster.daemon import main as daemon_main

        return daemon_main(argv)
    if argv == ["status"]:
        proc = subprocess.run(["systemctl", "is-active", DAEMON_UNIT], capture_output=True,
                              text=True, check=False)  # fmt: skip
        state = proc.stdout.strip() or "unknown"
        from omc.runtime.collector.cli import status_line

        print(f"daemon {state} ({DAEMON_UNIT})")
        print(status_line())
        return ExitStatus.OK if state == "active" else ExitStatus.NOT_RUNNING
    if len(argv) == 1 and argv[0] in ("start", "stop", "restart"):
        return subprocess.run(["systemctl", argv[0], DAEMON_UNIT], check=False).returncode
    raise UsageError("om daemon expects run, status, start, stop or restart")


def _show_conf(name: str, words: list[str]) -> int:
    file = etc_dir() / name
    if words == ["show"]:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"om: error: {file}: {exc.strerror}", file=sys.stderr)
            return ExitStatus.ERROR
        sys.stdout.write(_without_secrets(text))
        return ExitStatus.OK
    if len(words) == 2 and words[0] == "get":
        section, _, key = words[1].rpartition(".")
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.read(file, encoding="utf-8")
        value = parser.get(section or "cluster", key, fallback=None)
        if value is None:
            print(f"om: error: {file}: no {words[1]}", file=sys.stderr)
            return ExitStatus.ERROR
        print("(hidden)" if key == "password" else value.strip())
        return ExitStatus.OK
    raise UsageError("config expects show, or get SECTION.KEY")


def _without_secrets(text: str) -> str:
    """``password = …`` lines hidden: ``config show`` output lands in terminals and tickets."""
    lines = []
    for line in text.splitlines(keepends=True):
        key = line.split("=", 1)[0].strip().lower()
        lines.append(f"{line.split('=', 1)[0]}= (hidden)\n" if key == "password" else line)
    return "".join(lines)


def cluster(argv: list[str]) -> int:
    if argv[:1] == ["config"]:
        return _show_conf(CLUSTER_CONF, argv[1:])
    if argv == ["status"]:
        return mon([])
    raise UsageError("om cluster expects status or config show|get")


def node(argv: list[str]) -> int:
    from omc.runtime import safefs
    from omc.runtime.layout import node_frozen_flag

    if argv[:1] == ["config"]:
        return _show_conf(NODE_CONF, argv[1:])
    if argv in (["freeze"], ["unfreeze"], ["thaw"]):
        flag = node_frozen_flag()
        if argv == ["freeze"]:
            safefs.create_file(flag, mode=0o644)
            print("node frozen: the cluster starts nothing here on its own")
        else:
            safefs.remove(flag)
            print("node unfrozen")
        return ExitStatus.OK
    if argv == ["drain"]:
        return drain()
    if argv == ["sync-received"]:  # the cluster rsync daemon's post-xfer exec
        from omc.compiler.contract.node import node_name
        from omc.runtime.drivers.sync import record_received

        record_received(os.environ, local=node_name())
        return ExitStatus.OK
    raise UsageError("om node expects freeze, unfreeze, drain or config show|get")


def drain() -> int:
    """``om node drain``: freeze this node (the cluster starts nothing here on its own),
    then shut down every local service instance (standby resources included); HA
    services then start on their next candidate."""
    from omc.runtime import safefs
    from omc.runtime.engine import instance
    from omc.runtime.engine.session import ActionError
    from omc.runtime.layout import node_frozen_flag
    from omc.runtime.log import ConsoleSink
    from omc.runtime.objects.configs import list_objects
    from omc.runtime.objects.model import InstanceNotFoundError

    safefs.create_file(node_frozen_flag(), mode=0o644)
    print("node frozen")
    console = ConsoleSink(sys.stdout)
    worst = ExitStatus.OK
    for path in list_objects():
        if path.kind != "svc":
            continue
        opts = instance.Options(argv=(str(path), "instance", "shutdown"))
        try:
            instance.run(path, "shutdown", opts, console=console)
        except InstanceNotFoundError:
            continue  # nothing installed here for it
        except ActionError:
            worst = ExitStatus.ERROR
    print("node drained" if worst == ExitStatus.OK else "node drain failed", flush=True)
    return worst
