"""The node half of the contract: config discovery, node name, `om` path, cluster values."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omc.compiler.contract import node
from omc.compiler.contract.paths import Kind, ObjectPath

from tests.trees import layout


def test_discover_follows_the_om3_config_layout(etc: Path) -> None:
    """Paths come from locations (root svc, <kind>/, namespaces/<ns>/<kind>/), not names."""
    layout(etc, {
        "web.conf": "", "cluster.conf": "", "node.conf": "", "namespace.conf": "",
        "cfg/c1.conf": "", "vol/v1.conf": "", "namespaces/ns1/svc/db.conf": "",
        "namespaces/ns1/namespace.conf": "", "web.d/notes.conf": "", "readme.txt": "",
    })  # fmt: skip
    found, refused = node.discover(etc)
    assert {str(path): file.relative_to(etc).as_posix() for file, path in found} == {
        "web": "web.conf",
        "cfg/c1": "cfg/c1.conf",
        "vol/v1": "vol/v1.conf",
        "ns1/svc/db": "namespaces/ns1/svc/db.conf",
    }
    assert refused == []


def test_discover_gives_typed_paths(etc: Path) -> None:
    """A namespaced config gets namespace, kind and name from its directories."""
    layout(etc, {"namespaces/ns1/svc/db.conf": ""})
    ((_, path),), _ = node.discover(etc)
    assert path == ObjectPath(namespace="ns1", kind=Kind.SVC, name="db")


def test_discover_refuses_names_om_refuses(etc: Path) -> None:
    """A config file named as no object can be (uppercase, reserved) is reported, not used."""
    layout(etc, {"Web.conf": "", "cfg.conf": "", "ok.conf": ""})
    found, refused = node.discover(etc)
    assert [str(p) for _, p in found] == ["ok"]
    assert len(refused) == 2
    assert all("invalid name" in r for r in refused)


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("etc/opensvc/namespaces/ns1/svc/db.conf", "ns1/svc/db"),
        ("etc/opensvc/cfg/c1.conf", "cfg/c1"),
        ("etc/opensvc/svc/web.conf", "web"),
        ("etc/opensvc/web.conf", None),
        ("home/me/web.conf", None),
    ],
)
def test_path_from_location(rel: str, expected: str | None) -> None:
    """`omc compile` gives a file under the om3 layout the path its location implies."""
    path = node.path_from_location(Path("/") / rel)
    assert (str(path) if path else None) == expected


def test_config_file_follows_the_om3_layout(tmp_path: Path) -> None:
    """Root svc at the top, other kinds in <kind>/, namespaces under namespaces/."""
    assert node.config_file(ObjectPath(name="web"), tmp_path) == tmp_path / "web.conf"
    assert (
        node.config_file(ObjectPath(kind=Kind.CFG, name="c"), tmp_path) == tmp_path / "cfg/c.conf"
    )
    ns = ObjectPath(namespace="ns1", kind=Kind.SVC, name="db")
    assert node.config_file(ns, tmp_path) == tmp_path / "namespaces/ns1/svc/db.conf"


def test_default_om_is_beside_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `--om`, ExecStart lines use the `om` next to the running Python."""
    monkeypatch.delenv("OMC_OM", raising=False)
    assert node.om_path() == str(Path(sys.executable).absolute().parent / "om")


def test_default_node_is_the_lowercased_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `--node`, configs are evaluated for this host, as om3 names it."""
    monkeypatch.delenv("OMC_NODE", raising=False)
    fake = os.uname_result(("Linux", "Node-A.Example", "6.1", "#1", "x86_64"))
    monkeypatch.setattr("os.uname", lambda: fake)
    assert node.node_name() == "node-a.example"


def test_default_node_matches_socket_gethostname(monkeypatch: pytest.MonkeyPatch) -> None:
    """The uname(2) node name read without importing socket is what socket reports."""
    import socket

    monkeypatch.delenv("OMC_NODE", raising=False)
    assert node.node_name() == socket.gethostname().lower()


def test_cluster_name_is_read_from_cluster_conf(tmp_path: Path) -> None:
    """`{clustername}` comes from `<etc>/cluster.conf` [cluster] name, else `default`."""
    assert node.cluster_settings(tmp_path) == {"clustername": "default"}
    (tmp_path / "cluster.conf").write_text("[cluster]\nname = reliable-leopard\nid = x\n")
    assert node.cluster_settings(tmp_path) == {"clustername": "reliable-leopard", "clusterid": "x"}
