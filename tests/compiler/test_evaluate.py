"""Evaluation for a node: scoping precedence (§1.6), inheritance (§1.5), references (§1.7)."""

from __future__ import annotations

import pytest
from omc.compiler import ir
from omc.compiler.diagnostics import Collector
from omc.compiler.evaluate import Context, Evaluator
from omc.compiler.parse import parse

PATH = ir.ObjectPath(name="svc1", namespace="ns1")


def evaluator(text: str, node: str = "n1", **ctx: object) -> tuple[Evaluator, Collector]:
    diags = Collector(file="t.conf")
    doc = parse(text, filename="t.conf", diags=diags)
    context = Context(node=node, path=ctx.pop("path", PATH), **ctx)  # type: ignore[arg-type]
    return Evaluator(doc, ctx=context, diags=diags), diags


def get(text: str, section: str, key: str, node: str = "n1", **ctx: object) -> str | None:
    ev, diags = evaluator(text, node, **ctx)
    value = ev.get(section, key)
    assert not diags.has_errors, diags.items
    return value.text if value else None


HEAD = "[DEFAULT]\nnodes = n1 n2\ndrpnodes = n3\nencapnodes = vm1\n"


@pytest.mark.parametrize(
    ("lines", "node", "expected"),
    [
        ("k = plain", "n1", "plain"),
        ("k = plain\nk@n1 = node", "n1", "node"),
        ("k = plain\nk@n1 = node", "n2", "plain"),
        ("k@nodes = nodes\nk = plain", "n2", "nodes"),
        ("k@nodes = nodes\nk = plain", "n3", "plain"),
        ("k@drpnodes = drp\nk = plain", "n3", "drp"),
        ("k@drpnodes = drp\nk@n3 = node\nk = plain", "n3", "node"),
        ("k@encapnodes = encap\nk = plain", "vm1", "encap"),
        ("k@nodes = nodes\nk@drpnodes = drp", "n1", "nodes"),
        ("k = a\nk = b", "n1", "b"),
        ("k@N1 = upper-scope", "n1", "upper-scope"),
        ("k@n1 = node", "N1", "node"),
        ("k@n9 = other", "n1", None),
    ],
)
def test_scoping_precedence(lines: str, node: str, expected: str | None) -> None:
    """kw@node > kw@nodes > kw@drpnodes > kw@encapnodes > kw; last one wins in a level."""
    assert get(f"{HEAD}[app#1]\n{lines}\n", "app#1", "k", node=node) == expected


def test_scoping_tries_aliases_at_each_level() -> None:
    """A scoped alias beats an unscoped main name."""
    text = f"{HEAD}[ip#0]\nname = 1.1.1.1\nipname@n1 = 2.2.2.2\n"
    assert get(text, "ip#0", "name") == "2.2.2.2"


def test_non_scopable_keyword_ignores_scoped_lines() -> None:
    """``flex_min@n1`` has no effect: flex_min is not scopable."""
    text = "[DEFAULT]\nnodes = n1\nflex_min = 1\nflex_min@n1 = 2\n"
    assert get(text, "DEFAULT", "flex_min") == "1"


def test_nodes_scoped_by_encapnodes() -> None:
    """Inside the container the service sees only its encap node (§1.6 example)."""
    text = "[DEFAULT]\nnodes = n1 n2\nencapnodes = vm1\nnodes@encapnodes = vm1\n"
    assert get(text, "DEFAULT", "nodes", node="vm1") == "vm1"
    assert get(text, "DEFAULT", "nodes", node="n1") == "n1 n2"


def test_nodes_at_nodes_does_not_recurse() -> None:
    """A scope on the keyword defining that scope is ignored, not a loop."""
    text = "[DEFAULT]\nnodes = n1 n2\nnodes@nodes = n1\n"
    assert get(text, "DEFAULT", "nodes") == "n1 n2"


