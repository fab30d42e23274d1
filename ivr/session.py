"""The IVR engine: one call walking through its flows, with no I/O.

In the manner of websockets' sans-I/O protocol, a `Session` is fed what happened on the call
(`ivr.events`) with the current time and returns what to do about it (`ivr.actions`). It never reads a
clock, waits or sends anything itself: timers go out as `StartTimer` actions and come back as
`TimerFired` events, so a test or a simulator drives a call with plain values.

A call moves through these states::

    not started --CallStarted--> in the flow --the flow hangs up (Hangup action)--> closed
        |                         |  ^    +--the caller hangs up-----------------> closed
        |                         |  |
        |              Enqueue /  |  | QueueExited, TransferFailed,
        |    Transfer / Voicemail |  | RecordingFinished with `next`
        |                         v  |
        |                       handed off --the caller hangs up-----------------> closed
        +-- any other event: ignored

`ended` is True once the call's outcome is known:

- `queue`, `transfer`, `voicemail`: handed off. A hand-off can give the call back (a queue overflow,
  a failed transfer, a voicemail with `next`); the outcome is then cleared and the flow goes on.
- `hangup`, `callback`: the flow hung up (after its last prompt, e.g. a goodbye). A call that left a
  voicemail and then hangs up in the flow keeps the outcome `voicemail`. A caller who hangs up while
  their call-back request waits for its answer ends as `callback` too.
- `abandoned`: the caller hung up while in the flow. A caller hanging up once handed off, or during a
  last prompt, keeps that outcome (recorded as `hung_up` by the caller).

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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ivr import actions, events, model
from ivr.conditions import Facts, holds
from ivr.flowset import FlowSet
from ivr.prompts import prompt_media, say_media
from ivr.templates import render, render_data, render_header, render_url, text

#: Nodes entered in one `handle` call without waiting for anything; more means the flow loops.
MAX_STEPS = 1000
#: Keys pressed during barge-in prompts, kept for the next node that takes input.
TYPEAHEAD_LIMIT = 32
#: The guard timer of a lookup runs this much longer than the request may take.
LOOKUP_GRACE = 0.5
#: The longest number a caller may key in for a call-back.
CALLBACK_NUMBER_LIMIT = 20
#: What a caller may press; anything else in a `Digit` event is ignored.
KEYS = frozenset("0123456789*#ABCD")
#: The channel variable telling Asterisk which language folder to play prompts from.
CHANNEL_LANGUAGE = "CHANNEL(language)"

OUTCOMES: tuple[str, ...] = ("hangup", "transfer", "queue", "callback", "voicemail", "abandoned")

Then = Callable[[], None]


@dataclass(frozen=True, slots=True)
class _CallbackRequest:
    """A `RequestCallback` sent and not yet answered, and what each answer leads to."""

    node: str
    queue: str
    number: str
    stored: Then
    refused: Callable[[str], None]


class Session:
    """One call through a `FlowSet`, starting at `flow`'s start node."""

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
        self._voicemail_left = False
        self._late_recording: tuple[str, str] | None = None  # (mailbox, recording) cut short by the caller
        self._late_callback: _CallbackRequest | None = None  # a request the caller hung up on
        self._node: str | None = None
        self._path: list[str] = []
        self._next: tuple[str, str] | None = None

        # what the engine waits for
        self._playback: str | None = None
        self._barge_in = False
        self._after_playback: Then | None = None
        self._timer: str | None = None
        self._on_timeout: Then | None = None
        self._on_key: Callable[[str], None] | None = None
        self._input_round = 0
        self._lookup: str | None = None
        self._callback: _CallbackRequest | None = None
        self._handoff: model.Queue | model.Transfer | model.Voicemail | None = None
        self._queued_at: datetime | None = None  # the caller's place: when they first joined the queue
        self._queue_state = "waiting"  # while handed off to a queue: waiting, leaving or answered
        self._recording = ""
        self._transfer_to = ("", "")

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
        `callback` (the answer to a `RequestCallback`), `timer`, `recording`, `queue` or `transfer`; None
        once the session takes no more events."""
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
        if isinstance(self._handoff, model.Queue):
            return "queue"
        if isinstance(self._handoff, model.Transfer):
            return "transfer"
        if isinstance(self._handoff, model.Voicemail):
            return "recording"
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
        if not self._started and not isinstance(event, events.CallStarted):
            return []
        self._out = []
        try:
            self._now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            self._dispatch(event)
            self._run()
        except Exception as error:  # the caller must not be left in silence, whatever went wrong
            try:
                self._fail_call(f"the engine failed: {type(error).__name__}: {error}")
            except Exception:
                self._closed = True
                self._outcome = self._outcome or "hangup"
                self._out.append(actions.Hangup("normal"))
        out, self._out = self._out, []
        return out

    def _late(self, event: events.Event) -> list[actions.Action]:
        """What a closed session still records: the end of a voicemail or of a call-back request the
        caller hung up during."""
        if isinstance(event, events.RecordingFinished) and self._late_recording is not None:
            mailbox, recording = self._late_recording
            self._late_recording = None
            return [actions.RecordEvent("voicemail_left", _voicemail_data(mailbox, event, recording))]
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
        elif isinstance(event, events.Digit):
            if isinstance(self._handoff, model.Queue):
                self._queue_key(self._handoff, event.digit)
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
                self._lookup_result(event)
        elif isinstance(event, events.RecordingFinished):
            if isinstance(self._handoff, model.Voicemail):
                self._recording_finished(self._handoff, event)
        elif isinstance(event, events.QueueExited):
            if isinstance(self._handoff, model.Queue):
                self._queue_exited(self._handoff, event)
        elif isinstance(event, events.QueueAnswered):
            if isinstance(self._handoff, model.Queue):
                self._queue_state = "answered"
        elif isinstance(event, events.TransferFailed):
            if isinstance(self._handoff, model.Transfer):
                self._transfer_failed(self._handoff, event)
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

    def _run(self) -> None:
        """Enter nodes until the call waits for something (a loop, so a long chain never recurses)."""
        steps = 0
        while self._next is not None and not self._closed:
            flow, node = self._next
            self._next = None
            steps += 1
            if steps > MAX_STEPS:
                self._fail_call(
                    f"more than {MAX_STEPS} nodes in a row without waiting for the caller; "
                    "the flow loops: give the loop a prompt, a menu or an exit"
                )
                return
            self._enter(flow, node)

    # --- small tools -------------------------------------------------------------------------------

    def _emit(self, action: actions.Action) -> None:
        self._out.append(action)

    def _record(self, type_: str, **data: Any) -> None:
        self._emit(actions.RecordEvent(type_, data))

    def _new_id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}{self._counters[prefix]}"

    @property
    def _current(self) -> model.Flow:
        return self._flows[self._flow_name]

    def _media(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return prompt_media(self._current, self._language, names)

    def _set_variable(self, name: str, value: str) -> None:
        self._variables[name] = value
        self._emit(actions.SetVariable(name, value))

    def _choose_language(self, language: str, how: str) -> None:
        self._language = language
        self._emit(actions.SetVariable(CHANNEL_LANGUAGE, language))
        self._record("language_chosen", language=language, how=how)

    def _play(self, media: tuple[str, ...], *, barge_in: bool, then: Then) -> None:
        """Play `media`, then go on with `then`. A barge-in prompt is skipped when the caller has already
        typed ahead: they know what to press."""
        if not media or (barge_in and self._typeahead):
            then()
            return
        playback = self._new_id("p")
        self._emit(actions.Play(playback, media, self._language, barge_in))
        self._playback, self._barge_in, self._after_playback = playback, barge_in, then

    def _playback_done(self) -> None:
        then = self._after_playback
        self._playback = self._after_playback = None
        if then is not None:
            then()

    def _start_timer(self, seconds: float, on_timeout: Then) -> None:
        self._cancel_timer()
        self._timer = self._new_id("t")
        self._on_timeout = on_timeout
        self._emit(actions.StartTimer(self._timer, seconds))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._emit(actions.CancelTimer(self._timer))
        self._timer = self._on_timeout = None

    def _stop_playback(self) -> None:
        if self._playback is not None:
            self._emit(actions.StopPlayback(self._playback))
        self._playback = self._after_playback = None

    def _stop_input(self) -> None:
        self._on_key = None
        self._input_round += 1

    def _await_keys(self, on_key: Callable[[str], None], seconds: float, on_timeout: Then) -> None:
        """Wait for keys. Keys typed ahead are taken first, one by one, until the node moves on; each
        key handler starts its own next timer."""
        self._input_round += 1
        this_round = self._input_round
        self._on_key = on_key
        if not self._typeahead:
            self._start_timer(seconds, on_timeout)
            return
        while self._typeahead and self._on_key is not None and self._input_round == this_round:
            on_key(self._typeahead.pop(0))

    def _key(self, key: object) -> None:
        if not isinstance(key, str) or key not in KEYS:
            return
        if self._playback is not None:
            if self._barge_in:
                self._emit(actions.StopPlayback(self._playback))
                if len(self._typeahead) < TYPEAHEAD_LIMIT:
                    self._typeahead.append(key)
                self._playback_done()
            return
        if self._on_key is not None:
            self._on_key(key)

    def _retry(
        self,
        kind: str,
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
        self._record(kind, **data)
        self._attempts += 1
        self._play(
            self._media(prompts), barge_in=barge_in, then=give_up if self._attempts > retries else again
        )

    def _fail_node(self, failure: str | None) -> None:
        if failure is not None:
            self._go(failure)
        else:
            self._hang_up("normal")

    # --- moving between nodes ----------------------------------------------------------------------

    def _leave(self) -> None:
        self._cancel_timer()
        self._stop_playback()
        self._stop_input()
        self._lookup = None
        self._callback = None
        self._handoff = None
        self._attempts = 0
        self._keys = ""

    def _go(self, node: str, flow: str | None = None) -> None:
        self._leave()
        self._next = (flow or self._flow_name, node)

    def _enter(self, flow_name: str, node_id: str) -> None:
        flow = self._flows.flows.get(flow_name)
        if flow is None:
            self._fail_call(f"flow '{flow_name}' is not loaded; load its file together with this flow")
            return
        node = flow.nodes.get(node_id)
        if node is None:
            self._fail_call(f"flow '{flow_name}' has no node '{node_id}'; correct the target's name")
            return
        if flow_name != self._flow_name:
            self._switch_flow(flow_name, flow)
        self._node = node_id
        self._path.append(node_id if flow_name == self._first_flow else f"{flow_name}:{node_id}")
        self._record("node_entered", node=node_id, flow=flow_name, type=model.node_type(node))
        self._ENTER[type(node)](self, node_id, node)

    def _switch_flow(self, name: str, flow: model.Flow) -> None:
        """Prompts, languages and schedules now come from `flow`; its variable defaults fill in gaps."""
        self._flow_name = name
        if self._language not in flow.languages:
            self._choose_language(flow.default_language, "default")
        for variable, value in flow.variables.items():
            self._variables.setdefault(variable, text(value))

    # --- the call's start and end ------------------------------------------------------------------

    def _call_started(self, event: events.CallStarted) -> None:
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
        flow = self._current
        for name, default in flow.variables.items():
            self._variables.setdefault(name, text(default))
        self._record(
            "call_started",
            flow=self._flow_name,
            caller=self._caller or "",
            caller_withheld=self._caller is None,
            dialed=self._dialed,
        )
        self._go(flow.start)

    def _close(self, outcome: str) -> None:
        self._leave()
        self._typeahead.clear()
        self._outcome = outcome
        self._closing = None
        self._closed = True
        self._next = None

    def _hang_up(self, cause: str, outcome: str | None = None) -> None:
        """The flow hangs up now."""
        if outcome is None:
            outcome = "voicemail" if self._voicemail_left else "hangup"
        self._record("hung_up", by="flow", node=self._node, flow=self._flow_name)
        self._emit(actions.Hangup(cause))
        self._close(outcome)

    def _hang_up_after(self, prompts: tuple[str, ...], cause: str, outcome: str) -> None:
        """Play a last prompt, then hang up; a caller who hangs up during it still gets `outcome`."""
        self._closing = outcome
        self._play(self._media(prompts), barge_in=False, then=lambda: self._hang_up(cause, outcome))

    def _fail_call(self, reason: str) -> None:
        self._record("flow_error", node=self._node, flow=self._flow_name, reason=reason)
        if self._callback is not None:  # the request is out: its answer is still recorded
            self._late_callback = self._callback
            self._hang_up("normal", "callback")
        else:
            self._hang_up("normal", self._outcome if self._outcome in ("callback", "voicemail") else None)

    def _caller_hung_up(self) -> None:
        if isinstance(self._handoff, model.Voicemail):
            self._late_recording = (self._handoff.voicemail.mailbox, self._recording)
        self._late_callback = self._callback  # the request is out: its answer is still recorded
        self._leave()
        outcome = (
            self._outcome
            or self._closing
            or ("callback" if self._late_callback is not None else None)
            or ("voicemail" if self._voicemail_left else None)
        )
        if outcome is None:
            self._record("abandoned", node=self._node, flow=self._flow_name, where="ivr")
            outcome = "abandoned"
        else:
            self._record("hung_up", by="caller", node=self._node, flow=self._flow_name)
        self._close(outcome)

    # --- nodes ---------------------------------------------------------------------------------------

    def _enter_play(self, node_id: str, node: model.Play) -> None:
        self._play(self._media(node.play), barge_in=node.barge_in, then=lambda: self._go(node.next))

    def _enter_menu(self, node_id: str, node: model.Menu) -> None:
        def offer() -> None:
            self._keys = ""
            self._play(
                self._media(node.menu),
                barge_in=node.barge_in,
                then=lambda: self._await_keys(key, node.timeout, timeout),
            )

        def retry(kind: str, **data: Any) -> None:
            prompts = node.invalid if kind == "invalid_input" else node.no_input
            self._retry(
                kind,
                {"node": node_id, **data},
                prompts,
                barge_in=node.barge_in,
                retries=node.retries,
                again=offer,
                give_up=lambda: self._fail_node(node.failure),
            )

        def key(pressed: str) -> None:
            self._cancel_timer()
            keys = self._keys + pressed
            if keys in node.options:
                target = node.options[keys]
                self._record("option_chosen", node=node_id, digits=keys, target=target)
                self._go(target)
            elif any(option.startswith(keys) for option in node.options):
                self._keys = keys
                self._start_timer(node.inter_digit_timeout, timeout)
            elif not self._keys and pressed == node.repeat:
                # counted as an attempt, so a caller holding down the repeat key still reaches the end
                self._attempts += 1
                if self._attempts > node.retries:
                    self._fail_node(node.failure)
                else:
                    offer()
            else:
                retry("invalid_input", digits=keys)

        def timeout() -> None:
            if self._keys:
                retry("invalid_input", digits=self._keys)
            else:
                retry("no_input")

        offer()

    def _enter_collect(self, node_id: str, node: model.Collect) -> None:
        def ask() -> None:
            self._keys = ""
            self._play(
                self._media(node.prompt),
                barge_in=node.barge_in,
                then=lambda: self._await_keys(key, node.timeout, timeout),
            )

        def retry(kind: str, again: Then, **data: Any) -> None:
            prompts = node.invalid if kind == "invalid_input" else node.no_input
            self._retry(
                kind,
                {"node": node_id, **data},
                prompts,
                barge_in=node.barge_in,
                retries=node.retries,
                again=again,
                give_up=lambda: self._fail_node(node.failure),
            )

        def key(pressed: str) -> None:
            self._cancel_timer()
            if pressed == node.terminator:
                finish(self._keys)
                return
            self._keys += pressed
            if len(self._keys) >= node.max_length:
                finish(self._keys)
            else:
                self._start_timer(node.inter_digit_timeout, timeout)

        def timeout() -> None:
            if not self._keys:
                retry("no_input", ask)
            elif len(self._keys) >= node.min_length:
                finish(self._keys)
            else:
                retry("invalid_input", ask, digits=self._keys)

        def finish(value: str) -> None:
            valid = node.min_length <= len(value) <= node.max_length and (
                node.pattern is None or re.fullmatch(node.pattern, value) is not None
            )
            if not valid:
                retry("invalid_input", ask, digits=value)
            elif node.confirm is None:
                accept(value)
            else:
                confirm(node.confirm, value)

        def confirm(spec: model.Confirm, value: str) -> None:
            def read_back() -> None:
                media = (*self._media(spec.prompt), f"digits:{value}", *self._media(spec.question))
                self._play(media, barge_in=True, then=lambda: self._await_keys(answer, node.timeout, silence))

            def answer(pressed: str) -> None:
                self._cancel_timer()
                if pressed == spec.yes:
                    accept(value)
                elif pressed == spec.no:
                    # counted as an attempt, so a caller who never confirms still reaches the end
                    self._attempts += 1
                    if self._attempts > node.retries:
                        self._fail_node(node.failure)
                    else:
                        ask()
                else:
                    retry("invalid_input", read_back, digits=pressed)

            def silence() -> None:
                retry("no_input", read_back)

            read_back()

        def accept(value: str) -> None:
            self._set_variable(node.collect, value)
            self._record(
                "input_collected", node=node_id, variable=node.collect, length=len(value), value=value
            )
            self._go(node.next)

        ask()

    def _enter_say(self, node_id: str, node: model.Say) -> None:
        said = say_media(render(node.say, self._variables), node.as_)
        media = (*self._media(node.before), *((said,) if said else ()), *self._media(node.after))
        self._play(media, barge_in=node.barge_in, then=lambda: self._go(node.next))

    def _enter_branch(self, node_id: str, node: model.Branch) -> None:
        facts = Facts(
            now=self._now,
            caller=self._caller,
            dialed=self._dialed,
            language=self._language,
            variables=self._variables,
            schedules=self._current.schedules,
        )
        for index, case in enumerate(node.branch):
            if holds(case.if_, facts):
                self._record("branch_taken", node=node_id, case=index, target=case.goto)
                self._go(case.goto)
                return
        self._record("branch_taken", node=node_id, case="else", target=node.else_)
        self._go(node.else_)

    def _enter_set(self, node_id: str, node: model.SetVariables) -> None:
        for name, value in node.set.items():
            self._set_variable(name, render(text(value), self._variables))
        self._go(node.next)

    def _enter_lookup(self, node_id: str, node: model.Lookup) -> None:
        request = node.lookup
        self._lookup = self._new_id("r")
        self._emit(
            actions.Lookup(
                request_id=self._lookup,
                method=request.method,
                url=render_url(request.url, self._variables),
                headers={
                    name: render_header(value, self._variables) for name, value in request.headers.items()
                },
                body=render_data(request.body, self._variables) if request.body is not None else None,
                timeout=request.timeout,
            )
        )
        self._start_timer(request.timeout + LOOKUP_GRACE, lambda: self._lookup_failed(node, "timeout"))

    def _lookup_result(self, result: events.LookupAnswered | events.LookupFailed) -> None:
        node = self._current.nodes.get(self._node or "")
        if not isinstance(node, model.Lookup):
            return
        self._cancel_timer()
        self._lookup = None
        if isinstance(result, events.LookupFailed):
            self._lookup_failed(node, str(result.reason))
            return
        status = result.status
        if not isinstance(status, int) or not 200 <= status < 300:
            self._lookup_failed(node, f"HTTP status {status}")
            return
        if not isinstance(result.body, dict):
            self._lookup_failed(node, "the answer is not a JSON object")
            return
        found: list[str] = []
        for variable, path in node.lookup.fields.items():
            value = _dig(result.body, path)
            if value is not None:
                self._set_variable(variable, value)
                found.append(variable)
        self._record("lookup_done", node=self._node, status=status, fields=found)
        self._go(node.next)

    def _lookup_failed(self, node: model.Lookup, reason: str) -> None:
        self._lookup = None
        self._record("lookup_failed", node=self._node, reason=reason)
        self._go(node.fallback)

    def _enter_language(self, node_id: str, node: model.Language) -> None:
        flow = self._current
        if isinstance(node.language, str):
            chosen = render(node.language, self._variables).strip()
            if chosen in flow.languages:
                self._choose_language(chosen, "set")
            self._go(node.next)
            return
        choices = node.language

        def fall_back() -> None:
            """The language node has no failure node: after its retries the caller gets the default."""
            self._choose_language(node.default or flow.default_language, "default")
            self._go(node.next)

        def ask() -> None:
            self._play(
                self._media(node.prompt),
                barge_in=True,
                then=lambda: self._await_keys(key, node.timeout, timeout),
            )

        def retry(kind: str, **data: Any) -> None:
            self._retry(
                kind,
                {"node": node_id, **data},
                (),
                barge_in=True,
                retries=node.retries,
                again=ask,
                give_up=fall_back,
            )

        def key(pressed: str) -> None:
            self._cancel_timer()
            if pressed in choices:
                self._choose_language(choices[pressed], "key")
                self._go(node.next)
            else:
                retry("invalid_input", digits=pressed)

        def timeout() -> None:
            retry("no_input")

        ask()

    def _enter_queue(self, node_id: str, node: model.Queue) -> None:
        spec = node.queue
        self._queued_at = self._now
        self._enqueue(node, since=None)
        self._record("queued", queue=spec.name, skills=dict(spec.skills), priority=spec.priority)

    def _enqueue(self, node: model.Queue, since: datetime | None) -> None:
        spec = node.queue
        offer = spec.callback
        self._emit(
            actions.Enqueue(
                queue=spec.name,
                skills=dict(spec.skills),
                priority=spec.priority,
                music=spec.music,
                announce_every=spec.announce_every,
                max_wait=spec.max_wait,
                callback=None
                if offer is None
                else actions.CallbackOfferSpec(
                    key=offer.key,
                    after=offer.after,
                    estimate_over=offer.estimate_over,
                    every=offer.every,
                    prompt=self._media(offer.offer),
                ),
                language=self._language,
                variables=dict(self._variables),
                since=since,
            )
        )
        self._hand_off(node, "queue")

    def _hand_off(self, node: model.Queue | model.Transfer | model.Voicemail, outcome: str) -> None:
        self._typeahead.clear()
        self._handoff = node
        self._queue_state = "waiting"
        self._outcome = outcome

    def _waited(self) -> float:
        """Seconds since the caller's place in the queue began."""
        since = self._queued_at or self._now
        return max((self._now - since).total_seconds(), 0.0)

    def _queue_key(self, node: model.Queue, key: object) -> None:
        """A key pressed while queued: the call-back key takes the caller out of the queue; any other
        key, or any key once an agent has the caller, is not for the flow."""
        offer = node.queue.callback
        if offer is None or self._queue_state != "waiting" or key != offer.key:
            return
        self._queue_state = "leaving"
        self._emit(actions.LeaveQueue("callback"))
        self._record("callback_chosen", queue=node.queue.name, waited=self._waited())

    def _queue_exited(self, node: model.Queue, event: events.QueueExited) -> None:
        offer = node.queue.callback
        if event.reason == "callback" and offer is not None and self._queue_state != "waiting":
            if self._queue_state == "leaving":
                self._callback_from_queue(node, offer)
            # else an agent answered before the caller was out: they stay with the agent
            return
        self._record("queue_overflow", queue=node.queue.name, reason=str(event.reason))
        self._outcome = None
        self._go(node.overflow)

    def _callback_from_queue(self, node: model.Queue, offer: model.QueueCallback) -> None:
        """The caller left the queue for a call-back: take a number, or put them back in their place."""
        spec = node.queue
        self._handoff = None
        self._outcome = None
        self._attempts = 0
        self._keys = ""
        place = self._queued_at

        def rejoin() -> None:
            self._cancel_timer()
            self._stop_playback()
            self._stop_input()
            self._attempts = 0
            self._keys = ""
            self._enqueue(node, since=place)

        self._callback_dialogue(
            self._node or "",
            offer,
            queue=spec.name,
            skills=spec.skills,
            priority=spec.priority,
            place_since=place,
            give_up=rejoin,
        )

    def _enter_callback(self, node_id: str, node: model.Callback) -> None:
        offer = node.callback
        self._callback_dialogue(
            node_id,
            offer,
            queue=offer.queue,
            skills=offer.skills,
            priority=offer.priority,
            place_since=None,
            give_up=lambda: self._fail_node(node.failure),
        )

    def _callback_dialogue(
        self,
        node_id: str,
        offer: model.CallbackDialogue,
        *,
        queue: str,
        skills: Mapping[str, int],
        priority: int,
        place_since: datetime | None,
        give_up: Then,
    ) -> None:
        """Take a call-back number: read back the caller's own number or ask for another, then request
        the call-back and, once it is stored, thank the caller and hang up; a refused number is asked
        for again; `give_up` once the caller's retries are used up."""

        def retry(kind: str, again: Then, **data: Any) -> None:
            self._retry(
                kind,
                {"node": node_id, **data},
                (),
                barge_in=True,
                retries=offer.retries,
                again=again,
                give_up=give_up,
            )

        def confirm(number: str, entered: bool) -> None:
            def read_back() -> None:
                media = (
                    *self._media(offer.confirm),
                    f"digits:{number.lstrip('+')}",
                    *self._media(offer.question),
                )
                self._play(
                    media, barge_in=True, then=lambda: self._await_keys(answer, offer.timeout, silence)
                )

            def answer(pressed: str) -> None:
                self._cancel_timer()
                if pressed == "1":
                    request(number)
                elif pressed == "2":
                    if entered:
                        # counted, so a caller who never confirms still reaches the end
                        self._attempts += 1
                        if self._attempts > offer.retries:
                            give_up()
                            return
                    enter()
                else:
                    retry("invalid_input", read_back, digits=pressed)

            def silence() -> None:
                retry("no_input", read_back)

            read_back()

        def enter() -> None:
            self._keys = ""
            self._play(
                self._media(offer.enter_number),
                barge_in=True,
                then=lambda: self._await_keys(key, offer.timeout, timeout),
            )

        def key(pressed: str) -> None:
            self._cancel_timer()
            if pressed == "#":
                entered(self._keys)
                return
            self._keys += pressed
            if len(self._keys) >= CALLBACK_NUMBER_LIMIT:
                entered(self._keys)
            else:
                self._start_timer(offer.timeout, timeout)

        def timeout() -> None:
            if self._keys:
                entered(self._keys)
            else:
                retry("no_input", enter)

        def entered(number: str) -> None:
            if _callback_number(offer, number):
                confirm(number, entered=True)
            else:
                retry("invalid_input", enter, digits=number)

        def request(number: str) -> None:
            self._stop_input()
            self._emit(
                actions.RequestCallback(
                    queue=queue,
                    number=number,
                    skills=dict(skills),
                    priority=priority,
                    language=self._language,
                    variables=dict(self._variables),
                    place_since=place_since,
                )
            )

            def stored() -> None:
                self._record("callback_requested", queue=queue, number=number)
                self._hang_up_after(offer.done, "normal", "callback")

            def refused(reason: str) -> None:
                retry("invalid_input", enter, digits=number, reason=reason)

            self._callback = _CallbackRequest(node_id, queue, number, stored, refused)

        if self._caller is not None and _callback_number(offer, self._caller):
            confirm(self._caller, entered=False)
        else:
            enter()

    def _enter_transfer(self, node_id: str, node: model.Transfer) -> None:
        target = node.transfer
        kind, raw = next(
            (kind, value)
            for kind, value in (
                ("extension", target.extension),
                ("endpoint", target.endpoint),
                ("number", target.number),
            )
            if value is not None
        )
        destination = render(raw, self._variables)
        self._record("transferred", kind=kind, target=destination)
        self._emit(
            actions.Transfer(
                kind=kind,
                target=destination,
                context=target.context if kind == "extension" else None,
                timeout=target.timeout,
            )
        )
        self._transfer_to = (kind, destination)
        self._hand_off(node, "transfer")

    def _transfer_failed(self, node: model.Transfer, event: events.TransferFailed) -> None:
        kind, target = self._transfer_to
        self._record("transfer_failed", node=self._node, kind=kind, target=target, reason=str(event.reason))
        self._outcome = None
        self._fail_node(node.failure)

    def _enter_voicemail(self, node_id: str, node: model.Voicemail) -> None:
        spec = node.voicemail

        def record() -> None:
            self._recording = f"{self._call_id}-{self._new_id('')}"  # <call id>-1, <call id>-2 ...
            self._emit(
                actions.Voicemail(
                    mailbox=spec.mailbox,
                    max_duration=spec.max_duration,
                    beep=spec.beep,
                    terminator=spec.terminator,
                    recording_name=self._recording,
                )
            )
            self._hand_off(node, "voicemail")

        self._play(self._media(spec.prompt), barge_in=False, then=record)

    def _recording_finished(self, node: model.Voicemail, event: events.RecordingFinished) -> None:
        self._record("voicemail_left", **_voicemail_data(node.voicemail.mailbox, event, self._recording))
        self._voicemail_left = True
        self._handoff = None
        if node.next is None:
            self._hang_up("normal", "voicemail")
        else:
            # the caller is back in the flow; when it ends, the outcome is still "voicemail"
            self._outcome = None
            self._go(node.next)

    def _enter_goto(self, node_id: str, node: model.Goto) -> None:
        target = node.goto
        if isinstance(target, str):
            self._go(target)
            return
        flow = self._flows.flows.get(target.flow)
        if flow is None:
            self._fail_call(f"goto names flow '{target.flow}', which is not loaded; load its file too")
            return
        self._go(target.node or flow.start, target.flow)

    def _enter_hangup(self, node_id: str, node: model.Hangup) -> None:
        spec = node.hangup
        self._hang_up_after(spec.prompt, spec.cause, "voicemail" if self._voicemail_left else "hangup")

    _ENTER: Mapping[type[Any], Callable[[Session, str, Any], None]] = {
        model.Play: _enter_play,
        model.Menu: _enter_menu,
        model.Collect: _enter_collect,
        model.Say: _enter_say,
        model.Branch: _enter_branch,
        model.SetVariables: _enter_set,
        model.Lookup: _enter_lookup,
        model.Language: _enter_language,
        model.Queue: _enter_queue,
        model.Callback: _enter_callback,
        model.Transfer: _enter_transfer,
        model.Voicemail: _enter_voicemail,
        model.Goto: _enter_goto,
        model.Hangup: _enter_hangup,
    }


def _dig(body: Any, path: str) -> str | None:
    """The value at a dotted path (`customer.accounts.0.id`) as a variable holds it; None when missing."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text(value)


def _callback_number(offer: model.CallbackDialogue, number: str) -> bool:
    """A number we may call back: it matches the offer's pattern (a caller's own number too, so an
    internal extension or a SIP name is never read back as a call-back number)."""
    try:
        return re.fullmatch(offer.pattern, number) is not None
    except re.error:
        return False


def _voicemail_data(mailbox: str, event: events.RecordingFinished, recording: str) -> dict[str, Any]:
    duration = event.duration if isinstance(event.duration, int | float) else 0.0
    return {"mailbox": mailbox, "duration": float(duration), "recording": recording}
