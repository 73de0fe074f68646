"""OpenSVC schedules become timer settings that fire when om3 would run the job."""

from __future__ import annotations

import os
import random
import re
import subprocess
from typing import Any

import pytest
from omc.compiler.convert import to_schedule
from omc.compiler.ir import DaySpec, Schedule, ScheduleRule, TimeRange
from omc.compiler.schedule import TimerSpec, to_timer

H = 3600


def _rule(*ranges: TimeRange, **kw: Any) -> Schedule:
    return Schedule(raw="x", rules=(ScheduleRule(timeranges=ranges, **kw),))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            _rule(TimeRange(begin=4 * H, end=6 * H)),
            TimerSpec(on_calendar=("*-*-* 04:00:00",)),
        ),
        (
            _rule(TimeRange(begin=4 * H, end=6 * H, random=True)),
            TimerSpec(on_calendar=("*-*-* 04:00:00",), randomized_delay_sec=7200.0),
        ),
        (
            _rule(TimeRange(begin=8 * H, end=12 * H, interval=3600)),
            TimerSpec(on_calendar=("*-*-* 08..11:00:00",)),
        ),
        (
            _rule(TimeRange(begin=8 * H, end=9 * H, interval=1200)),
            TimerSpec(on_calendar=("*-*-* 08:00,20,40:00",)),
        ),
        (
            _rule(TimeRange(interval=600)),
            TimerSpec(on_active_sec=600.0, on_unit_active_sec=600.0),
        ),
        (
            _rule(TimeRange(interval=600), days=(DaySpec(weekday=6), DaySpec(weekday=7))),
            TimerSpec(
                on_calendar=("Sat,Sun *-*-* 00..23:00,10,20,30,40,50:00",),
                notes=("interval aligned on midnight because of the day/month filter",),
            ),
        ),
        (
            _rule(TimeRange(begin=5 * H + 1800, end=6 * H, interval=31 * 60)),
            TimerSpec(on_calendar=("*-*-* 05:30:00",)),
        ),
        (
            _rule(TimeRange(), days=(DaySpec(weekday=5, nth=-1),)),
            TimerSpec(on_calendar=("Fri *-*~01 00:00:00",)),
        ),
        (
            _rule(TimeRange(), days=tuple(DaySpec(weekday=d, nth=5) for d in range(1, 8))),
            TimerSpec(on_calendar=("*-*-05 00:00:00",)),
        ),
        (
            _rule(TimeRange(begin=H, end=H), months=(1, 3, 4, 5)),
            TimerSpec(on_calendar=("*-01,03..05-* 01:00:00",)),
        ),
        (
            _rule(TimeRange(begin=H, end=H), weeks=(1, 2)),
            TimerSpec(
                on_calendar=("*-*-* 01:00:00",),
                notes=("ISO week filter not expressible in a timer: runs every week",),
            ),
        ),
        (Schedule(raw=""), TimerSpec()),
    ],
)
def test_to_timer_table(schedule: Schedule, expected: TimerSpec) -> None:
    """Each schedule form maps to the documented timer settings."""
    assert to_timer(schedule) == expected


@pytest.mark.parametrize(
    ("raw", "on_calendar", "monotonic"),
    [
        ("04:00-06:00", ("*-*-* 04:00:00",), None),
        ("~00:00-06:00", ("*-*-* 00:00:00",), None),
        ("02:00-04:00@120 sat,sun", ("Sat,Sun *-*-* 02:00:00",), None),
        ("@10m", (), 600.0),
        ("@121", (), 7260.0),
        ("* jan-feb", ("*-01,02-* 00:00:00",), None),
        ("", (), None),
        ("@0", (), None),
    ],
)
def test_corpus_forms_through_the_front_end(
    raw: str, on_calendar: tuple[str, ...], monotonic: float | None
) -> None:
    """Schedules parsed by the front end's converter give the expected timer."""
    spec = to_timer(to_schedule(raw))
    assert spec.on_calendar == on_calendar
    assert spec.on_unit_active_sec == monotonic


def _next_runs(exprs: tuple[str, ...], *, base: str, count: int) -> list[str]:
    """The next `count` elapse times of the OnCalendar= lines, computed by systemd itself."""
    runs: set[str] = set()
    for expr in exprs:
        out = subprocess.run(
            ["systemd-analyze", "calendar", f"--base-time={base}", f"--iterations={count}", expr],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
        ).stdout
        runs.update(re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out))
    return sorted(runs)[:count]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "08:00-10:00@30",
            ["2026-01-05 08:00:00", "2026-01-05 08:30:00", "2026-01-05 09:00:00"],
        ),
        (
            "22:00-23:00 fri",
            ["2026-01-09 22:00:00", "2026-01-16 22:00:00", "2026-01-23 22:00:00"],
        ),
        (
            "01:00-02:00 sat:last",
            ["2026-01-31 01:00:00", "2026-02-28 01:00:00", "2026-10-31 01:00:00"],
        ),
        (
            "03:00 * * %2",
            ["2026-02-01 03:00:00", "2026-02-02 03:00:00", "2026-02-03 03:00:00"],
        ),
        (
            '["06:00 mon", "18:00 sun"]',
            ["2026-01-05 06:00:00", "2026-01-11 18:00:00", "2026-01-12 06:00:00"],
        ),
    ],
)
def test_systemd_fires_when_opensvc_would(raw: str, expected: list[str]) -> None:
    """systemd's own calendar engine gives the run times om3's scheduler allows."""
    spec = to_timer(to_schedule(raw))
    assert spec.notes == ()
    assert _next_runs(spec.on_calendar, base="2026-01-05 00:00:00 UTC", count=3) == expected


def _random_rule(rng: random.Random) -> ScheduleRule:
    begin = rng.randrange(0, 86400, 60)
    end = rng.choice(
        [begin, min(86400, begin + rng.randrange(60, 6 * H, 60)), rng.randrange(0, 86400, 60)]
    )
    interval = rng.choice([None, 60.0, 600.0, 1800.0, 3600.0, 7260.0, 86400.0, 37.0])
    days = tuple(
        DaySpec(weekday=rng.randint(1, 7), nth=rng.choice([None, None, 1, 5, -1, -3]))
        for _ in range(rng.randint(0, 3))
    )
    months = tuple(sorted(rng.sample(range(1, 13), rng.randint(0, 4))))
    return ScheduleRule(
        timeranges=(TimeRange(begin=begin, end=end, interval=interval, random=rng.random() < 0.3),),
        days=days,
        months=months,
    )


def test_random_schedules_give_calendars_systemd_accepts() -> None:
    """Every OnCalendar= produced for 300 random rules parses in systemd's calendar engine."""
    rng = random.Random(11)
    exprs: set[str] = set()
    for _ in range(300):
        exprs.update(to_timer(Schedule(raw="r", rules=(_random_rule(rng),))).on_calendar)
    proc = subprocess.run(
        ["systemd-analyze", "calendar", *sorted(exprs)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Normalized form:") == len(exprs)
