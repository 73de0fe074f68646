"""The journal adapter's matches (pure): which lines an action reads back as a unit's."""

from __future__ import annotations

from omc.runtime.adapters.journal import stream_matches


def test_a_units_lines_are_matched_by_unit_or_by_its_commands_pids() -> None:
    """journald names a stream's unit only when its writer was still alive when it took
    the stream in; the pids of the unit's commands find the others (0s are no pid)."""
    assert stream_matches("a.service", [42, 0, 7, 42]) == [
        ["_TRANSPORT=stdout", "_SYSTEMD_UNIT=a.service"],
        ["_TRANSPORT=stdout", "_PID=7", "_PID=42"],
    ]


def test_without_pids_the_unit_alone_matches() -> None:
    assert stream_matches("a.service") == [["_TRANSPORT=stdout", "_SYSTEMD_UNIT=a.service"]]
    assert stream_matches("a.service", [0]) == [["_TRANSPORT=stdout", "_SYSTEMD_UNIT=a.service"]]
