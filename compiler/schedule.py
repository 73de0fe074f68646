"""OpenSVC schedules (``ir.Schedule``) as systemd timer settings.

The om3 scheduler (``util/schedule``) runs a job when the current time is in
one of the rule's windows, on an allowed day/week/month, and the last run is
older than the window's interval. systemd timers are either calendar based
(``OnCalendar=``) or monotonic (``OnActiveSec=``/``OnUnitActiveSec=``). The
mapping, rule by rule:

=================================  ===============================================
OpenSVC                            timer
=================================  ===============================================
``04:00-06:00`` (once a day)       ``OnCalendar=*-*-* 04:00:00``
``~04:00-06:00``                   the same + ``RandomizedDelaySec=2h`` (the window)
``08:00-12:00@60``                 ``OnCalendar=*-*-* 08..11:00:00`` (every start
                                   time of the window, grouped per line)
``@10m``, ``*@121`` (whole day,    ``OnActiveSec=`` + ``OnUnitActiveSec=`` the
no day/week/month filter)          interval: "interval since the last run", exactly
``mon-fri``, ``sat,sun``           ``Mon..Fri`` / ``Sat,Sun`` weekday prefix
``*:5``, ``fri:last``, ``*:-2``    day of month (om3: the weekday AND that day of
                                   the month): ``*-*-05``, ``Fri *-*~01``, ``*-*~02``
``* * * jan-mar``, ``%2``          ``*-01..03-*``, ``*-02,04,06,08,10,12-*``
=================================  ===============================================

What a timer cannot say is written into :attr:`TimerSpec.notes` (emitted as
comments in the ``.timer`` and available to the CLI as warnings):

* ISO week filters (``* * 1-10``): systemd calendars have no week numbers; the
  rule runs every week.
* exclusions (``!09:00-10:00``): a timer cannot subtract times; ignored.
* different ``~`` windows in one schedule: a timer has one
  ``RandomizedDelaySec=``; the smallest window is used.
* a window crossing midnight with day filters: runs after midnight are
  filtered on the day they happen, not the day the window opened.
* whole-day intervals with a day filter use calendar times aligned on
  midnight, not "interval since the last run".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ir import DaySpec, Schedule, ScheduleRule, TimeRange
from .records import Record

__all__ = ["TimerSpec", "to_timer"]

DAY = 86400
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class TimerSpec(Record):
    """The ``[Timer]`` settings for one schedule (all empty = never)."""

    on_calendar: tuple[str, ...] = ()
    on_active_sec: float | None = None
    on_unit_active_sec: float | None = None
    randomized_delay_sec: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def never(self) -> bool:
        return not self.on_calendar and self.on_unit_active_sec is None


def to_timer(schedule: Schedule) -> TimerSpec:
    """Translate a parsed schedule; see the module docstring for the rules."""
    calendars: list[str] = []
    notes: list[str] = []
    delays: list[float] = []
    monotonic: float | None = None
    for rule in schedule.rules:
        if rule.exclude:
            notes.append(f"exclusion not expressible in a timer, ignored: {_raw(schedule)}")
            continue
        if rule.weeks:
            notes.append("ISO week filter not expressible in a timer: runs every week")
        for tr in rule.timeranges:
            if _is_whole_day_interval(tr) and not rule.days and not rule.months:
                assert tr.interval is not None
                monotonic = tr.interval if monotonic is None else min(monotonic, tr.interval)
                continue
            if tr.begin > tr.end and rule.days:
                notes.append("window crosses midnight: runs after 00:00 use that day's filter")
            if _is_whole_day_interval(tr):
                notes.append("interval aligned on midnight because of the day/month filter")
            calendars.extend(_calendars(rule, tr))
            if tr.random and _window(tr) > 0 and _runs_once(tr):
                delays.append(float(_window(tr)))
    if len(set(delays)) > 1:
        notes.append("several random windows: the smallest is used for RandomizedDelaySec")
    return TimerSpec(
        on_calendar=tuple(dict.fromkeys(calendars)),
        on_active_sec=monotonic,
        on_unit_active_sec=monotonic,
        randomized_delay_sec=min(delays) if delays else None,
        notes=tuple(dict.fromkeys(notes)),
    )


def _raw(schedule: Schedule) -> str:
    return " ".join(schedule.raw.split())


def _window(tr: TimeRange) -> int:
    """Length of the window in seconds (a window may cross midnight)."""
    if tr.end >= tr.begin:
        return tr.end - tr.begin
    return DAY - tr.begin + tr.end


def _runs_once(tr: TimeRange) -> bool:
    """om3: no interval, or an interval at least the window, means once per window."""
    return tr.interval is None or tr.interval >= _window(tr)


def _is_whole_day_interval(tr: TimeRange) -> bool:
    return tr.begin == 0 and tr.end >= DAY and not _runs_once(tr)


def _start_times(tr: TimeRange) -> list[int]:
    """Seconds since midnight of every run in the window."""
    if _runs_once(tr):
        return [tr.begin]
    assert tr.interval is not None
    step = max(1, round(tr.interval))
    return [(tr.begin + k) % DAY for k in range(0, max(_window(tr), 1), step)]


def _calendars(rule: ScheduleRule, tr: TimeRange) -> list[str]:
    """``OnCalendar=`` lines for one time range of one rule."""
    dates = _date_parts(rule)
    times = _time_parts(_start_times(tr))
    return [f"{date} {time}" for date in dates for time in times]


def _date_parts(rule: ScheduleRule) -> list[str]:
    """``[Weekdays ]*-MM-DD`` strings, one per distinct day-of-month spec."""
    months = _int_list(rule.months, width=2) if rule.months else "*"
    if not rule.days:
        return [f"*-{months}-*"]
    by_nth: dict[int | None, list[int]] = {}
    for day in sorted(rule.days, key=_day_key):
        by_nth.setdefault(day.nth, []).append(day.weekday)
    out = []
    for nth, weekdays in by_nth.items():
        dow = "" if len(set(weekdays)) == 7 else _weekday_list(weekdays) + " "
        if nth is None:
            dom = f"-{months}-*"
        elif nth > 0:
            dom = f"-{months}-{nth:02d}"
        else:
            dom = f"-{months}~{-nth:02d}"
        out.append(f"{dow}*{dom}")
    return out


def _day_key(day: DaySpec) -> tuple[int, int]:
    return (0 if day.nth is None else 1, day.nth or 0)


def _weekday_list(weekdays: list[int]) -> str:
    return ",".join(_ranges(sorted(set(weekdays)), lambda d: _WEEKDAYS[d - 1]))


def _int_list(values: tuple[int, ...] | list[int], *, width: int) -> str:
    return ",".join(_ranges(sorted(set(values)), lambda v: f"{v:0{width}d}"))


def _ranges(values: list[int], fmt: Callable[[int], str]) -> list[str]:
    """Consecutive runs as ``a..b`` (systemd calendar range syntax)."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{fmt(values[i])}..{fmt(values[j])}")
        else:
            out.extend(fmt(v) for v in values[i : j + 1])
        i = j + 1
    return out


def _time_parts(seconds: list[int]) -> list[str]:
    """Group run times into ``HH:MM:SS`` lines, each a product of its three lists."""
    by_hour: dict[int, dict[int, set[int]]] = {}
    for s in sorted(set(seconds)):
        by_hour.setdefault(s // 3600, {}).setdefault(s // 60 % 60, set()).add(s % 60)
    # Hours sharing exactly the same minutes/seconds pattern go on one line.
    patterns: dict[tuple[tuple[int, tuple[int, ...]], ...], list[int]] = {}
    for hour, minutes in by_hour.items():
        key = tuple((m, tuple(sorted(secs))) for m, secs in sorted(minutes.items()))
        patterns.setdefault(key, []).append(hour)
    lines = []
    for key, hours in patterns.items():
        by_secs: dict[tuple[int, ...], list[int]] = {}
        for minute, secs in key:
            by_secs.setdefault(secs, []).append(minute)
        for secs, minutes_ in by_secs.items():
            lines.append(
                f"{_int_list(hours, width=2)}:{_int_list(minutes_, width=2)}"
                f":{_int_list(list(secs), width=2)}"
            )
    return lines
