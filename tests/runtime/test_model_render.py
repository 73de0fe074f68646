"""Reading the model back from unit texts, object selectors, and the print status layout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from omc.compiler.contract.names import slice_cgroups
from omc.compiler.contract.node import config_file
from omc.compiler.contract.paths import ObjectPath, PathError, parse_path
from omc.runtime.drivers.base import Status
from omc.runtime.engine.narrate import exec_display
from omc.runtime.engine.observe import parse_list_units
from omc.runtime.objcli import UsageError, main, parse
from omc.runtime.objects.configs import NotFoundError, list_objects, select_objects
from omc.runtime.objects.model import build, load, parse_unit
from omc.runtime.views.render import InstanceView, ResourceRow, flags, render_tree

TARGET = """\
[Unit]
SourcePath=/etc/opensvc/svc0.conf
X-OpenSVC-Path=svc0
X-OpenSVC-Id=abc
X-OpenSVC-Config={"orchestrate":"ha","rollback":false}
"""
APP = """\
[Unit]
X-OpenSVC-Path=svc0
X-OpenSVC-Rid=app#0
X-OpenSVC-Driver=app.forking
X-OpenSVC-Tags=a b
X-OpenSVC-Subset=
X-OpenSVC-Flags=standby optional
X-OpenSVC-Config={"start":"touch /tmp/x","pct":"100%%"}
[Service]
Slice=opensvc-svc.svc0-app.0.slice
ExecStart=touch /tmp/x
ExecStop=-rm -f /tmp/x
"""
FS = APP.replace("app#0", "fs#1").replace("app.forking", "fs.flag").replace("standby optional", "")


def test_model_from_units() -> None:
    """Units give back rids, drivers, flags, tags, config and start order."""
    model = build(ObjectPath(name="svc0"),
                  {"t.target": TARGET, "a.service": APP, "f.service": FS})  # fmt: skip
    assert [r.rid for r in model.resources] == ["fs#1", "app#0"]
    app = model.resource("app#0")
    assert (app.standby, app.optional, app.disabled) == (True, True, False)
    assert app.tags == frozenset({"a", "b"})
    assert app.config["start"] == "touch /tmp/x"
    assert app.exec_stop == ("-rm -f /tmp/x",)
    assert (model.orchestrate, model.rollback, model.id) == ("ha", False, "abc")


def test_load_reads_the_object_units_and_mounts_only(tmp_path: Path) -> None:
    """load() finds svc0's units by name prefix plus mount units, never svc00's."""
    other = TARGET.replace("svc0", "svc00")
    mount = FS.replace("fs.flag", "fs.ext4")
    files = {"opensvc-svc.svc0.target": TARGET, "opensvc-svc.svc0-app.0.service": APP,
             "srv-x.mount": mount, "opensvc-svc.svc00.target": other,
             "unrelated.service": APP.replace("app#0", "app#9")}  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    model = load(ObjectPath(name="svc0"), (tmp_path,))
    assert model is not None
    assert sorted(r.unit for r in model.resources) == ["opensvc-svc.svc0-app.0.service",
                                                       "srv-x.mount"]  # fmt: skip


def _aged(directory: Path) -> Path:
    """The directory's mtime set 10 s back: old enough for its listing to be kept."""
    old = time.time() - 10
    os.utime(directory, (old, old))
    return directory


def test_load_sees_units_added_removed_and_rewritten_since_the_last_load(
    tmp_path: Path,
) -> None:
    """The directory's listing is kept between loads (the daemon loads every object at
    each resync): a unit added or removed since is seen (the directory's mtime moved),
    and a unit rewritten in place is read afresh."""
    svc0 = ObjectPath(name="svc0")
    (tmp_path / "opensvc-svc.svc0.target").write_text(TARGET)
    model = load(svc0, (_aged(tmp_path),))
    assert model is not None and not model.resources
    (tmp_path / "opensvc-svc.svc0-app.0.service").write_text(APP)  # added
    model = load(svc0, (tmp_path,))
    assert model is not None and [r.rid for r in model.resources] == ["app#0"]
    (tmp_path / "opensvc-svc.svc0-app.0.service").write_text(APP.replace("a b", "c"))
    model = load(svc0, (_aged(tmp_path),))
    assert model is not None and model.resource("app#0").tags == frozenset({"c"})
    (tmp_path / "opensvc-svc.svc0-app.0.service").unlink()  # removed
    model = load(svc0, (tmp_path,))
    assert model is not None and not model.resources


