"""Converters (opensvc.md §1.8): om3 semantics, v2 spellings flagged, bad input explained."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omc.compiler import ir
from omc.compiler.convert import (
    ConvertError,
    convert,
    to_appcmd,
    to_bool,
    to_command,
    to_duration,
    to_nodes,
    to_requires,
    to_retcodes,
    to_schedule,
    to_set,
    to_shlex,
    to_size,
    to_size_or_percent,
    to_umask,
)
from omc.compiler.keywords import Conv


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("T", True),
        ("1", True),
        ("false", False),
        ("F", False),
        ("0", False),
        ("", False),
        ("  true  ", True),
    ],
)
def test_bool_om3(raw: str, expected: bool) -> None:
    """Go ParseBool spellings; an empty value is false."""
    assert to_bool(raw) is expected


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), ("no", False), ("Y", True)])
def test_bool_v2_spellings_are_accepted_with_a_warning(raw: str, expected: bool) -> None:
    """yes/no work (v2) but come back with a warning text."""
    result = convert(Conv.BOOL, raw)
    assert result.value is expected
    assert result.warning is not None and "v2" in result.warning


@pytest.mark.parametrize("raw", ["maybe", "2", "on off"])
def test_bool_rejects_other_words(raw: str) -> None:
    """Anything else is a ConvertError with a hint."""
    with pytest.raises(ConvertError) as err:
        convert(Conv.BOOL, raw)
    assert err.value.hint == "use true or false"


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("10", 10.0),
        ("10s", 10.0),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1y", 365 * 86400.0),
        ("0", 0.0),
    ],
)
def test_duration(raw: str, seconds: float) -> None:
    """Bare numbers are seconds; Go units plus d, w, y combine."""
    assert to_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "1x", "h", "1h 30m", "m1", "10 s"])
def test_duration_rejects(raw: str) -> None:
    """Unknown units, blanks inside and empty values are errors."""
    with pytest.raises(ConvertError):
        to_duration(raw)


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("512", 512),
        ("1k", 1024),
        ("100m", 100 * 2**20),
        ("1g", 2**30),
        ("1G", 2**30),
        ("1GiB", 2**30),
        ("1GB", 10**9),
        ("400MB", 400 * 10**6),
        ("1,5g", 3 * 2**29),
        ("2t", 2 * 2**40),
        ("10KiB", 10240),
    ],
)
def test_size(raw: str, size: int) -> None:
    """Single letters and *iB are binary, *B is decimal, a bare number is bytes."""
    assert to_size(raw) == size


@pytest.mark.parametrize("raw", ["", "1q", "g", "1 0m", "1iB"])
def test_size_rejects(raw: str) -> None:
    """Malformed sizes are errors."""
    with pytest.raises(ConvertError):
        to_size(raw)


def test_size_percent_forms_stay_strings() -> None:
    """``60%FREE`` is left to the driver."""
    assert to_size_or_percent("60%FREE") == "60%FREE"


@pytest.mark.parametrize(
    ("raw", "argv"),
    [
        ("a b c", ("a", "b", "c")),
        ("sh -c 'echo a; echo b'", ("sh", "-c", "echo a; echo b")),
        ('x "a b"\n  c', ("x", "a b", "c")),
        ("", ()),
    ],
)
def test_shlex(raw: str, argv: tuple[str, ...]) -> None:
    """Shell-like splitting with quotes; newlines are blanks."""
    assert to_shlex(raw) == argv


def test_shlex_unclosed_quote_is_an_error() -> None:
    """An unbalanced quote cannot be split."""
    with pytest.raises(ConvertError, match="split"):
        to_shlex("sh -c 'oops")


@pytest.mark.parametrize(
    ("raw", "argv"),
    [
        ("/bin/start --now", ("/bin/start", "--now")),
        ("ulimit -n && ulimit -l", ("/bin/sh", "-c", "ulimit -n && ulimit -l")),
        ("ps | grep x", ("/bin/sh", "-c", "ps | grep x")),
        ("echo a; echo b", ("/bin/sh", "-c", "echo a; echo b")),
        ("bash -c 'true'", ("bash", "-c", "true")),
    ],
)
def test_command_runs_shell_operators_through_sh(raw: str, argv: tuple[str, ...]) -> None:
    """om3 CmdArgsFromString: | && ; mean /bin/sh -c, else a shlex split."""
    assert to_command(raw) == argv


def test_set_deduplicates_in_order() -> None:
    """Tags keep first-seen order without repeats."""
    assert to_set("b a b c a") == ("b", "a", "c")


def test_nodes_lowercases_and_accepts_globs_and_labels() -> None:
    """Node selectors are lowercased words: names, globs, label=value."""
    assert to_nodes("N1 n[23] az=fr1 *") == ("n1", "n[23]", "az=fr1", "*")


@pytest.mark.parametrize(("raw", "mode"), [("022", 0o22), ("0644", 0o644), ("755", 0o755)])
def test_umask(raw: str, mode: int) -> None:
    """Octal modes."""
    assert to_umask(raw) == mode


def test_requires() -> None:
    """rid(state,...) lists; omitted states mean up or standby up."""
    assert to_requires("ip#0 fs#1(down,stdby down)") == (
        ir.Requirement(rid="ip#0"),
        ir.Requirement(rid="fs#1", states=("down", "stdby down")),
    )


@pytest.mark.parametrize("raw", ["ip0", "ip#0(sideways)"])
def test_requires_rejects(raw: str) -> None:
    """Not a rid, or an unknown state, is an error."""
    with pytest.raises(ConvertError):
        to_requires(raw)


def test_retcodes() -> None:
    """Exit code to status maps."""
    assert to_retcodes("0:up 1:down 3:n/a") == ((0, "up"), (1, "down"), (3, "n/a"))
    with pytest.raises(ConvertError):
        to_retcodes("0:fine")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("false", False), ("10", 10), ("/bin/start --now", ("/bin/start", "--now"))],
)
def test_app_commands(raw: str, value: object) -> None:
    """app start/stop/check: a boolean, a sequence number, or a command."""
    assert to_appcmd(raw) == value


HOUR = 3600
WEEK = range(1, 8)  # mon..sun


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("04:00-06:00", ir.ScheduleRule(timeranges=(ir.TimeRange(begin=4 * HOUR, end=6 * HOUR),))),
        ("@10m", ir.ScheduleRule(timeranges=(ir.TimeRange(interval=600.0),))),
        ("@60", ir.ScheduleRule(timeranges=(ir.TimeRange(interval=3600.0),))),
        ("~00:00-06:00", ir.ScheduleRule(timeranges=(ir.TimeRange(end=6 * HOUR, random=True),))),
        ("02:00", ir.ScheduleRule(timeranges=(ir.TimeRange(begin=2 * HOUR, end=2 * HOUR),))),
        (
            "02:00-04:00@120 sat,sun",
            ir.ScheduleRule(
                timeranges=(ir.TimeRange(begin=2 * HOUR, end=4 * HOUR, interval=7200.0),),
                days=(ir.DaySpec(weekday=6), ir.DaySpec(weekday=7)),
            ),
        ),
        (
            "00:00-02:00@121 fri:last",
            ir.ScheduleRule(
                timeranges=(ir.TimeRange(end=2 * HOUR, interval=7260.0),),
                days=(ir.DaySpec(weekday=5, nth=-1),),
            ),
        ),
        ("* jan-feb", ir.ScheduleRule(months=(1, 2))),
        ("* mon-fri", ir.ScheduleRule(days=tuple(ir.DaySpec(weekday=d) for d in range(1, 6)))),
        ("* * 1-2 %6", ir.ScheduleRule(weeks=(1, 2), months=(6, 12))),
        ("!* sat", ir.ScheduleRule(exclude=True, days=(ir.DaySpec(weekday=6),))),
        ("* *:last", ir.ScheduleRule(days=tuple(ir.DaySpec(weekday=d, nth=-1) for d in WEEK))),
        ("* *:5", ir.ScheduleRule(days=tuple(ir.DaySpec(weekday=d, nth=5) for d in WEEK))),
        (
            "* *:first,sun",
            ir.ScheduleRule(
                days=(*(ir.DaySpec(weekday=d, nth=1) for d in WEEK), ir.DaySpec(weekday=7))
            ),
        ),
    ],
)
def test_schedule_rules(raw: str, rule: ir.ScheduleRule) -> None:
    """The book's schedule grammar, bare intervals in minutes."""
    assert to_schedule(raw) == ir.Schedule(raw=raw, rules=(rule,))


