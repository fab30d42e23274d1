"""The flow language: what an admin writes in a flow file, as pydantic models.

A flow file has a name, its languages, prompts, schedules, a start node and nodes. A node's type is the
one type key it carries (``play:``, ``menu:``, ``collect:`` ...), in the manner of Home Assistant's script
actions, so a flow reads like what the caller hears::

    nodes:
      main:
        menu: main-menu
        options: {1: sales, 2: support}

These models only check the shape of one file; ``ivr.checks`` checks the graph (targets, reachability,
loops, collisions) and ``ivr.loader`` turns errors into ``file:line:column`` messages.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

NODE_TYPES: tuple[str, ...] = (
    "play",
    "menu",
    "collect",
    "say",
    "branch",
    "set",
    "lookup",
    "language",
    "queue",
    "callback",
    "transfer",
    "voicemail",
    "goto",
    "hangup",
)

#: The longest an HTTP lookup may take before the flow takes its fallback path.
LOOKUP_TIMEOUT_CAP = 5.0

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
PromptName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-./]+$")]


def _key_text(value: Any) -> Any:
    """`repeat: 0` and `extension: 100` mean the keys as written, not numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


_AS_KEYS = BeforeValidator(_key_text, json_schema_input_type=str | int)
Keys = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#]{1,8}$")]
Key = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#]$")]
Extension = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#+A-Za-z_\-]+$")]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=64)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")]


class Strict(BaseModel):
    """Every model refuses keys it does not know, so a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _as_list(value: Any) -> Any:
    """`play: welcome` and `play: [welcome, thanks]` are both fine."""
    if isinstance(value, str):
        return [value]
    return value


#: One prompt name or a list of them.
PromptList = Annotated[
    tuple[PromptName, ...],
    BeforeValidator(_as_list, json_schema_input_type=PromptName | list[PromptName]),
]
Prompts = Annotated[PromptList, Field(min_length=1)]


# --- schedules -------------------------------------------------------------------------------------

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


# --- conditions ------------------------------------------------------------------------------------


class Condition(Strict):
    """One test in a `branch`. Fields given together must all hold; `any`/`all`/`not` combine tests.

    - `schedule: office` (with `open: true`, the default, or `open: false`);
    - `caller: "+4822*"` or a list of such patterns (`*` any digits, `?` one digit, `[0-4]` a digit range);
      `caller: anonymous` matches a withheld number;
    - `dialed:` the same for the number the caller dialed;
    - `language: pl`;
    - `var: tier` with one of `equals`, `not_equals`, `in`, `matches` (a regular expression), `exists`,
      `gt`, `ge`, `lt`, `le` (numbers).
    """

    schedule: str | None = None
    open: bool = True
    caller: tuple[str, ...] | None = None
    dialed: tuple[str, ...] | None = None
    language: LanguageCode | None = None
    var: VariableName | None = None
    equals: str | int | float | bool | None = None
    not_equals: str | int | float | bool | None = None
    in_: tuple[str | int | float, ...] | None = Field(default=None, alias="in")
    matches: str | None = None
    exists: bool | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    any: tuple[Condition, ...] | None = None
    all: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator("caller", "dialed", mode="before", json_schema_input_type=str | list[str] | None)
    @classmethod
    def _patterns(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"'{v}' is not a regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Condition:
        tests = ("equals", "not_equals", "in_", "matches", "exists", "gt", "ge", "lt", "le")
        used = [t for t in tests if getattr(self, t) is not None]
        if used and self.var is None:
            raise ValueError(f"'{used[0].rstrip('_')}' compares a variable: add 'var: NAME'")
        if self.var is not None and not used:
            raise ValueError("'var' needs a test: equals, not_equals, in, matches, exists, gt, ge, lt or le")
        given = [
            f
            for f in ("schedule", "caller", "dialed", "language", "var", "any", "all", "not_")
            if getattr(self, f) is not None
        ]
        if not given:
            raise ValueError("an empty condition; test a schedule, caller, dialed, language or var")
        return self


# --- nodes -----------------------------------------------------------------------------------------


class NodeBase(Strict):
    """What every node may carry besides its type key."""

    description: str | None = None


class Play(NodeBase):
    """Play one or more prompts, then go on."""

    play: Prompts
    barge_in: bool = False
    next: NodeId


class Menu(NodeBase):
    """Play a prompt and wait for one of the options."""

    menu: Prompts
    options: dict[Keys, NodeId] = Field(min_length=1)
    barge_in: bool = True
    timeout: Seconds = 5.0
    inter_digit_timeout: Seconds = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    invalid: PromptList = ("pm-invalid-option",)
    no_input: PromptList = ()
    repeat: Key | None = None
    failure: NodeId | None = None


class Confirm(Strict):
    """Read collected digits back and ask the caller to confirm (1) or enter them again (2)."""

    prompt: PromptList = ("you-entered",)
    question: PromptList = ("if-correct-press", "digits/1")
    yes: Key = "1"
    no: Key = "2"


class Collect(NodeBase):
    """Collect digits into a variable."""

    collect: VariableName
    prompt: PromptList = ()
    min_length: Annotated[int, Field(ge=1, le=64)] = 1
    max_length: Annotated[int, Field(ge=1, le=64)] = 20
    terminator: Key | None = "#"
    timeout: Seconds = 6.0
    inter_digit_timeout: Seconds = 3.0
    pattern: str | None = None
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    invalid: PromptList = ("pm-invalid-option",)
    no_input: PromptList = ()
    barge_in: bool = True
    confirm: Confirm | None = None
    next: NodeId
    failure: NodeId | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"'{v}' is not a regular expression: {e}") from None
        return v

    @field_validator("confirm", mode="before", json_schema_input_type=bool | Confirm | None)
    @classmethod
    def _confirm(cls, v: Any) -> Any:
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @model_validator(mode="after")
    def _lengths(self) -> Collect:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is above max_length {self.max_length}")
        return self


class Say(NodeBase):
    """Say a value with Asterisk's say sounds: digit by digit, as a number, or letter by letter."""

    say: Annotated[str, Field(min_length=1)]
    as_: Literal["digits", "number", "characters"] = Field(default="digits", alias="as")
    before: PromptList = ()
    after: PromptList = ()
    barge_in: bool = False
    next: NodeId


