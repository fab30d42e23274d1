"""The call-back's life as a table and its retry policy, with plain values: windows across days, time
zones and daylight-saving changes, expiry, attempts used up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.callbacks import (
    FINAL,
    STATES,
    TRANSITIONS,
    Callback,
    IllegalCallbackMove,
    InvalidCallbackPolicy,
    RetryPolicy,
    Span,
    Window,
    first_attempt,
    move,
    outcome_move,
)

WARSAW = ZoneInfo("Europe/Warsaw")
NINE_TO_FIVE = Window.weekdays(9 * 60, 17 * 60)


def warsaw(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


# -- the table ---------------------------------------------------------------------------------------


def test_the_happy_path_and_a_retry_are_legal_moves() -> None:
    state = move("cb1", "requested", "schedule")
    assert state == "scheduled"
    assert move("cb1", state, "queue") == "queued"
    assert move("cb1", "queued", "dial") == "dialing"
    assert move("cb1", "dialing", "retry") == "retry_wait"
    assert move("cb1", "retry_wait", "queue") == "queued"
    assert move("cb1", "dialing", "complete") == "completed"


def test_final_states_allow_nothing_and_every_state_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for state in FINAL:
        assert TRANSITIONS[state] == {}
    for state, moves in TRANSITIONS.items():
        assert set(moves.values()) <= set(STATES), state


def test_an_illegal_move_names_the_callback_state_and_what_is_allowed() -> None:
    with pytest.raises(
        IllegalCallbackMove, match="'cb7' cannot dial while scheduled; while scheduled it can:"
    ):
        move("cb7", "scheduled", "dial")
    with pytest.raises(IllegalCallbackMove, match="completed is final"):
        move("cb7", "completed", "cancel")


@pytest.mark.parametrize(
    ("outcome", "next_at", "expired", "expected"),
    [
        ("answered", None, False, "complete"),
        ("cancelled", None, False, "cancel"),
        ("busy", datetime(2026, 12, 1, tzinfo=UTC), False, "retry"),
        ("no_answer", None, False, "fail"),
        ("no_answer", None, True, "expire"),
    ],
)
def test_outcome_move(outcome: str, next_at: datetime | None, expired: bool, expected: str) -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    expires = now - timedelta(seconds=1) if expired else now + timedelta(hours=1)
    assert outcome_move(outcome, next_at, expires, now) == expected  # type: ignore[arg-type]


# -- windows -----------------------------------------------------------------------------------------


def test_window_is_read_in_the_customers_time_zone() -> None:
    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)  # Tuesday: 09:30 in Warsaw, 03:30 in New York
    assert NINE_TO_FIVE.contains(at, "Europe/Warsaw")
    assert not NINE_TO_FIVE.contains(at, "America/New_York")
    assert NINE_TO_FIVE.next_open(at, "America/New_York") == datetime(2026, 12, 1, 14, tzinfo=UTC)


def test_window_end_is_open_and_friday_evening_moves_to_monday() -> None:
    friday_five = warsaw(2026, 12, 4, 17, 0)
    assert not NINE_TO_FIVE.contains(friday_five, "Europe/Warsaw")
    assert NINE_TO_FIVE.contains(friday_five - timedelta(seconds=1), "Europe/Warsaw")
    assert NINE_TO_FIVE.next_open(friday_five, "Europe/Warsaw") == warsaw(2026, 12, 7, 9, 0)


def test_a_span_in_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 2026-03-29 02:00 -> 03:00 in Warsaw (a Sunday)
    window = Window((Span(6, 2 * 60 + 30, 4 * 60),))
    opens = window.next_open(datetime(2026, 3, 28, 12, tzinfo=UTC), "Europe/Warsaw")
    assert opens == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert opens.astimezone(WARSAW).hour == 3
    # a span wholly inside the gap does not exist that Sunday: the next one is a week later
    gap_only = Window((Span(6, 2 * 60 + 10, 2 * 60 + 50),))
    assert gap_only.next_open(datetime(2026, 3, 28, 12, tzinfo=UTC), "Europe/Warsaw") == datetime(
        2026, 4, 5, 0, 10, tzinfo=UTC
    )


def test_in_the_autumn_repeat_the_first_instant_is_taken() -> None:
    # 2026-10-25 03:00 -> 02:00 in Warsaw: 02:30 happens twice, first at 00:30 UTC
    window = Window((Span(6, 2 * 60 + 30, 2 * 60 + 45),))
    assert window.next_open(datetime(2026, 10, 24, 12, tzinfo=UTC), "Europe/Warsaw") == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert window.contains(datetime(2026, 10, 25, 1, 35, tzinfo=UTC), "Europe/Warsaw")  # the second 02:35


def test_bad_windows_and_zones_name_the_fix() -> None:
    with pytest.raises(InvalidCallbackPolicy, match="crossing midnight is written as two"):
        Span(0, 22 * 60, 2 * 60)
    with pytest.raises(InvalidCallbackPolicy, match="use 0 \\(Monday\\) to 6"):
        Span(7, 0, 60)
    with pytest.raises(InvalidCallbackPolicy, match="'Mars/Olympus' is not an IANA time zone"):
        NINE_TO_FIVE.contains(datetime(2026, 12, 1, tzinfo=UTC), "Mars/Olympus")
    with pytest.raises(InvalidCallbackPolicy, match="no hours"):
        RetryPolicy(window=Window(()))


# -- the policy --------------------------------------------------------------------------------------


def test_next_attempt_waits_the_delay_then_the_window() -> None:
    policy = RetryPolicy(attempts=3, delay=600, expiry=3 * 24 * 3600, window=NINE_TO_FIVE)
    requested = warsaw(2026, 12, 1, 10, 0)
    callback = Callback(requested, attempts=1, time_zone="Europe/Warsaw")
    assert policy.next_attempt(callback, "busy", warsaw(2026, 12, 1, 11, 0)) == warsaw(2026, 12, 1, 11, 10)
    assert policy.next_attempt(callback, "no_answer", warsaw(2026, 12, 1, 16, 55)) == warsaw(
        2026, 12, 2, 9, 0
    )


def test_answered_cancelled_and_used_up_attempts_end_the_callback() -> None:
    policy = RetryPolicy(attempts=2, delay=60)
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert policy.next_attempt(Callback(now, 1), "answered", now) is None
    assert policy.next_attempt(Callback(now, 1), "cancelled", now) is None
    assert policy.next_attempt(Callback(now, 1), "failed", now) == now + timedelta(seconds=60)
    assert policy.next_attempt(Callback(now, 2), "failed", now) is None


def test_no_attempt_after_the_expiry() -> None:
    policy = RetryPolicy(attempts=5, delay=600, expiry=4 * 3600, window=NINE_TO_FIVE)
    requested = warsaw(2026, 12, 1, 14, 0)  # expires at 18:00, the window closes at 17:00
    callback = Callback(requested, 1, "Europe/Warsaw")
    assert policy.next_attempt(callback, "busy", warsaw(2026, 12, 1, 16, 0)) == warsaw(2026, 12, 1, 16, 10)
    assert policy.next_attempt(callback, "busy", warsaw(2026, 12, 1, 16, 55)) is None
    assert policy.expires_at(requested) == warsaw(2026, 12, 1, 18, 0)


def test_first_attempt_respects_the_preferred_window_and_calling_hours() -> None:
    policy = RetryPolicy(expiry=7 * 24 * 3600, window=NINE_TO_FIVE)
    now = warsaw(2026, 12, 4, 16, 0)  # Friday
    assert first_attempt(now, None, policy, now, "Europe/Warsaw") == now
    saturday = (warsaw(2026, 12, 5, 10, 0), warsaw(2026, 12, 7, 12, 0))
    assert first_attempt(now, saturday, policy, now, "Europe/Warsaw") == warsaw(2026, 12, 7, 9, 0)
    weekend_only = (warsaw(2026, 12, 5, 10, 0), warsaw(2026, 12, 6, 20, 0))
    assert first_attempt(now, weekend_only, policy, now, "Europe/Warsaw") is None
    with pytest.raises(InvalidCallbackPolicy, match="ends before it starts"):
        first_attempt(now, (saturday[1], saturday[0]), policy, now)


def test_policy_limits_are_checked() -> None:
    with pytest.raises(InvalidCallbackPolicy, match="attempts 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(InvalidCallbackPolicy, match="has no time zone"):
        RetryPolicy().next_attempt(Callback(datetime(2026, 1, 1, tzinfo=UTC)), "busy", datetime(2026, 1, 1))


# -- properties --------------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"]
spans = st.builds(
    lambda day, start, length: Span(day, start, min(24 * 60, start + length)),
    st.integers(0, 6),
    st.integers(0, 24 * 60 - 1),
    st.integers(1, 12 * 60),
)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    window=st.lists(spans, min_size=1, max_size=4).map(lambda s: Window(tuple(s))),
    zone=st.sampled_from(ZONES),
    requested=instants,
    after=st.floats(0, 10 * 24 * 3600),
    attempts=st.integers(1, 6),
    made=st.integers(0, 8),
    delay=st.floats(0, 2 * 24 * 3600),
    expiry=st.floats(3600, 20 * 24 * 3600),
    outcome=st.sampled_from(["no_answer", "busy", "failed"]),
)
def test_next_attempt_is_in_the_window_after_now_before_expiry_within_attempts(
    window: Window,
    zone: str,
    requested: datetime,
    after: float,
    attempts: int,
    made: int,
    delay: float,
    expiry: float,
    outcome: str,
) -> None:
    policy = RetryPolicy(attempts=attempts, delay=delay, expiry=expiry, window=window)
    now = requested + timedelta(seconds=after)
    at = policy.next_attempt(Callback(requested, made, zone), outcome, now)  # type: ignore[arg-type]
    if made >= attempts:
        assert at is None
    if at is not None:
        assert window.contains(at, zone)
        assert at >= now + timedelta(seconds=delay)
        assert at < policy.expires_at(requested)
        assert made < attempts
    else:
        # None only when attempts are used up or the window opens too late
        opens = window.next_open(now + timedelta(seconds=delay), zone)
        assert made >= attempts or opens is None or opens >= policy.expires_at(requested)


@settings(max_examples=150, deadline=None)
@given(
    window=st.lists(spans, min_size=1, max_size=4).map(lambda s: Window(tuple(s))),
    zone=st.sampled_from(ZONES),
    at=instants,
)
def test_next_open_is_inside_and_nothing_earlier_on_the_minute_is(
    window: Window, zone: str, at: datetime
) -> None:
    opens = window.next_open(at, zone)
    assert opens is not None  # every span is at least a minute long and recurs weekly
    assert opens >= at
    assert window.contains(opens, zone)
    probe = at
    while probe < opens - timedelta(minutes=1):
        assert not window.contains(probe, zone), probe
        probe += timedelta(minutes=17)
