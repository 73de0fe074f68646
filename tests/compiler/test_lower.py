"""Lowering to the typed IR, and which findings reject a file (the lower.py policy table)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omc.compiler import ir
from omc.compiler.diagnostics import Severity, render_text
from omc.compiler.pipeline import Result, compile_file, compile_text


def compile_ok(text: str, node: str = "n1", **kw: object) -> ir.Service:
    result = compile_text(text, filename="svc1.conf", node=node, **kw)  # type: ignore[arg-type]
    assert result.ok, render_text(result.diagnostics, text)
    assert result.service is not None
    return result.service


def codes(result: Result, severity: Severity | None = None) -> list[str]:
    return [d.code for d in result.diagnostics if severity is None or d.severity is severity]


def resource(service: ir.Service, rid: str) -> ir.Resource:
    (found,) = [r for r in service.resources if r.rid == rid]
    return found


def test_minimal_service_from_the_reference() -> None:
    """The §1.2 example lowers to an ip, a flag fs and a forking app."""
    service = compile_ok(
        "[DEFAULT]\nid = 9c2f\nnodes = n1 n2\norchestrate = ha\n"
        "[ip#0]\nname = 10.0.0.10\ndev = eth0\nnetmask = 24\n"
        "[fs#1]\ntype = flag\n"
        "[app#web]\nstart = /srv/web/bin/start\nstop = /srv/web/bin/stop\n"
        "check = /srv/web/bin/status\n"
    )
    assert (service.id, service.nodes, service.orchestrate) == ("9c2f", ("n1", "n2"), "ha")
    assert [(r.rid, r.driver) for r in service.resources] == [
        ("ip#0", "ip.host"),
        ("fs#1", "fs.flag"),
        ("app#web", "app.forking"),
    ]
    ip, fs, app = service.resources
    assert isinstance(ip, ir.IpResource) and (ip.ipname, ip.dev, ip.netmask) == (
        "10.0.0.10",
        "eth0",
        "24",
    )
    assert isinstance(fs, ir.FsResource) and not fs.is_mountable
    assert isinstance(app, ir.AppResource) and app.start == ("/srv/web/bin/start",)
    assert service.source == str(Path("svc1.conf").absolute())


def test_typed_fields_per_family() -> None:
    """Each driver family gets its typed fields converted."""
    service = compile_ok(
        "[disk#0]\ntype = loop\nfile = /var/img\nsize = 100m\n"
        "[fs#0]\ntype = ext4\ndev = {disk#0.exposed_devs[0]}\nmnt = /srv/x\nmnt_opt = noatime\n"
        "[container#0]\ntype = podman\nimage = nginx\nrun_args = -p 80:80\n"
        "environment = A=1 B=two\n"
        "[sync#0]\nsrc = /srv/x/\ndst = /srv/x\ntarget = nodes drpnodes\nschedule = @30m\n"
        "[task#0]\ncommand = /bin/backup --full\nschedule = 02:00-03:00\nconfirmation = true\n"
        "[app#0]\nscript = /etc/init.d/x\nstart = true\nstop = 10\ncheck = false\n"
        "limit_nofile = 4k\nenvironment = X=1\numask = 022\n"
        "[share#0]\ntype = nfs\npath = /srv/x\nopts = *(ro)\n"
    )
    disk = resource(service, "disk#0")
    assert isinstance(disk, ir.DiskResource) and (disk.file, disk.size) == ("/var/img", 100 << 20)
    fs = resource(service, "fs#0")
    assert isinstance(fs, ir.FsResource) and fs.is_mountable and fs.fs_type == "ext4"
    assert fs.dev == "{disk#0.exposed_devs[0]}"
    ctr = resource(service, "container#0")
    assert isinstance(ctr, ir.ContainerResource)
    assert (ctr.image, ctr.run_args, ctr.environment) == (
        "nginx",
        ("-p", "80:80"),
        (("A", "1"), ("B", "two")),
    )
    assert ctr.container_name == "root..svc1.container.0"
    sync = resource(service, "sync#0")
    assert isinstance(sync, ir.SyncResource) and sync.target == (
        ir.SyncTarget.NODES,
        ir.SyncTarget.DRPNODES,
    )
    assert sync.schedule is not None and sync.schedule.raw == "@30m"
    task = resource(service, "task#0")
    assert isinstance(task, ir.TaskResource) and task.command == ("/bin/backup", "--full")
    assert task.confirmation and task.schedule is not None
    app = resource(service, "app#0")
    assert isinstance(app, ir.AppResource)
    assert (app.start, app.stop, app.check) == (
        ("/etc/init.d/x", "start"),
        ("/etc/init.d/x", "stop"),
        None,
    )
    assert app.limits == (("LimitNOFILE", 4096),) and app.umask == 0o22
    share = resource(service, "share#0")
    assert isinstance(share, ir.ShareResource) and share.opts == "*(ro)"


def test_app_script_with_arguments_is_split_like_om3() -> None:
    """``script = /bin/echo {rid}`` with ``start = 10`` runs ``/bin/echo app#1 start``."""
    service = compile_ok("[app#1]\nscript = /bin/echo {rid}\nstart = 10\nstop = true\n")
    app = resource(service, "app#1")
    assert isinstance(app, ir.AppResource)
    assert (app.start, app.stop, app.sequence) == (
        ("/bin/echo", "app#1", "start"),
        ("/bin/echo", "app#1", "stop"),
        10,
    )


