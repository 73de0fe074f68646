"""Compiler speed: corpus configs, a 200-resource service, cold `omc`, a 500-service generator.

Targets: <= 5 ms per corpus config (in-process, after start-up), <= 300 ms for a cold
`omc compile` of examples/svc0.conf, <= 2 s for the generator over 500 services.
Baseline in the same run: a bare interpreter start-up, which no CLI can beat.

Every figure is given as wall time and CPU time (user+sys; of the child processes for
the subprocess rows): on a shared 2-core machine the wall time includes waiting for
the CPU, the CPU time does not. The load average is printed with the results.
Prints a markdown table and rewrites the Compiler section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".dev"))

from omc.compiler.pipeline import build  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- compile:begin -->", "<!-- compile:end -->"
SVC0 = ROOT / "examples" / "svc0.conf"
OM = "/usr/bin/om"
PASSES = 5  # whole corpus passes; see bench_corpus
Sample = tuple[float, float]  # (wall ms, cpu ms)


def corpus_dir() -> Path:
    for candidate in (
        os.environ.get("OMC_CORPUS", ""),
        str(ROOT.parent / "shared" / "corpus" / "opensvc"),
        "/work/shared/corpus/opensvc",
    ):
        if candidate and any(Path(candidate).glob("*.conf")):
            return Path(candidate)
    raise SystemExit("no corpus: set OMC_CORPUS")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], object], *, children: bool = False) -> Sample:
    """One call's wall and CPU time in ms (CPU of child processes when ``children``)."""
    cpu = children_cpu if children else time.process_time
    wall0, cpu0 = time.perf_counter(), cpu()
    fn()
    return (time.perf_counter() - wall0) * 1000, (cpu() - cpu0) * 1000


def median(samples: list[Sample]) -> Sample:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95 + 0.5) - 1)]


def compile_and_emit(text: str, name: str) -> int:
    """Compile and emit one config (the whole pipeline); the number of units."""
    result = build(text, filename=name, node="n1", om=OM, cluster={"clustername": "bench"})
    return len(result.units)


def bench_corpus(passes: int = PASSES) -> tuple[Sample, Sample, list[float], int]:
    """Per-config time (median of 5 consecutive runs each): median and p95 over the
    corpus, measured in ``passes`` whole passes; each figure is the median over the
    passes, and the passes' CPU p95 are returned too.

    One pass takes about a second, and this VM's speed drifts on that scale (the
    same pass gave a p95 of 3.0 to 5.4 ms within a minute, its median 0.9 to 1.9 ms):
    a single pass measures the phase it fell in as much as the code."""
    texts = [(f.read_text(errors="replace"), f.name) for f in sorted(corpus_dir().glob("*.conf"))]
    for text, name in texts:  # warm-up: parser tables, templates, caches
        compile_and_emit(text, name)
    medians: list[Sample] = []
    p95s: list[Sample] = []
    for _ in range(passes):
        per_config = [
            median([timed(lambda t=text, n=name: compile_and_emit(t, n)) for _ in range(5)])
            for text, name in texts
        ]
        walls, cpus = [s[0] for s in per_config], [s[1] for s in per_config]
        medians.append((statistics.median(walls), statistics.median(cpus)))
        p95s.append((p95(walls), p95(cpus)))
    return median(medians), median(p95s), [s[1] for s in p95s], len(texts)


def bench_corpus_min(rounds: int = 12) -> tuple[float, float]:
    """Noise-robust companion figure: each file's minimum CPU time over ``rounds``
    round-robin passes (a slow phase of a shared host then hits every file alike,
    not a few files' five consecutive runs); median and p95 over the corpus."""
    texts = [(f.read_text(errors="replace"), f.name) for f in sorted(corpus_dir().glob("*.conf"))]
    best = [float("inf")] * len(texts)
    for _ in range(rounds):
        for i, (text, name) in enumerate(texts):
            best[i] = min(best[i], timed(lambda t=text, n=name: compile_and_emit(t, n))[1])
    return statistics.median(best), p95(best)


