"""``omc`` as a systemd generator: ``/etc/opensvc`` configs → units at every boot and reload.

systemd runs every executable of ``/usr/lib/systemd/system-generators/`` with
three output directories (normal, early, late) before it loads units, and on
every ``daemon-reload``. We write into the *normal* one (``/run/systemd/generator``),
which ranks below ``/etc/systemd/system`` so an administrator's unit still wins.
See ``docs/generator.md`` for the install steps.

Configs are found as ``om`` finds them (:func:`omc.compiler.contract.node.discover`,
om3's layout); a config file whose name ``om`` would refuse is logged and skipped.

**Last known good.** A config that does not compile must not make its service
vanish at the next boot (Podman Quadlet's failure mode). After each good
compile, the units are kept in one JSON file, ``<lkg>/<namespace>.<kind>.<name>.json``
(the cache key and the unit texts, replaced atomically); when a
config is broken, those units are re-emitted and the error is logged. The same
cache makes boots fast: a config whose fingerprint (text, node, ``om`` path,
compiler sources) matches the cache is not recompiled at all.

Environment overrides (for tests and odd layouts): ``OMC_ETC``, ``OMC_NODE`` and
``OMC_OM`` as for ``om`` (:mod:`omc.compiler.contract.node`), ``OMC_LKG_DIR``
(``/var/lib/omc/lkg``), ``OMC_LOG=stderr`` (default: ``/dev/kmsg`` when run by systemd).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from . import ir
from .contract.node import ConfigFileError, discover, read_config_file
from .exitcodes import ExitStatus
from .records import Record

DEFAULT_LKG = Path("/var/lib/omc/lkg")
PARALLEL_THRESHOLD = 32  # below this many compiles, forking costs more than it saves


class Outcome(StrEnum):
    """What the generator did for one config."""

    COMPILED = "compiled"  # compiled now, cache refreshed
    CACHED = "cached"  # unchanged since the last good compile: cache copied
    KEPT = "kept"  # broken config: last good units re-emitted
    FAILED = "failed"  # broken config and no last good units: nothing emitted


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Item(Record):
    file: Path
    path: ir.ObjectPath
    outcome: Outcome
    units: int


def compiler_fingerprint() -> str:
    """Changes whenever the compiler, its templates or its grammar change (cache key part)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    folders = (package, package / "contract", package.parent / "unit_templates",
               package.parent / "grammar")  # fmt: skip
    for folder in folders:
        for file in sorted(_files(folder)):
            st = file.stat()
            digest.update(f"{file.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Settings(Record):
    """What every compile of one run shares (picklable: workers get a copy)."""

    node: str
    om: str
    cluster: tuple[tuple[str, str], ...]
    fingerprint: str

    def key(self, text: str, path: ir.ObjectPath) -> str:
        """The cache key: anything that changes the units changes it."""
        parts = (self.fingerprint, self.node, self.om, repr(self.cluster), str(path), text)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Job(Record):
    file: Path
    path: ir.ObjectPath
    text: str
    key: str
    cached: tuple[str, dict[str, str]] | None  # (key, units) of the last good compile
    private: bool = False  # the config is not world-readable: nor are its units


def compile_job(settings: Settings, job: Job) -> tuple[dict[str, str] | None, list[str]]:
    """Compile one config: its units (None on errors) and log lines ``<level>message``."""
    from .diagnostics import Severity, render_text
    from .pipeline import build

    try:
        result = build(
            job.text,
            filename=str(job.file),
            node=settings.node,
            om=settings.om,
            path=job.path,
            cluster=dict(settings.cluster),
        )
    except Exception as exc:  # a compiler bug must not cost the other configs their units
        return None, [f"<3>{job.file}: internal error: {type(exc).__name__}: {exc}"]
    lines = [
        f"<{3 if d.severity is Severity.ERROR else 4}>"
        + render_text([d], job.text).rstrip("\n").replace("\n", "\n  ")
        for d in result.diagnostics
    ]
    return (dict(result.units) if result.ok else None), lines


def _compile_all(
    settings: Settings, jobs: list[Job]
) -> list[tuple[dict[str, str] | None, list[str]]]:
    """Compile in a forked pool when there is enough work for it to pay (boot with many
    changed configs); in-process otherwise."""
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_THRESHOLD or workers < 2:
        return [compile_job(settings, job) for job in jobs]
    import functools
    import multiprocessing

    # The first compile runs here, before the fork: the workers inherit its imports,
    # parser, keyword tables and templates instead of each paying a cold start.
    first = compile_job(settings, jobs[0])
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rest = pool.map(functools.partial(compile_job, settings), jobs[1:], chunksize=8)
    return [first, *rest]


@dataclass(slots=True)
class Generator:
    """One generator run: read configs, reuse cache hits, compile the rest, write."""

    normal: Path
    lkg: Path
    settings: Settings
    log: TextIO
    items: list[Item] = field(default_factory=list)

    def prepare(self, file: Path, path: ir.ObjectPath) -> Job | None:
        """A cache hit is written at once (None); anything else becomes a compile job."""
        config = read_config_file(file)
        text, private = config.text, config.private
        key = self.settings.key(text, path)
        cached = _read_cache(self._cache(path))
        if cached is not None and cached[0] == key:
            self._write(cached[1], private=private)
            self.items.append(
                Item(file=file, path=path, outcome=Outcome.CACHED, units=len(cached[1]))
            )
            return None
        return Job(file=file, path=path, text=text, key=key, cached=cached, private=private)

    def finish(self, job: Job, units: dict[str, str] | None, lines: list[str]) -> None:
        """Write a compiled job's units (and cache them), or fall back to its last good ones."""
        for line in lines:
            self.log_line(int(line[1]), line[3:])
        file, path = job.file, job.path
        if units is not None:
            self._write(units, private=job.private)
            self._save_cache(self._cache(path), job.key, units)
            self.items.append(
                Item(file=file, path=path, outcome=Outcome.COMPILED, units=len(units))
            )
        elif job.cached is None:
            self.log_line(3, f"{file}: no previous good units; {path} has no units")
            self.items.append(Item(file=file, path=path, outcome=Outcome.FAILED, units=0))
        else:
            self.log_line(4, f"{file}: keeping the last good units of {path}")
            self._write(job.cached[1], private=job.private)
            self.items.append(
                Item(file=file, path=path, outcome=Outcome.KEPT, units=len(job.cached[1]))
            )

    def fail(self, file: Path, path: ir.ObjectPath, message: str) -> None:
        self.log_line(3, f"{file}: {message}")
        self.items.append(Item(file=file, path=path, outcome=Outcome.FAILED, units=0))

    def _cache(self, path: ir.ObjectPath) -> Path:
        return self.lkg / f"{path.namespace}.{path.kind}.{path.name}.json"

    def _write(self, units: Mapping[str, str], *, private: bool) -> None:
        from .install import write_units

        write_units(self.normal, units, private=private)

    def _save_cache(self, cache: Path, key: str, units: Mapping[str, str]) -> None:
        """Best effort: at early boot /var may be read-only; the units are out anyway."""
        try:
            _write_cache(cache, key, units)
        except OSError as exc:
            self.log_line(4, f"cannot update last-known-good cache {cache}: {exc.strerror}")

    def log_line(self, level: int, message: str) -> None:
        self.log.write(f"<{level}>omc-generator: {message}\n")
        self.log.flush()


def run(
    normal: Path,
    *,
    etc: Path,
    lkg: Path,
    node: str,
    om: str,
    cluster: dict[str, str] | None = None,
    log: TextIO | None = None,
) -> tuple[Item, ...]:
    """Generate units for every config under ``etc`` into ``normal``; one item per config."""
    settings = Settings(
        node=node,
        om=om,
        cluster=tuple(sorted((cluster or {"clustername": "default"}).items())),
        fingerprint=compiler_fingerprint(),
    )
    gen = Generator(normal=normal, lkg=lkg, settings=settings, log=log or sys.stderr)
    jobs: list[Job] = []
    found, refused = discover(etc)
    for message in refused:
        gen.log_line(3, f"{message}: skipped")
    for file, path in found:
        try:
            job = gen.prepare(file, path)
        except ConfigFileError as exc:  # one unreadable config must not stop the others
            gen.fail(file, path, str(exc))
            continue
        if job is not None:
            jobs.append(job)
    for job, (units, lines) in zip(jobs, _compile_all(settings, jobs), strict=True):
        try:
            gen.finish(job, units, lines)
        except OSError as exc:
            gen.fail(job.file, job.path, exc.strerror or str(exc))
    return tuple(sorted(gen.items, key=lambda i: str(i.file)))


def main(dirs: list[str]) -> ExitStatus:
    """``omc-generator NORMAL [EARLY LATE]``: never fails the boot for a bad config."""
    from .contract.node import cluster_settings, etc_dir, node_name, om_path

    if not dirs or len(dirs) > 3:
        sys.stderr.write("omc-generator: usage: omc-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n")
        return ExitStatus.USAGE
    etc = etc_dir()
    with _log_sink() as log:
        items = run(
            Path(dirs[0]),
            etc=etc,
            lkg=Path(os.environ.get("OMC_LKG_DIR", DEFAULT_LKG)),
            node=node_name(),
            om=om_path(),
            cluster=cluster_settings(etc),
            log=log,
        )
        counts = {o: sum(1 for i in items if i.outcome is o) for o in Outcome}
        summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        log.write(f"<6>omc-generator: {len(items)} configs: {summary or 'none'}\n")
    return ExitStatus.OK


@contextmanager
def _log_sink() -> Iterator[TextIO]:
    """``/dev/kmsg`` when systemd runs us (it sets ``$SYSTEMD_SCOPE``) on a host, else stderr
    (which PID 1 passes on to its own log)."""
    kmsg: TextIO | None = None
    in_container = Path("/run/systemd/container").exists()  # its /dev/kmsg is the host's
    if (
        os.environ.get("SYSTEMD_SCOPE")
        and os.environ.get("OMC_LOG") != "stderr"
        and not in_container
    ):
        try:
            kmsg = Path("/dev/kmsg").open("w", encoding="utf-8")  # noqa: SIM115
        except OSError:
            kmsg = None
    try:
        yield kmsg or sys.stderr
    finally:
        if kmsg is not None:
            kmsg.close()


def _read_cache(cache: Path) -> tuple[str, dict[str, str]] | None:
    """(key, units) from one object's cache file; None when absent or unreadable."""
    try:
        data = json.loads(cache.read_bytes())
        key, units = data["key"], data["units"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(key, str) or not isinstance(units, dict):
        return None
    return key, {str(name): str(text) for name, text in units.items()}


def _write_cache(cache: Path, key: str, units: Mapping[str, str]) -> None:
    """One JSON file per object, replaced atomically (a torn write is never read); root's
    only, 0600 (unit texts embed the config), whatever the config's own mode."""
    cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = cache.with_name(f".{cache.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(staging, flags, 0o600), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"key": key, "units": dict(units)}))
    staging.replace(cache)


def _files(folder: Path) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            entries = [Path(e.path) for e in it if e.is_file()]
    except OSError:
        return iter(())
    return iter(entries)