def test_a_unit_added_in_the_tick_of_the_listing_is_seen(tmp_path: Path) -> None:
    """A directory's mtime comes from the kernel's coarse clock: a unit added in the same
    tick as the last listing leaves the mtime as it was. A directory changed within the
    last second is therefore listed again at each load."""
    svc0 = ObjectPath(name="svc0")
    (tmp_path / "opensvc-svc.svc0.target").write_text(TARGET)
    tick = tmp_path.stat().st_mtime_ns
    assert load(svc0, (tmp_path,)) is not None
    (tmp_path / "opensvc-svc.svc0-app.0.service").write_text(APP)
    os.utime(tmp_path, ns=(tick, tick))  # the same tick
    model = load(svc0, (tmp_path,))
    assert model is not None and [r.rid for r in model.resources] == ["app#0"]


def test_unit_continuation_lines() -> None:
    """A trailing backslash continues a value on the next line."""
    unit = parse_unit("x.service", "[Service]\nExecStart=/bin/echo a \\\n  b\n")
    assert unit.get("ExecStart") == "/bin/echo a  b"


@pytest.mark.parametrize(
    ("slice_unit", "expected"),
    [
        ("opensvc-svc.svc0-app.0.slice",
         ("/opensvc.slice/opensvc-svc.svc0.slice",
          "/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice")),
        ("opensvc-svc.my\\x2dsvc.slice", ("/opensvc.slice/opensvc-svc.my\\x2dsvc.slice",)),
        ("", ()),
    ],
)  # fmt: skip
def test_slice_cgroups(slice_unit: str, expected: tuple[str, ...]) -> None:
    """A slice name maps to its cgroup path levels; escaped dashes do not split."""
    assert slice_cgroups(slice_unit) == expected


def test_exec_display_drops_prefixes() -> None:
    """ExecStart prefixes like '-' are not part of the command shown."""
    assert exec_display("-rm -f /tmp/x") == "rm -f /tmp/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("svc0", ObjectPath(name="svc0")),
        ("cfg/c1", ObjectPath(kind="cfg", name="c1")),
        ("ns1/svc/web", ObjectPath(namespace="ns1", name="web")),
    ],
)
def test_parse_path(text: str, expected: ObjectPath) -> None:
    """Paths parse as om3 does, and display back the same way."""
    assert parse_path(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["Svc0", "a/b/c/d", "bad/x", "svc", "-x", "x" * 64])
def test_bad_paths_are_rejected(text: str) -> None:
    """Invalid paths raise a PathError naming the problem."""
    with pytest.raises(PathError):
        parse_path(text)


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMC_ETC", str(tmp_path))
    for p in ("web1", "web2", "db", "cfg/c1", "ns1/svc/web1", "ns1/cfg/c2"):
        config_file(parse_path(p)).parent.mkdir(parents=True, exist_ok=True)
        config_file(parse_path(p)).write_text("[DEFAULT]\n")
    (tmp_path / "node.conf").write_text("")
    return tmp_path


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("web1", ["web1"]),
        ("web*", ["web1", "web2"]),
        ("*", ["ns1/svc/web1", "db", "web1", "web2"]),
        ("**", ["ns1/cfg/c2", "ns1/svc/web1", "cfg/c1", "db", "web1", "web2"]),
        ("cfg/*", ["cfg/c1"]),
        ("ns1/**", ["ns1/cfg/c2", "ns1/svc/web1"]),
        ("*/svc/web1", ["ns1/svc/web1", "web1"]),
        ("web1,db", ["db", "web1"]),
        ("**+!*/svc/web1", ["ns1/cfg/c2", "cfg/c1", "db", "web2"]),
    ],
)
def test_object_selectors(etc: Path, expr: str, expected: list[str]) -> None:
    """Globs, unions, intersections and negations select objects like om3."""
    assert [str(p) for p in select_objects(expr)] == expected


def test_missing_exact_path_is_not_found(etc: Path) -> None:
    """An exact path without a config is 'not found'."""
    with pytest.raises(NotFoundError):
        select_objects("nope")
    assert len(list_objects()) == 6


