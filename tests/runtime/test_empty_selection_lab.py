"""A resource selection that matches nothing is an error, not a silent "done" (issue #10.13)."""

from __future__ import annotations

import pytest
from omc.runtime.exitcodes import ExitStatus
from omc.runtime.lab.api import Lab, Node

from .test_instance_lab import created, om, status

TWO = """\
[DEFAULT]
id = 6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0d01

[fs#1]
type = flag
tags = db

[sync#1]
src = /srv/nomatch/
dst = /srv/nomatch/
target = nodes
"""


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


@pytest.mark.parametrize(
    ("verb", "flags", "said"),
    [
        (("instance", "stop"), ("--rid", "typo"), "--rid typo"),
        (("instance", "start"), ("--rid", ""), "--rid ''"),
        (("instance", "start"), ("--tag", "nosuch"), "--tag nosuch"),
        (("stop",), ("--subset", "s9", "--rid", "app#9"), "--rid app#9 --subset s9"),
        (("instance", "start"), ("--rid", "fs#2", "--dry-run"), "--rid fs#2"),
        (("sync", "update"), ("--rid", "sync#9"), "--rid sync#9"),
    ],
)
def test_a_selection_matching_nothing_says_so_and_fails(
    n1: Node, verb: tuple[str, ...], flags: tuple[str, ...], said: str
) -> None:
    """No resource matches: one error line naming the selection, exit 2, nothing runs."""
    with created(n1, "nomatch", TWO) as path:
        proc = om(n1, path, *verb, *flags)
        assert proc.returncode == ExitStatus.NOT_FOUND, proc.stdout + proc.stderr
        assert proc.stderr == f"om: error: {path}: no resource matches {said}\n"
        assert ">>> do" not in proc.stdout and "<<< done" not in proc.stdout
        assert status(n1, path)["fs#1"] == "down"


def test_objects_without_a_match_are_skipped_when_another_matches(n1: Node) -> None:
    """`om 'nom*' start --tag db`: the object with a db resource acts; the other is told
    apart on stderr and does not fail the command."""
    other = TWO.replace("tags = db", "tags = web").replace("2a0d01", "2a0d02")
    with created(n1, "nomatch", TWO) as path, created(n1, "nomatch2", other) as second:
        proc = om(n1, "nomatch*", "instance", "start", "--tag", "db")
        assert proc.returncode == ExitStatus.OK, proc.stdout + proc.stderr
        assert proc.stderr == f"om: {second}: no resource matches --tag db, skipped\n"
        assert status(n1, path)["fs#1"] == "up"
        assert status(n1, second)["fs#1"] == "down"
