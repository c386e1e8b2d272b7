"""ml.after_hours: when the workday ends and the training queue may use the notebooks' GPU share."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
STEP_MINUTES = 5  # the switch runs every 5 minutes inside each window, so times fall on that grid
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def minutes(value: str) -> int:
    hours, mins = value.split(":")
    return int(hours) * 60 + int(mins)


class AfterHours(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    start: str = Field("19:00", description="when the workday ends (HH:MM, local time of time_zone)")
    end: str = Field("07:00", description="when the next workday starts (HH:MM)")
    days: list[Day] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
        description="workdays; the other days are after hours from midnight to midnight",
    )
    time_zone: str = Field("UTC", description="IANA time zone of start and end, e.g. Europe/Berlin")
    interactive_percent: int = Field(
        50, ge=0, le=100, description="share of each GPU, CPU and memory quota kept for notebooks on workdays"
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _yaml_minutes(cls, value):
        """YAML 1.1 (PyYAML) reads an unquoted 19:00 as the number 1140 (base 60): take it back as the time."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = HH_MM.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not a time like 19:00 (HH:MM, 24 hours)")
        if int(match.group(2)) % STEP_MINUTES:
            raise ValueError(f"{value!r}: minutes must be a multiple of {STEP_MINUTES} (e.g. 18:30, 18:35)")
        return value

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a day is listed twice")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        import zoneinfo

        if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", value) or value not in _zones():
            raise ValueError(f"{value!r} is not an IANA time zone name like Europe/Berlin or UTC")
        zoneinfo.ZoneInfo(value)
        return value

    @model_validator(mode="after")
    def _overnight(self) -> AfterHours:
        if minutes(self.end) >= minutes(self.start):
            raise ValueError(
                f"end ({self.end}) must come before start ({self.start}): after hours run overnight, from start "
                "to the next day's end (e.g. start 19:00, end 07:00)"
            )
        return self


def _zones() -> set[str]:
    import zoneinfo

    return zoneinfo.available_timezones() | {"UTC"}
