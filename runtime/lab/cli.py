"""``om lab``: boot, inspect, enter and remove disposable clusters of systemd nodes.

Data goes to stdout, errors to stderr as one line (``om lab: error: …``); ``exec``,
``run`` and ``logs`` replace this process with ``nsenter`` so the command gets the
terminal and its exit status becomes ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from enum import IntEnum
from pathlib import Path
from typing import NoReturn

from . import fenceagent
from .api import NODE_ENV, Lab
from .state import LabError, check_name, fence_socket, names

DEFAULT_NAME = os.environ.get("OMC_LAB", "lab")
FAULTS = ("kill", "boot", "freeze", "thaw", "partition", "heal")


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="om lab", description=__doc__.split("\n")[0].replace("``", "")
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    name = argparse.ArgumentParser(add_help=False)
    name.add_argument("--name", default=DEFAULT_NAME, help="lab name (default: $OMC_LAB or 'lab')")

    up = sub.add_parser("up", parents=[name], help="boot a lab and wait until all nodes run")
    up.add_argument("--nodes", type=int, default=3, help="nodes n1…nN (default 3)")
    up.add_argument("--drp", type=int, default=0, help="DRP nodes d1…dM (default 0)")
    up.add_argument("--no-etcd", action="store_true", help="no etcd cluster")
    up.add_argument("--ssh", action="store_true", help="run sshd with per-lab keys")
    tls = up.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="etcd over https with client certificates (default with --cluster)",
    )
    tls.add_argument(
        "--no-tls",
        dest="tls",
        default=None,
        action="store_false",
        help="plain http etcd, no auth, even with --cluster (for debugging)",
    )
    up.add_argument("--cluster", action="store_true",
                    help="cluster.conf and the node daemon (om daemon) in every node")  # fmt: skip
    up.add_argument("--timeout", type=float, default=60.0, help="boot deadline in seconds")
    up.add_argument(
        "--daemon", action="append", default=[], metavar="KEY=VALUE",
        help="a cluster.conf [daemon] setting (lease_ttl=3s …), repeatable",
    )  # fmt: skip
    up.add_argument(
        "--favordynmods",
        action="store_true",
        help="remount the host's cgroup2 with favordynmods (host-wide until reboot; unit "
        "starts ~12 ms faster each)",
    )

    down = sub.add_parser("down", parents=[name], help="power off and remove a lab")
    down.add_argument("--force", action="store_true", help="SIGKILL at once; clean a crashed lab")
    down.add_argument("--all", action="store_true", help="every lab on this host")

    status = sub.add_parser("status", parents=[name], help="nodes, PIDs, addresses, state")
    status.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_parser("list", help="names of the labs on this host")

    for verb, text in (("kill", "node death: SIGKILL its PID 1, remove its network"),
                       ("boot", "bring a dead node back"),
                       ("freeze", "pause a node (cgroup freezer)"),
                       ("thaw", "resume a frozen node")):  # fmt: skip
        fault = sub.add_parser(verb, parents=[name], help=text)
        fault.add_argument("node", help="node name (n1, d1 …)")
    part = sub.add_parser("partition", parents=[name], help="cut a node's link to its peers")
    part.add_argument("node", help="node name (n1, d1 …)")
    part.add_argument(
        "--from", dest="peers", nargs="+", default=[], metavar="NODE",
        help="cut only the links to these nodes (default: every other node)",
    )  # fmt: skip
    heal = sub.add_parser("heal", parents=[name], help="restore a node's cut links")
    heal.add_argument("node", nargs="?", help="node name (default: every cut link of the lab)")
    fence = sub.add_parser(
        "fence", parents=[name], help="kill a node through the lab's fence agent ([stonith] cmd)"
    )
    fence.add_argument("node", help="node name (n1, d1 …)")
    fence.add_argument("--socket", help="the agent's socket (default: the lab's)")
    sub.add_parser(fenceagent.AGENT_VERB, parents=[name])  # started by `up --cluster`

    for verb, text in (("exec", "run CMD in all the node's namespaces"),
                       ("run", "run CMD as a transient unit inside the node"),
                       ("logs", "journalctl inside the node")):  # fmt: skip
        cmd = sub.add_parser(verb, parents=[name], help=text)
        cmd.add_argument("node", help="node name (n1, d1 …)")
        cmd.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG…]")
    return parser


def _settings(pairs: list[str]) -> dict[str, str]:
    """``--daemon KEY=VALUE`` values (checked by ``Lab.up``)."""
    found = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise LabError(f"--daemon {pair!r}: expected KEY=VALUE (lease_ttl=3s)")
        found[key.strip()] = value.strip()
    return found


def _up(args: argparse.Namespace) -> int:
    if args.daemon and not args.cluster:
        raise LabError("--daemon sets cluster.conf values: it needs --cluster")
    lab = Lab.up(
        args.name,
        nodes=args.nodes,
        drp=args.drp,
        etcd=not args.no_etcd,
        ssh=args.ssh,
        tls=args.tls,
        cluster=args.cluster,
        timeout=args.timeout,
        favordynmods=args.favordynmods,
        timing=_settings(args.daemon),
    )
    for note in lab.notes:
        print(f"note: {note}", file=sys.stderr)
    _print_status(lab, "text")
    return ExitStatus.OK


def _down(args: argparse.Namespace) -> int:
    targets = names() if args.all else [args.name]
    errors = []
    for name in targets:
        try:
            Lab.attach(name).down(force=args.force)
        except LabError as exc:
            errors.append(str(exc))
    for error in errors:
        print(f"om lab: error: {error}", file=sys.stderr)
    return ExitStatus.ERROR if errors else ExitStatus.OK


def _print_status(lab: Lab, fmt: str) -> None:
    rows = lab.status()
    if fmt == "json":
        doc = {"name": lab.name, "subnet": lab.state.subnet, "dir": str(lab.dir),
               "nodes": [asdict(r) for r in rows]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return
    print(f"lab {lab.name}  subnet {lab.state.subnet}  bridge {lab.state.bridge}  {lab.dir}")
    for r in rows:
        cut = f"  cut from {' '.join(r.cut_from)}" if r.cut_from else ""
        print(f"  {r.name:<4} pid {r.pid:<8} {r.address:<15} {r.state}{cut}")


def _fault(args: argparse.Namespace) -> int:
    """kill, boot, freeze, thaw, partition, heal: one line saying what changed."""
    lab = Lab.attach(args.name)
    node = args.node
    if args.verb == "kill":
        lab.kill(node)
        print(f"{node}: killed (PID 1 SIGKILLed, network removed)")
    elif args.verb == "boot":
        lab.boot(node)
        print(f"{node}: running (pid {lab.node(node).pid})")
    elif args.verb in ("freeze", "thaw"):
        changed = lab.freeze(node) if args.verb == "freeze" else lab.thaw(node)
        done = "frozen" if args.verb == "freeze" else "thawed"
        print(f"{node}: {done}" if changed else f"{node}: already {done}")
    elif args.verb == "partition":
        peers = lab.partition(node, args.peers)
        print(f"{node}: cut from {' '.join(peers)}")
    else:
        pairs = lab.heal(node)
        print(f"healed: {' '.join(pairs)}" if pairs else "nothing was cut")
    return ExitStatus.OK


def _fence(args: argparse.Namespace) -> int:
    """Ask the lab's fence agent to kill a node (what ``[stonith] cmd`` runs in a node)."""
    path = Path(args.socket) if args.socket else fence_socket(check_name(args.name))
    if not args.socket and not path.exists():
        state = Lab.attach(args.name).state  # no such lab: LabError says so
        hint = "" if state.cluster else ": not a cluster lab (om lab up --cluster)"
        raise LabError(f"lab {args.name} runs no fence agent{hint}")
    reply = fenceagent.request(path, args.node)
    ok = reply.startswith("ok:")
    print(reply, file=sys.stdout if ok else sys.stderr)
    return ExitStatus.OK if ok else ExitStatus.ERROR


