"""The pure parts of the lab: naming, addressing, cgroup layout, unit texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from omc.runtime.lab import api, cgroups, network, security, services, state
from omc.runtime.lab.state import LabError, LabState, check_name, node_address, node_names, plan

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,xattr,cpuset
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /proc rw - proc proc rw
"""
HYBRID_CGROUP = "9:name=systemd:/\n3:cpuset:/\n1:cpu:/a/b\n0::/\n"


def _state(**kw: bool) -> LabState:
    opts = {"etcd": True, "ssh": False, "tls": False} | kw
    return plan("demo", 7, nodes=3, drp=1, **opts)


@pytest.mark.parametrize("name", ["lab", "t1234567", "a", "demo2"])
def test_valid_names(name: str) -> None:
    """Short lowercase names are accepted unchanged."""
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Lab", "1lab", "with-dash", "much-too-long-name", "a/b"])
def test_invalid_names(name: str) -> None:
    """Names that cannot fit in link and netns names are refused with a reason."""
    with pytest.raises(LabError, match="invalid lab name"):
        check_name(name)


def test_node_names() -> None:
    """Nodes are n1…nN, then DRP nodes d1…dM."""
    assert node_names(2, 1) == [("n1", False), ("n2", False), ("d1", True)]


@pytest.mark.parametrize(("node", "address"), [("n1", "10.231.7.11"), ("n3", "10.231.7.13"),
                                                ("d1", "10.231.7.101")])  # fmt: skip
def test_node_addresses(node: str, address: str) -> None:
    """Each lab index owns 10.231.<index>.0/24; nK is .10+K and dK is .100+K."""
    assert node_address(7, node) == address


def test_plan_names_fit_the_kernel_limits() -> None:
    """Interface names stay within IFNAMSIZ (15) and carry the lab index."""
    state = plan("t4194304", 250, nodes=40, drp=40, etcd=False, ssh=False, tls=False)
    assert max(len(n.veth) for n in state.nodes) <= 15
    assert state.bridge == "olbr250"
    assert state.node("d40").netns == "omc-t4194304-d40"


def test_state_round_trips_through_json() -> None:
    """state.json reads back as the same state."""
    state = _state()
    assert LabState.from_json(state.to_json()) == state


def test_cgroup_hierarchies_follow_the_host_layout() -> None:
    """Each host hierarchy is remounted with its controllers, below the caller's cgroup."""
    found = cgroups.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert [(h.mountpoint, h.fstype, h.data) for h in found] == [
        ("/sys/fs/cgroup/cpu", "cgroup", "cpu"),
        ("/sys/fs/cgroup/cpuset", "cgroup", "cpuset"),
        ("/sys/fs/cgroup/systemd", "cgroup", "none,name=systemd"),
        ("/sys/fs/cgroup/unified", "cgroup2", ""),
    ]
    assert found[0].dir_for("omc-lab", "x", "n1") == "/sys/fs/cgroup/cpu/a/b/omc-lab/x/n1"


def test_pure_cgroup2_host() -> None:
    """On a cgroup v2 host the node mounts one cgroup2 at /sys/fs/cgroup."""
    info = "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    (only,) = cgroups.parse(info, "0::/user.slice\n")
    assert (only.mountpoint, only.fstype, only.own_path) == (
        "/sys/fs/cgroup",
        "cgroup2",
        "/user.slice",
    )


@pytest.mark.parametrize(
    ("mountinfo", "expected"),
    [
        (HYBRID_MOUNTINFO, ("/sys/fs/cgroup/unified", "favordynmods")),
        (
            "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
            ("/sys/fs/cgroup", "nsdelegate,memory_recursiveprot,favordynmods"),
        ),
        ("30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,favordynmods\n", None),
        ("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", None),
    ],
)
def test_favordynmods_remount_keeps_the_other_options(
    mountinfo: str, expected: tuple[str, str] | None
) -> None:
    """The remount adds favordynmods to cgroup2's options; nothing when on or no cgroup2."""
    assert cgroups.favordynmods_remount(mountinfo) == expected


def test_favordynmods_is_no_v1_controller() -> None:
    """A v1 hierarchy showing favordynmods is still mounted by its controllers alone."""
    info = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,favordynmods\n"
    (cpu,) = cgroups.parse(info, "1:cpu:/\n")
    assert cpu.data == "cpu"


def test_host_network_gets_no_address() -> None:
    """The batch never adds a host address; it disables IPv6 link-local on bridge and veths."""
    lines = network.host_lines(_state())
    assert not [ln for ln in lines if " addr " in f" {ln} "]
    assert "link set olbr7 addrgenmode none" in lines
    assert "link add ol7n1 type veth peer name eth0 netns omc-demo-n1" in lines


def test_etcd_members_are_the_non_drp_nodes() -> None:
    """The initial cluster lists n1…n3; the DRP node runs no member but knows the endpoints."""
    state = _state()
    unit = services.etcd_unit(state, state.node("n2"))
    assert "--initial-cluster=n1=http://10.231.7.11:2380,n2=http://10.231.7.12:2380," in unit
    assert "d1=" not in unit
    assert services.ETCD_UNIT not in services.node_units(state, state.node("d1"))
    files = services.etc_files(state, state.node("d1"))
    assert files["opensvc/etcd.endpoints"].split() == [
        "http://10.231.7.11:2379", "http://10.231.7.12:2379", "http://10.231.7.13:2379",
    ]  # fmt: skip