@pytest.mark.parametrize("raw", ["", "@0", "  "])
def test_schedule_never(raw: str) -> None:
    """Empty and @0 mean never."""
    assert to_schedule(raw).never


def test_schedule_json_list_holds_several_rules() -> None:
    """The v2 list syntax gives one rule per item."""
    schedule = to_schedule('["00:00-02:00@120", "12:00-14:00@120"]')
    assert [r.timeranges[0].begin for r in schedule.rules] == [0, 12 * HOUR]


@pytest.mark.parametrize(
    "raw",
    [
        "25:00-26:00",
        "04:00-06:00@x",
        "* funday",
        "* *:sixth",
        "* **:last",
        "* * 60",
        "a b c d e",
        "[1, 2]",
        "12:61",
    ],
)
def test_schedule_rejects(raw: str) -> None:
    """Bad times, intervals, days, weeks or shapes are errors with the syntax as hint."""
    with pytest.raises(ConvertError) as err:
        to_schedule(raw)
    assert err.value.hint


@given(st.integers(min_value=0, max_value=10**7))
def test_duration_round_trips_through_units(seconds: int) -> None:
    """Any whole number of seconds written as d/h/m/s parts converts back exactly."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{days}d{hours}h{minutes}m{secs}s"
    assert to_duration(text) == seconds
    assert to_duration(str(seconds)) == seconds


@given(st.integers(min_value=0, max_value=2**20), st.sampled_from(["", "k", "m", "g", "t"]))
def test_size_round_trips_binary_units(number: int, unit: str) -> None:
    """``<n><unit>`` is n times the binary power of the unit, with or without ``iB``."""
    power = ["", "k", "m", "g", "t"].index(unit)
    assert to_size(f"{number}{unit}") == number * 1024**power
    if unit:
        assert to_size(f"{number}{unit.upper()}iB") == number * 1024**power


@given(st.lists(st.text(alphabet="abcXYZ09_-./", min_size=1), max_size=6))
def test_shlex_round_trips_quoted_words(words: list[str]) -> None:
    """Quoting each word with shlex.quote and splitting gives the words back."""
    import shlex

    assert to_shlex(" ".join(shlex.quote(w) for w in words)) == tuple(words)


@given(st.text(max_size=40))
def test_any_text_converts_or_raises_convert_error(text: str) -> None:
    """No converter raises anything but ConvertError, whatever the input."""
    for conv in Conv:
        with contextlib.suppress(ConvertError):
            convert(conv, text)