def test_resource_config_holds_evaluated_keywords_and_defaults() -> None:
    """``config`` is the JSON-friendly keyword map the runtime drivers read."""
    service = compile_ok("[ip#0]\nname = 1.2.3.4\ndev = {env.nic}\n[env]\nnic = br0\n")
    ip = resource(service, "ip#0")
    config = dict(ip.config)
    assert config["dev"] == "br0" and config["name"] == "1.2.3.4"
    assert config["alias"] is True and config["restart_delay"] == 0.5
    assert ip.get("check_carrier") is True


def test_common_flags_tags_and_triggers() -> None:
    """standby, tags (noaction implies optional, encap tag), requires and triggers."""
    service = compile_ok(
        "[fs#1]\ntype = flag\nstandby = true\ntags = a noaction encap\n"
        "start_requires = ip#0(up)\npre_start = /bin/echo 'hi there'\n"
        "blocking_post_stop = /bin/true\n[ip#0]\nname = 1.1.1.1\ndev = lo\n"
    )
    fs = resource(service, "fs#1")
    assert fs.standby and fs.optional and fs.encap and fs.tags == {"a", "noaction", "encap"}
    assert fs.start_requires == (ir.Requirement(rid="ip#0", states=("up",)),)
    assert fs.triggers == (
        ir.Trigger(when="pre", action="start", blocking=False, argv=("/bin/echo", "hi there")),
        ir.Trigger(when="post", action="stop", blocking=True, argv=("/bin/true",)),
    )


def test_resources_are_ordered_by_group_subset_and_rid() -> None:
    """ip < disk < fs < app; default set first, named subsets next, rid string order."""
    service = compile_ok(
        "[app#b]\nstart = /b\n[app#a]\nstart = /a\nsubset = s1\n[app#c]\nstart = /c\n"
        "[fs#10]\ntype = flag\n[fs#2]\ntype = flag\n[ip#0]\nname = 1.1.1.1\ndev = lo\n"
    )
    assert [r.rid for r in service.resources] == [
        "ip#0",
        "fs#10",
        "fs#2",
        "app#b",
        "app#c",
        "app#a",
    ]


def test_subsets_and_process_groups() -> None:
    """Subset sections give parallel flags and pg caps in systemd terms."""
    service = compile_ok(
        "[DEFAULT]\npg_mem_limit = 1g\npg_cpu_quota = 50%\n"
        "[app#1]\nstart = /x\nsubset = workers\npg_cpu_shares = 1024\n"
        "[subset#app:workers]\nparallel = true\npg_cpus = 1-2\npg_mem_limit = 400m\n"
        "pg_vmem_limit = 500m\npg_blkio_weight = 500\n"
    )
    (subset,) = service.subsets
    assert (subset.group, subset.name, subset.parallel) == (ir.Group.APP, "workers", True)
    assert subset.pg == ir.ProcessGroup(
        allowed_cpus="1-2", memory_max=400 << 20, memory_swap_max=100 << 20, io_weight=100
    )
    assert service.pg == ir.ProcessGroup(memory_max=1 << 30, cpu_quota="50%")
    assert resource(service, "app#1").pg.cpu_weight == 39


def test_cpu_quota_at_all_scales_with_cpu_count() -> None:
    """``50%@all`` is 50% of every cpu of the node."""
    service = compile_ok("[DEFAULT]\npg_cpu_quota = 50%@all\n")
    assert service.pg.cpu_quota == f"{50 * (os.cpu_count() or 1)}%"


