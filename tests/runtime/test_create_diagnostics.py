"""`om <path> create` reports a bad config exactly as `omc check` does (one pipeline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.trees import scratch_env

BIN = Path(sys.executable).parent

# WorkingDirectory= must be absolute: the front end accepts the value, emission refuses it.
RELATIVE_CWD = """\
[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-00000000000c

[app#0]
start = /bin/true
cwd = relative/dir
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [("cwd", RELATIVE_CWD), ("typo", RELATIVE_CWD.replace("start =", "strat ="))],
)
def test_create_prints_the_diagnostics_of_omc_check(tmp_path: Path, name: str, text: str) -> None:
    """Same positioned diagnostic on stderr, exit 1, nothing installed (emit errors too)."""
    (tmp_path / "x.conf").write_text(text)
    env = scratch_env(tmp_path)
    check = subprocess.run([BIN / "omc", "check", "x.conf"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    create = subprocess.run([BIN / "om", "x", "create", "--config", "x.conf"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 1
    assert create.returncode == 1
    assert create.stderr == check.stderr
    assert create.stderr.startswith("x.conf:")
    assert "unexpected" not in create.stderr
    assert not (tmp_path / "etc").exists()
    assert not (tmp_path / "units").exists()