class Case(Strict):
    """One arm of a branch: when `if` holds, go to `goto`."""

    if_: Condition = Field(alias="if")
    goto: NodeId


class Branch(NodeBase):
    """Take the first arm whose condition holds, else `else`."""

    branch: tuple[Case, ...] = Field(min_length=1)
    else_: NodeId = Field(alias="else")


class SetVariables(NodeBase):
    """Set variables (templates such as `{caller}` are filled in)."""

    set: dict[VariableName, str | int | float | bool] = Field(min_length=1)
    next: NodeId


class Request(Strict):
    """An HTTP request to a CRM."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    timeout: Annotated[float, Field(gt=0)] = 2.0
    fields: dict[VariableName, str] = Field(default_factory=dict)

    @field_validator("timeout")
    @classmethod
    def _cap(cls, v: float) -> float:
        if v > LOOKUP_TIMEOUT_CAP:
            raise ValueError(f"a lookup may wait at most {LOOKUP_TIMEOUT_CAP:g} s; callers are waiting")
        return v

    @model_validator(mode="after")
    def _body(self) -> Request:
        if self.body is not None and self.method == "GET":
            raise ValueError("a GET lookup has no body; use method: POST")
        return self


class Lookup(NodeBase):
    """Ask a CRM over HTTP; fields of its JSON answer become variables."""

    lookup: Request
    next: NodeId
    fallback: NodeId


class Language(NodeBase):
    """Choose the caller's language: by key (`{1: en, 2: pl}`) or set one (`pl`, `{lang_var}`)."""

    language: dict[Key, LanguageCode] | str
    prompt: PromptList = ()
    timeout: Seconds = 5.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    default: LanguageCode | None = None
    next: NodeId


class CallbackDialogue(Strict):
    """Taking a call-back number: confirm the caller's own number or collect another."""

    confirm: PromptList = ("vm-num-i-have",)
    question: PromptList = ("if-correct-press", "digits/1", "vm-calldiffnum")
    enter_number: PromptList = ("vm-enter-num-to-call", "astcc-followed-by-the-pound-key")
    done: PromptList = ("auth-thankyou",)
    pattern: str = r"^\+?[0-9]{6,15}$"
    timeout: Seconds = 6.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2

    @field_validator("pattern")
    @classmethod
    def _readable_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(
                f"'{value}' is not a regular expression ({e}); write one like ^\\+?[0-9]{{6,15}}$"
            ) from None
        return value


