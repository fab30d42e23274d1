"""The IVR engine: one call walking through its flows, with no I/O.

In the manner of websockets' sans-I/O protocol, a `Session` is fed what happened on the call
(`ivr.events`) with the current time and returns what to do about it (`ivr.actions`). It never reads a
clock, waits or sends anything itself: timers go out as `StartTimer` actions and come back as
`TimerFired` events, so a test or a simulator drives a call with plain values.

A call moves through these states::

    not started --CallStarted--> in the flow --the flow hangs up (Hangup action)--> closed
        |                         |  ^    +--the caller (or the service) hangs up--> closed
        |                         |  |
        |              Enqueue /  |  | QueueExited, TransferFailed,
        |    Transfer / Voicemail |  | RecordingFinished with `next`
        |                         v  |
        |                       handed off --the caller (or the service) hangs up--> closed
        +-- any other event: ignored

`ended` is True once the call's outcome is known:

- `queue`, `transfer`, `voicemail`: handed off. A hand-off can give the call back (a queue overflow,
  a failed transfer, a voicemail with `next`); the outcome is then cleared and the flow goes on.
- `hangup`, `callback`: the flow hung up (after its last prompt, e.g. a goodbye). A call that left a
  voicemail and then hangs up in the flow keeps the outcome `voicemail`. A caller who hangs up while
  their call-back request waits for its answer ends as `callback` too.
- `abandoned`: the caller hung up while in the flow. A caller hanging up once handed off, or during a
  last prompt, keeps that outcome (recorded as `hung_up` by the caller).

The service may end a call itself (`ServiceHangup`: it is stopping, or it lost its link to Asterisk):
that is recorded as `hung_up` by the service with the reason (after a `flow_error` when a fault ended
it), the channel is hung up, and the call keeps the outcome it had earned, else `hangup`. It is never
counted as the caller abandoning.

A queue with a call-back offer lets a waiting caller press its key: the engine asks routing to let them
go (`LeaveQueue`), and once routing answers `QueueExited("callback")` the caller is back in the flow, in
the queue node, for the call-back dialogue. A call-back that is kept ends the call as `callback`, keeping
the caller's place (`RequestCallback.place_since`); a caller who never gets one kept rejoins the queue at
the place they had (`Enqueue.since`). If an agent answers first (`QueueAnswered`), the caller stays with
them and their keys are no longer the flow's.

A confirmed call-back number (from a `callback` node or a queue's offer) goes out as `RequestCallback`
alone, and the engine waits (`waiting_for` is `callback`) for the adapter to say whether it was kept: a
caller is never thanked for a call-back that was lost. `CallbackStored` records `callback_requested`,
plays `done` and hangs up; `CallbackRefused` records `invalid_input` with the reason and asks for another
number, counted as a wrong entry. Keys pressed meanwhile are ignored. A caller who hangs up meanwhile
ends as `callback` (the request is out); the answer, when it comes later, still records
`callback_requested` or `invalid_input`.

`waiting_for` tells a simulator what would move the call along; it is None once the session is closed
and takes no more events. The exceptions: a caller who hangs up while leaving a voicemail still has
the message saved, so a later `RecordingFinished` records `voicemail_left`; and one who hangs up while
their call-back is being stored gets a late `CallbackStored` or `CallbackRefused` recorded.

In the flow, the engine waits for one thing at a time: a playback (`PlaybackFinished` with its id), the
caller's keys together with one timer, a CRM answer (with a guard timer), the answer to a call-back
request, or a hand-off. Ids are counters (`p1`, `t1`, `r1`), so an event with an old or unknown id is
stale and ignored, as is the answer to a call-back request when none waits for one. `handle` never
raises: a flow that spins without waiting, or an internal fault, records `flow_error` and hangs up, so a
caller never hears dead air.

What each node does lives with its node type (`ivr.nodes`): the session enters a node by calling its
`enter` with itself as the `ivr.nodes.base.Call`, and gives the events of a hand-off to the `Hold` the
node handed the caller over with. The session keeps what every node shares: prompts, keys and timers,
moving between nodes and flows, the call's outcome, and the requests that wait for an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from contacts import EventName
from ivr import actions, events, model
from ivr.conditions import Facts
from ivr.flowset import FlowSet
from ivr.nodes.base import Hold, OnKey, OnLookup, Retry, Then
from ivr.prompts import prompt_media
from ivr.templates import text

#: Nodes entered in one `handle` call without waiting for anything; more means the flow loops.
MAX_STEPS = 1000
#: Keys pressed during barge-in prompts, kept for the next node that takes input.
TYPEAHEAD_LIMIT = 32
#: What a caller may press; anything else in a `Digit` event is ignored.
KEYS = frozenset("0123456789*#ABCD")
#: The channel variable telling Asterisk which language folder to play prompts from.
CHANNEL_LANGUAGE = "CHANNEL(language)"

OUTCOMES: tuple[str, ...] = ("hangup", "transfer", "queue", "callback", "voicemail", "abandoned", "lost")

#: Events a hand-off answers with; they go to the node's `Hold`.
_HANDOFF_EVENTS = (events.RecordingFinished, events.QueueExited, events.QueueAnswered, events.TransferFailed)


@dataclass(frozen=True, slots=True)
class _CallbackRequest:
    """A `RequestCallback` sent and not yet answered, and what each answer leads to."""

    node: str
    queue: str
    number: str
    stored: Then
    refused: Callable[[str], None]


class Session:
    """One call through a `FlowSet`, starting at `flow`'s start node.

    Adapters use `handle` and the read-only properties. The other public methods are the
    `ivr.nodes.base.Call` interface, for node types running in the call.
    """

    def __init__(self, flows: FlowSet, flow: str, *, call_id: str = "call") -> None:
        if flow not in flows:
            known = ", ".join(sorted(flows)) or "none"
            raise ValueError(
                f"flow '{flow}' is not loaded (loaded flows: {known}); start the call in one of them"
            )
        self._flows = flows
        self._first_flow = flow
        self._flow_name = flow
        self._call_id = call_id
        self._language = flows[flow].default_language
        self._variables: dict[str, str] = {}
        self._caller: str | None = None
        self._dialed = ""
        self._now = datetime.fromtimestamp(0, UTC)
        self._out: list[actions.Action] = []
        self._counters: dict[str, int] = {}

        self._started = False
        self._closed = False
        self._outcome: str | None = None
        self._closing: str | None = None  # the outcome of a final prompt being played before hanging up
        self._kept_outcome: str | None = None  # the outcome when the flow ends later (a voicemail left)
        self._late_hold: Hold | None = None  # a hand-off the caller hung up during
        self._late_callback: _CallbackRequest | None = None  # a request the caller hung up on
        self._resumed_place: datetime | None = None  # a resumed caller's place in the queue they were in
        self._node: str | None = None
        self._path: list[str] = []
        self._next: tuple[str, str] | None = None

        # what the engine waits for
        self._playback: str | None = None
        self._barge_in = False
        self._after_playback: Then | None = None
        self._timer: str | None = None
        self._on_timeout: Then | None = None
        self._on_key: OnKey | None = None
        self._input_round = 0
        self._lookup: str | None = None
        self._on_lookup: OnLookup | None = None
        self._callback: _CallbackRequest | None = None
        self._handoff: Hold | None = None

        # the current node's own state
        self._attempts = 0
        self._keys = ""
        self._typeahead: list[str] = []

    # --- what the call looks like ------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """The outcome is known: the call was handed off or is over."""
        return self._outcome is not None

    @property
    def outcome(self) -> str | None:
        """One of `OUTCOMES`, or None while the call is in the flow."""
        return self._outcome

    @property
    def language(self) -> str:
        return self._language

    @property
    def variables(self) -> Mapping[str, str]:
        return MappingProxyType(self._variables)

    @property
    def node(self) -> str | None:
        """The node the call is in (or ended in); None before the call starts."""
        return self._node

    @property
    def flow(self) -> str:
        return self._flow_name

    @property
    def path(self) -> tuple[str, ...]:
        """Nodes entered, in order; a node of a flow other than the first is written `flow:node`."""
        return tuple(self._path)

    @property
    def waiting_for(self) -> str | None:
        """What would move the call along: `call` (not started yet), `playback`, `lookup`, `input`,
        `callback` (the answer to a `RequestCallback`), `timer`, or what a hand-off waits for (`queue`,
        `transfer`, `recording`); None once the session takes no more events."""
        if self._closed:
            return None
        if not self._started:
            return "call"
        if self._playback is not None:
            return "playback"
        if self._lookup is not None:
            return "lookup"
        if self._on_key is not None:
            return "input"
        if self._callback is not None:
            return "callback"
        if self._handoff is not None:
            return self._handoff.waiting_for
        if self._timer is not None:
            return "timer"
        return None

    @property
    def playback_id(self) -> str | None:
        """The playback whose `PlaybackFinished` the engine waits for."""
        return self._playback

    @property
    def timer_id(self) -> str | None:
        """The one running timer (a key timeout or a lookup guard)."""
        return self._timer

    @property
    def lookup_id(self) -> str | None:
        """The CRM request whose answer the engine waits for."""
        return self._lookup

    # --- feeding events ----------------------------------------------------------------------------

    def handle(self, event: events.Event, now: datetime) -> list[actions.Action]:
        """What to do now that `event` happened at `now` (an aware datetime; a naive one is taken as UTC)."""
        if self._closed:
            return self._late(event)
        if not self._started and not isinstance(event, events.CallStarted | events.CallResumed):
            return []
        self._out = []
        try:
            self._now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            self._dispatch(event)
            self._run()
        except Exception as error:  # the caller must not be left in silence, whatever went wrong
            try:
                self.fail_call(f"the engine failed: {type(error).__name__}: {error}")
            except Exception:
                self._closed = True
                self._outcome = self._outcome or "hangup"
                self._out.append(actions.Hangup("normal"))
        out, self._out = self._out, []
        return out

    def _late(self, event: events.Event) -> list[actions.Action]:
        """What a closed session still records: the end of a hand-off (a voicemail) or of a call-back
        request the caller hung up during."""
        if self._late_hold is not None:
            recorded = self._late_hold.late(event)
            if recorded:
                self._late_hold = None
                return recorded
        request = self._late_callback
        if isinstance(event, events.CallbackStored | events.CallbackRefused) and request is not None:
            self._late_callback = None
            if isinstance(event, events.CallbackStored):
                data = {"queue": request.queue, "number": request.number}
                return [actions.RecordEvent("callback_requested", data)]
            reason = str(event.reason)
            data = {"node": request.node, "digits": request.number, "reason": reason}
            return [actions.RecordEvent("invalid_input", data)]
        return []

    def _dispatch(self, event: events.Event) -> None:
        if isinstance(event, events.CallStarted):
            if not self._started:
                self._call_started(event)
        elif isinstance(event, events.CallResumed):
            if not self._started:
                self._call_resumed(event)
        elif isinstance(event, events.CallLost):
            self._call_lost(str(event.reason))
        elif isinstance(event, events.Digit):
            if self._handoff is not None:
                self._handoff.on_event(event)
            else:
                self._key(event.digit)
        elif isinstance(event, events.PlaybackFinished):
            if self._playback is not None and event.playback_id == self._playback:
                self._playback_done()
        elif isinstance(event, events.TimerFired):
            if self._timer is not None and event.timer_id == self._timer:
                on_timeout = self._on_timeout
                self._timer = self._on_timeout = None
                if on_timeout is not None:
                    on_timeout()
        elif isinstance(event, events.LookupAnswered | events.LookupFailed):
            if self._lookup is not None and event.request_id == self._lookup:
                self._lookup_answered(event)
        elif isinstance(event, _HANDOFF_EVENTS):
            if self._handoff is not None:
                self._handoff.on_event(event)
        elif isinstance(event, events.CallbackStored | events.CallbackRefused):
            request = self._callback
            if request is not None:  # else stale: no request waits for an answer
                self._callback = None
                if isinstance(event, events.CallbackStored):
                    request.stored()
                else:
                    request.refused(str(event.reason))
        elif isinstance(event, events.Hangup):
            self._caller_hung_up()
        elif isinstance(event, events.ServiceHangup):
            self._service_hung_up(event)

    def _run(self) -> None:
        """Enter nodes until the call waits for something (a loop, so a long chain never recurses)."""
        steps = 0
        while self._next is not None and not self._closed:
            flow, node = self._next
            self._next = None
            steps += 1
            if steps > MAX_STEPS:
                self.fail_call(
                    f"more than {MAX_STEPS} nodes in a row without waiting for the caller; "
                    "the flow loops: give the loop a prompt, a menu or an exit"
                )
                return
            self._enter(flow, node)

    # --- the Call interface: what the call is -------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self._call_id

    @property
    def node_id(self) -> str:
        return self._node or ""

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def caller(self) -> str | None:
        return self._caller

    @property
    def current_flow(self) -> model.Flow:
        return self._flows[self._flow_name]

    @property
    def keys(self) -> str:
        return self._keys

    @keys.setter
    def keys(self, value: str) -> None:
        self._keys = value

    @property
    def attempts(self) -> int:
        return self._attempts

    @attempts.setter
    def attempts(self, value: int) -> None:
        self._attempts = value

    def facts(self) -> Facts:
        return Facts(
            now=self._now,
            caller=self._caller,
            dialed=self._dialed,
            language=self._language,
            variables=self._variables,
            schedules=self.current_flow.schedules,
        )

    def start_of(self, flow: str) -> str | None:
        spec = self._flows.flows.get(flow)
        return None if spec is None else spec.start

    # --- the Call interface: what the call does ---------------------------------------------------

    def emit(self, action: actions.Action) -> None:
        self._out.append(action)

    def record(self, type_: EventName, **data: Any) -> None:
        self.emit(actions.RecordEvent(type_, data))

    def new_id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}{self._counters[prefix]}"

    def media(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        return prompt_media(self.current_flow, self._language, prompts)

    def set_variable(self, name: str, value: str) -> None:
        self._variables[name] = value
        self.emit(actions.SetVariable(name, value))

    def choose_language(self, language: str, how: str) -> None:
        self._language = language
        self.emit(actions.SetVariable(CHANNEL_LANGUAGE, language))
        self.record("language_chosen", language=language, how=how)

    def play(self, media: tuple[str, ...], *, barge_in: bool, then: Then) -> None:
        """Play `media`, then go on with `then`. A barge-in prompt is skipped when the caller has already
        typed ahead: they know what to press."""
        if not media or (barge_in and self._typeahead):
            then()
            return
        playback = self.new_id("p")
        self.emit(actions.Play(playback, media, self._language, barge_in))
        self._playback, self._barge_in, self._after_playback = playback, barge_in, then

    def _playback_done(self) -> None:
        then = self._after_playback
        self._playback = self._after_playback = None
        if then is not None:
            then()

    def start_timer(self, seconds: float, on_timeout: Then) -> None:
        self.cancel_timer()
        self._timer = self.new_id("t")
        self._on_timeout = on_timeout
        self.emit(actions.StartTimer(self._timer, seconds))

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self.emit(actions.CancelTimer(self._timer))
        self._timer = self._on_timeout = None

    def stop_playback(self) -> None:
        if self._playback is not None:
            self.emit(actions.StopPlayback(self._playback))
        self._playback = self._after_playback = None

    def stop_input(self) -> None:
        self._on_key = None
        self._input_round += 1

    def await_keys(self, on_key: OnKey, seconds: float, on_timeout: Then) -> None:
        """Wait for keys. Keys typed ahead are taken first, one by one, until the node moves on; each
        key handler starts its own next timer."""
        self._input_round += 1
        this_round = self._input_round
        self._on_key = on_key
        if not self._typeahead:
            self.start_timer(seconds, on_timeout)
            return
        while self._typeahead and self._on_key is not None and self._input_round == this_round:
            on_key(self._typeahead.pop(0))

    def _key(self, key: object) -> None:
        if not isinstance(key, str) or key not in KEYS:
            return
        if self._playback is not None:
            if self._barge_in:
                self.emit(actions.StopPlayback(self._playback))
                if len(self._typeahead) < TYPEAHEAD_LIMIT:
                    self._typeahead.append(key)
                self._playback_done()
            return
        if self._on_key is not None:
            self._on_key(key)

    def retry(
        self,
        kind: Retry,
        data: dict[str, Any],
        prompts: tuple[str, ...],
        *,
        barge_in: bool,
        retries: int,
        again: Then,
        give_up: Then,
    ) -> None:
        """Record a wrong or missing answer, play `prompts`, then ask `again` or, once the node's
        retries are used up, `give_up`."""
        self.record(kind, **data)
        self._attempts += 1
        self.play(self.media(prompts), barge_in=barge_in, then=give_up if self._attempts > retries else again)

    def fail_node(self, failure: str | None) -> None:
        if failure is not None:
            self.go(failure)
        else:
            self.hang_up("normal")

    def await_lookup(self, request: actions.Lookup, *, guard: float, on_answer: OnLookup) -> None:
        self._lookup = request.request_id
        self._on_lookup = on_answer
        self.emit(request)
        self.start_timer(
            guard, lambda: self._lookup_answered(events.LookupFailed(request.request_id, "timeout"))
        )

    def _lookup_answered(self, result: events.LookupAnswered | events.LookupFailed) -> None:
        on_answer = self._on_lookup
        self.cancel_timer()
        self._lookup = self._on_lookup = None
        if on_answer is not None:
            on_answer(result)

    def request_callback(
        self, request: actions.RequestCallback, *, stored: Then, refused: Callable[[str], None]
    ) -> None:
        self.emit(request)
        self._callback = _CallbackRequest(self.node_id, request.queue, request.number, stored, refused)

    def hand_off(self, outcome: str, hold: Hold) -> None:
        self._typeahead.clear()
        self._handoff = hold
        self._outcome = outcome

    def take_back(self) -> None:
        self._handoff = None
        self._outcome = None

    def keep_outcome(self, outcome: str) -> None:
        self._kept_outcome = outcome

    # --- moving between nodes ----------------------------------------------------------------------

    def _leave(self) -> None:
        self.cancel_timer()
        self.stop_playback()
        self.stop_input()
        self._lookup = self._on_lookup = None
        self._callback = None
        self._handoff = None
        self._attempts = 0
        self._keys = ""

    def go(self, node: str, flow: str | None = None) -> None:
        self._leave()
        self._next = (flow or self._flow_name, node)

    def _enter(self, flow_name: str, node_id: str) -> None:
        flow = self._flows.flows.get(flow_name)
        if flow is None:
            self.fail_call(f"flow '{flow_name}' is not loaded; load its file together with this flow")
            return
        node = flow.nodes.get(node_id)
        if node is None:
            self.fail_call(f"flow '{flow_name}' has no node '{node_id}'; correct the target's name")
            return
        if flow_name != self._flow_name:
            self._switch_flow(flow_name, flow)
        self._node = node_id
        self._path.append(node_id if flow_name == self._first_flow else f"{flow_name}:{node_id}")
        self.record("node_entered", node=node_id, flow=flow_name, type=node.TYPE_KEY)
        node.enter(self)

    def _switch_flow(self, name: str, flow: model.Flow) -> None:
        """Prompts, languages and schedules now come from `flow`; its variable defaults fill in gaps."""
        self._flow_name = name
        if self._language not in flow.languages:
            self.choose_language(flow.default_language, "default")
        for variable, value in flow.variables.items():
            self._variables.setdefault(variable, text(value))

    # --- the call's start and end ------------------------------------------------------------------

    def _call_started(self, event: events.CallStarted) -> None:
        self._begin(event)
        self.record(
            "call_started",
            flow=self._flow_name,
            caller=self._caller or "",
            caller_withheld=self._caller is None,
            dialed=self._dialed,
        )
        self.go(self.current_flow.start)

    def _call_resumed(self, event: events.CallResumed) -> None:
        """The service restarted while the call was in `event.node`: the call enters it again, in the
        language it had; a queue node keeps the caller's place."""
        self._begin(event)
        flow = self._flows.flows.get(event.flow)
        if flow is not None and event.flow != self._flow_name:
            self._flow_name = event.flow
        language = event.language if isinstance(event.language, str) else None
        if language is not None and language in self.current_flow.languages and language != self._language:
            self._language = language
            self.emit(actions.SetVariable(CHANNEL_LANGUAGE, language))
        self._resumed_place = event.place_since
        self.record("call_resumed", flow=event.flow, node=event.node)
        self.go(event.node, event.flow)

    def take_place(self) -> datetime | None:
        place, self._resumed_place = self._resumed_place, None
        return place

    def _begin(self, event: events.CallStarted | events.CallResumed) -> None:
        self._started = True
        caller = event.caller if isinstance(event.caller, str) else ""
        self._caller = caller if caller and caller.lower() != "anonymous" else None
        self._dialed = event.dialed if isinstance(event.dialed, str) else ""
        if isinstance(event.variables, Mapping):
            for name, value in event.variables.items():
                self._variables[str(name)] = text(value)
        self._variables.update(
            caller=self._caller or "",
            caller_withheld=text(self._caller is None),
            dialed=self._dialed,
            caller_name=event.caller_name if isinstance(event.caller_name, str) else "",
        )
        for name, default in self.current_flow.variables.items():
            self._variables.setdefault(name, text(default))

    def _close(self, outcome: str) -> None:
        self._leave()
        self._typeahead.clear()
        self._outcome = outcome
        self._closing = None
        self._closed = True
        self._next = None

    def hang_up(self, cause: str, outcome: str | None = None) -> None:
        """The flow hangs up now."""
        if outcome is None:
            outcome = self._kept_outcome or "hangup"
        self.record("hung_up", by="flow", node=self._node, flow=self._flow_name)
        self.emit(actions.Hangup(cause))
        self._close(outcome)

    def hang_up_after(self, prompts: tuple[str, ...], cause: str, outcome: str | None = None) -> None:
        """Play a last prompt, then hang up; a caller who hangs up during it still gets `outcome`."""
        final = outcome or self._kept_outcome or "hangup"
        self._closing = final
        self.play(self.media(prompts), barge_in=False, then=lambda: self.hang_up(cause, final))

    def fail_call(self, reason: str) -> None:
        self.record("flow_error", node=self._node, flow=self._flow_name, reason=reason)
        if self._callback is not None:  # the request is out: its answer is still recorded
            self._late_callback = self._callback
            self.hang_up("normal", "callback")
        else:
            self.hang_up("normal", self._outcome if self._outcome in ("callback", "voicemail") else None)

    def _call_lost(self, reason: str) -> None:
        """The call is gone without the caller hanging up (Asterisk stopped): said as it is."""
        outcome = self._ended_outcome() or "lost"
        self.record("call_lost", node=self._node, flow=self._flow_name, reason=reason)
        self._close(outcome)

    def _ended_outcome(self) -> str | None:
        """Leave the node as the call ends from outside the flow; the outcome the call has earned so
        far (a hand-off, a goodbye being played, a call-back request on its way), if any."""
        self._late_hold = self._handoff  # a recording goes on without the caller: its end is still recorded
        self._late_callback = self._callback  # the request is out: its answer is still recorded
        self._leave()
        return (
            self._outcome
            or self._closing
            or ("callback" if self._late_callback is not None else None)
            or self._kept_outcome
        )

    def _caller_hung_up(self) -> None:
        outcome = self._ended_outcome()
        if outcome is None:
            self.record("abandoned", node=self._node, flow=self._flow_name, where="ivr")
            outcome = "abandoned"
        else:
            self.record("hung_up", by="caller", node=self._node, flow=self._flow_name)
        self._close(outcome)

    def _service_hung_up(self, event: events.ServiceHangup) -> None:
        """The service ends the call: what the flow earned stands, and the channel is hung up."""
        if event.error is not None:
            self.record("flow_error", node=self._node, flow=self._flow_name, reason=str(event.error))
        outcome = self._ended_outcome() or "hangup"
        self.record("hung_up", by="service", node=self._node, flow=self._flow_name, reason=str(event.reason))
        self.emit(actions.Hangup("normal"))
        self._close(outcome)
