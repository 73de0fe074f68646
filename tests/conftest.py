"""Shared fixtures: one lab of 3 real systemd nodes for the whole test run.

``lab`` boots on first use (about a second), is shared by every test of the session
(each pytest-xdist worker gets its own, named after its PID so that concurrent runs
never clash), and is removed at the end of the session even after failures. Tests
that change a node's state use ``unit_name`` for unit names nobody else uses, and
clean up what they start.

Labs left by a pytest process that was killed (named ``<letter><pid>`` by the process
that owns them, with that PID gone) are removed when the next session starts.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from omc.runtime.lab.api import Lab
from omc.runtime.lab.state import LabError, names

# No time limit on a hypothesis example: speed is measured in bench/, never asserted in a
# test, and hypothesis's default 200 ms deadline failed a 0.03 ms example that a loaded
# CI machine once ran in 259 ms (tests/compiler/test_convert.py).
settings.register_profile("omc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("omc")

_TEST_LAB = re.compile(r"^[a-z](\d{2,})$")  # tests and benches name labs <letter><pid>
_counter = itertools.count(1)


def _reap_stale_test_labs() -> None:
    """Remove test labs whose pytest process is gone (a SIGKILLed run, a crashed CI)."""
    for name in names():
        match = _TEST_LAB.match(name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            owner = Lab.attach(name).state.owner_pid
        except LabError:
            continue
        if owner == int(match.group(1)) and not Path(f"/proc/{owner}").exists():
            try:
                Lab.attach(name).down(force=True)
            except LabError as exc:
                print(f"conftest: stale lab {name}: {exc}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that boots or uses a lab carries the ``lab`` marker (``-m 'not lab'``)."""
    for item in items:
        if {"lab", "lab_factory"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Three nodes n1…n3 (running, etcd cluster up), shared by the session."""
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (namespaces, mounts, cgroups): run the tests as root")
    _reap_stale_test_labs()
    booted = Lab.up(f"t{os.getpid()}", nodes=3, etcd=True)
    try:
        yield booted
    finally:
        booted.down()


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    """Boot fresh labs for one test (``lab_factory(nodes=1, etcd=False)``); all of them
    are removed when the test ends, pass or fail. Names are ``f<pid><n>``-style."""
    booted: list[Lab] = []

    def make(*, nodes: int = 1, drp: int = 0, etcd: bool = False, **kw: bool) -> Lab:
        name = f"f{os.getpid()}{len(booted)}"[:10]
        booted.append(Lab.up(name, nodes=nodes, drp=drp, etcd=etcd, **kw))
        return booted[-1]

    yield make
    errors = []
    for fresh in booted:
        try:
            fresh.down()
        except LabError as exc:
            errors.append(str(exc))
    assert not errors, errors


@pytest.fixture
def unit_name(request: pytest.FixtureRequest) -> str:
    """A unit-name stem unique to this test (``omct-<test>-<n>``), without suffix."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"omct-{stem}-{next(_counter)}"


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """An empty config directory (what ``OMC_ETC`` points at in a test)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    return folder
