"""The routing configuration: agents, queues and how waits are estimated, as pydantic models.

A routing file reads like the contact center's staffing sheet::

    agents:
      ann: {name: Ann Nowak, endpoint: PJSIP/ann, skills: {support: 7, polish: 10}, wrapup: 15}
    queues:
      support:
        skills: {support: 5}
        strategy: best_skill
        escalation:
          - {after: 60, skills: {support: 2}}

Queue and agent names are the keys. These models check one file's shape; `routing.router.Router`
uses them as they are.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routing.callbacks import WEEKDAYS, RetryPolicy, Span, Window, zone
from routing.strategies import STRATEGIES as CHOOSERS
from routing.strategies import Strategy

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=64)]
Level = Annotated[int, Field(ge=1, le=10)]
Skills = dict[Name, Level]

STRATEGIES: tuple[str, ...] = tuple(CHOOSERS)
DialOrder = Literal["agent_first", "customer_first"]
#: An outbound caller ID: digits with an optional leading +.
CallerNumber = Annotated[str, Field(pattern=r"^\+?[0-9]{2,20}$")]


class Strict(BaseModel):
    """Every model refuses keys it does not know, so a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AgentConfig(Strict):
    """One agent: who they are, which phone rings, what they can handle and how long they wrap up."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z]+/.+$")]
    skills: Skills = Field(default_factory=dict)
    wrapup: Annotated[float, Field(ge=0, le=3600)] = 10.0


class ServiceLevel(Strict):
    """The target: `percent` of callers answered within `seconds` (80 % in 20 s), and the span of the
    figures measured against it: the last `window` seconds (an hour)."""

    percent: Annotated[float, Field(gt=0, le=100)] = 80.0
    seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0
    window: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600.0


class EscalationStep(Strict):
    """After `after` seconds of waiting the caller's required skills become `skills` (usually wider)."""

    after: Annotated[float, Field(gt=0, le=86400)]
    skills: Skills = Field(default_factory=dict)


_HOURS = re.compile(r"^([0-2][0-9]):([0-5][0-9])\s*-\s*([0-2][0-9]):([0-5][0-9])$")


def _days(text: str) -> list[int]:
    """`mon-fri`, `sat`, `mon,wed,fri` or `sat-sun` as weekday numbers (0 = Monday)."""
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().lower().partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(
                f"'{text}' is not a day or a range of days; write days as mon, tue, wed, thu, fri, sat, sun, "
                "a range like mon-fri, or a list like mon,wed"
            )
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if end < start:
            raise ValueError(f"'{part.strip()}' runs backwards; write the earlier day first, like mon-fri")
        days += range(start, end + 1)
    return days


def _spans(days: str, text: str) -> list[tuple[int, int]]:
    """`08:00-18:00`, or several as `08:00-12:00, 13:00-17:00`, in minutes after midnight."""
    spans = []
    for part in text.split(","):
        match = _HOURS.match(part.strip())
        if not match:
            raise ValueError(
                f"{days}: '{part.strip()}' is not opening hours; write them as HH:MM-HH:MM, like 08:00-18:00"
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or h2 > 24 or end > 24 * 60:
            raise ValueError(f"{days}: '{part.strip()}' has an hour past 24:00; the day ends at 24:00")
        if end <= start:
            raise ValueError(
                f"{days}: '{part.strip()}' ends before it starts; hours crossing midnight are written on "
                "two days, like 'fri': '22:00-24:00' and 'sat': '00:00-02:00'"
            )
        spans.append((start, end))
    return spans


def parse_hours(hours: dict[str, str]) -> Window:
    """Weekly opening hours as written in the routing file (`{"mon-fri": "08:00-18:00"}`) as a Window;
    no hours at all means always open."""
    if not hours:
        return Window.always()
    spans = []
    for days, text in hours.items():
        for start, end in _spans(days, text):
            spans += [Span(day, start, end) for day in _days(days)]
    return Window(tuple(sorted(set(spans), key=lambda s: (s.day, s.start, s.end))))


class CallbackPolicyConfig(Strict):
    """A queue's call-back rules: attempts in all, seconds between them, seconds after the request the
    call-back is still worth making, the customer's time zone when they do not give theirs, the
    weekly hours in which customers may be called (read in the customer's time zone), and who is rung
    first: the agent (who hears whom they call, then the customer is dialed) or the customer (an agent
    is rung once the customer answers)."""

    attempts: Annotated[int, Field(ge=1, le=100)] = 3
    delay: Annotated[float, Field(ge=0, le=7 * 24 * 3600)] = 300.0
    expiry: Annotated[float, Field(gt=0, le=90 * 24 * 3600)] = 24 * 3600.0
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    hours: dict[str, str] = Field(default_factory=dict)
    dial: DialOrder = "agent_first"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _readable_hours(cls, value: dict[str, str]) -> dict[str, str]:
        parse_hours(value)
        return value

    def window(self) -> Window:
        return parse_hours(self.hours)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, delay=self.delay, expiry=self.expiry, window=self.window())


class QueueConfig(Strict):
    """A queue: who may take its callers, in which order, and what the caller hears while waiting."""

    skills: Skills = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    strategy: Strategy = "longest_idle"
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    music: Annotated[str, Field(min_length=1, max_length=80)] = "default"
    announce_every: Annotated[float, Field(ge=0, le=3600)] = 30.0
    max_wait: Annotated[float, Field(gt=0, le=86400)] = 600.0
    ring_timeout: Annotated[float, Field(gt=0, le=300)] = 15.0
    escalation: tuple[EscalationStep, ...] = ()
    priority_aging: Annotated[float, Field(ge=0, le=100)] = 0.0
    #: None: call-backs for this queue follow the default `RetryPolicy` (3 attempts, any time, in UTC)
    callback: CallbackPolicyConfig | None = None
    #: The number customers see when the queue calls them (call-backs); None: the trunk's own.
    caller_id: CallerNumber | None = None

    @model_validator(mode="after")
    def _steps_in_order(self) -> QueueConfig:
        for earlier, later in zip(self.escalation, self.escalation[1:], strict=False):
            if later.after <= earlier.after:
                raise ValueError(
                    f"escalation steps must come in order of `after`: {later.after:g} s follows "
                    f"{earlier.after:g} s; sort the steps by their waiting time"
                )
        return self


class EstimateConfig(Strict):
    """Wait estimates: the handle time assumed for an agent before their first call, and how strongly
    each new call moves an agent's smoothed handle time (exponential weight of the newest call)."""

    default_handle_time: Annotated[float, Field(gt=0, le=7200)] = 180.0
    smoothing: Annotated[float, Field(gt=0, le=1)] = 0.2


class RoutingConfig(Strict):
    agents: dict[Name, AgentConfig] = Field(default_factory=dict)
    queues: dict[Name, QueueConfig] = Field(default_factory=dict)
    estimates: EstimateConfig = Field(default_factory=EstimateConfig)
