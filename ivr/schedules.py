"""Opening hours: a schedule is weekly hours in a time zone, with holidays and one-off closures, and a
`branch` asks whether it is open at an instant."""

from __future__ import annotations

import datetime as _dt
import itertools
import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from ivr.fields import Strict

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_days(spec: str) -> tuple[int, ...]:
    """`mon-fri`, `sat`, `mon,wed,fri` -> weekday numbers (Monday is 0)."""
    days: list[int] = []
    for part in spec.lower().split(","):
        part = part.strip()
        if "-" in part:
            first, _, last = part.partition("-")
            if first.strip() not in DAY_NAMES or last.strip() not in DAY_NAMES:
                raise ValueError(f"'{spec}' is not a day range; use days like mon-fri, sat, sun")
            a, b = DAY_NAMES.index(first.strip()), DAY_NAMES.index(last.strip())
            if b < a:
                raise ValueError(f"day range '{part}' runs backwards; write it as {last}-{first}?")
            days.extend(range(a, b + 1))
        elif part in DAY_NAMES:
            days.append(DAY_NAMES.index(part))
        else:
            raise ValueError(
                f"'{part}' is not a day; use mon, tue, wed, thu, fri, sat, sun or a range mon-fri"
            )
    return tuple(sorted(set(days)))


def parse_ranges(spec: str) -> tuple[tuple[time, time], ...]:
    """`08:00-12:00, 13:00-17:30` -> ((08:00, 12:00), (13:00, 17:30)); `closed` -> ()."""
    if spec.strip().lower() == "closed":
        return ()
    ranges: list[tuple[time, time]] = []
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(
                f"'{part.strip()}' is not an opening range; write it as HH:MM-HH:MM, e.g. 08:00-17:30"
            )
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or not ((h2 < 24 and m2 < 60) or (h2 == 24 and m2 == 0)):
            raise ValueError(f"'{part.strip()}' has an impossible time of day")
        start = time(h1, m1)
        end = time.max if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(
                f"'{part.strip()}' ends before it starts; ranges cannot cross midnight, split them"
            )
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise ValueError(f"ranges in '{spec}' overlap")
    return tuple(ranges)


class Holiday(Strict):
    """A day the schedule is closed (or open only for `hours`). `12-25` recurs every year."""

    date: str
    name: str | None = None
    hours: str = "closed"

    @field_validator("date")
    @classmethod
    def _date(cls, v: str) -> str:
        try:
            if re.fullmatch(r"\d{2}-\d{2}", v):
                date.fromisoformat(f"2000-{v}")  # a leap year, so 02-29 is allowed
            else:
                date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"'{v}' is not a date; write YYYY-MM-DD, or MM-DD for every year") from None
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        parse_ranges(v)
        return v

    def matches(self, day: _dt.date) -> bool:
        if len(self.date) == 5:
            return day.strftime("%m-%d") == self.date
        return day.isoformat() == self.date


class Closure(Strict):
    """A one-off closure between two local times (a staff meeting, a storm, a move)."""

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: str | None = None

    @model_validator(mode="after")
    def _order(self) -> Closure:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("'from' and 'to' must both carry a UTC offset or both be local times")
        if self.end <= self.start:
            raise ValueError("a closure must end after it starts")
        return self


def _holiday(value: Any) -> Any:
    return {"date": value} if isinstance(value, str) else value


class Schedule(Strict):
    """Weekly opening hours in a time zone, with holidays and one-off closures."""

    timezone: str
    hours: dict[str, str] = Field(min_length=1)
    holidays: tuple[Holiday, ...] = ()
    closures: tuple[Closure, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{v}' is not a time zone; use an IANA name such as Europe/Warsaw") from None
        return v

    @field_validator("holidays", mode="before", json_schema_input_type=list[str | Holiday])
    @classmethod
    def _holidays(cls, v: Any) -> Any:
        return [_holiday(h) for h in v] if isinstance(v, list) else v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, str]) -> dict[str, str]:
        seen: dict[int, str] = {}
        for days, ranges in v.items():
            for day in parse_days(days):
                if day in seen:
                    raise ValueError(f"{DAY_NAMES[day]} is given twice, in '{seen[day]}' and '{days}'")
                seen[day] = days
            parse_ranges(ranges)
        return v

    def weekly(self) -> dict[int, tuple[tuple[time, time], ...]]:
        table: dict[int, tuple[tuple[time, time], ...]] = {}
        for days, ranges in self.hours.items():
            for day in parse_days(days):
                table[day] = parse_ranges(ranges)
        return table

    def is_open(self, now: datetime) -> bool:
        """Is this schedule open at the instant `now` (an aware datetime)?"""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        for closure in self.closures:
            start = closure.start if closure.start.tzinfo else closure.start.replace(tzinfo=zone)
            end = closure.end if closure.end.tzinfo else closure.end.replace(tzinfo=zone)
            if start <= now < end:
                return False
        ranges = self.weekly().get(local.weekday(), ())
        for holiday in self.holidays:
            if holiday.matches(local.date()):
                ranges = parse_ranges(holiday.hours)
                break
        clock = local.time().replace(tzinfo=None)
        return any(start <= clock < end or (end == time.max and clock >= start) for start, end in ranges)
