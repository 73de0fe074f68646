"""The runtime's file primitives against other users' files, symlinks and umasks (real files).

Runs as root (like the suite): another user is a uid given with ``os.chown``, which is
all the kernel and the checks look at.
"""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.compiler.contract.paths import Kind, ObjectPath, PathError, RidError
from omc.runtime import layout, safefs
from omc.runtime.safefs import UnsafePathError

OTHER = 4242  # a uid that is not root


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_directories_get_their_fixed_mode_whatever_the_umask(
    tmp_path: Path, umask_000: None
) -> None:
    """umask 000: created directories are 0755 (ancestors) and the mode asked (leaf)."""
    leaf = tmp_path / "run" / "opensvc" / "action"
    safefs.ensure_dir(leaf, 0o700)
    assert [mode(p) for p in (leaf.parent.parent, leaf.parent, leaf)] == [0o755, 0o755, 0o700]


def test_files_get_their_fixed_mode_whatever_the_umask(tmp_path: Path, umask_000: None) -> None:
    """create_file, write_file and open_lock ignore the umask too."""
    assert safefs.create_file(tmp_path / "a" / "flag")
    safefs.write_file(tmp_path / "a" / "data", "x", mode=0o600)
    os.close(safefs.open_lock(tmp_path / "a" / "lock"))
    assert [mode(tmp_path / "a" / n) for n in ("flag", "data", "lock")] == [0o644, 0o600, 0o600]


def test_object_configs_are_root_only_whatever_the_umask(
    tmp_path: Path, umask_000: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``om create`` under umask 000: /etc/opensvc/<kind> is 0755 (not 0777), the config 0600."""
    from omc.runtime.objects.configs import write_config

    monkeypatch.setenv("OMC_ETC", str(tmp_path / "etc"))
    written = write_config(ObjectPath(kind=Kind.CFG, name="c1"), "[DEFAULT]\n")
    assert [mode(p) for p in (tmp_path / "etc", written.parent, written)] == [0o755, 0o755, 0o600]


def test_a_directory_owned_by_another_user_is_refused_by_name(tmp_path: Path) -> None:
    """The error names the path and its owner; nothing is created inside."""
    theirs = tmp_path / "shm" / "opensvc"
    theirs.mkdir(parents=True)
    os.chown(theirs, OTHER, OTHER)
    with pytest.raises(UnsafePathError, match=rf"{theirs} is owned by uid {OTHER}, not root"):
        safefs.create_file(theirs / "svc" / "fs#1.flag")
    assert list(theirs.iterdir()) == []


def test_a_world_writable_directory_is_refused(tmp_path: Path) -> None:
    """Root's own directory left 0777 (an old umask 000) is refused, with the fix to apply."""
    loose = tmp_path / "run"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(
        UnsafePathError, match=r"writable by group or others \(mode 0777\).*chmod go-w"
    ):
        safefs.open_lock(loose / "lock" / "x.lock")


def test_a_sticky_world_writable_ancestor_is_fine(tmp_path: Path) -> None:
    """/tmp and /dev/shm are 1777: others cannot replace our entries there."""
    shm = tmp_path / "shm"
    shm.mkdir()
    shm.chmod(0o1777)
    assert safefs.create_file(shm / "opensvc" / "flag")


def test_a_planted_symlink_is_never_followed(tmp_path: Path) -> None:
    """A symlink owned by another user, as a directory or as the file: refused, target untouched."""
    shm = tmp_path / "shm"
    shm.mkdir()
    shm.chmod(0o1777)
    victim = tmp_path / "etc" / "nologin"
    victim.parent.mkdir()
    (shm / "opensvc").mkdir()
    (shm / "opensvc" / "fs#1.flag").symlink_to(victim)
    os.lchown(shm / "opensvc" / "fs#1.flag", OTHER, OTHER)
    with pytest.raises(UnsafePathError, match="symlink"):
        safefs.create_file(shm / "opensvc" / "fs#1.flag")
    (shm / "dir").symlink_to(victim.parent)
    os.lchown(shm / "dir", OTHER, OTHER)
    with pytest.raises(
        UnsafePathError, match=rf"{shm / 'dir'} is a symlink and is owned by uid {OTHER}"
    ):
        safefs.create_file(shm / "dir" / "nologin")
    assert not victim.exists()


def test_a_root_owned_symlink_is_followed(tmp_path: Path) -> None:
    """/var/run -> /run: a symlink root made, in root's directory, is part of the layout."""
    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to("../run")
    assert safefs.create_file(tmp_path / "var" / "run" / "opensvc" / "x")
    assert (tmp_path / "run" / "opensvc" / "x").is_file()


def test_a_file_owned_by_another_user_does_not_count(tmp_path: Path) -> None:
    """is_file refuses another user's flag file (it would fake a resource's status)."""
    flag = tmp_path / "fs#1.flag"
    flag.touch()
    assert safefs.is_file(flag)
    os.chown(flag, OTHER, OTHER)
    with pytest.raises(UnsafePathError, match=f"owned by uid {OTHER}"):
        safefs.is_file(flag)
    assert layout.is_set(flag) is False
    assert safefs.is_file(tmp_path / "missing") is False


def test_remove_takes_the_symlink_not_its_target(tmp_path: Path) -> None:
    """remove() unlinks the entry itself, even when it points somewhere."""
    target = tmp_path / "target"
    target.touch()
    (tmp_path / "link").symlink_to(target)
    assert safefs.remove(tmp_path / "link")
    assert target.exists() and not safefs.remove(tmp_path / "link")


def test_write_file_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    """An atomic rename over a symlink replaces the link: its target keeps its content."""
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "hash").symlink_to(target)
    safefs.write_file(tmp_path / "hash", "new")
    assert target.read_text() == "keep"
    assert safefs.read_text(tmp_path / "hash") == "new"