def test_scoped_values_are_evaluated_for_the_node() -> None:
    """The same file gives different values on different nodes."""
    text = (
        "[DEFAULT]\nnodes = n1 n2\ndrpnodes = n3\n"
        "[ip#0]\ndev = eth0\nipname@n1 = 10.0.0.1\nipname@n2 = 10.0.0.2\n"
        "ipname@drpnodes = 10.9.0.1\n"
    )
    names = [resource(compile_ok(text, n), "ip#0") for n in ("n1", "n2", "n3")]
    assert [getattr(r, "ipname", None) for r in names] == ["10.0.0.1", "10.0.0.2", "10.9.0.1"]


def test_unknown_keyword_is_an_error_with_did_you_mean() -> None:
    """The issue's example, rendered exactly."""
    text = "[ip#0]\nipnme = 10.0.0.1\ndev = eth0\n"
    result = compile_text(text, filename="web.conf", node="n1")
    assert not result.ok and result.service is None
    assert render_text(result.diagnostics, text) == (
        "web.conf:2:1: error: unknown keyword 'ipnme' in [ip#0]\n"
        "   2 | ipnme = 10.0.0.1\n"
        "     | ^~~~~\n"
        "hint: did you mean 'ipname'?\n"
    )


def test_driver_omc_does_not_run_is_an_error_at_its_type_with_what_to_use() -> None:
    """An om3 driver the runtime lacks: rejected at its ``type``, hint naming omc's way."""
    text = "[container#0]\ntype = podman\nimage = x\n[ip#1]\ntype = cni\nnetns = container#0\n"
    result = compile_text(text, filename="web.conf", node="n1")
    assert not result.ok
    assert render_text(result.diagnostics, text) == (
        "web.conf:5:8: error: driver ip.cni in [ip#1] is not supported by omc's runtime\n"
        "   5 | type = cni\n"
        "     |        ^~~\n"
        "hint: use type = netns (netns = container#N, dev = a host bridge): omc plumbs the "
        "container's interface itself, without CNI\n"
    )


def test_v1_driver_is_rejected_as_om3_does_not_as_an_omc_limit() -> None:
    """A v1/v2 driver says om3 removed it (code legacy-driver), not that omc lacks it."""
    text = "[container#1]\ntype = hpvm\nname = vm1\n"
    (diag,) = compile_text(text, filename="web.conf", node="n1").diagnostics
    assert (diag.code, diag.message) == (
        "legacy-driver",
        "driver container.hpvm in [container#1] is v1/v2 only; om3 removed it",
    )
    assert diag.span is not None and (diag.span.line, diag.span.column) == (2, 8)


@pytest.mark.parametrize(
    ("text", "severity", "code"),
    [
        ("[container#1]\ntype = hpvm\nname = vm1\n", Severity.ERROR, "legacy-driver"),
        ("[container#1]\ntype = hpvm\noptional = true\n", Severity.WARNING, "legacy-driver"),
        ("[ip#1]\ntype = amazon\ndisable = true\n", Severity.WARNING, "legacy-driver"),
        ("[sync#1]\ntype = dds\nsrc = /a\n", Severity.ERROR, "legacy-driver"),
        ("[disk#1]\ntype = crypt\ndev = /dev/x\n", Severity.ERROR, "unsupported-driver"),
        ("[disk#1]\ntype = drbd\nres = r0\n", Severity.ERROR, "unsupported-driver"),
        ("[fs#1]\ntype = zfs\nmnt = /x\ndev = p/x\n", Severity.ERROR, "unsupported-driver"),
        ("[container#1]\ntype = kvm\noptional = true\n", Severity.WARNING, "unsupported-driver"),
        ("[volume#1]\npool = p\nsize = 1g\n", Severity.ERROR, "unsupported-driver"),
        ("[vg#1]\nvgname = data\n", Severity.ERROR, "legacy-section"),
        ("[vmdg]\nscsireserv = false\n", Severity.ERROR, "legacy-section"),
        ("[subset#container.docker:x]\nparallel = true\n", Severity.ERROR, "legacy-section"),
        ("[fs#1]\nmnt = /x\n", Severity.ERROR, "v2-only"),
        ("[disk#1]\nname = x\n", Severity.ERROR, "missing-type"),
        ("[fs#1]\ntype = wombatfs\nmnt = /x\n", Severity.ERROR, "unknown-driver"),
        ("[fs#1]\ntype = ext4\n", Severity.ERROR, "missing-keyword"),
        ("[DEFAULT]\ndocker_data_dir = /x\n", Severity.WARNING, "legacy-keyword"),
        ("[DEFAULT]\nrollback = no\n", Severity.WARNING, "legacy-boolean"),
        ("[DEFAULT]\nid@n1 = x\n", Severity.WARNING, "not-scopable"),
        (
            "[DEFAULT]\nnodes = n1\n[fs#1]\ntype = flag\ntags@node = x\n",
            Severity.WARNING,
            "unknown-scope",
        ),
        ("[DEFAULT]\norchestrate = started\n", Severity.ERROR, "invalid-value"),
        ("[DEFAULT]\npriority = high\n", Severity.ERROR, "invalid-value"),
        ("[fs#1]\ntype = flag\nmnt = /x\n", Severity.WARNING, "keyword-not-for-driver"),
        ("[hb#1]\ntype = unicast\n", Severity.WARNING, "node-section"),
        ("[wat]\nx = 1\n", Severity.ERROR, "unknown-section"),
        ("[ip#]\nname = x\n", Severity.ERROR, "bad-section"),
        ("[app#1]\nenvironment = NOEQUALS\n", Severity.ERROR, "invalid-value"),
        (
            "[app#1]\nscript = {volume#v.mnt}/run\nstart = true\n[volume#v]\npool = p\n",
            Severity.ERROR,
            "unsupported-reference",
        ),
        (
            "[app#1]\npre_start = {volume#v.mnt}/x\n[volume#v]\npool = p\n",
            Severity.ERROR,
            "unsupported-reference",
        ),
    ],
)
def test_policy_table(text: str, severity: Severity, code: str) -> None:
    """Each finding has the severity the lower.py table documents."""
    result = compile_text(text, filename="t.conf", node="n1")
    assert code in codes(result, severity), result.diagnostics
    assert result.ok is (severity is not Severity.ERROR)


