"""`om <path> create` on hostile input (issue #10: items 11, 12): one clear line, no hang,
nothing installed. These fail before anything reaches systemd, so no lab is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trees import scratch_env

BIN = Path(sys.executable).parent
MAX_CONFIG_BYTES = 1 << 20
GOOD = """[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-00000000000d

[app#0]
start = /bin/true
"""


def om(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``om`` in a child process; the timeout guards against a hang, it asserts nothing."""
    return subprocess.run([BIN / "om", *args], cwd=tmp_path, env=scratch_env(tmp_path), input=stdin,
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip


def assert_nothing_installed(tmp_path: Path) -> None:
    assert not (tmp_path / "etc").exists()
    assert not (tmp_path / "units").exists()


def test_create_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    """`create --config FIFO` is refused at once, naming the file."""
    fifo = tmp_path / "x.conf"
    os.mkfifo(fifo)
    proc = om(tmp_path, "x", "create", "--config", str(fifo))
    assert (proc.returncode, proc.stderr) == (
        1, f"om: error: cannot read {fifo}: not a regular file (a FIFO)\n",
    )  # fmt: skip
    assert_nothing_installed(tmp_path)


def test_create_refuses_a_device(tmp_path: Path) -> None:
    """`create --config /dev/zero` reads nothing and says why."""
    proc = om(tmp_path, "x", "create", "--config", "/dev/zero")
    assert (proc.returncode, proc.stderr) == (
        1, "om: error: cannot read /dev/zero: not a regular file (a character device)\n",
    )  # fmt: skip
    assert_nothing_installed(tmp_path)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_create_refuses_a_config_over_the_bound(tmp_path: Path, via: str) -> None:
    """A config over 1 MiB is refused, from a file or from stdin."""
    text = GOOD + "#" * MAX_CONFIG_BYTES
    (tmp_path / "x.conf").write_text(text)
    source = "x.conf" if via == "file" else "-"
    proc = om(tmp_path, "x", "create", "--config", source, stdin=text if via == "stdin" else "")
    name = "x.conf" if via == "file" else "stdin"
    assert (proc.returncode, proc.stderr) == (
        1, f"om: error: cannot read {name}: larger than 1 MiB, the bound of a config file\n",
    )  # fmt: skip
    assert_nothing_installed(tmp_path)


def test_create_refuses_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are an error naming the byte, not a traceback."""
    (tmp_path / "x.conf").write_bytes(GOOD.encode() + b"# \xff\n")
    proc = om(tmp_path, "x", "create", "--config", "x.conf")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"om: error: cannot read x.conf: not UTF-8 text (byte {len(GOOD) + 2} is 0xff)\n"
    )
    assert_nothing_installed(tmp_path)
