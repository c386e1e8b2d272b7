"""After hours as pure functions of wall-clock time (no DST arithmetic here: the CronJobs carry the time zone
and the cluster's CronJob controller turns wall-clock schedules into instants).

A workday (one of `days`) is after hours before `end` and from `start` on; every other day is after hours all day.
Each mode becomes a set of cron schedules that fire every STEP minutes inside that mode's windows only, so each
switch Job asserts the state that is right at the time it runs (a missed run is made good by the next)."""

from __future__ import annotations

from datetime import datetime

from affordml.config.after_hours import STEP_MINUTES, minutes

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
CRON_DAY = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
AFTER_HOURS, WORKDAY = "after-hours", "workday"


def is_after_hours(day: str, minute_of_day: int, spec: dict) -> bool:
    if day not in spec["days"]:
        return True
    return minute_of_day < minutes(spec["end"]) or minute_of_day >= minutes(spec["start"])


def mode_at(when: datetime, spec: dict) -> str:
    """The mode at an aware instant, read on the wall clock of spec's time zone."""
    import zoneinfo

    local = when.astimezone(zoneinfo.ZoneInfo(spec["time_zone"]))
    after = is_after_hours(DAYS[local.weekday()], local.hour * 60 + local.minute, spec)
    return AFTER_HOURS if after else WORKDAY


def cron_schedules(spec: dict) -> dict[str, list[str]]:
    """mode -> cron schedules (minute hour * * day-of-week) that fire every STEP minutes within the mode."""
    return {mode: _schedules(spec, mode == AFTER_HOURS) for mode in (AFTER_HOURS, WORKDAY)}


def _schedules(spec: dict, after: bool) -> list[str]:
    lines_by_day: dict[str, tuple[tuple[str, str], ...]] = {}
    for day in DAYS:
        by_minutes: dict[str, list[int]] = {}
        for hour in range(24):
            slots = [m for m in range(0, 60, STEP_MINUTES) if is_after_hours(day, hour * 60 + m, spec) == after]
            if slots:
                by_minutes.setdefault(_minute_field(slots), []).append(hour)
        lines_by_day[day] = tuple((field, _ranges(hours, 23)) for field, hours in by_minutes.items())
    days_by_lines: dict[tuple, list[str]] = {}
    for day, lines in lines_by_day.items():
        if lines:
            days_by_lines.setdefault(lines, []).append(day)
    schedules = []
    for lines, days in days_by_lines.items():
        day_field = _ranges(sorted(CRON_DAY[d] for d in days), 6)
        schedules += [f"{minute} {hour} * * {day_field}" for minute, hour in lines]
    return schedules


def _minute_field(slots: list[int]) -> str:
    if len(slots) == 60 // STEP_MINUTES:
        return f"*/{STEP_MINUTES}"
    runs = _runs(slots, STEP_MINUTES)
    return ",".join(str(a) if a == b else f"{a}-{b + STEP_MINUTES - 1}/{STEP_MINUTES}" for a, b in runs)


def _ranges(values: list[int], last: int) -> str:
    """Cron list of contiguous ranges, `*` for all of 0..last."""
    if values == list(range(last + 1)):
        return "*"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in _runs(values, 1))


def _runs(values: list[int], step: int) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + step:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs
