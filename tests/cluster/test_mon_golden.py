"""``om mon``'s text, golden: each ``mon_golden/<case>.json`` (a cluster snapshot, the
node columns, a selector, colours on or off, the clock) has a ``<case>.txt`` frame.

The frames keep om3's trailing spaces; colour codes are written ``\\e[…m`` in the
golden files so that they read. ``OMC_UPDATE_GOLDEN=1`` rewrites the ``.txt`` files
from the current code; review the diff: it is the behaviour change.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from omc.runtime.cluster import keys, monitor
from omc.runtime.cluster.model import snapshot_from_json

CASES = Path(__file__).parent / "mon_golden"
ANSI = re.compile(r"\033\[[0-9;]*m")


def _names() -> list[str]:
    return sorted(p.stem for p in CASES.glob("*.json"))


def _case(name: str) -> dict[str, Any]:
    data = json.loads((CASES / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", _names())
def test_mon_golden(name: str) -> None:
    """The frame of each recorded cluster matches its golden file, byte for byte."""
    got = monitor.case_frame(_case(name)).replace("\033", "\\e")
    golden = CASES / f"{name}.txt"
    if os.environ.get("OMC_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()


@pytest.mark.parametrize("name", _names())
def test_every_line_has_the_frame_width(name: str) -> None:
    """One table for the whole frame: every line, blank ones too, is as wide as the others
    (trailing spaces included), colour codes not counted; ``--verbose``'s Takeovers
    list, after the table, is free text."""
    table = monitor.case_frame(_case(name)).split("\nTakeovers\n")[0]
    lines = table.splitlines()
    widths = {len(ANSI.sub("", line)) for line in lines}
    assert len(widths) == 1, widths


def test_colours_change_nothing_but_the_codes() -> None:
    """With colour codes removed, the coloured frame is the plain one."""
    case = _case("colour")
    coloured = monitor.case_frame(case)
    plain = monitor.case_frame({**case, "colour": False})
    assert coloured != plain
    assert ANSI.sub("", coloured) == plain


def test_the_cases_cover_the_brief() -> None:
    """Failover, flex, frozen, a lost node, start failed, an orchestration, non-optimal
    placement, DRP, colours on and off, selectors, an empty cluster."""
    texts = "".join((CASES / f"{n}.txt").read_text() for n in _names())
    for marker in (
        "O^",
        "2/2",
        "X*",
        " start failed",
        " starting >started",
        "up^",
        "X#",
        "\\e[92mup\\e[0m",
        "Objects ~ web*",
        "Objects ~ web1,web2,ns1/s...",
    ):
        assert marker in texts, marker


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["db", "ns1/svc/web1", "ns1/vol/data", "vol/data", "web1", "web2"]),
        ("web*", ["web1", "web2"]),
        ("*", ["db", "ns1/svc/web1", "web1", "web2"]),
        ("ns1/**", ["ns1/svc/web1", "ns1/vol/data"]),
        ("**/web1", ["ns1/svc/web1", "web1"]),
        ("vol/*", ["vol/data"]),
        ("db,web1", ["db", "web1"]),
        ("*+!web*", ["db", "ns1/svc/web1"]),
        ("web1", ["web1"]),
        ("nothing", []),
    ],
)
def test_selectors_are_oms(selector: str, expected: list[str]) -> None:
    """``om mon`` selectors are ``om``'s object selectors; one that matches nothing
    keeps nothing (no error: the cluster may just not have it yet)."""
    paths = sorted(snapshot_from_json(_case("selector_glob")["snapshot"]).objects)
    assert monitor.select(selector, paths) == expected


def test_a_malformed_selector_is_refused() -> None:
    """A selector that is no path (too many parts) is an error that names it."""
    with pytest.raises(monitor.SelectorError, match="a/b/c/d"):
        monitor.select("a/b/c/d", ["web"])


def test_json_carries_what_the_text_shows() -> None:
    """``--format json|yaml``: per object its avail, flags and cells' facts; per node its
    liveness; nodes in cluster.conf order, lost ones included."""
    case = _case("lost_node")
    raw = case["snapshot"]
    data = monitor.to_data(snapshot_from_json(raw), members=case["members"],
                           daemons=monitor.daemons_from_json(raw["nodes"]))  # fmt: skip
    nodes = data["nodes"]
    assert isinstance(nodes, dict)
    assert list(nodes) == ["n1", "n2", "n3"]
    assert [v["alive"] for v in nodes.values()] == [True, True, False]
    web = data["objects"]["web"]  # type: ignore[index]
    assert (web["avail"], web["placement"], web["up"], web["expected"]) == ("up", "optimal", 1, 1)
    assert web["leaders"] == ["n2"]  # n1 failed, n3 is lost
    assert web["instances"]["n1"]["state"] == "start failed"
    assert web["instances"]["n3"]["alive"] is False


def test_yaml_goes_through_the_one_yaml_module() -> None:
    """The YAML form is ruamel's rendering of the same data (runtime/views/yaml.py)."""
    from omc.runtime.views.yaml import dump
    from ruamel.yaml import YAML

    case = _case("frozen")
    data = monitor.to_data(snapshot_from_json(case["snapshot"]), members=case["members"])
    assert YAML(typ="safe", pure=True).load(dump(data)) == data


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (330, "5m30s"), (600, "10m"), (3 * 86400 + 4 * 3600, "3d4h"),
     (500 * 86400, "500d"), (-5, "0s")],
)  # fmt: skip
def test_short_durations_are_om3s(seconds: float, text: str) -> None:
    """Uptimes: the biggest unit, plus the next one when the first is below 10."""
    assert monitor.short_duration(seconds) == text


