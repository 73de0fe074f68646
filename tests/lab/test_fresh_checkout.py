"""A checkout where a new user puts it: under /tmp, with its venv, and `.ci/run` as CI runs it.

The lab gives nodes a private /tmp; these tests check that a checkout and a venv living
there still run in the nodes, and that CI tests a fresh clone under /tmp rather than the
developer's own tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGES = ("grammar", "compiler", "runtime", "unit_templates")

IN_TMP_LAB = """
import os, sys
from pathlib import Path
import omc.runtime.lab.api as api
assert api.__file__.startswith(sys.argv[1]), api.__file__
lab = api.Lab.up(f"u{os.getpid()}", nodes=1, etcd=False)
try:
    n1 = lab.node("n1")
    for argv in (["om", "executor", "status"], ["omc", "keywords"]):
        proc = n1.run(argv, check=False)
        print(proc.returncode, proc.stdout.splitlines()[:1], proc.stderr.strip())
finally:
    lab.down()
"""


def _copy_checkout(dest: Path) -> None:
    """The source tree and its `.dev/omc` import root, as scripts/setup.sh lays it out."""
    for pkg in PACKAGES:
        shutil.copytree(CHECKOUT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        (dest / ".dev/omc").mkdir(parents=True, exist_ok=True)
        (dest / ".dev/omc" / pkg).symlink_to(f"../../{pkg}")


def _venv(dest: Path, checkout: Path) -> Path:
    """A venv in ``dest`` importing ``checkout`` first, then this run's dependencies."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site = next(dest.glob("lib/python3*/site-packages"))
    deps = sysconfig.get_paths()["purelib"]
    (site / "omc-dev.pth").write_text(f"{checkout}/.dev\n{deps}\n")
    for name, module in (("om", "omc.runtime.cli"), ("omc", "omc.compiler.cli")):
        script = dest / "bin" / name
        script.write_text(f"#!{dest}/bin/python\nimport sys\nfrom {module} import main\n"
                          "sys.exit(main())\n")  # fmt: skip
        script.chmod(0o755)
    return dest / "bin" / "python"


@pytest.mark.lab
def test_a_checkout_and_venv_under_tmp_run_in_the_nodes(tmp_path: Path) -> None:
    """A checkout and its venv under the host's /tmp (hidden by a node's private /tmp)
    are visible in the nodes: the node's executor and `om`/`omc` run from them."""
    assert str(tmp_path).startswith("/tmp/")
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    python = _venv(tmp_path / "venv", checkout)
    env = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(python), "-c", IN_TMP_LAB, str(checkout)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    executor, keywords = proc.stdout.splitlines()
    assert executor.startswith("0 ['executor running ("), executor
    assert keywords.startswith("0 ['[DEFAULT]"), keywords


STUB_MAKE = """#!/bin/sh
{ pwd; git rev-parse HEAD; echo "$*"; ls -a; } > "$STUB_OUT"
echo "===== 7 passed in 0.01s ====="
[ "$STUB_STATUS" = 0 ] || echo "make: *** [Makefile:12: test] Error $STUB_STATUS" >&2
exit "$STUB_STATUS"
"""


@pytest.mark.parametrize("status", [0, 2])
def test_ci_runs_make_test_in_a_fresh_clone_under_tmp(tmp_path: Path, status: int) -> None:
    """`.ci/run` runs `make test` in a fresh clone of HEAD under /tmp (no venv of the
    developer's), ends with its output and exit status, and removes the clone."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(STUB_MAKE)
    (bin_dir / "make").chmod(0o755)
    out = tmp_path / "make.out"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_OUT": str(out),
           "STUB_STATUS": str(status)}  # fmt: skip
    proc = subprocess.run(
        ["bash", str(CHECKOUT / ".ci/run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, cwd="/", timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == status, proc.stdout
    assert proc.stdout.splitlines()[-1] == "===== 7 passed in 0.01s ====="
    where, head, args, *entries = out.read_text().splitlines()
    assert where.startswith("/tmp/omc-ci."), where
    head_here = ["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"]
    assert (
        head == subprocess.run(head_here, capture_output=True, text=True, check=True).stdout.strip()
    )
    assert args == "test"
    assert ".venv" not in entries and ".git" in entries
    assert not Path(where).exists()