def test_cli_parse() -> None:
    """Selector, verb words, valued options (both forms) and switches are split."""
    cmd = parse(["svc0", "instance", "start", "--rid=fs#1", "--tag", "a+b", "--force"])
    assert (cmd.selector, cmd.words) == ("svc0", ["instance", "start"])
    assert cmd.values == {"rid": "fs#1", "tag": "a+b"}
    assert cmd.switches == {"force"}
    with pytest.raises(UsageError):
        parse(["svc0", "start", "--bogus"])


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_usage_and_succeeds(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`om --help` is a request, not a mistake: usage on stdout, exit 0."""
    assert main([flag]) == 0
    assert capsys.readouterr().out.startswith("usage: om <selector>")


def test_no_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Bare `om` names what is missing on stderr and exits with the usage code."""
    assert main([]) == 64
    assert "missing object selector" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "........"),
        ({"disabled": True, "optional": True}, "..DO...."),
        ({"standby": True, "restart": 3}, "......S3"),
        ({"restart": 12}, ".......+"),
        ({"stopped": True, "monitor": True}, ".M.....X"),
    ],
)
def test_flags(kwargs: dict[str, bool | int], expected: str) -> None:
    """The 8 flag columns read R M D O E provisioned S restart."""
    assert flags(**kwargs) == expected  # type: ignore[arg-type]


def test_tree_layout() -> None:
    """The tree aligns the status column and indents status-log lines under the label."""
    view = InstanceView(
        path="svc0", node="n1", avail=Status.UP, overall=Status.WARN, frozen=True,
        resources=(
            ResourceRow(rid="fs#1", flags="........", status=Status.UP, label="flag",
                        messages=("warn: x",)),
            ResourceRow(rid="app#0", flags="........", status=Status.UP, label="forking"),
        ),
    )  # fmt: skip
    assert render_tree(view) == (
        "svc0                     up  warn\n"
        "└ instances\n"
        "  └ n1                   up  warn frozen\n"
        "    └ resources\n"
        "      ├ fs#1   ........  up  flag\n"
        "      │                      warn: x\n"
        "      └ app#0  ........  up  forking\n"
    )


def test_tree_shows_check_output_with_control_characters_escaped() -> None:
    """An app's check output (its own user's words) cannot drive root's terminal."""
    row = ResourceRow(rid="app#0", flags="........", status=Status.UP, label="forking\x1b[8m",
                      messages=("\x1b[2J\x1b[Hall clear\r",))  # fmt: skip
    view = InstanceView(path="s", node="n1", avail=Status.UP, overall=Status.UP, frozen=False,
                        resources=(row,))  # fmt: skip
    assert render_tree(view).splitlines()[4:] == [
        r"      └ app#0  ........  up  forking\x1b[8m",
        r"                             info: \x1b[2J\x1b[Hall clear\r",
    ]


def test_tree_groups_subsets() -> None:
    """Members of a subset are listed under a subset#<group>:<name> node, // when parallel."""
    row = ResourceRow(rid="ip#0", flags="........", status=Status.UP, label="host")
    members = tuple(
        ResourceRow(rid=f"app#w{i}", flags="........", status=Status.UP, label="forking",
                    subset="app:workers")
        for i in (1, 2)
    )  # fmt: skip
    view = InstanceView(path="s", node="n1", avail=Status.UP, overall=Status.UP, frozen=False,
                        resources=(row, *members), parallel=frozenset({"app:workers"}))  # fmt: skip
    assert render_tree(view).splitlines()[4:] == [
        "      ├ ip#0      ........  up  host",
        "      └ subset#app:workers //",
        "        ├ app#w1  ........  up  forking",
        "        └ app#w2  ........  up  forking",
    ]


def test_model_follows_compiler_order() -> None:
    """X-OpenSVC-Order gives the start order and the parallel subsets."""
    order = ('X-OpenSVC-Order=[{"group":"app","subset":"w","parallel":true,'
             '"rids":["app#b","app#a"]}]\n')  # fmt: skip
    units = {"t.target": TARGET + order,
             "a.service": APP.replace("X-OpenSVC-Subset=", "X-OpenSVC-Subset=w"),
             "b.service": APP.replace("app#0", "app#b").replace("X-OpenSVC-Subset=",
                                                                "X-OpenSVC-Subset=w")}  # fmt: skip
    units["a.service"] = units["a.service"].replace("app#0", "app#a")
    model = build(ObjectPath(name="svc0"), units)
    assert [r.rid for r in model.resources] == ["app#b", "app#a"]
    assert model.parallel == frozenset({"app:w"})


def test_parse_list_units() -> None:
    """list-units lines give each unit's ActiveState; unlisted units are inactive."""
    text = (
        "a.service loaded active exited OpenSVC a\n"
        "● b\\x2dc.service loaded failed failed OpenSVC b-c\n"
    )
    got = parse_list_units(text, ["a.service", "b\\x2dc.service", "gone.service"])
    assert got == {"a.service": "active", "b\\x2dc.service": "failed", "gone.service": "inactive"}
