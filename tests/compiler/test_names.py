"""Slice and unit names follow OpenSVC's process-group layout, systemd-escaped."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omc.compiler.contract import names
from omc.compiler.ir import Kind, ObjectPath

SVC0 = ObjectPath(name="svc0")
NS_WEB = ObjectPath(namespace="ns1", name="web")
MY_SVC = ObjectPath(name="my-svc")
VOL = ObjectPath(kind=Kind.VOL, name="v1")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (SVC0, "opensvc-svc.svc0.slice"),
        (NS_WEB, "opensvc-ns.ns1-svc.web.slice"),
        (MY_SVC, "opensvc-svc.my\\x2dsvc.slice"),
        (VOL, "opensvc-vol.v1.slice"),
    ],
)
def test_object_slice(path: ObjectPath, expected: str) -> None:
    """The object slice is named like om3's object pg, each part escaped."""
    assert names.object_slice(path) == expected


@pytest.mark.parametrize(
    ("path", "rid", "subset", "expected"),
    [
        (SVC0, "app#0", None, "opensvc-svc.svc0-app.0.slice"),
        (SVC0, "app#3", "workers", "opensvc-svc.svc0-subset.workers-app.3.slice"),
        (NS_WEB, "ip#0", None, "opensvc-ns.ns1-svc.web-ip.0.slice"),
        (MY_SVC, "app#my-app", None, "opensvc-svc.my\\x2dsvc-app.my\\x2dapp.slice"),
    ],
)
def test_resource_slice(path: ObjectPath, rid: str, subset: str | None, expected: str) -> None:
    """A resource slice nests in its subset slice, else in the object slice."""
    assert names.resource_slice(path, rid, subset) == expected


def test_subset_slice() -> None:
    """A subset slice is named subset.<name> under the object."""
    assert names.subset_slice(SVC0, "workers") == "opensvc-svc.svc0-subset.workers.slice"


@pytest.mark.parametrize(
    ("path", "rid", "subset", "expected"),
    [
        (
            SVC0,
            "app#0",
            None,
            "/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice",
        ),
        (SVC0, None, None, "/opensvc.slice/opensvc-svc.svc0.slice"),
        (
            NS_WEB,
            "app#1",
            "g1",
            "/opensvc.slice/opensvc-ns.ns1.slice/opensvc-ns.ns1-svc.web.slice"
            "/opensvc-ns.ns1-svc.web-subset.g1.slice/opensvc-ns.ns1-svc.web-subset.g1-app.1.slice",
        ),
        (
            MY_SVC,
            "app#0",
            None,
            "/opensvc.slice/opensvc-svc.my\\x2dsvc.slice/opensvc-svc.my\\x2dsvc-app.0.slice",
        ),
    ],
)
def test_cgroup_path_matches_the_seed_log(
    path: ObjectPath, rid: str | None, subset: str | None, expected: str
) -> None:
    """The cgroup path is the one the seed log prints ("applied pg …")."""
    assert names.cgroup_path(path, rid, subset) == expected


@pytest.mark.parametrize(
    ("path", "rid", "suffix", "expected"),
    [
        (SVC0, "ip#0", "service", "opensvc-svc.svc0-ip.0.service"),
        (SVC0, "task#backup", "timer", "opensvc-svc.svc0-task.backup.timer"),
        (NS_WEB, "fs#1", "service", "opensvc-ns.ns1-svc.web-fs.1.service"),
        (SVC0, "app#a@b", "service", "opensvc-svc.svc0-app.a\\x40b.service"),
    ],
)
def test_resource_unit(path: ObjectPath, rid: str, suffix: str, expected: str) -> None:
    """Resource units share the object stem; '@' never makes a template instance."""
    assert names.resource_unit(path, rid, suffix) == expected


def test_target() -> None:
    """One target per object."""
    assert names.target(SVC0) == "opensvc-svc.svc0.target"
    assert names.target(NS_WEB) == "opensvc-ns.ns1-svc.web.target"


@pytest.mark.parametrize(
    ("mnt", "expected"),
    [("/srv/data", "srv-data.mount"), ("/srv/my-data/", "srv-my\\x2ddata.mount"), ("/", "-.mount")],
)
def test_mount_unit(mnt: str, expected: str) -> None:
    """Mount units are named from the mount point, as systemd requires."""
    assert names.mount_unit(mnt) == expected


def test_slice_path_lists_ancestors() -> None:
    """systemd derives a slice's parents from '-'; escaped parts add none."""
    assert names.slice_path("opensvc-svc.my\\x2dsvc-app.0.slice") == (
        "opensvc.slice",
        "opensvc-svc.my\\x2dsvc.slice",
        "opensvc-svc.my\\x2dsvc-app.0.slice",
    )


@pytest.mark.parametrize(
    ("path", "rid", "index", "expected"),
    [
        (SVC0, "disk#0", 0, "/run/opensvc/dev/root/svc/svc0/disk.0.0"),
        (NS_WEB, "disk#data", 2, "/run/opensvc/dev/ns1/svc/web/disk.data.2"),
        (MY_SVC, "disk#1", 0, "/run/opensvc/dev/root/svc/my-svc/disk.1.0"),
        (VOL, "disk#0", 0, "/run/opensvc/dev/root/vol/v1/disk.0.0"),
    ],
)
def test_exposed_dev_path(path: ObjectPath, rid: str, index: int, expected: str) -> None:
    """A disk publishes device n of rid under /run/opensvc/dev/<ns>/<kind>/<name>/."""
    assert names.exposed_dev_path(path, rid, index) == expected


@pytest.mark.parametrize(
    ("name", "rid", "index"),
    [("svc0", "disk0", 0), ("svc0", "disk#a/b", 0), ("svc0", "disk#0", -1), ("..", "disk#0", 0),
     ("svc0", "disk#a%b", 0), ("svc0", "disk#a b", 0)],
)  # fmt: skip
def test_exposed_dev_path_refuses_unsafe_parts(name: str, rid: str, index: int) -> None:
    """No part can leave the directory, need quoting in What=, or lack a rid index."""
    with pytest.raises(ValueError, match="unsafe path"):
        names.exposed_dev_path(ObjectPath(name=name), rid, index)


def test_names_does_not_import_the_ir() -> None:
    """The drivers import names for unit names: the IR stays out (import cost)."""
    code = "import sys, omc.compiler.contract.names; assert 'omc.compiler.ir' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
