"""Issue #10 in real nodes: errors a user gets a sentence for (12), kv objects and their
delivery to units (10), what unit files and ``systemctl show`` reveal (4), the ``run:``
lines (15). Each test boots what it needs: a real systemd, a real unprivileged user,
a real full file system."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

OM = str(Path(sys.executable).parent / "om")
APP = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0a{n:02d}

[app#0]
start = /bin/true
check = /bin/true
"""


def om(node: Node, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return node.run([OM, *args], check=False, timeout=120, input=input)


def as_user(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    """``om`` run by the node's unprivileged user ``bob`` (setpriv: no PAM, no login)."""
    argv = ["setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "--", OM, *args]
    return node.run(argv, check=False, timeout=120)


def units_of(node: Node, stem: str) -> list[str]:
    found = node.run(["ls", "/etc/systemd/system"]).stdout.split()
    return [u for u in found if u.startswith(stem)]


@pytest.fixture
def node(lab_factory: Callable[..., Lab]) -> Node:
    """A fresh node of its own: these tests mount, fill disks and add users."""
    return lab_factory(nodes=1).node("n1")


@contextlib.contextmanager
def created(node: Node, path: str, config: str) -> Iterator[str]:
    node.write_file(f"/run/omct/{path}.conf", config)
    proc = om(node, path, "create", "--config", f"/run/omct/{path}.conf")
    assert proc.returncode == 0, proc.stderr
    try:
        yield path
    finally:
        om(node, path, "instance", "shutdown")
        om(node, path, "delete")


# ---------------------------------------------------------------------------
# 12: a sentence, not "unexpected …" (exit 70)


def test_an_unprivileged_user_is_told_om_needs_root(node: Node) -> None:
    """Every object command run by a real non-root user: exit 1, one line, no traceback."""
    node.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "bob"])
    node.write_file("/run/omct/mine.conf", APP.format(n=1))
    with created(node, "web", APP.format(n=2)):
        for args in (
            ("web", "instance", "start"),
            ("web", "freeze"),
            ("web", "print", "status"),
            ("web", "config", "show"),
            ("mine", "create", "--config", "/run/omct/mine.conf"),
        ):
            proc = as_user(node, *args)
            assert (proc.returncode, proc.stdout) == (1, ""), (args, proc)
            assert re.fullmatch(r"om: error: om must run as root \(uid \d+\)\n", proc.stderr), (
                args, proc.stderr,
            )  # fmt: skip
    assert node.run(["test", "-e", "/etc/opensvc/mine.conf"], check=False).returncode == 1


def test_create_on_a_full_var_installs_nothing(node: Node) -> None:
    """/var/lib/opensvc full: create fails with the path and the reason, and leaves no
    config, no unit, no marker; once there is room, the same create works."""
    node.run(["mkdir", "-p", "/var/lib/opensvc"])
    node.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/var/lib/opensvc"])
    try:
        fill = ["dd", "if=/dev/zero", "of=/var/lib/opensvc/filler", "bs=4k"]
        node.run(fill, check=False)  # until ENOSPC
        node.write_file("/run/omct/full.conf", APP.format(n=3))
        proc = om(node, "full", "create", "--config", "/run/omct/full.conf")
        assert proc.returncode == 1, proc
        assert proc.stderr == (
            "om: error: cannot write /var/lib/opensvc/svc/full/config.sha256: "
            "No space left on device\n"
        )
        assert node.run(["test", "-e", "/etc/opensvc/full.conf"], check=False).returncode == 1
        assert units_of(node, "opensvc-svc.full") == []
        node.run(["rm", "/var/lib/opensvc/filler"])
        again = om(node, "full", "create", "--config", "/run/omct/full.conf")
        assert again.returncode == 0, again.stderr
        assert "opensvc-svc.full.target" in units_of(node, "opensvc-svc.full")
        om(node, "full", "delete")
    finally:
        node.run(["umount", "/var/lib/opensvc"], check=False)


# ---------------------------------------------------------------------------
# 15: `run:` lines show the command as written and as it runs

SHELLY = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0a15

[app#0]
start = /bin/sh -c 'true && printf "100%%n" "$HOME" > /run/omct/shelly.out'
stop = printf '%s' $$HOME
check = test -e /run/omct/shelly.out
"""


def test_run_lines_show_the_command_as_it_runs(lab: Lab) -> None:
    """No unit escapes (`%%`, `$$`), one shell wrap, words quoted as a shell reads them;
    the command really ran as shown (its output file has the expanded text)."""
    n1 = lab.node("n1")
    pg = "/opensvc.slice/opensvc-svc.shelly.slice/opensvc-svc.shelly-app.0.slice"
    with created(n1, "shelly", SHELLY):
        start = om(n1, "shelly", "instance", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        runs = [
            line.split(" app#0: ", 1)[1] for line in start.stdout.splitlines() if " run: " in line
        ]
        script = """true && printf "100%%n" "$HOME" > /run/omct/shelly.out"""
        assert runs == [f"run: {OM} exec --pg {pg} -- /bin/sh -c '{script}'"]
        # One shell, no `$$` (that would print the shell's pid): HOME is unset in units.
        assert n1.read_file("/run/omct/shelly.out") == "100%n"
        stop = om(n1, "shelly", "instance", "stop")
        runs = [
            line.split(" app#0: ", 1)[1] for line in stop.stdout.splitlines() if " run: " in line
        ]
        assert runs == [f"run: {OM} exec --pg {pg} -- printf %s '$$HOME'"]
