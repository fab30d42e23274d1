"""Call-backs as pure decisions: the life of a call-back as a table of legal moves, and the retry policy
that says when the next attempt is due.

No clock reads and no I/O: every function takes `now` as a value, so a test (or the store's crash
recovery) can ask "what happens next?" with plain values. The store (`hotline.store.callbacks`) keeps the
state; the service asks this module where a call-back may go and when.

Life of a call-back::

    requested -> scheduled -> queued -> dialing -> completed
                     ^          |          |-----> retry_wait -> queued -> dialing -> ...
                     |          |          |-----> failed      (attempts used up)
                     +----------+          +-----> expired     (no attempt fits before the expiry)
    any state that is not final -> cancelled | expired

Windows are weekly opening hours read in the *customer's* time zone (an IANA name such as
`Europe/Warsaw`), so a customer abroad is not called at night.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.errors import RoutingError

State = Literal[
    "requested", "scheduled", "queued", "dialing", "retry_wait", "completed", "failed", "expired", "cancelled"
]
Move = Literal["schedule", "reschedule", "queue", "dial", "complete", "retry", "fail", "expire", "cancel"]
Outcome = Literal["answered", "no_answer", "busy", "failed", "cancelled"]

STATES: tuple[State, ...] = (
    "requested",
    "scheduled",
    "queued",
    "dialing",
    "retry_wait",
    "completed",
    "failed",
    "expired",
    "cancelled",
)
OUTCOMES: tuple[Outcome, ...] = ("answered", "no_answer", "busy", "failed", "cancelled")
FINAL: frozenset[State] = frozenset({"completed", "failed", "expired", "cancelled"})
#: States from which a worker may claim a call-back once its time has come.
DUE: frozenset[State] = frozenset({"scheduled", "queued", "retry_wait"})

#: The one table of legal moves: state -> move -> next state.
TRANSITIONS: Mapping[State, Mapping[Move, State]] = {
    "requested": {"schedule": "scheduled", "cancel": "cancelled", "expire": "expired"},
    "scheduled": {
        "reschedule": "scheduled",
        "queue": "queued",
        "cancel": "cancelled",
        "expire": "expired",
    },
    "queued": {
        "reschedule": "scheduled",
        "dial": "dialing",
        "cancel": "cancelled",
        "expire": "expired",
    },
    "dialing": {
        "complete": "completed",
        "retry": "retry_wait",
        "fail": "failed",
        "expire": "expired",
        "cancel": "cancelled",
    },
    "retry_wait": {
        "reschedule": "scheduled",
        "queue": "queued",
        "cancel": "cancelled",
        "expire": "expired",
    },
    "completed": {},
    "failed": {},
    "expired": {},
    "cancelled": {},
}

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class IllegalCallbackMove(RoutingError):
    """A move the call-back's state does not allow, e.g. dialing a call-back that was cancelled."""

    def __init__(self, callback_id: str, state: str, move: str) -> None:
        self.callback_id = callback_id
        self.state = state
        self.move = move
        allowed = sorted(next((moves for name, moves in TRANSITIONS.items() if name == state), {}))
        hint = (
            f"; while {state} it can: {', '.join(allowed)}"
            if allowed
            else f"; {state} is final, request a new call-back instead"
        )
        super().__init__(f"call-back '{callback_id}' cannot {move} while {state}{hint}")


class InvalidCallbackPolicy(RoutingError, ValueError):
    """A retry policy or calling window that cannot work (no attempts, an hour past midnight, ...)."""


def move(callback_id: str, state: State, step: Move) -> State:
    """The state after `step`; raises IllegalCallbackMove when the table has no such move."""
    target = TRANSITIONS[state].get(step)
    if target is None:
        raise IllegalCallbackMove(callback_id, state, step)
    return target


def outcome_move(
    outcome: Outcome, next_at: datetime | None, expires_at: datetime | None, now: datetime
) -> Move:
    """Which move ends an attempt: answered completes, cancelled cancels, else retry if a next attempt
    was found, expire when the expiry has passed, fail when the attempts are used up."""
    if outcome == "answered":
        return "complete"
    if outcome == "cancelled":
        return "cancel"
    if next_at is not None:
        return "retry"
    if expires_at is not None and now >= expires_at:
        return "expire"
    return "fail"


