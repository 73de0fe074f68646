"""What `om` says when cluster.conf is refused: one line naming the fix, exit 1, never a
traceback, whatever the command (the daemon's included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OM = str(Path(sys.executable).parent / "om")
PLAIN = "[cluster]\nname = c1\nnodes = n1\n\n[etcd]\nendpoints = http://10.0.0.1:2379\n"


def _om(etc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMC_ETC": str(etc), "OMC_NODE": "n1", "OMC_EXECUTOR": "0"}
    return subprocess.run([OM, *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["mon"], ["daemon", "run"], ["cluster", "status"], ["svc1", "start"], ["svc1", "delete"]],
)
def test_plain_http_off_loopback_is_refused_in_one_line(etc: Path, args: list[str]) -> None:
    """An http:// member on another host: refused before any connection, saying how to
    allow it; the daemon says it the same way."""
    (etc / "cluster.conf").write_text(PLAIN)
    proc = _om(etc, *args)
    assert proc.returncode == 1, proc.stderr
    (line,) = (proc.stderr + proc.stdout).splitlines()  # the daemon writes to its journal
    assert line.startswith(("om: error: cluster.conf: [etcd] endpoint http://10.0.0.1:2379",
                            "om daemon: error: cluster.conf: [etcd] endpoint"))  # fmt: skip
    assert "use https:// with [etcd] ca, cert and key, or set [etcd] insecure = true" in line


def test_insecure_true_lets_plain_http_through(etc: Path) -> None:
    """With insecure = true the same file passes the check (and meets the network)."""
    (etc / "cluster.conf").write_text(PLAIN + "insecure = true\ntimeout = 200ms\n")
    proc = _om(etc, "mon")
    assert "plain http" not in proc.stderr
    assert "etcd is unreachable" in proc.stderr


def test_a_readable_password_is_refused_in_one_line(etc: Path) -> None:
    """cluster.conf 0644 with a password: refused by every command, with the chmod."""
    conf = etc / "cluster.conf"
    conf.write_text(
        PLAIN.replace("http://10.0.0.1", "https://10.0.0.1") + "user = u\npassword = p\n"
    )
    conf.chmod(0o644)
    proc = _om(etc, "mon")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"om: error: {conf}: holds the etcd password but is readable by others (mode 0644): "
        f"chown root and chmod 600 {conf}\n"
    )