def stage_split(rounds: int = 5) -> str:
    """What dominates a config's compile+emit: each stage's share of the corpus total
    (per file and stage, the minimum CPU time over ``rounds`` passes)."""
    from omc.compiler import emit, parse, pipeline
    from omc.compiler.diagnostics import Collector
    from omc.compiler.lower import lower

    texts = [(f.read_text(errors="replace"), f.name) for f in sorted(corpus_dir().glob("*.conf"))]
    totals = {"parse": 0.0, "lower": 0.0, "emit": 0.0}
    for text, name in texts:
        best = dict.fromkeys(totals, float("inf"))
        for _ in range(rounds):
            diags = Collector(file=name)
            t0 = time.process_time()
            doc = parse.parse(text, filename=name, diags=diags)
            t1 = time.process_time()
            path = pipeline.default_path(name, doc)
            service = lower(doc, path=path, node="n1", source=f"/{name}",
                            env={}, cluster={"clustername": "bench"}, diags=diags)  # fmt: skip
            t2 = time.process_time()
            if service is not None and not diags.has_errors:
                emit.emit(service, om=OM)
            t3 = time.process_time()
            for stage, spent in (("parse", t1 - t0), ("lower", t2 - t1), ("emit", t3 - t2)):
                best[stage] = min(best[stage], spent)
        for stage in totals:
            totals[stage] += best[stage]
    whole = sum(totals.values()) or 1.0
    what = {
        "parse": "lark, a token per section; lines read by regex; Document records",
        "lower": "keyword evaluation, IR records",
        "emit": "views, unit syntax, jinja2 renders",
    }
    return ", ".join(
        f"{stage} {100 * t / whole:.0f}% ({what[stage]})" for stage, t in totals.items()
    )


def compile_bytecode() -> None:
    """Write the packages' bytecode first, as installing does: a cold run must not
    include compiling a module whose .pyc is stale (PYTHONDONTWRITEBYTECODE=1 keeps
    it stale forever)."""
    import compileall

    for tree in ("grammar", "compiler", "unit_templates"):
        compileall.compile_dir(str(ROOT / tree), quiet=1)


def big_service(resources: int = 200) -> str:
    """A service with ``resources`` resources across groups, subsets and references."""
    lines = ["[DEFAULT]", "id = 00000000-0000-4000-8000-000000000200", "nodes = n1 n2", ""]
    for i in range(resources):
        kind = i % 4
        if kind == 0:
            lines += [f"[fs#f{i:03}]", "type = flag"]
        elif kind == 1:
            lines += [f"[app#a{i:03}]", f"start = /bin/echo {{name}} {i}", "stop = /bin/true"]
            lines += ["check = /bin/true", f"subset = s{i % 3}"]
        elif kind == 2:
            lines += [f"[app#w{i:03}]", "type = simple", "start = /bin/sleep 100", "tags = w"]
        else:
            lines += [f"[task#t{i:03}]", "command = /bin/true", "schedule = @10m"]
        lines.append("")
    lines += ["[subset#app:s0]", "parallel = true", ""]
    return "\n".join(lines)


def bench_big() -> tuple[Sample, int]:
    text = big_service()
    units = compile_and_emit(text, "big.conf")
    return median([timed(lambda: compile_and_emit(text, "big.conf")) for _ in range(10)]), units


def omc_argv() -> list[str]:
    script = Path(sys.executable).parent / "omc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "omc.compiler.cli"]


def run_quiet(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, capture_output=True, check=True, env=env)


def bench_cold(rounds: int = 10) -> tuple[Sample, Sample, str]:
    """Cold `omc compile --dry-run svc0.conf` (a fresh process each time) vs bare Python."""
    argv = [*omc_argv(), "compile", "--dry-run", "--node", "n1", str(SVC0)]
    compile_bytecode()
    run_quiet(argv)
    cold = median([timed(lambda: run_quiet(argv), children=True) for _ in range(rounds)])
    bare_argv = [sys.executable, "-c", "pass"]
    bare = median([timed(lambda: run_quiet(bare_argv), children=True) for _ in range(rounds)])
    script = argv[1:] if argv[0] == sys.executable else argv
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *script], capture_output=True, text=True, check=True
    )
    return cold, bare, top_imports(proc.stderr)


def top_imports(importtime: str, count: int = 6) -> str:
    """The top-level imports that cost the most (cumulative), from ``-X importtime``."""
    rows = []
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if not name.startswith("  "):  # top level only: cumulative includes children
                rows.append((int(parts[1]), name.strip()))
    rows.sort(reverse=True)
    return ", ".join(f"`{name}` {us / 1000:.0f} ms" for us, name in rows[:count])


