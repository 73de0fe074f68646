"""``om exec --pg``: argument parsing, hierarchy discovery, and a real cgroup move on this host."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from omc.runtime import exec as om_exec

DEV = str(Path(__file__).resolve().parents[3] / ".dev")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--pg", "/a.slice", "--", "touch", "x"], ("/a.slice", ["touch", "x"])),
        (["--pg=/a.slice/b.slice", "--", "true"], ("/a.slice/b.slice", ["true"])),
        (["--", "echo", "--pg"], ("", ["echo", "--pg"])),
    ],
)
def test_parse_accepts(argv: list[str], expected: tuple[str, list[str]]) -> None:
    """--pg PG and --pg=PG are read; everything after -- is the command, untouched."""
    assert om_exec.parse(argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pg", "/a.slice", "true"], "missing '--'"),
        (["--pg", "/a.slice", "--"], "missing command"),
        (["--pg", "a.slice", "--", "true"], "absolute"),
        (["--pg", "/a/../b", "--", "true"], "without '..'"),
        (["--bogus", "--", "true"], "unexpected argument"),
    ],
)
def test_parse_rejects(argv: list[str], message: str) -> None:
    """Bad command lines are ExecErrors that say what is wrong."""
    with pytest.raises(om_exec.ExecError, match=message):
        om_exec.parse(argv)


HYBRID = (
    "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    "32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)


def test_hierarchies_of_a_hybrid_layout() -> None:
    """v2 and name=systemd may be created in; v1 controllers are only joined."""
    found = [(str(h.mountpoint), h.create) for h in om_exec.hierarchies(HYBRID)]
    assert found == [
        ("/sys/fs/cgroup/unified", True),
        ("/sys/fs/cgroup/systemd", True),
        ("/sys/fs/cgroup/memory", False),
    ]


def test_join_writes_pid_where_allowed(tmp_path: Path) -> None:
    """The pid lands in cgroup.procs of created dirs, and of controller dirs only if present."""
    text = HYBRID.replace("/sys/fs/cgroup", str(tmp_path))
    (tmp_path / "memory").mkdir()
    joined = om_exec.join("/o.slice/r.slice", mountinfo=text, pid=4242)
    assert joined == [tmp_path / "unified/o.slice/r.slice", tmp_path / "systemd/o.slice/r.slice"]
    assert (tmp_path / "systemd/o.slice/r.slice/cgroup.procs").read_text() == "4242\n"
    assert not (tmp_path / "memory/o.slice").exists()


def _hybrid_host() -> bool:
    return Path("/sys/fs/cgroup/systemd/cgroup.procs").exists()


def test_real_exec_runs_command_in_cgroup() -> None:
    """For real: the command's /proc/self/cgroup shows the pg in the systemd hierarchy."""
    assert _hybrid_host() or Path("/sys/fs/cgroup/cgroup.procs").exists()
    top = f"/omc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}.slice"
    pg = f"{top}/omc-test-app.0.slice"
    code = "import sys; from omc.runtime.exec import main; sys.exit(main(sys.argv[1:]))"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, "--pg", pg, "--", "cat", "/proc/self/cgroup"],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": DEV},
        ).stdout  # fmt: skip
    finally:
        for root in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            for d in (pg, top):
                path = Path(root + d)
                if path.is_dir():
                    path.rmdir()
    lines = out.splitlines()
    assert any(line.endswith(pg) for line in lines), out


def test_real_exec_missing_command_is_127() -> None:
    """A command that does not exist exits 127 with a one-line error."""
    code = "import sys; from omc.runtime.exec import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--", "/nonexistent/cmd"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": DEV},
    )  # fmt: skip
    assert proc.returncode == 127
    assert "om exec: error: /nonexistent/cmd" in proc.stderr
