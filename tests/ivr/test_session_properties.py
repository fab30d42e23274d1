"""Properties of the engine over realistic flows (and every shipped flow in `flows/`) and any events:

- `handle` never raises, and every flow here is sound, so it never records `flow_error`;
- ids are fresh counters; at most one playback and one timer run; nothing is stopped or cancelled
  that is not running; the session's `playback_id` and `timer_id` are the ones running;
- once the caller stops pressing keys and only prompts, timers, lookups, recordings and call-back requests
  complete, every call ends (hangup, transfer, queue, callback or voicemail) within `DRAIN_LIMIT` events;
- `callback_requested` is recorded only when the store has kept the call-back (`CallbackStored`);
- whenever the caller hangs up, the call ends then and there, as abandoned unless it had already ended,
  and later events are ignored.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Callback, Collect, Flow, Language, Menu, Queue
from ivr.session import OUTCOMES, Session
from support.paths import FLOWS

DRAIN_LIMIT = 500

HOTLINE: dict[str, Any] = {
    "flow": "hotline",
    "languages": ["en", "pl"],
    "prompts": {"welcome": {"en": "hello", "pl": "dzien-dobry"}, "main-menu": "basic-pbx-ivr-main"},
    "schedules": {
        "office": {
            "timezone": "Europe/Warsaw",
            "hours": {"mon-fri": "08:00-18:00", "sat": "09:00-13:00"},
            "holidays": ["12-25", {"date": "12-24", "hours": "08:00-12:00"}],
        }
    },
    "variables": {"tier": "standard"},
    "start": "welcome",
    "nodes": {
        "welcome": {"play": "welcome", "barge_in": True, "next": "choose_language"},
        "choose_language": {"language": {"1": "en", "2": "pl"}, "prompt": "language-menu", "next": "hours"},
        "hours": {
            "branch": [
                {"if": {"schedule": "office", "open": False}, "goto": "closed"},
                {"if": {"caller": "anonymous"}, "goto": "main_menu"},
            ],
            "else": "find_customer",
        },
        "closed": {"voicemail": {"mailbox": "hotline"}, "next": "goodbye"},
        "find_customer": {
            "lookup": {
                "url": "https://crm.example/customers?phone={caller}",
                "timeout": 2,
                "fields": {
                    "tier": "customer.tier",
                    "name": "customer.name",
                    "account": "customer.accounts.0.id",
                },
            },
            "next": "greet",
            "fallback": "main_menu",
        },
        "greet": {"say": "{account}", "before": "your-account", "barge_in": True, "next": "main_menu"},
        "main_menu": {
            "menu": "main-menu",
            "options": {
                "1": "sales",
                "2": "support",
                "3": "account",
                "41": "billing",
                "42": "operator",
                "9": "callback",
            },
            "repeat": "*",
            "invalid": "wrong-key",
            "no_input": "please-try-again",
            "failure": "operator",
        },
        "sales": {"queue": {"name": "sales", "skills": {"sales": 1}}, "overflow": "busy"},
        "support": {
            "branch": [
                {
                    "if": {"any": [{"var": "tier", "equals": "gold"}, {"var": "tier", "in": ["platinum"]}]},
                    "goto": "vip",
                }
            ],
            "else": "support_queue",
        },
        "vip": {"set": {"note": "vip {name}"}, "next": "support_queue"},
        "support_queue": {"queue": {"name": "support", "priority": 5, "callback": True}, "overflow": "busy"},
        "account": {
            "collect": "account",
            "prompt": "enter-account",
            "min_length": 4,
            "max_length": 8,
            "pattern": "[0-9]+",
            "confirm": True,
            "next": "read_back",
            "failure": "main_menu",
        },
        "read_back": {"say": "{account}", "as": "number", "next": "billing"},
        "billing": {"transfer": {"endpoint": "PJSIP/billing"}, "failure": "busy"},
        "operator": {"transfer": {"extension": "operator"}, "failure": "busy"},
        "callback": {"callback": {"queue": "support"}, "failure": "goodbye"},
        "busy": {"goto": {"flow": "shared", "node": "sorry"}},
        "goodbye": {"hangup": ["thanks", "goodbye"]},
    },
}

SHARED: dict[str, Any] = {
    "flow": "shared",
    "languages": ["en"],
    "sounds": "sounds/shared",
    "prompts": {"sorry": "all-busy"},
    "start": "sorry",
    "nodes": {
        "sorry": {"play": ["im-sorry", "sorry"], "next": "offer"},
        "offer": {"callback": {"queue": "support", "retries": 1}, "failure": "leave_message"},
        "leave_message": {"voicemail": {"mailbox": "support"}, "next": "bye"},
        "bye": {"hangup": "goodbye"},
    },
}

SURVEY: dict[str, Any] = {
    "flow": "survey",
    "languages": ["pl", "en"],
    "variables": {"preferred": "en"},
    "start": "intro",
    "nodes": {
        "intro": {"play": "survey-intro", "next": "set_language"},
        "set_language": {"language": "{preferred}", "next": "rate"},
        "rate": {
            "menu": "rate-us",
            "options": {"1": "code", "2": "code", "3": "code", "4": "code", "5": "code"},
            "barge_in": False,
            "retries": 1,
        },
        "code": {
            "collect": "code",
            "terminator": None,
            "min_length": 2,
            "max_length": 4,
            "retries": 1,
            "next": "spell",
        },
        "spell": {"say": "{code}", "as": "characters", "next": "again"},
        "again": {"goto": "bye"},
        "bye": {"hangup": {"prompt": "thanks", "cause": "busy"}},
    },
}

# a caller straight into a queue that offers a call-back, so calls often press its key
WAITING: dict[str, Any] = {
    "flow": "waiting",
    "start": "queue",
    "nodes": {
        "queue": {
            "queue": {"name": "support", "callback": {"key": "*", "retries": 1}},
            "overflow": "bye",
        },
        "bye": {"hangup": "goodbye"},
    },
}


def fixtures() -> list[tuple[FlowSet, str]]:
    specs = (HOTLINE, SHARED, SURVEY, WAITING)
    flows = FlowSet({spec["flow"]: Flow.model_validate(spec) for spec in specs})
    return [(flows, name) for name in flows]


def shipped() -> list[tuple[FlowSet, str]]:
    """Every flow in `flows/`, loaded as the service loads them, once the loader is there."""
    files = sorted(FLOWS.glob("*.yaml"))
    if not files or importlib.util.find_spec("hotline.flowfiles") is None:
        return []
    flows: FlowSet = importlib.import_module("hotline.flowfiles").load_flow_files(files)
    return [(flows, name) for name in flows]


CASES = fixtures() + shipped()

KEYS = "0123456789*#"
BODIES: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        [],
        {},
        "not an object",
        {"customer": {"tier": "gold", "name": "Ann", "accounts": [{"id": 1234}]}},
        {"customer": {"tier": None, "accounts": []}},
        {"customer_id": 7, "customer_name": "Ann", "tier": "gold"},
    ]
)
KEY = st.tuples(st.just("key"), st.sampled_from(KEYS))
ADVANCE = st.tuples(st.just("advance"), BODIES)
CHOOSE = st.tuples(st.just("choose"), st.integers(0, 9))
NOISE = st.one_of(
    st.tuples(st.just("key"), st.sampled_from(["A", "x", "", "12"])),
    st.tuples(st.just("playback")),
    st.tuples(st.just("timer")),
    st.tuples(st.just("answer"), st.sampled_from([200, 204, 302, 404, 500]), BODIES),
    st.tuples(st.just("lookup_failed")),
    st.tuples(st.just("stale"), st.sampled_from(["p", "t", "r", "x"]), st.integers(0, 40)),
    st.tuples(st.just("recording")),
    st.tuples(st.just("queue_exited")),
    st.tuples(st.just("queue_callback")),
    st.tuples(st.just("queue_answered")),
    st.tuples(st.just("transfer_failed")),
    st.tuples(st.just("callback_stored")),
    st.tuples(st.just("callback_refused")),
    st.tuples(st.just("call_started")),
)
# keys and completions of what the call waits for are the common steps; the rest is noise
STEP = st.one_of(KEY, ADVANCE, CHOOSE, KEY, ADVANCE, CHOOSE, NOISE)
CALLERS = st.sampled_from(["+48221234567", None, "anonymous", "201"])
# office hours in Warsaw on a Wednesday, or any time of the year
# short calls, and long ones that go deep into the flows
STEPS = st.one_of(st.lists(STEP, max_size=20), st.lists(STEP, min_size=20, max_size=80))
TIMES = st.one_of(
    st.just(datetime(2026, 3, 4, 9, 0, tzinfo=UTC)),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
)


#: What a closed session still records, by the event that comes late.
LATE: dict[type[Any], list[str]] = {
    ev.RecordingFinished: ["voicemail_left"],
    ev.CallbackStored: ["callback_requested"],
    ev.CallbackRefused: ["invalid_input"],
}


@dataclass
class Call:
    """A stand-in for the adapter: feeds events and checks every answer against what is running."""

    session: Session
    flows: FlowSet
    now: datetime
    playing: set[str] = field(default_factory=set)
    timers: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    hangups: int = 0
    leaving: bool = False  # the engine asked routing to let the caller go for a call-back

    def feed(self, event: ev.Event) -> list[act.Action]:
        waited = self.session.waiting_for
        closed = waited is None
        if isinstance(event, ev.TimerFired):
            self.timers.discard(event.timer_id)
        if isinstance(event, ev.PlaybackFinished):
            self.playing.discard(event.playback_id)
        if isinstance(event, ev.QueueExited | ev.QueueAnswered):
            self.leaving = False
        out = self.session.handle(event, self.now)
        self.now += timedelta(seconds=1)
        types = [a.type for a in out if isinstance(a, act.RecordEvent)]
        if closed:
            # only what outlives the call is recorded: a voicemail, or the answer to a call-back request
            assert out == [] or (len(out) == len(types) and types == LATE.get(type(event))), (event, out)
        if "callback_requested" in types:
            assert isinstance(event, ev.CallbackStored) and waited in ("callback", None), event
        for action in out:
            self.check(action)
        assert len(self.playing) <= 1 and len(self.timers) <= 1
        assert self.session.playback_id == next(iter(self.playing), None)
        assert self.session.timer_id == next(iter(self.timers), None)
        assert self.session.ended == (self.session.outcome is not None)
        assert self.session.outcome is None or self.session.outcome in OUTCOMES
        waiting = self.session.waiting_for
        if waiting is None:
            assert self.session.ended and not self.playing and not self.timers
        # a timer runs exactly while the call waits for keys or for a lookup
        assert len(self.timers) == (1 if waiting in ("input", "lookup") else 0), (waiting, self.timers)
        return out

    def check(self, action: act.Action) -> None:
        match action:
            case act.Play():
                assert action.media and action.playback_id not in self.seen
                self.seen.add(action.playback_id)
                self.playing.add(action.playback_id)
            case act.StopPlayback():
                self.playing.remove(action.playback_id)
            case act.StartTimer():
                assert action.timer_id not in self.seen and action.seconds > 0
                self.seen.add(action.timer_id)
                self.timers.add(action.timer_id)
            case act.CancelTimer():
                self.timers.remove(action.timer_id)
            case act.Lookup():
                assert action.request_id not in self.seen
                self.seen.add(action.request_id)
            case act.RecordEvent():
                assert action.type in act.EVENT_TYPES
                assert action.type != "flow_error", action.data
            case act.LeaveQueue():
                self.leaving = True
            case act.Hangup():
                self.hangups += 1
                assert self.hangups == 1

    def events_for(self, step: tuple[Any, ...]) -> list[ev.Event]:
        if step[0] == "choose" and self.session.waiting_for == "callback":
            # the store's answer to the call-back request: kept, or refused so the caller tries again
            return [ev.CallbackStored("cb1") if step[1] % 3 else ev.CallbackRefused("not kept")]
        if step[0] == "choose":
            return [ev.Digit(key) for key in self.good_keys(step[1])]
        return [self.event_for(step)]

    def good_keys(self, n: int) -> str:
        """Keys a caller who knows the flow would press at the current node, to reach deep into it."""
        s = self.session
        node = self.flows[s.flow].nodes.get(s.node or "")
        match node:
            case Menu():
                options = sorted(node.options)
                return options[n % len(options)]
            case Language() if isinstance(node.language, dict):
                keys = sorted(node.language)
                return keys[n % len(keys)]
            case Collect():
                digits = "10123456"[: node.max_length]
                return digits if len(digits) == node.max_length else digits + (node.terminator or "")
            case Callback():
                return "1" if n % 3 else "2601234567#"
            case Queue() if s.waiting_for in ("input", "playback"):  # the call-back dialogue of a queue
                return "1" if n % 3 else "2601234567#"
            case Queue() if node.queue.callback is not None:
                return node.queue.callback.key if n % 2 else str(n)
        return str(n)

    def event_for(self, step: tuple[Any, ...]) -> ev.Event:
        s = self.session
        match step:
            case ("key", key):
                return ev.Digit(key)
            case ("advance", body):
                return self.advance(body)
            case ("playback",):
                return ev.PlaybackFinished(s.playback_id or "p0")
            case ("timer",):
                return ev.TimerFired(s.timer_id or "t0")
            case ("answer", status, body):
                return ev.LookupAnswered(s.lookup_id or "r0", status, body)
            case ("lookup_failed",):
                return ev.LookupFailed(s.lookup_id or "r0", "connection refused")
            case ("stale", prefix, number):
                return (
                    ev.PlaybackFinished(f"{prefix}{number}")
                    if number % 2
                    else ev.TimerFired(f"{prefix}{number}")
                )
            case ("recording",):
                return ev.RecordingFinished(4.0)
            case ("queue_exited",):
                return ev.QueueExited("max wait")
            case ("queue_callback",):
                return ev.QueueExited("callback")
            case ("queue_answered",):
                return ev.QueueAnswered()
            case ("transfer_failed",):
                return ev.TransferFailed("busy")
            case ("callback_stored",):
                return ev.CallbackStored("cb1")
            case ("callback_refused",):
                return ev.CallbackRefused("not an international number")
        return ev.CallStarted(caller="+1", dialed="1")

    def advance(self, body: Any) -> ev.Event:
        """The event that completes what the call waits for (a lookup answered with `body`)."""
        s = self.session
        match s.waiting_for:
            case "playback":
                return ev.PlaybackFinished(s.playback_id or "")
            case "input" | "timer":
                return ev.TimerFired(s.timer_id or "")
            case "lookup":
                return ev.LookupAnswered(s.lookup_id or "", 200, body)
            case "recording":
                return ev.RecordingFinished(6.0)
            case "queue":
                return ev.QueueExited("callback" if self.leaving else "max wait")
            case "transfer":
                return ev.TransferFailed("no answer")
            case "callback":
                # refused now and then, so a caller also has to give another number
                return ev.CallbackRefused("not kept") if body is None else ev.CallbackStored("cb1")
        return ev.Hangup()

    def drain(self) -> int:
        """Let prompts, timers, lookups, recordings and call-back requests complete (the store keeps
        every call-back), with no more keys; the events it took."""
        for count in range(DRAIN_LIMIT):
            s = self.session
            if s.ended:
                return count
            match s.waiting_for:
                case "playback":
                    self.feed(ev.PlaybackFinished(s.playback_id or ""))
                case "input" | "timer":
                    self.feed(ev.TimerFired(s.timer_id or ""))
                case "lookup":
                    self.feed(ev.LookupFailed(s.lookup_id or "", "timeout"))
                case "recording":
                    self.feed(ev.RecordingFinished(2.0))
                case "callback":
                    self.feed(ev.CallbackStored("cb1"))
                case other:
                    raise AssertionError(f"a call in the flow waits for {other!r}")
        raise AssertionError(
            f"the call did not end within {DRAIN_LIMIT} events: path {self.session.path[-20:]}"
        )


def begin(case: int, caller: str | None, now: datetime) -> Call:
    flows, flow = CASES[case]
    call = Call(Session(flows, flow, call_id="prop"), flows, now)
    call.feed(ev.CallStarted(caller=caller, dialed="100", variables={"preferred": "pl"}))
    return call


def walked(case: int, caller: str | None, now: datetime, steps: list[tuple[Any, ...]]) -> Call:
    """A call of flow set `case` that went through `steps` (keys, silences, hand-off answers ...)."""
    call = begin(case, caller, now)
    for step in steps:
        for event in call.events_for(step):
            call.feed(event)
    return call


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(CASES) - 1),
    CALLERS,
    TIMES,
    STEPS,
)
def test_any_events_never_break_a_call_and_every_call_ends(
    case: int, caller: str | None, now: datetime, steps: list[tuple[Any, ...]]
) -> None:
    call = walked(case, caller, now, steps)
    call.drain()
    assert call.session.outcome in ("hangup", "transfer", "queue", "callback", "voicemail")


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, len(CASES) - 1),
    CALLERS,
    TIMES,
    STEPS,
)
def test_the_caller_may_hang_up_at_any_step(
    case: int, caller: str | None, now: datetime, steps: list[tuple[Any, ...]]
) -> None:
    call = walked(case, caller, now, steps)
    outcome = call.session.outcome
    node = call.session.node
    was_closed = call.session.waiting_for is None
    out = call.feed(ev.Hangup())
    types = [a.type for a in out if isinstance(a, act.RecordEvent)]
    if was_closed:
        assert out == []
    elif types == ["abandoned"]:
        assert (outcome, call.session.outcome) == (None, "abandoned")
    else:
        # already handed off, or the flow was saying goodbye: the outcome stands
        assert types == ["hung_up"]
        assert call.session.outcome == (outcome or call.session.outcome)
        assert call.session.outcome in ("queue", "transfer", "voicemail", "hangup", "callback")
    assert not any(isinstance(a, act.Play | act.StartTimer | act.Hangup | act.Enqueue) for a in out)
    assert (call.session.waiting_for, call.session.node) == (None, node)
    final = call.session.outcome
    for step in steps[:10]:
        for event in call.events_for(step):
            call.feed(event)
    assert call.session.outcome == final


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, len(CASES) - 1),
    CALLERS,
    TIMES,
    STEPS,
    st.sampled_from([None, "Asterisk sent no answer"]),
)
def test_the_service_may_end_the_call_at_any_step(
    case: int, caller: str | None, now: datetime, steps: list[tuple[Any, ...]], error: str | None
) -> None:
    call = walked(case, caller, now, steps)
    outcome = call.session.outcome
    was_closed = call.session.waiting_for is None
    out = call.session.handle(ev.ServiceHangup("service_stopping", error), now)  # a flow_error may come
    if was_closed:
        assert out == []
        return
    records = [(a.type, a.data) for a in out if isinstance(a, act.RecordEvent)]
    assert records[-1][0] == "hung_up" and records[-1][1]["by"] == "service"
    assert records[-1][1]["reason"] == "service_stopping"
    assert [t for t, _ in records] == (["flow_error", "hung_up"] if error else ["hung_up"])
    assert out[-1] == act.Hangup("normal")  # the channel is hung up, never left open
    assert not any(isinstance(a, act.Play | act.StartTimer | act.Enqueue | act.Lookup) for a in out)
    # what the call had earned stands; a call still in the flow is never counted as abandoned
    if outcome is not None:
        assert call.session.outcome == outcome
    assert call.session.outcome in ("hangup", "transfer", "queue", "callback", "voicemail")
    assert call.session.waiting_for is None
    assert call.session.handle(ev.Hangup(), now) == []


def test_the_drain_ends_a_fixture_call_in_a_known_way() -> None:
    # a silent caller in office hours: language default, CRM fails, the menu gives up to the operator
    call = begin(0, "+48221234567", datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    call.drain()
    assert call.session.outcome == "transfer"
    assert call.session.path == (
        "welcome",
        "choose_language",
        "hours",
        "find_customer",
        "main_menu",
        "operator",
    )


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, len(CASES) - 1),
    CALLERS,
    TIMES,
    STEPS,
)
def test_a_call_may_be_lost_at_any_step_and_says_so(
    case: int, caller: str | None, now: datetime, steps: list[tuple[Any, ...]]
) -> None:
    call = walked(case, caller, now, steps)
    outcome = call.session.outcome
    node = call.session.node
    was_closed = call.session.waiting_for is None
    out = call.feed(ev.CallLost("Asterisk stopped"))
    if was_closed:
        assert out == []
        return
    assert [a.type for a in out if isinstance(a, act.RecordEvent)] == ["call_lost"]
    assert not any(isinstance(a, act.Play | act.StartTimer | act.Hangup | act.Enqueue) for a in out)
    if outcome is not None:
        assert call.session.outcome == outcome  # handed off already: that stands
    else:  # lost in the flow; a flow saying its last goodbye (or thanks for a call-back) keeps that
        assert call.session.outcome in ("lost", "hangup", "callback", "voicemail")
    assert (call.session.waiting_for, call.session.node) == (None, node)
    assert call.feed(ev.Digit("1")) == [] and call.feed(ev.Hangup()) == []
