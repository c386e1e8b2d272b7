"""ml.after_hours: the config's checks, the mode at a wall-clock time, and the CronJob schedules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from affordml.config.after_hours import AfterHours
from affordml.config.model import Config
from affordml.ml.after_hours import AFTER_HOURS, CRON_DAY, DAYS, WORKDAY, cron_schedules, is_after_hours, mode_at


def spec(**over) -> dict:
    return AfterHours(**over).model_dump()


def expand(field: str, low: int, high: int) -> set[int]:
    """A cron field (the robfig/cron syntax CronJobs use: *, a, a-b, a-b/s, */s, lists) as the values it matches;
    the test's own reading of cron, independent of the code that writes the fields."""
    values: set[int] = set()
    for part in field.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            a, b = low, high
        elif "-" in rng:
            a, b = map(int, rng.split("-"))
        else:
            a = b = int(rng)
        values |= set(range(a, b + 1, int(step or 1)))
    return values


def fires(schedules: list[str]) -> set[tuple[str, int]]:
    """(day, minute of day) at which any of the schedules fires in a week."""
    out = set()
    by_number = {n: d for d, n in CRON_DAY.items()}
    for line in schedules:
        minute, hour, dom, month, dow = line.split()
        assert (dom, month) == ("*", "*")
        for d in expand(dow, 0, 6):
            out |= {(by_number[d], h * 60 + m) for h in expand(hour, 0, 23) for m in expand(minute, 0, 59)}
    return out


CASES = [
    {},
    {"start": "18:30", "end": "07:45"},
    {"start": "23:55", "end": "00:00"},
    {"start": "00:05", "end": "00:00", "days": ["sun"]},
    {"start": "19:00", "end": "07:00", "days": []},
    {"start": "12:35", "end": "12:10", "days": ["mon", "wed", "sat"]},
    {"start": "20:00", "end": "06:00", "days": list(DAYS)},
]


@pytest.mark.parametrize("over", CASES, ids=[str(c) for c in CASES])
def test_the_schedules_fire_every_five_minutes_inside_their_mode_and_never_outside(over):
    s = spec(**over)
    week = {(d, m) for d in DAYS for m in range(0, 24 * 60, 5)}
    after = {(d, m) for d, m in week if is_after_hours(d, m, s)}
    schedules = cron_schedules(s)
    assert fires(schedules[AFTER_HOURS]) == after
    assert fires(schedules[WORKDAY]) == week - after
    assert len(schedules[AFTER_HOURS]) + len(schedules[WORKDAY]) <= 10  # a handful of CronJobs, not hundreds


def test_default_week():
    s = spec()
    assert cron_schedules(s) == {
        AFTER_HOURS: ["*/5 0-6,19-23 * * 1-5", "*/5 * * * 0,6"],
        WORKDAY: ["*/5 7-18 * * 1-5"],
    }
    assert is_after_hours("mon", 6 * 60 + 59, s) and not is_after_hours("mon", 7 * 60, s)
    assert not is_after_hours("fri", 18 * 60 + 59, s) and is_after_hours("fri", 19 * 60, s)
    assert is_after_hours("sat", 12 * 60, s) and is_after_hours("sun", 0, s)


def test_no_workdays_is_after_hours_all_week():
    assert cron_schedules(spec(days=[])) == {AFTER_HOURS: ["*/5 * * * *"], WORKDAY: []}


def test_mode_at_reads_the_wall_clock_of_the_time_zone():
    s = spec(time_zone="Europe/Berlin")
    # 17:30 UTC on Monday 30 November 2026 is 18:30 in Berlin (CET, +1): still the workday
    assert mode_at(datetime(2026, 11, 30, 17, 30, tzinfo=UTC), s) == WORKDAY
    assert mode_at(datetime(2026, 11, 30, 18, 0, tzinfo=UTC), s) == AFTER_HOURS  # 19:00 in Berlin
    # in summer (CEST, +2) the same wall-clock hours are one hour earlier in UTC
    assert mode_at(datetime(2026, 7, 6, 17, 0, tzinfo=UTC), s) == AFTER_HOURS  # Monday 19:00 CEST
    assert mode_at(datetime(2026, 7, 6, 16, 59, tzinfo=UTC), s) == WORKDAY
    # the local day, not the UTC day: Sunday 23:30 UTC is Monday 08:30 in Tokyo, a workday's morning
    assert mode_at(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), spec(time_zone="Asia/Tokyo", days=["mon"])) == WORKDAY


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"start": "7pm"}, "not a time like 19:00"),
        ({"start": "24:00"}, "not a time like 19:00"),
        ({"end": "07:03"}, "multiple of 5"),
        ({"start": "07:00", "end": "19:00"}, "end (19:00) must come before start (07:00)"),
        ({"start": "07:00", "end": "07:00"}, "must come before start"),
        ({"days": ["mon", "mon"]}, "listed twice"),
        ({"days": ["monday"]}, "Input should be"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"time_zone": "../../etc/passwd"}, "not an IANA time zone"),
        ({"interactive_percent": 101}, "less than or equal to 100"),
    ],
)
def test_bad_values_are_refused_naming_the_field(over, words):
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"ml": {"after_hours": over}})
    text = str(caught.value)
    assert words in text and "after_hours" in text


def test_after_hours_can_be_turned_off():
    assert Config.model_validate({"ml": {"after_hours": None}}).ml.after_hours is None
    assert Config().ml.after_hours == AfterHours()


def test_an_unquoted_time_in_yaml_is_read_as_the_time():
    import yaml

    loaded = yaml.safe_load("ml:\n  after_hours: {start: 18:30, end: 7:05}\n")
    assert loaded["ml"]["after_hours"]["start"] == 1110  # what PyYAML gives for 18:30 (base 60)
    after = Config.model_validate(loaded).ml.after_hours
    assert (after.start, after.end) == ("18:30", "07:05")