class CallbackOffer(CallbackDialogue):
    """Offer a call-back from a `callback` node: the queue whose agent calls back, and the dialogue."""

    queue: Name
    skills: dict[str, Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0


class QueueCallback(CallbackDialogue):
    """Offer a caller waiting in a queue to be called back, keeping their place: now and then they hear
    `offer`; pressing `key` takes them out of the queue into the call-back dialogue."""

    key: Key = "1"
    after: Annotated[float, Field(ge=0, le=86400)] = 30.0
    estimate_over: Annotated[float, Field(gt=0, le=86400)] | None = 120.0
    every: Annotated[float, Field(ge=0, le=3600)] = 60.0
    offer: PromptList = ("vm-press", "digits/1", "vm-tocallback")


class QueueSpec(Strict):
    """Hand the caller to skill routing."""

    name: Name
    skills: dict[Name, Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    music: str = "default"
    announce_every: Annotated[float, Field(ge=0, le=3600)] = 30.0
    max_wait: Annotated[float, Field(gt=0, le=86400)] = 600.0
    callback: QueueCallback | None = None

    @field_validator("callback", mode="before", json_schema_input_type=bool | QueueCallback | None)
    @classmethod
    def _callback(cls, v: Any) -> Any:
        """`callback: true` offers a call-back with every default; `false` offers none."""
        if v is True:
            return {}
        if v is False:
            return None
        return v


class Queue(NodeBase):
    """Put the caller in a queue for an agent; `overflow` when the wait runs out or nobody can take it."""

    queue: QueueSpec
    overflow: NodeId


class Callback(NodeBase):
    """Offer a call-back; `failure` when the caller does not confirm a number."""

    callback: CallbackOffer
    failure: NodeId | None = None


class TransferTarget(Strict):
    """Exactly one of extension (in `context`), endpoint (PJSIP/agent1) or external number."""

    extension: Extension | None = None
    context: str = "hotline-transfer"
    endpoint: str | None = Field(default=None, pattern=r"^[A-Za-z]+/.+$")
    number: str | None = Field(default=None, pattern=r"^\+?[0-9]{2,20}$")
    timeout: Seconds = 30.0

    @model_validator(mode="after")
    def _one(self) -> TransferTarget:
        given = [k for k in ("extension", "endpoint", "number") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of extension, endpoint or number")
        return self


class Transfer(NodeBase):
    """Transfer the caller; `failure` when nobody answers or the line is busy."""

    transfer: TransferTarget
    failure: NodeId | None = None


class VoicemailSpec(Strict):
    """Record a message for a mailbox."""

    mailbox: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-@]+$")]
    prompt: PromptList = ("vm-intro",)
    max_duration: Annotated[float, Field(gt=0, le=600)] = 120.0
    beep: bool = True
    terminator: Key = "#"


class Voicemail(NodeBase):
    """Record a voicemail, then go on (usually to a goodbye and hang-up)."""

    voicemail: VoicemailSpec
    next: NodeId | None = None


class GotoTarget(Strict):
    """A node of another flow file (a shared sub-flow)."""

    flow: Name
    node: NodeId | None = None


class Goto(NodeBase):
    """Jump to a node of this flow (`goto: node`) or of another flow (`goto: {flow: shared, node: x}`)."""

    goto: NodeId | GotoTarget


class HangupSpec(Strict):
    prompt: PromptList = ()
    cause: Literal["normal", "busy", "congestion"] = "normal"


class Hangup(NodeBase):
    """Say goodbye (optionally) and hang up."""

    hangup: HangupSpec = Field(default_factory=HangupSpec)

    @field_validator("hangup", mode="before", json_schema_input_type=HangupSpec | str | list[str] | None)
    @classmethod
    def _empty(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, str | list):
            return {"prompt": v}
        return v


def node_type(value: Any) -> str | None:
    """The type of a node: the one type key it carries."""
    if isinstance(value, dict):
        found = [k for k in NODE_TYPES if k in value]
        if len(found) == 1:
            return found[0]
    elif isinstance(value, BaseModel):
        for k in NODE_TYPES:
            if k in type(value).model_fields:
                return k
    return None


Node = Annotated[
    Annotated[Play, Tag("play")]
    | Annotated[Menu, Tag("menu")]
    | Annotated[Collect, Tag("collect")]
    | Annotated[Say, Tag("say")]
    | Annotated[Branch, Tag("branch")]
    | Annotated[SetVariables, Tag("set")]
    | Annotated[Lookup, Tag("lookup")]
    | Annotated[Language, Tag("language")]
    | Annotated[Queue, Tag("queue")]
    | Annotated[Callback, Tag("callback")]
    | Annotated[Transfer, Tag("transfer")]
    | Annotated[Voicemail, Tag("voicemail")]
    | Annotated[Goto, Tag("goto")]
    | Annotated[Hangup, Tag("hangup")],
    Discriminator(
        node_type,
        custom_error_type="node_type",
        custom_error_message="a node needs exactly one type key: " + ", ".join(NODE_TYPES),
    ),
]

PromptSpec = PromptName | dict[LanguageCode, PromptName]


class Flow(Strict):
    """One flow file."""

    flow: Name
    description: str | None = None
    languages: tuple[LanguageCode, ...] = Field(default=("en",), min_length=1)
    sounds: str | None = Field(
        default=None, description="A folder with one sub-folder per language holding this flow's prompts"
    )
    prompts: dict[PromptName, PromptSpec] = Field(default_factory=dict)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    variables: dict[VariableName, str | int | float | bool] = Field(default_factory=dict)
    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1)

    @field_validator("languages", mode="before", json_schema_input_type=LanguageCode | list[LanguageCode])
    @classmethod
    def _langs(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("languages")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a language is listed twice")
        return v

    @property
    def default_language(self) -> str:
        return self.languages[0]
