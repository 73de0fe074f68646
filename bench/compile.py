"""Compiler speed: corpus configs, a 200-resource service, cold `omc`, a 500-service generator.

Targets: <= 5 ms per corpus config (in-process, after start-up), <= 300 ms for a cold
`omc compile` of examples/svc0.conf, <= 2 s for the generator over 500 services.
Baseline in the same run: a bare interpreter start-up, which no CLI can beat.
Prints a markdown table and rewrites the Compiler section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".dev"))

from omc.compiler.build import build  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- compile:begin -->", "<!-- compile:end -->"
SVC0 = ROOT / "examples" / "svc0.conf"
OM = "/usr/bin/om"


def corpus_dir() -> Path:
    for candidate in (
        os.environ.get("OMC_CORPUS", ""),
        str(ROOT.parent / "shared" / "corpus" / "opensvc"),
        "/work/shared/corpus/opensvc",
    ):
        if candidate and any(Path(candidate).glob("*.conf")):
            return Path(candidate)
    raise SystemExit("no corpus: set OMC_CORPUS")


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    """Wall times in ms of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95 + 0.5) - 1)]


def compile_and_emit(text: str, name: str) -> int:
    """Compile and emit one config (the whole pipeline); the number of units."""
    result = build(text, filename=name, node="n1", om=OM, cluster={"clustername": "bench"})
    return len(result.units)


def bench_corpus() -> tuple[float, float, float, int]:
    """Per-config time (median of 5 rounds each): median, p95 and max over the corpus."""
    texts = [(f.read_text(errors="replace"), f.name) for f in sorted(corpus_dir().glob("*.conf"))]
    for text, name in texts:  # warm-up: parser tables, templates, caches
        compile_and_emit(text, name)
    per_config = [
        statistics.median(timed(lambda t=text, n=name: compile_and_emit(t, n), 5))
        for text, name in texts
    ]
    return statistics.median(per_config), p95(per_config), max(per_config), len(texts)


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


def bench_big() -> tuple[float, int]:
    text = big_service()
    units = compile_and_emit(text, "big.conf")
    return statistics.median(timed(lambda: compile_and_emit(text, "big.conf"), 10)), units


def omc_argv() -> list[str]:
    script = Path(sys.executable).parent / "omc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "omc.compiler.cli"]


def bench_cold(rounds: int = 10) -> tuple[float, float, str]:
    """Cold `omc compile --dry-run svc0.conf` (a fresh process each time) vs bare Python."""
    argv = [*omc_argv(), "compile", "--dry-run", "--node", "n1", str(SVC0)]
    run = lambda a: subprocess.run(a, capture_output=True, check=True)  # noqa: E731
    run(argv)
    cold = statistics.median(timed(lambda: run(argv), rounds))
    bare = statistics.median(timed(lambda: run([sys.executable, "-c", "pass"]), rounds))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]] if argv[0] == sys.executable
        else [sys.executable, "-X", "importtime", argv[0], *argv[1:]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return cold, bare, top_imports(proc.stderr)


def top_imports(importtime: str, count: int = 5) -> str:
    """The top-level imports that cost the most (cumulative), from ``-X importtime``."""
    rows = []
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if not name.startswith("  "):  # top-level only (cumulative includes children)
                rows.append((int(parts[1]), name.strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:count])


def bench_generator(services: int = 500) -> tuple[float, float]:
    """A generator run over ``services`` configs: cold (empty cache), then warm."""
    templates = [p.read_text() for p in sorted((ROOT / "examples").glob("*.conf"))]
    good = []
    for text in templates:
        if build(text, filename="x.conf", node="n1", om=OM).ok:
            good.append(text)
    with tempfile.TemporaryDirectory() as tmp:
        etc, lkg = Path(tmp, "etc"), Path(tmp, "lkg")
        etc.mkdir()
        for i in range(services):
            (etc / f"svc{i:03}.conf").write_text(good[i % len(good)])
        env = {**os.environ, "OMC_CONFIG_DIR": str(etc), "OMC_LKG_DIR": str(lkg),
               "OMC_LOG": "stderr", "OMC_NODE": "n1", "OMC_OM": OM}  # fmt: skip

        def once(index: int) -> None:
            out = Path(tmp, f"out{index}")
            subprocess.run([*omc_argv(), "generator", str(out)], env=env, check=True,
                           capture_output=True)  # fmt: skip

        cold = timed(lambda: once(0), 1)[0]
        warm = statistics.median([timed(lambda i=i: once(i), 1)[0] for i in range(1, 4)])
    return cold, warm


def main() -> int:
    median, high, worst, files = bench_corpus()
    big, big_units = bench_big()
    cold, bare, imports = bench_cold()
    gen_cold, gen_warm = bench_generator()
    ok = lambda v, t: "yes" if v <= t else "**no**"  # noqa: E731
    table = [
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| corpus config, compile+emit, median over {files} files | {median:.2f} ms | ≤ 5 ms "
        f"| {ok(median, 5)} |",
        f"| corpus config, p95 (max {worst:.1f} ms) | {high:.2f} ms | ≤ 5 ms | {ok(high, 5)} |",
        f"| 200-resource service ({big_units} units), compile+emit | {big:.1f} ms | - | - |",
        f"| cold `omc compile --dry-run examples/svc0.conf` (median of 10) | {cold:.0f} ms "
        f"| ≤ 300 ms | {ok(cold, 300)} |",
        f"| baseline: bare `python -c pass` | {bare:.0f} ms | - | - |",
        f"| generator, 500 services, empty cache (process) | {gen_cold:.0f} ms | ≤ 2000 ms "
        f"| {ok(gen_cold, 2000)} |",
        f"| generator, 500 services, warm cache (median of 3) | {gen_warm:.0f} ms | ≤ 2000 ms "
        f"| {ok(gen_warm, 2000)} |",
    ]
    section = [
        f"Machine: {machine_line()}.",
        "",
        *table,
        "",
        f"Cold start is dominated by imports (`-X importtime`, cumulative): {imports}.",
    ]
    text = "\n".join(section)
    print(text)
    write_section(text)
    return 0


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


def write_section(text: str) -> None:
    """Replace only what lies between the compile markers."""
    doc = BENCH_MD.read_text()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCH_MD.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