def test_flex_primary_scope() -> None:
    """``@flex_primary`` applies on the first node unless flex_primary says otherwise."""
    text = "[DEFAULT]\nnodes = n1 n2\n[app#1]\nk = all\nk@flex_primary = primary\n"
    assert get(text, "app#1", "k", node="n1") == "primary"
    assert get(text, "app#1", "k", node="n2") == "all"
    moved = text.replace("nodes = n1 n2", "nodes = n1 n2\nflex_primary = n2")
    assert get(moved, "app#1", "k", node="n2") == "primary"


@pytest.mark.parametrize(
    ("text", "section", "key", "expected"),
    [
        ("[DEFAULT]\nsync_schedule = @1h\n[sync#0]\nsrc = /a\n", "sync#0", "schedule", "@1h"),
        ("[sync#0]\nsrc = /a\n", "sync#0", "schedule", "04:00-06:00"),
        ("[DEFAULT]\nrun_schedule = @5m\n[task#0]\ncommand = x\n", "task#0", "schedule", "@5m"),
        ("[DEFAULT]\noptional = true\n[app#1]\noptional = false\n", "app#1", "optional", "true"),
        ("[DEFAULT]\nrestart = 3\n[app#1]\nscript = x\n", "app#1", "restart", "3"),
        ("[app#1]\nscript = x\n", "app#1", "restart_delay", "500ms"),
        ("[DEFAULT]\nnodes = a b c\n", "DEFAULT", "flex_max", "3"),
        ("[DEFAULT]\nflex_min = 2\n", "DEFAULT", "flex_target", "2"),
        ("[DEFAULT]\n", "DEFAULT", "nodes", "n1"),
        ("[DEFAULT]\ncluster_type = flex\n", "DEFAULT", "topology", "flex"),
    ],
)
def test_inheritance_and_defaults(text: str, section: str, key: str, expected: str) -> None:
    """leaf2head falls back to DEFAULT (or its DefaultOption), head2leaf prefers DEFAULT."""
    assert get(text, section, key) == expected


CLUSTER = {"clustername": "c1", "clusternodes": "n1 n2"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{nodename}", "n1"),
        ("{short_nodename}", "n1"),
        ("{name}", "svc1"),
        ("{svcname}", "svc1"),
        ("{namespace}", "ns1"),
        ("{kind}", "svc"),
        ("{path}", "ns1/svc/svc1"),
        ("{fqdn}", "svc1.ns1.svc.c1"),
        ("{domain}", "ns1.svc.c1"),
        ("{clustername}", "c1"),
        ("{clusternodes}", "n1 n2"),
        ("{id}", "abc"),
        ("{rid}", "app#web"),
        ("{rindex}", "web"),
        ("{rgroup}", "app"),
        ("{env.port}", "8080"),
        ("{env.url}", "http://svc1:8080"),
        ("{#nodes}", "2"),
        ("{nodes[1]}", "n2"),
        ("{DEFAULT.nodes[0]}", "n1"),
        ("{upper:name}", "SVC1"),
        ("{capitalize:env.word}", "Hello"),
        ("{fs#1.mnt}/data", "/srv/svc1/data"),
        ("{script}", "/bin/app"),
        ("{private_var}", "/var/lib/opensvc/namespaces/ns1/svc/svc1"),
        ("{disk#1.exposed_devs[0]}", "{disk#1.exposed_devs[0]}"),
        ("{volume#1.mnt}", "{volume#1.mnt}"),
        ("{node.node.prkey}", "{node.node.prkey}"),
        ("no reference", "no reference"),
        ("{not a ref}", "{not a ref}"),
    ],
)
def test_references(value: str, expected: str) -> None:
    """Well-known names, env, counts, indexes, modifiers, cross-section keys, deferred refs."""
    text = (
        "[DEFAULT]\nid = abc\nnodes = n1 n2\n"
        "[env]\nport = 8080\nurl = http://{name}:{env.port}\nword = hello\n"
        "[fs#1]\ntype = flag\nmnt = /srv/{name}\n[volume#1]\npool = p\n"
        f"[app#web]\nscript = /bin/app\nk = {value}\n"
    )
    assert get(text, "app#web", "k", cluster=CLUSTER) == expected