def test_skipped_resource_leaves_the_rest_compiled() -> None:
    """An optional legacy resource is dropped; the other resources remain."""
    service = compile_ok("[container#1]\ntype = hpvm\noptional = true\n[fs#1]\ntype = flag\n")
    assert [r.rid for r in service.resources] == ["fs#1"]


def test_all_diagnostics_of_a_file_come_in_one_pass() -> None:
    """Errors in several sections are all reported, sorted by position."""
    text = "[DEFAULT]\nnodez = n1\n[ip#0]\nipnme = x\n[app#1]\nstart = 'unclosed\n"
    result = compile_text(text, filename="t.conf", node="n1")
    errors = [(d.span.line if d.span else 0, d.code) for d in result.diagnostics if d.is_error]
    assert errors == [(2, "unknown-keyword"), (4, "unknown-keyword"), (6, "invalid-value")]


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("c1.conf", "[DEFAULT]\n[data]\nk = literal:v\n", ir.Kind.CFG),
        ("s1.conf", "[data]\nk = crypt:abc\n", ir.Kind.SEC),
        ("u1.conf", "[DEFAULT]\ngrant = admin:*\n", ir.Kind.USR),
        ("v1.conf", "[DEFAULT]\npool = p\nsize = 1g\n[fs#1]\ntype = flag\n", ir.Kind.VOL),
        ("t1.conf", "[DEFAULT]\nkind = vol\n", ir.Kind.VOL),
        ("w1.conf", "[DEFAULT]\nnodes = n1\n", ir.Kind.SVC),
    ],
)
def test_kind_inference(name: str, text: str, kind: ir.Kind) -> None:
    """Kind from content when no path is given (rule table in api.py)."""
    result = compile_text(text, filename=name, node="n1")
    assert result.path == ir.ObjectPath(name=name.removesuffix(".conf"), kind=kind)


def test_kind_from_the_om3_directory_layout(tmp_path: Path) -> None:
    """``<etc>/cfg/<name>.conf`` is a cfg object."""
    file = tmp_path / "cfg" / "app.conf"
    file.parent.mkdir()
    file.write_text("[DEFAULT]\n")
    assert compile_file(file, node="n1").path == ir.ObjectPath(name="app", kind=ir.Kind.CFG)


def test_cfg_objects_are_validated_but_produce_no_service() -> None:
    """cfg/sec/usr: parsed and validated, no units (service is None)."""
    good = compile_text("[data]\nk = literal:v\n", filename="c.conf", node="n1")
    assert good.ok and good.service is None
    bad = compile_text("[DEFAULT]\nnodez = x\n[data]\nk = v\n", filename="c.conf", node="n1")
    assert not bad.ok and "unknown-keyword" in codes(bad)