def test_endpoints_list_own_member_first() -> None:
    """A member's endpoint file starts with its own client URL."""
    state = _state(tls=True)
    assert services.endpoints(state, state.node("n3"))[0] == "https://10.231.7.13:2379"


def test_tmpfiles_setup_is_masked() -> None:
    """The unit that would empty the host's /tmp is masked in every node."""
    assert {"systemd-tmpfiles-setup.service", "systemd-sysctl.service"} <= set(services.masks())


def test_target_pulls_only_the_lab_services() -> None:
    """The boot target wants dbus, journald and the enabled lab services, nothing else."""
    target = services.target_unit(_state(etcd=False, ssh=True))
    assert "omc-lab-sshd.service" in target
    assert "omc-lab-etcd.service" not in target


def test_tls_members_require_client_certificates() -> None:
    """With TLS, the client port is https only and demands a certificate of the lab CA
    (peers stay on the lab's bridge in plain http)."""
    state = _state(tls=True)
    unit = services.etcd_unit(state, state.node("n1"))
    flags = ("--client-cert-auth", "--trusted-ca-file=", "--cert-file=", "--key-file=",
             "--listen-client-urls=https://10.231.7.11:2379,https://127.0.0.1:2379")  # fmt: skip
    assert [f for f in flags if f not in unit] == []
    assert "--listen-peer-urls=http://10.231.7.11:2380" in unit


def test_a_cluster_lab_over_tls_gets_etcd_auth() -> None:
    """cluster.conf carries the cluster user and its password, no `insecure`; the auth
    unit runs everywhere, provisioning on the first member only, before the daemon."""
    state = _state(tls=True, cluster=True)
    secrets = security.Secrets(user="omc-demo", password="p4ss")
    conf = services.cluster_conf(state, state.node("n2"), secrets)
    assert "user = omc-demo\npassword = p4ss\n" in conf
    assert "insecure" not in conf
    assert "opensvc/cluster.conf" in services.SECRET_FILES
    assert security.AUTH_UNIT in services.target_unit(state)
    units = {n.name: services.node_units(state, n)[security.AUTH_UNIT] for n in state.nodes}
    assert [n for n, text in units.items() if "omc.runtime.lab.security" in text] == ["n1"]
    waiter = f"ExecStart=/bin/sh -c 'until test -e \"$$1\"; do sleep 0.05; done' wait {state.dir}/"
    assert all(waiter in units[n] for n in ("n2", "n3", "d1"))
    assert all("Before=omc-daemon.service" in text for text in units.values())
    assert "p4ss" not in repr(secrets)


def test_a_no_tls_cluster_lab_is_plain_http_without_auth() -> None:
    """--no-tls: http endpoints, `insecure = true`, no user, no auth unit."""
    state = _state(tls=False, cluster=True)
    conf = services.cluster_conf(state, state.node("n1"), security.Secrets())
    assert "insecure = true" in conf
    assert "user =" not in conf
    assert security.AUTH_UNIT not in services.node_units(state, state.node("n1"))


def test_a_tls_lab_without_cluster_has_no_auth() -> None:
    """A plain `--tls` lab (no cluster.conf) keeps client certificates but no etcd auth."""
    state = _state(tls=True)
    assert not security.auth_enabled(state)
    assert security.AUTH_UNIT not in services.target_unit(state)


def test_outermost_keeps_the_top_of_nested_paths() -> None:
    """A venv inside the checkout is bound with the checkout, not a second time."""
    paths = [Path("/tmp/x/.venv"), Path("/tmp/x"), Path("/tmp/xy"), Path("/tmp/x")]
    assert api.outermost(paths) == ["/tmp/x", "/tmp/xy"]


def test_the_checkout_and_venv_are_shared() -> None:
    """What this run imports from is shared with its nodes; /usr and / never are."""
    shared = api.shared_dirs(Path("/run/omc-lab/demo"))
    assert any(api.checkout_dir().is_relative_to(s) for s in shared)
    assert not {"/", "/usr", "/etc", "/var"} & set(shared)


@pytest.mark.parametrize(
    ("root", "refused"),
    [
        ("/run/omc-lab", None),
        ("/work/labs", None),
        ("/var/lib/omc-lab", "below /var, which lab nodes overlay"),
        ("/srv/labs", "below /srv, which lab nodes overlay"),
        ("/usr/local/labs", "below /usr/local, which lab nodes overlay"),
        ("/tmp/labs", "below /tmp, which lab nodes replace by a private tmpfs"),
    ],
)
def test_lab_root_below_a_private_tree_is_refused(root: str, refused: str | None) -> None:
    """A lab directory below a tree nodes overlay or hide could not hold their layers."""
    problem = api.lab_root_problem(Path(root))
    assert problem is None if refused is None else refused in str(problem)


def test_up_refuses_a_lab_root_nodes_would_overlay(monkeypatch: pytest.MonkeyPatch) -> None:
    """`OMC_LAB_ROOT` below /srv is refused with the reason, before anything is made."""
    monkeypatch.setattr(state, "ROOT", Path("/srv/omct-labs"))
    with pytest.raises(LabError, match=r"OMC_LAB_ROOT\): /srv/omct-labs is below /srv"):
        api.Lab.up("demo", nodes=1, etcd=False)
    assert not Path("/srv/omct-labs").exists()
