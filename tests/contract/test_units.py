"""The unit half of the contract: what the compiler writes is what the runtime reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.compiler.contract.units import Key, Requirement, requirements_from_json
from omc.compiler.pipeline import build
from omc.runtime.drivers.base import Status
from omc.runtime.engine.plan import Action, Observed, plan
from omc.runtime.objects.model import build as read_model

CONFIG = """\
[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-000000000009

[ip#0]
ipname = 10.0.0.10
ipdev = eth0
netmask = 24

[fs#1]
type = flag
start_requires = ip#0

[app#web]
start = /bin/true
start_requires = ip#0(up) fs#1(up,stdby up)
stop_requires = fs#1(down)
"""


def _model() -> object:
    built = build(CONFIG, filename="/etc/opensvc/web.conf", node="n1", om="/usr/bin/om",
                  path=ObjectPath(name="web"))  # fmt: skip
    assert built.ok, built.diagnostics
    return read_model(ObjectPath(name="web"), built.units)


def test_requirements_cross_the_contract_as_json() -> None:
    """start_requires written by the compiler reads back as the same (rid, states)."""
    model = _model()
    app = model.resource("app#web")  # type: ignore[attr-defined]
    assert requirements_from_json(app.config["start_requires"]) == (
        Requirement(rid="ip#0", states=("up",)),
        Requirement(rid="fs#1", states=("up", "stdby up")),
    )
    assert requirements_from_json(app.config["stop_requires"]) == (
        Requirement(rid="fs#1", states=("down",)),
    )
    flag = model.resource("fs#1")  # type: ignore[attr-defined]
    assert requirements_from_json(flag.config["start_requires"]) == (Requirement(rid="ip#0"),)


def test_the_planner_checks_compiled_requirements() -> None:
    """A compiled requirement on a resource left alone is checked by the planner."""
    model = _model()
    down = Observed(unit_active=False, status=Status.DOWN)
    p = plan(model, {"ip#0": down}, Action.START, selection=frozenset({"app#web"}))  # type: ignore[arg-type]
    assert "app#web: start_requires ip#0(up) not met: ip#0 is down" in p.errors


@pytest.mark.parametrize("value", [None, "ip#0(up)", [{"rid": 3}], {"rid": "ip#0"}])
def test_anything_else_is_no_requirement(value: object) -> None:
    """Values that are not the JSON list form hold no requirement (never re-parsed text)."""
    assert requirements_from_json(value) == ()


def test_every_key_the_compiler_writes_is_a_contract_key() -> None:
    """The X-OpenSVC-* keys in compiled units are exactly the contract's Key values."""
    built = build(CONFIG, filename="/etc/opensvc/web.conf", node="n1", om="/usr/bin/om",
                  path=ObjectPath(name="web"))  # fmt: skip
    written = {
        line.split("=", 1)[0]
        for text in built.units.values()
        for line in text.splitlines()
        if line.startswith("X-OpenSVC-")
    }
    assert written == {str(k) for k in Key}


def test_units_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OMC_UNIT_DIR replaces the search path; its first directory is where units go."""
    from omc.compiler.contract import units

    monkeypatch.setenv("OMC_UNIT_DIR", f"{tmp_path}/a:{tmp_path}/b")
    assert units.search_path() == (tmp_path / "a", tmp_path / "b")
    assert units.unit_dir() == tmp_path / "a"
    monkeypatch.delenv("OMC_UNIT_DIR")
    assert units.unit_dir() == units.UNIT_DIR