def test_watch_header_is_om3s() -> None:
    """``--watch``'s header line: client, eventsets, source, cluster, RFC 1123 time."""
    head = monitor.watch_header("n1", 3, "c1", 0.0)
    assert re.fullmatch(
        r"Client n1 received 3 eventsets from etcd, cluster c1, last on "
        r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \S+\n\n",
        head,
    ), head


def test_the_table_is_om3s_tabwriter() -> None:
    """Fed the cells of om3's multi-node fixture (om3-orchestrator.md §5.1), the table
    is that fixture, byte for byte: widths, the separator column, trailing spaces."""
    nodes = ["node1", "node2", "node3"]
    empty = [""] * 7

    def title(text: str) -> list[str]:
        return [text, "", "", "", *nodes]

    def row(label: str, *cells: str) -> list[str]:
        return [label, "", "", "|", *cells]

    rows = [
        title("Daemon"), row(" uptime", "500d", "500d", "500d"),
        row(" state", "dns,speaker", "X", "dns"), row(" hb queue", "1", "0", "0"),
        row(" hb rx", "O", "O", "O!"), row(" hb tx", "O", "O", "O!"), empty,
        title("Nodes"), row(" uptime", "500d", "500d", "500d"), row(" score", "95", "96", "96"),
        row("  load15m", "0.1", "0.2", "0.1"), row("  mem", "27%1.94g", "24%1.94g", "26%1.94g"),
        row("  swap", "2%1.92g", "0%1.92g", "1%1.92g"), row(" state", "", "", ""), empty,
        title("Objects ~ *"), [" cluster", "n/a", "", "|", "/", "/", "/"],
        [" foo", "up", "ha    1/1", "|", "O^", "X", "X"],
        [" system/sec/ca", "n/a", "no    ", "|", "/", "/", "/"],
        [" system/sec/cert", "n/a", "no    ", "|", "/", "/", "/"],
    ]  # fmt: skip
    assert monitor.tabulate(rows) == (
        "Daemon                           node1       node2    node3    \n"
        " uptime                        | 500d        500d     500d     \n"
        " state                         | dns,speaker X        dns      \n"
        " hb queue                      | 1           0        0        \n"
        " hb rx                         | O           O        O!       \n"
        " hb tx                         | O           O        O!       \n"
        "                                                               \n"
        "Nodes                            node1       node2    node3    \n"
        " uptime                        | 500d        500d     500d     \n"
        " score                         | 95          96       96       \n"
        "  load15m                      | 0.1         0.2      0.1      \n"
        "  mem                          | 27%1.94g    24%1.94g 26%1.94g \n"
        "  swap                         | 2%1.92g     0%1.92g  1%1.92g  \n"
        " state                         |                               \n"
        "                                                               \n"
        "Objects ~ *                      node1       node2    node3    \n"
        " cluster         n/a           | /           /        /        \n"
        " foo             up  ha    1/1 | O^          X        X        \n"
        " system/sec/ca   n/a no        | /           /        /        \n"
        " system/sec/cert n/a no        | /           /        /        \n"
    )


@pytest.mark.parametrize(
    ("choice", "tty", "no_color", "expected"),
    [("auto", True, "", True), ("auto", False, "", False), ("yes", False, "", True),
     ("no", True, "", False), ("yes", True, "1", False), ("auto", True, "1", False)],
)  # fmt: skip
def test_colours_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch, choice: str, tty: bool, no_color: str, expected: bool
) -> None:
    """``--color auto`` colours a terminal only; ``yes`` forces; ``NO_COLOR`` always wins."""
    from omc.runtime.cluster import cli

    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert cli._colour(choice) is expected


def _shown(monkeypatch: pytest.MonkeyPatch, *, tty: bool, watch: bool, fmt: str = "text") -> str:
    """What ``om mon`` writes for a cluster of three members (one record), twice."""
    from omc.runtime.cluster import cli
    from omc.runtime.cluster.orchestrate import Cluster
    from omc.runtime.cluster.settings import ClusterSettings
    from omc.runtime.cluster.state import ClusterState

    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdout", out)
    settings = ClusterSettings(name="c1", nodes=("n1", "n2", "n3"), endpoints=("x",), node="n1")
    state = ClusterState(keys=keys.Keys(settings.prefix), members=settings.nodes)
    state.nodes = {"n1": {"started": 1.0}}
    cluster = Cluster(settings=settings, etcd=None, state=state)  # type: ignore[arg-type]
    show = cli._Shower(cluster, selector="", fmt=fmt, colour=False, watch=watch)
    show(state)
    show(state)
    return out.getvalue()


def test_watch_redraws_with_om3s_header_and_clears_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--watch``: each frame after a header counting the event sets; the screen is
    cleared first on a terminal only; without ``--watch``, the bare frame."""
    piped = _shown(monkeypatch, tty=False, watch=True)
    assert "\033[2J" not in piped
    assert re.findall(r"(?m)^Client n1 received (\d) eventsets from etcd, cluster c1", piped) == [
        "0", "1"]  # fmt: skip
    on_tty = _shown(monkeypatch, tty=True, watch=True)
    assert on_tty.startswith("\033[2J\033[H") and on_tty.count("\033[2J\033[H") == 2
    plain = _shown(monkeypatch, tty=True, watch=False)
    assert plain.startswith("Daemon ") and "Client" not in plain


def test_watch_in_yaml_redraws_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--watch --format yaml``: each redraw is a whole YAML document after the header."""
    text = _shown(monkeypatch, tty=False, watch=True, fmt="yaml")
    assert text.count("revision: 0") == 2