def bench_generator(services: int = 500) -> tuple[Sample, Sample]:
    """A generator process over ``services`` configs: cold (empty cache), then warm."""
    texts = [p.read_text() for p in sorted((ROOT / "examples").glob("*.conf"))]
    good = [t for t in texts if build(t, filename="x.conf", node="n1", om=OM).ok]
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:  # /run is a tmpfs too
        etc, lkg = Path(tmp, "etc"), Path(tmp, "lkg")
        etc.mkdir()
        for i in range(services):
            (etc / f"svc{i:03}.conf").write_text(good[i % len(good)])
        env = {**os.environ, "OMC_ETC": str(etc), "OMC_LKG_DIR": str(lkg),
               "OMC_LOG": "stderr", "OMC_NODE": "n1", "OMC_OM": OM}  # fmt: skip

        def once(index: int) -> None:
            run_quiet([*omc_argv(), "generator", str(Path(tmp, f"out{index}"))], env)

        cold = timed(lambda: once(0), children=True)
        # A generator that found no configs (a wrong override) would be timed doing nothing.
        targets = len(list(Path(tmp, "out0").glob("*.target")))
        if targets != services:
            raise SystemExit(f"generator wrote {targets} targets for {services} services")
        warm = median([timed(lambda i=i: once(i), children=True) for i in range(1, 4)])
    return cold, warm


def machine_line() -> str:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"`nproc` {os.cpu_count()}, {cpu}, kernel {platform.release()}, "
        f"Python {platform.python_version()}, {day}"
    )


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def row(measure: str, sample: Sample, target: float | None, *, digits: int = 0) -> str:
    wall, cpu = sample
    met = (
        "-"
        if target is None
        else ("yes" if wall <= target else f"wall no; CPU {'yes' if cpu <= target else 'no'}")
    )
    limit = "-" if target is None else f"≤ {target:g} ms"
    return f"| {measure} | {wall:.{digits}f} ms | {cpu:.{digits}f} ms | {limit} | {met} |"


def main() -> int:
    load_before = load()
    corpus_median, corpus_p95, pass_p95s, files = bench_corpus()
    min_median, min_p95 = bench_corpus_min()
    split = stage_split()
    big, big_units = bench_big()
    cold, bare, imports = bench_cold()
    gen_cold, gen_warm = bench_generator()
    table = [
        "| measure | wall | CPU | target | met |",
        "|---|---|---|---|---|",
        row(
            f"corpus config, compile+emit, median of {files} files, median of {PASSES} passes",
            corpus_median,
            5,
            digits=2,
        ),
        row(
            f"corpus config, compile+emit, p95, median of {PASSES} passes (each pass's CPU "
            f"p95: {', '.join(f'{v:.2f}' for v in pass_p95s)} ms)",
            corpus_p95,
            5,
            digits=2,
        ),
        f"| same, per-file minimum CPU of 12 round-robin passes: median {min_median:.2f} ms, "
        f"p95 {min_p95:.2f} ms (noise-robust companion, not the target's measure) | | | | |",
        row(f"200-resource service ({big_units} units), compile+emit", big, None, digits=1),
        row("cold `omc compile --dry-run examples/svc0.conf`, median of 10", cold, 300),
        row("baseline: bare `python -c pass`, median of 10", bare, None),
        row("generator process, 500 services, empty cache", gen_cold, 2000),
        row("generator process, 500 services, warm cache, median of 3", gen_warm, 2000),
    ]
    text = "\n".join(
        [
            f"Machine: {machine_line()}; load average {load_before} before, {load()} after.",
            "",
            *table,
            "",
            f"What dominates a corpus config (share of compile+emit CPU): {split}.",
            "",
            f"Cold start, `-X importtime` (cumulative, top level): {imports}. Beyond the "
            "interpreter itself, a cold run is mostly imports: jinja2, the stand-alone lark "
            "parser, dataclass creation (the frozen IR classes generate their `__init__`, "
            "`__setattr__` and `__delattr__` at import) and argparse.",
        ]
    )
    print(text)
    write_section(text)
    return 0


def write_section(text: str) -> None:
    """Replace only what lies between the compile markers."""
    doc = BENCH_MD.read_text()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCH_MD.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