def test_a_failed_replace_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A directory in the way of the rename: the error is raised and nothing is left."""
    (tmp_path / "hash").mkdir()
    with pytest.raises(IsADirectoryError):
        safefs.write_file(tmp_path / "hash", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["hash"]


def test_relative_and_dotdot_paths_are_refused(tmp_path: Path) -> None:
    """The primitives take absolute paths without '..' only (the layout never builds others)."""
    for bad in (Path("rel/x"), tmp_path / ".." / "x"):
        with pytest.raises(UnsafePathError, match=r"absolute path without '\.\.'"):
            safefs.create_file(bad)


@pytest.mark.parametrize("rid", ["fs#x/../../../etc/victim", "fs#..", "fs#", "app#a.b", "nope#1"])
def test_layout_refuses_a_rid_outside_the_grammar(rid: str) -> None:
    """Every path builder that takes a rid checks it first."""
    ref = ObjectPath(name="svc0")
    for build in (layout.stopped_flag, layout.flag_file, layout.task_pid_dir):
        with pytest.raises(RidError):
            build(ref, rid)
    with pytest.raises(RidError):
        layout.resource_file(ref, rid, ".last_run")


def test_layout_refuses_unchecked_object_names() -> None:
    """An ObjectPath built by hand with a '/' or '..' in it never becomes a path."""
    for ref in (ObjectPath(name="../etc"), ObjectPath(namespace="a/b", name="svc0")):
        with pytest.raises(PathError):
            layout.object_var_dir(ref)
        with pytest.raises(PathError):
            layout.lock_file(ref)
    with pytest.raises(PathError, match="suffix"):
        layout.resource_file(ObjectPath(name="svc0"), "sync#0", ".last_sync./x")


# --- the invariant: the runtime writes its own files through safefs only -----------------

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
WRITES = frozenset(("mkdir", "makedirs", "touch", "write_text", "write_bytes", "symlink_to",
                    "symlink", "mknod", "mkfifo", "chmod", "chown", "unlink", "rmdir"))  # fmt: skip
# Code that writes paths which are not the runtime's own (layout.py's) trees, and why:
# ``file`` (all of it) or ``file:Name`` (one top-level class or function).
OTHER_PATHS = {
    "drivers/fs.py:Directory": "the directory the config names",
    "drivers/fs.py:Mount": "the mount point the config names",
    "drivers/disk.py:Loop": "the image file the config names",
    "drivers/disk.py:Raw": "the device nodes the config names",
    "exec.py": "cgroup files under /sys/fs/cgroup",
    "cluster/fence.py:split_action": "the kernel's sysrq trigger",
    "executor/server.py": "/proc/self files and the executor's own unit file",
    "objects/configs.py": "object configs under /etc/opensvc",
    "objcli.py": "object configs under /etc/opensvc, the editor's temporary file",
}


def direct_writes(root: Path) -> list[str]:
    """``file:line: call`` for each filesystem write outside safefs and OTHER_PATHS."""
    found = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        if rel.startswith("lab/") or rel == "safefs.py" or rel in OTHER_PATHS:
            continue
        for top in ast.parse(file.read_text()).body:
            if f"{rel}:{getattr(top, 'name', '')}" in OTHER_PATHS:
                continue
            for node in ast.walk(top):
                func = getattr(node, "func", None)
                name = getattr(func, "attr", getattr(func, "id", None))
                if (
                    isinstance(node, ast.Call)
                    and name in WRITES
                    and "safefs" not in ast.unparse(func)
                ):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(func)}")
    return found


def test_the_runtime_writes_its_files_through_safefs_only() -> None:
    """No mkdir/touch/write_text/unlink … outside safefs, but for paths a config names."""
    assert direct_writes(RUNTIME) == []


def test_a_direct_write_is_caught(tmp_path: Path) -> None:
    """The check fails on a planted ``flag.touch()`` in the engine."""
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "x.py").write_text(
        "def f(flag):\n    flag.parent.mkdir()\n    flag.touch()\n"
    )
    assert direct_writes(tmp_path) == [
        "engine/x.py:2: flag.parent.mkdir",
        "engine/x.py:3: flag.touch",
    ]