def zone(name: str) -> tzinfo:
    """The IANA time zone `name`; raises InvalidCallbackPolicy naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidCallbackPolicy(
            f"time zone {name!r} is not an IANA time zone name; write it like Europe/Warsaw or America/New_York"
        ) from None


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCallbackPolicy(f"{what} {value.isoformat()} has no time zone; pass an aware time")
    return value


@dataclass(frozen=True, slots=True)
class Span:
    """Open hours on one weekday (0 = Monday), `start` to `end` in minutes after local midnight:
    `Span(0, 9 * 60, 17 * 60)` is Monday 09:00-17:00. A span that crosses midnight is two spans."""

    day: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6:
            raise InvalidCallbackPolicy(
                f"calling window day {self.day} is not a weekday; use 0 (Monday) to 6"
            )
        if not 0 <= self.start < self.end <= 24 * 60:
            raise InvalidCallbackPolicy(
                f"calling window on {WEEKDAYS[self.day]}: {_hhmm(self.start)}-{_hhmm(self.end)} is not a span "
                "of one day; the start must come before the end, and a span crossing midnight is written as two"
            )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Window:
    """Weekly calling hours, read in whichever time zone is passed (the customer's)."""

    spans: tuple[Span, ...]

    @classmethod
    def always(cls) -> Window:
        return cls(tuple(Span(day, 0, 24 * 60) for day in range(7)))

    @classmethod
    def weekdays(cls, start: int, end: int, days: tuple[int, ...] = (0, 1, 2, 3, 4)) -> Window:
        return cls(tuple(Span(day, start, end) for day in days))

    def contains(self, at: datetime, time_zone: str) -> bool:
        """Whether `at` falls in the window by the wall clock of `time_zone`."""
        local = _aware(at, "time").astimezone(zone(time_zone))
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(s.day == local.weekday() and s.start * 60 <= second < s.end * 60 for s in self.spans)

    def next_open(self, at: datetime, time_zone: str) -> datetime | None:
        """The earliest instant at or after `at` inside the window (None: the window is empty).

        Starts that fall in a daylight-saving gap move to the end of the gap; a span lying wholly inside
        a gap is skipped that week.
        """
        if self.contains(at, time_zone):
            return at
        tz = zone(time_zone)
        first_day = at.astimezone(tz).date()
        best: datetime | None = None
        for offset in range(9):
            day = first_day + timedelta(days=offset)
            for span in self.spans:
                if span.day != day.weekday():
                    continue
                candidate = _local_start(day, span.start, tz)
                if candidate is None or candidate < at or not self.contains(candidate, time_zone):
                    continue
                if best is None or candidate < best:
                    best = candidate
            if best is not None:
                return best
        return None


def _local_start(day: date, minutes: int, tz: tzinfo) -> datetime | None:
    """The first instant whose wall clock in `tz` is at or after `minutes` past midnight of `day`."""
    if minutes >= 24 * 60:
        return None
    naive = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    early = naive.replace(tzinfo=tz, fold=0)
    if early.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return early.astimezone(UTC)
    # In a gap: fold=0 and fold=1 read the wall time with the offsets before and after the jump, giving
    # two instants with the jump between them. Find it to the second.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = early.astimezone(UTC)
    if low > high:
        low, high = high, low
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) + (timedelta(seconds=1) if high.microsecond else timedelta(0))


class CallbackFacts(Protocol):
    """What the retry policy needs to know of a call-back (the store's record has these)."""

    @property
    def requested_at(self) -> datetime: ...

    @property
    def attempts(self) -> int: ...

    @property
    def time_zone(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Callback:
    """A call-back as plain values, for tests and callers that have no store record at hand."""

    requested_at: datetime
    attempts: int = 0
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A queue's call-back rules: how many attempts, how long between them, when calling is allowed
    (in the customer's time zone) and how long after the request the call-back is still worth making."""

    attempts: int = 3
    delay: float = 300.0
    expiry: float = 24 * 3600.0
    window: Window = field(default_factory=Window.always)

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 100:
            raise InvalidCallbackPolicy(f"call-back attempts {self.attempts}: give a number from 1 to 100")
        if not 0 <= self.delay <= 7 * 24 * 3600:
            raise InvalidCallbackPolicy(f"call-back delay {self.delay:g} s: give 0 to 604800 seconds")
        if not 0 < self.expiry <= 90 * 24 * 3600:
            raise InvalidCallbackPolicy(f"call-back expiry {self.expiry:g} s: give 1 to 7776000 seconds")
        if not self.window.spans:
            raise InvalidCallbackPolicy(
                "the calling window has no hours, so no call-back could ever be made; give at least one span"
            )

    def expires_at(self, requested_at: datetime) -> datetime:
        return _aware(requested_at, "request time") + timedelta(seconds=self.expiry)

    def _fit(self, earliest: datetime, time_zone: str, deadline: datetime) -> datetime | None:
        at = self.window.next_open(earliest, time_zone)
        if at is None or at >= deadline:
            return None
        return at

    def next_attempt(self, callback: CallbackFacts, outcome: Outcome, now: datetime) -> datetime | None:
        """When to try again after an attempt ended with `outcome` (`callback.attempts` counts it).

        None: the call-back is over — answered, cancelled, its attempts used up, or no time inside the
        window is left before the expiry.
        """
        _aware(now, "now")
        if outcome not in OUTCOMES:
            raise InvalidCallbackPolicy(f"call-back outcome {outcome!r} is not one of: {', '.join(OUTCOMES)}")
        if outcome in ("answered", "cancelled") or callback.attempts >= self.attempts:
            return None
        return self._fit(
            now + timedelta(seconds=self.delay), callback.time_zone, self.expires_at(callback.requested_at)
        )


def first_attempt(
    requested_at: datetime,
    preferred_window: tuple[datetime, datetime] | None,
    policy: RetryPolicy,
    now: datetime,
    time_zone: str = "UTC",
) -> datetime | None:
    """When to make the first attempt: not before now, not before the customer's preferred window opens,
    inside the calling hours, before the preferred window closes and before the expiry (None: no such time).
    """
    _aware(now, "now")
    earliest = max(now, _aware(requested_at, "request time"))
    deadline = policy.expires_at(requested_at)
    if preferred_window is not None:
        opens, closes = (_aware(t, "preferred window") for t in preferred_window)
        if closes <= opens:
            raise InvalidCallbackPolicy(
                f"preferred window {opens.isoformat()} - {closes.isoformat()} ends before it starts; swap them"
            )
        earliest = max(earliest, opens)
        deadline = min(deadline, closes)
    return policy._fit(earliest, time_zone, deadline)
