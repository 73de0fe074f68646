"""What a node shares with the host and what it keeps to itself (docs/lab.md, "Shared and
private"): every write in a node lands in the node, except in the checkout and its venv."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omc.runtime.lab import api
from omc.runtime.lab.api import Lab, Node

# Trees a node writes copy-on-write (the host's content shows through, writes stay).
PRIVATE_WRITABLE = ("/root", "/home", "/srv", "/mnt", "/opt", "/media", "/usr/local")
# Handled by their own tests (tmpfs, overlays, the node's own proc/sys/dev).
SPECIAL = {"/proc", "/sys", "/dev", "/run", "/tmp", "/etc", "/var"}


def _read_only_trees() -> list[str]:
    """``/`` and every host top-level directory that is neither private, special, nor
    shared on purpose (a checkout at ``/omc`` would be)."""
    tops = [str(p) for p in Path("/").iterdir() if p.is_dir() and not p.is_symlink()]
    skip = SPECIAL.union(PRIVATE_WRITABLE, api.shared_dirs(Path("/run/omc-lab/x")))
    return ["/", *sorted(t for t in tops if t not in skip)]


@pytest.fixture
def probe() -> Iterator[str]:
    """A file name unique to this test; any copy of it left on the host is removed."""
    name = f"omct-probe-{os.getpid()}"
    yield name
    for tree in (*PRIVATE_WRITABLE, *_read_only_trees()):
        path = Path(tree, name)
        if path.exists():
            path.unlink()


def test_writes_in_formerly_shared_trees_stay_in_the_node(lab: Lab, probe: str) -> None:
    """/root, /home, /srv, /mnt, /opt, /media, /usr/local are writable and private to a
    node; / and every other host tree (/usr, /boot, …) are read-only in it."""
    n1, n2 = lab.node("n1"), lab.node("n2")
    for tree in (t for t in PRIVATE_WRITABLE if Path(t).is_dir()):
        n1.run(["sh", "-c", f"echo n1 > {tree}/{probe}"])
        assert n1.read_file(f"{tree}/{probe}") == "n1\n", tree
        assert not Path(tree, probe).exists(), f"{tree}: a node's write reached the host"
        assert n2.run(["test", "-e", f"{tree}/{probe}"], check=False).returncode == 1, tree
        n1.run(["rm", f"{tree}/{probe}"])
    for tree in _read_only_trees():
        proc = n1.run(["touch", f"{tree.rstrip('/')}/{probe}"], check=False)
        assert not Path(tree, probe).exists(), f"{tree}: a node's write reached the host"
        assert "Read-only file system" in proc.stderr, (tree, proc.stderr)


def test_useradd_home_stays_in_the_node(lab: Lab) -> None:
    """`useradd -m` in a node creates the user and its home there, not on the host."""
    n1 = lab.node("n1")
    user = f"omct{os.getpid()}"[:16]
    passwd = Path("/etc/passwd").read_text()
    n1.run(["useradd", "-m", user])
    try:
        assert n1.run(["test", "-d", f"/home/{user}"], check=False).returncode == 0
        assert not Path("/home", user).exists()
        assert Path("/etc/passwd").read_text() == passwd
    finally:
        n1.run(["userdel", "-r", user], check=False)


def test_the_checkout_and_its_venv_are_shared_read_write(lab: Lab) -> None:
    """On purpose: a node sees the checkout and the venv at their own paths, and its
    writes there reach the host (what `om` in a node runs is the working tree)."""
    n1 = lab.node("n1")
    checkout = api.checkout_dir()
    probe = checkout / f".omct-shared-{os.getpid()}"
    try:
        n1.run(["sh", "-c", f"echo n1 > {probe}"])
        assert probe.read_text() == "n1\n"
    finally:
        probe.unlink(missing_ok=True)
    assert n1.run(["test", "-x", f"{api.venv_dir()}/bin/om"], check=False).returncode == 0


def _tiny_rootfs(node: Node, root: str) -> None:
    """sh and its libraries, copied into ``root`` inside the node (through /proc/PID/root)."""
    for src in ("/bin/sh", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        dest = node.path(f"{root}{src}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(src).resolve(), dest)


def test_podman_storage_works_without_fuse_overlayfs(lab_factory: Callable[..., Lab]) -> None:
    """On a fresh machine (no fuse-overlayfs: setup installs no recommends) podman in a
    node uses its native overlay driver, not on overlayfs, command after command."""
    n1 = lab_factory(nodes=1).node("n1")
    _tiny_rootfs(n1, "/tmp/rootfs")
    hide = "[ ! -e {f} ] || mount --bind /dev/null {f}".format(f="/usr/bin/fuse-overlayfs")
    script = (
        f"{hide}\n"
        "set -e\n"
        "podman info --format '{{.Store.GraphDriverName}}'\n"
        "podman info --format '{{index .Store.GraphStatus \"Backing Filesystem\"}}'\n"
        "tar -C /tmp/rootfs -cf /tmp/rootfs.tar .\n"
        "podman import -q /tmp/rootfs.tar omct-tiny >/dev/null\n"
        "podman run --rm --network=none omct-tiny /bin/sh -c 'echo ran'\n"
    )
    proc = n1.run(["unshare", "--mount", "--", "sh", "-c", script], check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    driver, backing, ran = proc.stdout.split()
    assert (driver, ran) == ("overlay", "ran")
    assert backing != "overlayfs"
