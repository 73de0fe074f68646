"""``om mon``, ``om daemon …``, ``om cluster …``, ``om node …``: the cluster's commands.

``om mon [SELECTOR] [--watch] [--format text|json|yaml] [--color auto|yes|no]`` — the
cluster at a glance (:mod:`.monitor`); ``--watch`` redraws at every etcd event (no polling).
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
from typing import TYPE_CHECKING

from omc.compiler.contract.node import CLUSTER_CONF, NODE_CONF, etc_dir
from omc.runtime.adapters.etcd import AuthError, TlsError
from omc.runtime.cluster.settings import SettingsError, load
from omc.runtime.exitcodes import ExitStatus

if TYPE_CHECKING:
    from omc.runtime.cluster.orchestrate import Cluster
    from omc.runtime.cluster.state import ClusterState

DAEMON_UNIT = "omc-daemon.service"
USAGE = """\
usage: om mon [SELECTOR] [--watch] [--format text|json|yaml] [--color auto|yes|no]
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
    except (SettingsError, AuthError, TlsError) as exc:  # cluster.conf to fix: one line
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
    """``om mon [SELECTOR] [--watch] [--verbose] [--format text|json|yaml]
    [--color auto|yes|no]``."""
    from omc.runtime.cluster.monitor import SelectorError
    from omc.runtime.cluster.orchestrate import Cluster, OrchestrationError

    words, values, flags = _options(argv, ("--format", "-o", "--color"),
                                    ("--watch", "-w", "--verbose", "-v"))  # fmt: skip
    if len(words) > 1:
        raise UsageError(f"om mon takes one selector, got {' '.join(words)!r}")
    fmt = values.get("--format") or values.get("-o") or "text"
    if fmt not in ("text", "json", "yaml"):
        raise UsageError(f"--format {fmt!r}: expected text, json or yaml")
    colour = _colour(values.get("--color", "auto"))
    try:
        cluster = Cluster.for_monitor(load())
    except OrchestrationError as exc:
        print(f"om: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    if cluster.stale:
        print(f"om: warning: {cluster.settings.node} is partitioned: etcd has no quorum "
              f"here ({cluster.stale}); showing its etcd member's last state",
              file=sys.stderr)  # fmt: skip
    show = _Shower(cluster, selector=words[0] if words else "", fmt=fmt, colour=colour,
                   watch=bool(flags & {"--watch", "-w"}),
                   verbose=bool(flags & {"--verbose", "-v"}))  # fmt: skip
    try:
        show(cluster.state)
    except SelectorError as exc:
        raise UsageError(str(exc)) from None
    if show.watch and not cluster.stale:  # redrawn at each etcd event: a watch, no polling
        cluster.follow(lambda state: False, time.monotonic() + 10 * 365 * 86400, show)
    return ExitStatus.OK


def _colour(choice: str) -> bool:
    """om3's ``--color``: auto (a terminal), yes, no; ``NO_COLOR`` always wins."""
    if choice not in ("auto", "yes", "no"):
        raise UsageError(f"--color {choice!r}: expected auto, yes or no")
    if os.environ.get("NO_COLOR"):
        return False
    return choice == "yes" or (choice == "auto" and sys.stdout.isatty())


class _Shower:
    """Writes ``om mon``'s output for a cluster state; under ``--watch``, each redraw
    gets om3's header, and clears the screen first on a terminal."""

    def __init__(self, cluster: Cluster, *, selector: str, fmt: str, colour: bool,
                 watch: bool, verbose: bool = False) -> None:  # fmt: skip
        self.cluster, self.selector, self.fmt = cluster, selector, fmt
        self.colour, self.watch, self.verbose, self.count = colour, watch, verbose, 0
        self.tty = sys.stdout.isatty()

    def __call__(self, state: ClusterState) -> None:
        from omc.runtime.cluster import monitor

        settings = self.cluster.settings
        daemons = monitor.state_daemons(
            state,
            leases=self._leases(state) if self.verbose else None,
            partitioned=settings.node if self.cluster.stale else "",
        )
        if self.fmt == "text":
            text = monitor.state_frame(state, local=settings.node, selector=self.selector,
                                       colour=self.colour, verbose=self.verbose,
                                       daemons=daemons)  # fmt: skip
        else:
            data = monitor.to_data(state.snapshot(settings.node), selector=self.selector,
                                   members=state.members, daemons=daemons)  # fmt: skip
            text = _dump(data, self.fmt)
        if self.watch:
            header = monitor.watch_header(settings.node, self.count, settings.name, time.time())
            text = ("\033[2J\033[H" if self.tty else "") + header + text
            self.count += 1
        sys.stdout.write(text)
        sys.stdout.flush()

    def _leases(self, state: ClusterState) -> dict[str, int]:
        """Each live node's lease: the seconds it has left (etcd counts whole seconds)."""
        from omc.runtime.adapters.etcd import EtcdError

        found: dict[str, int] = {}
        try:
            _, records = self.cluster.etcd.range(state.keys.node(""))
            for record in records:
                if record.lease:
                    left, _ = self.cluster.etcd.lease_ttl(record.lease)
                    found[record.key.rsplit("/", 1)[-1]] = left
        except EtcdError:
            pass  # shown as unknown
        return found


def _dump(data: object, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    from omc.runtime.views.yaml import dump

    return dump(data)


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