def _enter(args: argparse.Namespace) -> NoReturn:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    node = Lab.attach(args.name).node(args.node)
    if not node.alive():
        raise LabError(f"node {args.name}/{args.node} is not running")
    if args.verb == "logs":
        argv = node.argv(["journalctl", "--no-pager", *cmd])
    elif not cmd:
        raise LabError(f"om lab {args.verb}: missing command (om lab {args.verb} NODE -- CMD…)")
    elif args.verb == "run":
        io = "--pty" if sys.stdin.isatty() else "--pipe"
        argv = node.argv(["systemd-run", "--wait", io, "--quiet", "--collect", "--", *cmd])
    else:
        argv = node.argv(cmd)
    if args.verb == "exec":
        node.join_cgroups()
    env = {**NODE_ENV, "TERM": os.environ.get("TERM", "dumb")}
    os.execvpe(argv[0], argv, env)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``om lab``; returns the exit status."""
    args = _parser().parse_args(list(argv))
    try:
        if args.verb == "up":
            return _up(args)
        if args.verb == "down":
            return _down(args)
        if args.verb == "status":
            _print_status(Lab.attach(args.name), args.format)
            return ExitStatus.OK
        if args.verb == "list":
            print("\n".join(names()))
            return ExitStatus.OK
        if args.verb in FAULTS:
            return _fault(args)
        if args.verb == "fence":
            return _fence(args)
        if args.verb == fenceagent.AGENT_VERB:
            return fenceagent.serve(args.name)
        return _enter(args)
    except LabError as exc:
        print(f"om lab: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.ERROR
