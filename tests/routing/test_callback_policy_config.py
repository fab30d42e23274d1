"""A queue's call-back policy in the routing file: opening hours as written become the retry policy's
calling window, and every mistake is reported in the file's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from routing.callbacks import RetryPolicy, Span, Window
from routing.model import CallbackPolicyConfig, QueueConfig, parse_hours


def test_hours_become_the_calling_window_and_the_policy() -> None:
    config = CallbackPolicyConfig(
        attempts=5,
        delay=600,
        expiry=7200,
        time_zone="Europe/Warsaw",
        hours={"mon-fri": "08:00-12:00, 13:00-18:00", "sat,sun": "09:00-13:00"},
    )
    window = config.window()
    assert window.spans == tuple(
        [Span(day, start, end) for day in range(5) for start, end in ((480, 720), (780, 1080))]
        + [Span(5, 540, 780), Span(6, 540, 780)]
    )
    assert config.retry_policy() == RetryPolicy(attempts=5, delay=600, expiry=7200, window=window)
    # 2026-11-02 is a Monday: 12:30 in Warsaw is the lunch break, 13:00 it opens again
    lunch = datetime(2026, 11, 2, 11, 30, tzinfo=UTC)
    assert window.next_open(lunch, "Europe/Warsaw") == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_defaults_call_back_at_any_time_in_utc() -> None:
    config = CallbackPolicyConfig()
    assert (config.attempts, config.delay, config.expiry, config.time_zone) == (3, 300, 86400, "UTC")
    assert config.retry_policy() == RetryPolicy()
    assert parse_hours({"mon-sun": "00:00-24:00"}) == Window.always()
    assert QueueConfig().callback is None
    assert QueueConfig.model_validate({"callback": {}}).callback == config


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        (
            {"hours": {"mon-fry": "08:00-18:00"}},
            "hours",
            "'mon-fry' is not a day or a range of days; write days as mon, tue, wed, thu, fri, sat, sun, "
            "a range like mon-fri, or a list like mon,wed",
        ),
        (
            {"hours": {"fri-mon": "08:00-18:00"}},
            "hours",
            "'fri-mon' runs backwards; write the earlier day first, like mon-fri",
        ),
        (
            {"hours": {"mon": "8-18"}},
            "hours",
            "mon: '8-18' is not opening hours; write them as HH:MM-HH:MM, like 08:00-18:00",
        ),
        (
            {"hours": {"fri": "22:00-02:00"}},
            "hours",
            "fri: '22:00-02:00' ends before it starts; hours crossing midnight are written on two days, "
            "like 'fri': '22:00-24:00' and 'sat': '00:00-02:00'",
        ),
        (
            {"hours": {"mon": "08:00-25:00"}},
            "hours",
            "mon: '08:00-25:00' has an hour past 24:00; the day ends at 24:00",
        ),
        (
            {"time_zone": "Europe"},
            "time_zone",
            "time zone 'Europe' is not an IANA time zone name; write it like Europe/Warsaw or America/New_York",
        ),
        ({"attempts": 0}, "attempts", "Input should be greater than or equal to 1"),
    ],
)
def test_mistakes_name_the_key_and_the_fix(given: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CallbackPolicyConfig.model_validate(given)
    [error] = caught.value.errors()
    assert (error["loc"], str(error["msg"]).removeprefix("Value error, ")) == ((field,), message)