def test_env_overrides_win_over_the_env_section() -> None:
    """``--env k=v`` style overrides replace [env] values."""
    text = "[env]\nport = 80\n[app#1]\nk = {env.port}\n"
    assert get(text, "app#1", "k", env={"port": "81"}) == "81"


def test_env_keys_are_scopable() -> None:
    """``priority@n2 = 2`` in [env] applies on n2."""
    text = "[DEFAULT]\nnodes = n1 n2\n[env]\np = 1\np@n2 = 2\n[app#1]\nk = {env.p}\n"
    assert get(text, "app#1", "k", node="n2") == "2"


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (
            "[fs#1]\ntype = flag\nmnt = {fs#2.mnt}\n[fs#2]\ntype = flag\nmnt = {fs#1.mnt}\n",
            "reference loop: fs#1.mnt -> fs#2.mnt -> fs#1.mnt",
        ),
        ("[env]\na = {env.a}\n", "reference loop: env.a -> env.a"),
    ],
)
def test_reference_loops_are_errors_with_the_chain(text: str, chain: str) -> None:
    """A loop is reported once, with every step, and does not hang."""
    ev, diags = evaluator(text)
    section = "fs#1" if "fs#1" in text else "env"
    ev.get(section, "mnt" if section == "fs#1" else "a")
    loops = [d for d in diags.items if d.code == "reference-loop"]
    assert [d.message for d in loops] == [chain]
    assert loops[0].span is not None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("{env.missing}", "unknown-reference"),
        ("{nosuch#1.mnt}", "unknown-reference"),
        ("{bogus}", "unknown-reference"),
        ("{nodes[5]}", "bad-reference"),
    ],
)
def test_bad_references_are_errors_at_the_value(value: str, code: str) -> None:
    """Unknown names and out-of-range indexes are errors pointing at the value."""
    ev, diags = evaluator(f"[DEFAULT]\nnodes = n1\n[env]\nx = 1\n[app#1]\nk = {value}\n")
    value_obj = ev.get("app#1", "k")
    assert value_obj is not None and value_obj.text == value
    (diag,) = [d for d in diags.items if d.is_error]
    assert diag.code == code
    assert diag.span is not None and (diag.span.line, diag.span.column) == (6, 5)


def test_known_keyword_without_value_is_left_as_written_with_a_warning() -> None:
    """om3 leaves such references unchanged; we warn."""
    text = "[disk#1]\ntype = md\n[fs#1]\ntype = ext4\nmnt = /x\ndev = /dev/{disk#1.name}/root\n"
    ev, diags = evaluator(text)
    value = ev.get("fs#1", "dev")
    assert value is not None and value.text == "/dev/{disk#1.name}/root"
    assert [d.code for d in diags.items] == ["empty-reference"]


def test_type_may_be_a_reference() -> None:
    """``type = {env.fstype}`` selects the driver after evaluation."""
    ev, _ = evaluator("[env]\nfstype = XFS\n[fs#1]\ntype = {env.fstype}\nmnt = /m\n")
    assert ev.driver_type("fs#1") == "xfs"


@pytest.mark.parametrize(
    ("rid", "written", "expected"),
    [
        ("app#1", "", "forking"),
        ("ip#0", "", "host"),
        ("ip#0", "docker", "netns"),
        ("disk#0", "lvm", "vg"),
        ("container#0", "", "oci"),
        ("sync#0", "", "rsync"),
    ],
)
def test_driver_type_defaults_and_aliases(rid: str, written: str, expected: str) -> None:
    """Empty types take the group default; old names map to om3 ones."""
    body = f"type = {written}\n" if written else "comment = x\n"
    ev, _ = evaluator(f"[{rid}]\n{body}")
    assert ev.driver_type(rid) == expected