def test_explicit_path_is_used_for_references() -> None:
    """``{namespace}`` and ``{name}`` follow the given path."""
    path = ir.ObjectPath(namespace="prod", name="web")
    service = compile_ok("[fs#1]\ntype = flag\ncomment = {namespace}/{name}\n", path=path)
    assert service.path == path and resource(service, "fs#1").comment == "prod/web"


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    """A missing file is reported, not raised."""
    result = compile_file(tmp_path / "nope.conf", node="n1")
    assert not result.ok and codes(result) == ["unreadable-file"]


def test_service_level_values() -> None:
    """DEFAULT keywords land in typed Service fields and its config."""
    service = compile_ok(
        "[DEFAULT]\nnodes = n1 n2 n3\ntopology = flex\nflex_min = 2\npriority = 10\n"
        "parents = db\nrollback = false\nstop_timeout = 1m\n[env]\na = 1\n"
    )
    assert (service.topology, service.flex_min, service.flex_max, service.flex_target) == (
        ir.Topology.FLEX,
        2,
        3,
        2,
    )
    assert (service.priority, service.parents, service.rollback, service.stop_timeout) == (
        10,
        ("db",),
        False,
        60.0,
    )
    assert service.env == (("a", "1"),) and dict(service.config)["timeout"] == 3600.0


@pytest.mark.parametrize(
    ("nodes", "cluster", "expected"),
    [
        ("n1 n2", "", ("n1", "n2")),
        ("*", "n1 n2 n3", ("n1", "n2", "n3")),
        ("n[23] n1", "n1 n2 n3", ("n2", "n3", "n1")),
        ("az=fr1", "n1", ("az=fr1",)),
        ("*", "", ("*",)),
    ],
)
def test_node_selectors_expand_against_cluster_nodes(
    nodes: str, cluster: str, expected: tuple[str, ...]
) -> None:
    """Globs expand over the cluster's nodes when they are known."""
    service = compile_ok(f"[DEFAULT]\nnodes = {nodes}\n", cluster={"clusternodes": cluster})
    assert service.nodes == expected


def test_rid_that_would_escape_a_directory_is_a_positioned_error() -> None:
    """``[app#x/../../etc/victim]`` is refused: caret under the section name, with a hint."""
    text = "[DEFAULT]\nid = 1\n\n[app#x/../../etc/victim]\nstart = /bin/true\n"
    result = compile_text(text, filename="web.conf", node="n1")
    assert not result.ok and result.service is None
    assert render_text(result.diagnostics, text) == (
        "web.conf:4:2: error: invalid resource id 'app#x/../../etc/victim': the index after '#'"
        " must be 1 to 64 letters, digits, '_' or '-', not starting with '-'\n"
        "   4 | [app#x/../../etc/victim]\n"
        "     |  ^~~~~~~~~~~~~~~~~~~~~~\n"
        "hint: rename the section, e.g. [app#x_etc_victim]\n"
    )


@pytest.mark.parametrize("rid", ["fs#a.b", "fs#-x", "fs#" + "x" * 65, "fs#x y", "fs#é", "fs#1/x"])
def test_rids_outside_the_grammar_are_errors(rid: str) -> None:
    """Dots, a leading '-', spaces, non-ASCII and over-long indexes are all refused."""
    result = compile_text(f"[{rid}]\ntype = flag\n", filename="t.conf", node="n1")
    assert "bad-section" in codes(result, Severity.ERROR), result.diagnostics


@pytest.mark.parametrize("rid", ["app#1ok", "fs#data", "sync#i0", "container#db", "app#web-1"])
def test_rids_of_real_configs_stay_valid(rid: str) -> None:
    """What the corpus spells (and a dash) is inside the grammar."""
    from omc.compiler.contract.paths import rid_error

    assert rid_error(rid) == ""


@pytest.mark.parametrize(("section", "keyword"), [("app#1", "start"), ("task#1", "command")])
def test_a_relative_cwd_is_an_error_at_the_keyword(section: str, keyword: str) -> None:
    """``WorkingDirectory=`` needs an absolute path: the caret is under the value, not
    under the section header (where the unit writer used to report it)."""
    text = f"[{section}]\n{keyword} = /bin/true\n\ncwd = var/www\n"
    result = compile_text(text, filename="web.conf", node="n1")
    assert not result.ok
    assert render_text(result.diagnostics, text) == (
        f"web.conf:4:7: error: cwd 'var/www' in [{section}] must be an absolute path\n"
        "   4 | cwd = var/www\n"
        "     |       ^~~~~~~\n"
        "hint: write cwd = /var/www\n"
    )
