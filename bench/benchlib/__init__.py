"""What the logging and sync benchmarks share: timing commands in lab nodes, medians,
their section of docs/BENCHMARKS.md (a package: `make bench` runs bench/*.py only)."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".dev"))

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from omc.runtime.lab.api import Lab, Node  # noqa: E402

BENCH_MD = ROOT / "docs" / "BENCHMARKS.md"
OM = str(Path(sys.executable).parent / "om")
SERVER = str(ROOT / "tests" / "collector_server.py")


def cpu_usage(directory: Path) -> float | None:
    """CPU seconds used by a cgroup2 directory's processes (None: not there, or v1)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(directory, "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
    return None


def cgroup2_root(node: Node) -> Path:
    """The node's cgroup2 directory (the one with a ``cpu.stat``)."""
    for directory in node.info.cgroups:
        if cpu_usage(Path(directory)) is not None:
            return Path(directory)
    raise SystemExit(f"{node.name}: no cgroup2 cpu.stat among {node.info.cgroups}")


def client_cpu() -> float:
    """CPU seconds of this process's finished children (nsenter and what it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(node: Node, *argv: str, ok: tuple[int, ...] = (0,), timeout: float = 600) -> tuple[
        float, str]:  # fmt: skip
    """Wall time of one command in the node (seconds) and its stdout; fails loudly."""
    start = time.perf_counter()
    proc = node.run(list(argv), check=False, timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout


def create(node: Node, name: str, text: str) -> None:
    node.write_file(f"/run/omct/{name}.conf", text)
    timed(node, OM, name, "create", "--config", f"/run/omct/{name}.conf")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def median(values: list[float]) -> float:
    return statistics.median(values)


def until(node: Node, check: str, timeout: float) -> float:
    """Run the shell ``check`` in the node until it succeeds; how long it took."""
    start = time.monotonic()
    while node.run(["sh", "-c", check], check=False).returncode != 0:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not reached in {timeout:.0f}s: {check}")
        time.sleep(0.5)
    return time.monotonic() - start


def serve(node: Node, unit: str, port: int, mode: str, out: str) -> None:
    """tests/collector_server.py in the node, as a transient unit, listening when this
    returns (``silent`` accepts and never answers)."""
    node.run(["systemd-run", f"--unit={unit}", "--collect", sys.executable, SERVER, str(port),
              mode, out])  # fmt: skip
    until(node, f"ss -Hltn 'sport = :{port}' | grep -q .", 30)


def header(what: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"Measured {stamp} on {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, kernel {platform.release()}, load average "
        f"{os.getloadavg()[0]:.1f} (other work ran on the machine), {what}."
    )


def write_section(name: str, text: str) -> None:
    """Replace (or append) the ``<!-- name:begin -->`` … ``<!-- name:end -->`` section."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = BENCH_MD.read_text()
    if begin not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, _, rest = doc.partition(begin)
    _, _, tail = rest.partition(end)
    BENCH_MD.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def in_lab(section: str, prefix: str, measure: Callable[[Lab], str], **options: Any) -> int:
    """Boot a lab (``options`` as Lab.up's), measure, tear it down whatever happens, then
    print the text and write it as ``section`` of docs/BENCHMARKS.md."""
    lab = Lab.up(f"{prefix}{os.getpid()}"[:10], **options)
    try:
        text = measure(lab)
    finally:
        lab.down()
    print(text)
    write_section(section, text)
    return 0
