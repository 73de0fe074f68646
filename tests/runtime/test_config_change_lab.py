"""Config changes on a lab node: they take the object lock, and the units that leave are
stopped first, with their stop commands (issue #10.5, #10.6)."""

from __future__ import annotations

import pytest
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import OM, console, created, om, status
from .test_lock_lab import background, holding, line_with

# fs#1's blocking pre-start trigger holds a start until /run/omct/<name>.go exists;
# app#web is a forking app whose stop command must run (it removes its marker).
WEB = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0f0{n}

[fs#1]
type = flag
blocking_pre_start = /bin/sh -c 'while [ ! -e /run/omct/{name}.go ]; do sleep 0.05; done'

[app#web]
type = forking
start = /bin/sh -c 'touch /run/omct/{name}.web; /bin/sleep 1000 & echo $! > /run/omct/{name}.pid'
stop = /bin/sh -c 'kill $(cat /run/omct/{name}.pid); rm -f /run/omct/{name}.web'
"""


def web(name: str, n: int, app: str = "web") -> str:
    return WEB.format(name=name, n=n).replace("[app#web]", f"[app#{app}]")


def units(node: Node, path: str) -> list[str]:
    """Every unit of the object systemd knows, with its load and active states."""
    out = node.run(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                    f"opensvc-svc.{path}*"]).stdout  # fmt: skip
    return sorted(" ".join(line.split()[:3]) for line in out.splitlines())


def recreate(node: Node, path: str, config: str, *flags: str) -> None:
    node.write_file(f"/run/omct/{path}.conf", config)
    proc = om(node, path, "create", "--config", f"/run/omct/{path}.conf", *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


def test_a_create_during_a_start_waits_for_it(n1: Node) -> None:
    """`create` while a start runs waits for the object lock (saying so); the start ends
    `<<< done` with every unit loaded, then the new config goes in."""
    with created(n1, "cfgwait", web("cfgwait", 1)) as path:
        with holding(n1, path) as (_, sid):
            n1.write_file(f"/run/omct/{path}.conf", web(path, 1, app="www"))
            change = background(n1, path, "create", "--config", f"/run/omct/{path}.conf")
            assert change.stderr is not None
            said = line_with(change.stderr, "waiting for the object lock")
            assert "held by pid " in said and f"(start, sid {sid})" in said
        out, err = change.communicate(timeout=120)
        assert change.returncode == 0, out + err
        assert not [u for u in units(n1, path) if "not-found" in u], units(n1, path)
        assert status(n1, path) == {"avail": "warn", "fs#1": "up", "app#www": "down"}
        assert not n1.path(f"/run/omct/{path}.web").exists()  # app#web's stop command ran


@pytest.mark.parametrize(
    "change",
    [
        ("create", "--config", "/run/omct/cfglock.conf"),
        ("config", "edit"),
        ("delete", "--force"),
    ],
)
def test_every_config_change_takes_the_object_lock(n1: Node, change: tuple[str, ...]) -> None:
    """create, config edit and delete wait for the action holding the lock like any
    action (here not at all: --waitlock 0) and change nothing when they give up."""
    config = web("cfglock", 2)
    with created(n1, "cfglock", config) as path:
        with holding(n1, path) as (_, sid):
            n1.write_file(f"/run/omct/{path}.conf", web(path, 2, app="www"))
            editor = "EDITOR=sed -i -e s/app#web/app#www/"
            proc = n1.run(["env", editor, OM, path, *change, "--waitlock", "0"], check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.splitlines()[-1].startswith(
            f"om: error: {path}: gave up after 0s waiting for the object lock held by pid "
        )
        assert proc.stderr.endswith(f"(start, sid {sid})\n")
        assert n1.read_file(f"/etc/opensvc/{path}.conf") == config
        assert status(n1, path) == {"avail": "up", "fs#1": "up", "app#web": "up"}


def alive(node: Node, pid: str) -> bool:
    return node.path(f"/proc/{pid}").exists()


def test_a_running_resource_renamed_by_create_is_stopped_with_its_stop_command(n1: Node) -> None:
    """Renaming app#web to app#www on a running instance runs app#web's stop command (its
    forked process ends) before its unit file goes; nothing is left not-found."""
    with created(n1, "cfgren", web("cfgren", 3)) as path:
        n1.write_file(f"/run/omct/{path}.go", "")
        assert om(n1, path, "instance", "start").returncode == 0
        pid = n1.read_file(f"/run/omct/{path}.pid").strip()
        assert alive(n1, pid)
        n1.write_file(f"/run/omct/{path}.conf", web(path, 3, app="www"))
        proc = om(n1, path, "create", "--config", f"/run/omct/{path}.conf")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = console(proc)
        assert lines[0] == f"INF {path}: app#web: removed from the config: stop"
        assert any(ln.startswith(f"INF {path}: app#web: run: ") and "kill" in ln for ln in lines)
        assert not alive(n1, pid)
        assert not n1.path(f"/run/omct/{path}.web").exists()
        assert not [u for u in units(n1, path) if "not-found" in u or ".web." in u], units(n1, path)
        assert status(n1, path) == {"avail": "warn", "fs#1": "up", "app#www": "down"}


def test_a_running_flag_renamed_by_config_edit_is_uninstalled_by_its_driver(n1: Node) -> None:
    """A driver-backed resource that leaves through `config edit` runs its driver's stop
    (the flag file goes) before its unit file goes."""
    with created(n1, "cfgedit", web("cfgedit", 4)) as path:
        n1.write_file(f"/run/omct/{path}.go", "")
        assert om(n1, path, "instance", "start", "--rid", "fs#1").returncode == 0
        flag = f"/dev/shm/opensvc/svc/{path}/fs#1.flag"
        assert n1.path(flag).exists()
        editor = "EDITOR=sed -i -e s/fs#1/fs#2/"
        proc = n1.run(["env", editor, OM, path, "config", "edit"], check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"INF {path}: fs#1: uninstall flag file {flag}" in console(proc)
        assert not n1.path(flag).exists()
        assert not [u for u in units(n1, path) if "fs.1" in u], units(n1, path)
        assert status(n1, path) == {"avail": "down", "fs#2": "down", "app#web": "down"}


def test_a_config_edited_by_hand_is_applied_by_the_next_action_stopping_what_left(
    n1: Node,
) -> None:
    """A config replaced behind om's back (by hand, or replicated) is installed by the next
    action, which first stops the running resources the new config no longer has."""
    with created(n1, "cfghand", web("cfghand", 5)) as path:
        n1.write_file(f"/run/omct/{path}.go", "")
        assert om(n1, path, "instance", "start").returncode == 0
        pid = n1.read_file(f"/run/omct/{path}.pid").strip()
        n1.write_file(f"/etc/opensvc/{path}.conf", web(path, 5, app="www"))
        proc = om(n1, path, "instance", "stop")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert console(proc)[0] == f"INF {path}: app#web: removed from the config: stop"
        assert not alive(n1, pid)
        assert status(n1, path) == {"avail": "down", "fs#1": "down", "app#www": "down"}


def test_a_stopped_instance_changes_config_silently(n1: Node) -> None:
    """On a stopped instance a rename stops nothing and says nothing; the old unit is gone."""
    with created(n1, "cfgstop", web("cfgstop", 6)) as path:
        n1.write_file(f"/run/omct/{path}.conf", web(path, 6, app="www"))
        proc = om(n1, path, "create", "--config", f"/run/omct/{path}.conf")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
        assert not [u for u in units(n1, path) if ".web." in u], units(n1, path)
        assert status(n1, path) == {"avail": "down", "fs#1": "down", "app#www": "down"}
