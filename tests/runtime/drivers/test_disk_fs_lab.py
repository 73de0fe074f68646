"""In a real systemd node: an ext4 mount on the loop device a disk.loop exposes.

The compiler writes the disk's published path (``/run/opensvc/dev/…``) in the
mount's ``What=``; starting the mount unit pulls the disk unit in, whose
driver attaches the image and publishes the loop device there; stopping the
disk unit stops the mount first, then detaches the image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.compiler import ir
from omc.compiler.contract import names
from omc.compiler.pipeline import build
from omc.runtime.lab.api import Lab, Node

OM = str(Path(sys.executable).parent / "om")
UNIT_DIR = "/run/systemd/system"

CONFIG = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a00ff
nodes = {node}

[disk#0]
type = loop
file = {image}

[fs#0]
type = ext4
dev = {{disk#0.exposed_devs[0]}}
mnt = /run/{name}/data
"""


@pytest.fixture
def installed(lab: Lab) -> Iterator[tuple[Node, ir.ObjectPath, dict[str, str], Path]]:
    """A disk.loop + fs.ext4 object compiled for n1 and installed in its unit directory."""
    node = lab.node("n1")
    path = ir.ObjectPath(name=f"df{os.getpid()}x{os.urandom(2).hex()}")
    image = lab.dir / f"{path.name}.img"
    with image.open("wb") as out:
        out.truncate(16 << 20)
    node.run(["mkfs.ext4", "-q", str(image)])
    text = CONFIG.format(node=node.name, image=image, name=path.name)
    built = build(text, filename=f"/etc/opensvc/{path.name}.conf", node=node.name, om=OM, path=path)
    assert built.ok, built.diagnostics
    units = dict(built.units)
    for name, unit in units.items():
        node.write_file(f"{UNIT_DIR}/{name}", unit)
    node.run(["systemctl", "daemon-reload"])
    yield node, path, units, image
    node.run(["systemctl", "stop", *units], check=False)
    for name in units:
        node.path(f"{UNIT_DIR}/{name}").unlink(missing_ok=True)
    node.run(["systemctl", "daemon-reload"], check=False)
    image.unlink(missing_ok=True)


def _source(node: Node, mnt: str) -> str:
    return node.run(["findmnt", "-n", "-o", "SOURCE", mnt], check=False).stdout.strip()


def test_ext4_mount_on_a_published_loop_device(installed: tuple) -> None:
    """Start the .mount: the disk unit attaches and publishes the loop; stop undoes both."""
    node, path, units, image = installed
    mnt = f"/run/{path.name}/data"
    mount, disk = names.mount_unit(mnt), names.resource_unit(path, "disk#0")
    link = names.exposed_dev_path(path, "disk#0", 0)
    assert f"What={link}" in units[mount].splitlines()
    node.run(["systemctl", "start", mount], timeout=120)
    loop = node.run(["readlink", link]).stdout.strip()
    assert loop.startswith("/dev/loop")
    assert node.path(link).is_symlink()
    assert _source(node, mnt) == loop
    assert node.run(["losetup", "-n", "-O", "BACK-FILE", loop]).stdout.strip() == str(image)
    status = [OM, path.name, "driver", "status", "--rid"]
    assert node.run([*status, "disk#0"]).stdout.split() == ["up", loop]
    node.run(["systemctl", "stop", disk], timeout=120)
    assert node.run(["systemctl", "is-active", mount], check=False).stdout.strip() == "inactive"
    assert _source(node, mnt) == ""
    assert node.run(["losetup", "-n", "-j", str(image)]).stdout == ""
    assert not node.path(link).is_symlink()
    assert node.run([*status, "disk#0"]).stdout.split() == ["down"]
