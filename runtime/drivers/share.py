"""share.nfs (opensvc.md §2.7): exports ``path`` to the clients listed in ``opts``.

``opts`` is written as in /etc/exports: ``*(ro)``, ``host1(rw,no_root_squash) host2``.
Start runs ``exportfs -o <options> <client>:<path>`` per client, stop
``exportfs -u <client>:<path>``; status parses ``exportfs -v``. This kernel
has no nfsd: the logic is tested with a fake exportfs, and the real test runs
only where ``/proc/filesystems`` lists nfsd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import settings
from .base import ActionLog, DriverError, Probe, ResourceView, Status
from .command import Runner, probe, run, subprocess_runner

_CLIENT = re.compile(r"^(?P<client>[^()\s]+)(?:\((?P<opts>[^()]*)\))?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Export:
    """One client of one exported path, with its options."""

    path: str
    client: str
    options: frozenset[str]


def parse_opts(text: str) -> dict[str, frozenset[str]]:
    """``host1(rw,sync) *(ro)`` → {client: options}."""
    clients: dict[str, frozenset[str]] = {}
    for word in text.split():
        m = _CLIENT.match(word)
        if not m:
            raise DriverError(f"opts: {word!r} is not <client>[(<options>)]")
        opts = m.group("opts") or ""
        clients[m.group("client")] = frozenset(o for o in opts.split(",") if o)
    return clients


def parse_exportfs(text: str) -> list[Export]:
    """``exportfs -v`` output. A long path puts the client on the next line."""
    exports: list[Export] = []
    path: str | None = None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if line[0].isspace() and path is not None:
            client_words = words
        else:
            path, client_words = words[0], words[1:]
        for word in client_words:
            m = _CLIENT.match(word)
            if m:
                opts = frozenset(o for o in (m.group("opts") or "").split(",") if o)
                exports.append(Export(path=path, client=m.group("client"), options=opts))
    return exports


def _client_name(client: str) -> str:
    """exportfs -v shows the ``*`` client as ``<world>``."""
    return "<world>" if client == "*" else client


class Nfs:
    """An NFS export of a directory."""

    def __init__(self, runner: Runner = subprocess_runner) -> None:
        self.runner = runner

    def label(self, res: ResourceView) -> str:
        return f"nfs:{settings.text(res, 'path') or ''}"

    def _current(self, path: str) -> dict[str, frozenset[str]]:
        done = probe(("exportfs", "-v"), runner=self.runner)
        if not done.ok:
            raise DriverError(f"exportfs -v failed: {done.stderr.strip()}")
        return {e.client: e.options for e in parse_exportfs(done.stdout) if e.path == path}

    def _diff(self, res: ResourceView) -> tuple[list[str], list[str]]:
        """(clients exported as configured, clients missing or with other options)."""
        path = settings.required(res, "path")
        wanted = parse_opts(settings.required(res, "opts"))
        current = self._current(path)
        good: list[str] = []
        bad: list[str] = []
        for client, opts in wanted.items():
            have = current.get(_client_name(client))
            (good if have is not None and opts <= have else bad).append(client)
        return good, bad

    def status(self, res: ResourceView) -> Probe:
        try:
            good, bad = self._diff(res)
        except DriverError as exc:
            return Probe(status=Status.UNDEF, warnings=(str(exc),))
        if not bad:
            return Probe(status=Status.UP)
        if not good:
            return Probe(status=Status.DOWN)
        return Probe(status=Status.WARN, warnings=tuple(f"{c} is not exported" for c in bad))

    def start(self, res: ResourceView, log: ActionLog) -> None:
        path = settings.required(res, "path")
        wanted = parse_opts(settings.required(res, "opts"))
        _, bad = self._diff(res)
        if not bad:
            log.info(f"already up: {path} is exported")
            return
        for client in bad:
            argv = ["exportfs"]
            if wanted[client]:
                argv += ["-o", ",".join(sorted(wanted[client]))]
            run((*argv, f"{client}:{path}"), log=log, runner=self.runner)

    def stop(self, res: ResourceView, log: ActionLog) -> None:
        path = settings.required(res, "path")
        current = self._current(path)
        clients = [
            c for c in parse_opts(settings.required(res, "opts")) if _client_name(c) in current
        ]
        if not clients:
            log.info(f"already down: {path} is not exported")
            return
        for client in clients:
            run(("exportfs", "-u", f"{client}:{path}"), log=log, runner=self.runner)
