"""Issue #10 in real nodes: errors a user gets a sentence for (12), kv objects and their
delivery to units (10), what unit files and ``systemctl show`` reveal (4), the ``run:``
lines (15). Each test boots what it needs: a real systemd, a real unprivileged user,
a real full file system."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omc.runtime.lab.api import Lab, Node

from tests.runtime.test_instance_lab import created

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


def as_bob(node: Node, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command run by the node's unprivileged user ``bob`` (setpriv: no PAM, no login)."""
    setpriv = ["setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "--"]
    return node.run([*setpriv, *argv], check=False, timeout=120)


def as_user(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    """``om`` run by ``bob``."""
    return as_bob(node, OM, *args)


def units_of(node: Node, stem: str) -> list[str]:
    found = node.run(["ls", "/etc/systemd/system"]).stdout.split()
    return [u for u in found if u.startswith(stem)]


@pytest.fixture
def node(lab_factory: Callable[..., Lab]) -> Node:
    """A fresh node of its own: these tests mount, fill disks and add users."""
    return lab_factory(nodes=1).node("n1")


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


# ---------------------------------------------------------------------------
# 10 + 4: keys reach the app, and nobody else

KVAPP = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0a10

[app#0]
start = /bin/sh -c 'printf "%s|%s|%s|%s" "$PASS" "$TOKEN" "$PORT" "$PLAIN" > /tmp/kvapp.out'
check = /bin/sh -c 'test -e /tmp/kvapp.out && test "$PORT" = 8080'
stop = /bin/sh -c 'printf "%s" "$PASS" > /tmp/kvapp.stop && rm /tmp/kvapp.out'
user = appuser
environment = PLAIN=visible
secrets_environment = PASS=s1/password s1/TOK*
configs_environment = PORT=c1/port
"""
SECRET = 's3cr"et $x\\n%n `b`'


def test_keys_reach_the_app_exactly_and_only_root_reads_them(node: Node) -> None:
    """A real app (run as its own user) gets the exact bytes of its sec/cfg keys; the
    root-only env file exists only while the unit runs; another unprivileged user finds
    them in no unit file, no unit property (systemctl show) and no env file."""
    for user in ("bob", "appuser"):
        node.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
    for path in ("sec/s1", "cfg/c1"):
        assert om(node, path, "create").returncode == 0
    assert om(node, "sec/s1", "add", "--key", "password", "--value", SECRET).returncode == 0
    assert om(node, "sec/s1", "add", "--key", "TOKEN", "--from", "-", input="a\nb").returncode == 0
    assert om(node, "cfg/c1", "add", "--key", "port", "--value", "8080").returncode == 0
    with created(node, "kvapp", KVAPP):
        start = om(node, "kvapp", "instance", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        assert node.read_file("/tmp/kvapp.out") == f"{SECRET}|a\nb|8080|visible"
        env_file = "/run/opensvc/env/opensvc-svc.kvapp-app.0.service.env"
        assert node.run(["stat", "-c", "%a %U", env_file]).stdout == "600 root\n"
        assert node.run(["stat", "-c", "%a %U", "/run/opensvc/env"]).stdout == "700 root\n"
        unit = "/etc/systemd/system/opensvc-svc.kvapp-app.0.service"
        assert node.run(["stat", "-c", "%a", unit]).stdout == "600\n"
        verify = node.run(["systemd-analyze", "verify", "--man=no", unit], check=False)
        assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")  # root reads 0600
        for file in (unit, env_file, "/etc/opensvc/sec/s1.conf"):
            seen = as_bob(node, "cat", file)
            assert seen.returncode == 1 and "Permission denied" in seen.stderr, file
        show = as_bob(node, "systemctl", "show", "opensvc-svc.kvapp-app.0.service").stdout
        assert "PLAIN=visible" in show  # `environment` is public by design (docs/units.md)
        assert "s3cr" not in show and "8080" not in show and "X-OpenSVC" not in show
        stop = om(node, "kvapp", "instance", "stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert node.read_file("/tmp/kvapp.stop") == SECRET  # stop commands get them too
        assert node.run(["test", "-e", env_file], check=False).returncode == 1


def test_a_missing_key_fails_the_start_naming_it(node: Node) -> None:
    """Compile time: a warning at the keyword; start: an error line naming the key, and
    the app never runs without it."""
    node.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "appuser"])
    assert om(node, "sec/s1", "create").returncode == 0
    assert om(node, "cfg/c1", "create").returncode == 0
    node.write_file("/run/omct/kvapp.conf", KVAPP)
    create = om(node, "kvapp", "create", "--config", "/run/omct/kvapp.conf")
    assert create.returncode == 0, create.stderr
    assert (
        "/run/omct/kvapp.conf:10:23: warning: secrets_environment of [app#0]: "
        "PASS=s1/password: sec/s1 has no key 'password'"
    ) in create.stderr
    start = om(node, "kvapp", "instance", "start")
    assert start.returncode == 1
    errors = [line.split(" ", 1)[1] for line in start.stdout.splitlines() if " ERR " in line]
    assert errors[0] == (
        "ERR kvapp: app#0: cannot start: configs_environment: PORT=c1/port: "
        "cfg/c1 has no key 'port'"
    ), start.stdout
    assert node.run(["test", "-e", "/tmp/kvapp.out"], check=False).returncode == 1
    om(node, "kvapp", "delete", "--force")
