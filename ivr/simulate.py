"""Walk a caller through a flow without Asterisk: the engine behind `hotline simulate`.

Time is virtual: it starts at `start` and moves on only as the simulated call moves (a prompt takes
`PROMPT_SECONDS` per sound, a timer runs out after its seconds). The caller listens to each prompt to
the end and presses the next key when the flow waits for input; the key source decides what the caller
does: press keys, let a timeout happen (`WAIT`) or hang up (`HANG_UP`).

A queue hands the caller to routing, which the simulator does not run: the call ends there, unless the
queue offers a call-back. Then the caller hears the offer once they have waited its `after` seconds (and
again every `every` seconds) and the key source answers it: the offer's key leaves the queue for the
call-back dialogue, `WAIT` keeps waiting (the simulation ends in the queue), `HANG_UP` hangs up.

A call-back the caller asks for is always kept (`CallbackStored("simulated")`), so the caller hears the
thanks and the flow hangs up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.session import Session

PROMPT_SECONDS = 1.0
WAIT = "wait"
HANG_UP = "hangup"
MAX_EVENTS = 2000

#: Decides what the caller does when the flow waits for input: a key, WAIT or HANG_UP.
KeySource = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the caller's journey."""

    at: float
    kind: str  # "action", "event" (contact event), "press", "timeout", "lookup", "hangup", "end", "note"
    text: str
    data: Any = None


@dataclass(slots=True)
class Journey:
    steps: list[Step] = field(default_factory=list)
    outcome: str | None = None
    final: act.Action | None = None
    unused_keys: tuple[str, ...] = ()

    @property
    def contact_events(self) -> list[act.RecordEvent]:
        return [s.data for s in self.steps if s.kind == "event"]


def scripted(tokens: Sequence[str]) -> tuple[KeySource, Callable[[], tuple[str, ...]]]:
    """A key source pressing `tokens` in order (`1`, `#`, `123` for three quick keys, `wait`, `hangup`),
    then waiting; and a function telling which tokens were never used."""
    queue: list[str] = []
    for token in tokens:
        token = token.strip()
        if token.lower() in (WAIT, "-", "_", "timeout"):
            queue.append(WAIT)
        elif token.lower() in (HANG_UP, "h", "bye"):
            queue.append(HANG_UP)
        else:
            queue.extend(token)

    def next_key() -> str:
        return queue.pop(0) if queue else WAIT

    return next_key, lambda: tuple(queue)


LookupAnswer = Callable[[act.Lookup], ev.LookupAnswered | ev.LookupFailed]


def lookup_answers(spec: Any) -> LookupAnswer:
    """Answers for the flow's CRM lookups, from a JSON value:

    - `{"status": 200, "body": {...}}` answers every lookup so; `{"fail": "timeout"}` fails them;
    - `{"<part of a URL>": <one of the above, or a plain JSON body>, ...}` answers by URL;
    - any other JSON object is the body of a 200 answer to every lookup.

    Raises ValueError, naming the part and what to write instead, for a value of another shape (a list,
    text, a status that is no HTTP status, a reason that is not text).
    """
    how = (
        'write {"status": 200, "body": {...}}, {"fail": "timeout"}, a JSON object as the body, or such '
        'answers by part of the URL: {"/customers": {...}}'
    )

    def checked(answer: Any, where: str) -> ev.LookupFailed | tuple[int, Any] | Any:
        """A failure, a (status, body) answer, or a plain body; ValueError for anything else."""
        if not isinstance(answer, dict):
            kind = "a list" if isinstance(answer, list) else json.dumps(answer)
            raise ValueError(f"{where}the answer is {kind}, not a JSON object; {how}")
        if "fail" in answer:
            extra = sorted(set(answer) - {"fail"})
            if extra:
                raise ValueError(f"{where}'fail' comes alone, not with {', '.join(extra)}; keep one of them")
            reason = answer["fail"]
            if reason is not None and not isinstance(reason, str):
                raise ValueError(
                    f"{where}'fail' holds {json.dumps(reason)}; give the reason as text, e.g. "
                    '{"fail": "timeout"}'
                )
            return ev.LookupFailed("", reason or "the CRM failed (no reason given)")
        if "status" in answer or "body" in answer:
            extra = sorted(set(answer) - {"status", "body"})
            if extra:
                raise ValueError(
                    f"{where}unknown key '{extra[0]}' beside status and body; write "
                    '{"status": 200, "body": {...}}'
                )
            status = answer.get("status", 200)
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError(
                    f"{where}'status' is {json.dumps(status)}, not an HTTP status; write a whole number such "
                    "as 200 or 404"
                )
            return status, answer.get("body")
        return answer

    def one(answer: Any, request: act.Lookup) -> ev.LookupAnswered | ev.LookupFailed:
        if isinstance(answer, ev.LookupFailed):
            return ev.LookupFailed(request.request_id, answer.reason)
        if isinstance(answer, tuple):
            return ev.LookupAnswered(request.request_id, answer[0], answer[1])
        return ev.LookupAnswered(request.request_id, 200, answer)

    by_url: dict[str, Any] | None = None
    single: Any = None
    if spec is not None:
        if isinstance(spec, dict) and spec and all(_looks_like_url_part(k) for k in spec):
            by_url = {part: checked(value, f"the answer for '{part}': ") for part, value in spec.items()}
        else:
            single = checked(spec, "")

    def answer(request: act.Lookup) -> ev.LookupAnswered | ev.LookupFailed:
        if spec is None:
            return ev.LookupFailed(request.request_id, "no answer given (use --lookup FILE)")
        if by_url is not None:
            for part, value in by_url.items():
                if part in request.url:
                    return one(value, request)
            return ev.LookupFailed(request.request_id, f"no answer given for {request.url}")
        return one(single, request)

    return answer


def _looks_like_url_part(key: str) -> bool:
    return "/" in key or key.startswith("http")


def simulate(
    flows: FlowSet,
    flow: str,
    *,
    keys: KeySource,
    start: datetime,
    caller: str | None = "+48221234567",
    dialed: str = "100",
    variables: Mapping[str, str] | None = None,
    lookup: LookupAnswer | None = None,
    recording_seconds: float = 12.0,
    on_step: Callable[[Step], None] | None = None,
) -> Journey:
    """Run one call through `flow` and return its journey (also streamed to `on_step`)."""
    journey = Journey()
    answer = lookup or lookup_answers(None)
    session = Session(flows, flow, call_id="sim")
    clock = 0.0
    playing: dict[str, tuple[bool, float]] = {}  # playback id -> (barge-in, ends at)
    timers: dict[str, float] = {}  # timer id -> fires at
    lookups: list[act.Lookup] = []
    recording: act.Voicemail | None = None
    exits: list[ev.QueueExited] = []  # routing's answers to LeaveQueue
    kept: list[ev.CallbackStored] = []  # the store's answers to RequestCallback
    offer: act.CallbackOfferSpec | None = None  # the call-back offer of the queue the caller waits in
    offers = 0

    def note(kind: str, text: str, data: Any = None) -> None:
        step = Step(round(clock, 3), kind, text, data)
        journey.steps.append(step)
        if on_step:
            on_step(step)

    def feed(event: ev.Event) -> None:
        nonlocal recording, offer, offers
        for action in session.handle(event, start + timedelta(seconds=clock)):
            match action:
                case act.Play():
                    playing[action.playback_id] = (
                        action.barge_in,
                        clock + PROMPT_SECONDS * len(action.media),
                    )
                    note("action", "hear " + " ".join(action.media), action)
                case act.StopPlayback():
                    playing.pop(action.playback_id, None)
                case act.StartTimer():
                    timers[action.timer_id] = clock + action.seconds
                case act.CancelTimer():
                    timers.pop(action.timer_id, None)
                case act.Lookup():
                    lookups.append(action)
                    note("lookup", f"lookup {action.method} {action.url}", action)
                case act.RecordEvent():
                    note("event", action.type + _fields(action.data), action)
                case act.SetVariable():
                    note("action", f"set {action.name}={action.value}", action)
                case act.Voicemail():
                    recording = action
                    note("action", f"record voicemail for mailbox {action.mailbox}", action)
                    journey.final = action
                case act.LeaveQueue():
                    exits.append(ev.QueueExited(action.reason))
                    note("action", describe(action), action)
                case act.Enqueue():
                    offer, offers = action.callback, (offers if action.since else 0)
                    journey.final = action
                    note("action", describe(action), action)
                case act.RequestCallback():
                    kept.append(ev.CallbackStored("simulated"))
                    journey.final = action
                    note("action", describe(action), action)
                case act.Transfer() | act.Hangup():
                    journey.final = action
                    note("action", describe(action), action)

    feed(ev.CallStarted(caller=caller, dialed=dialed, variables=dict(variables or {})))
    for _ in range(MAX_EVENTS):
        if lookups:
            request = lookups.pop(0)
            result = answer(request)
            clock += 0.1
            if isinstance(result, ev.LookupAnswered):
                note("lookup", f"CRM answered {result.status} {_short(result.body)}", result)
            else:
                note("lookup", f"CRM lookup failed: {result.reason}", result)
            feed(result)
        elif recording is not None:
            clock += recording_seconds
            recording = None
            feed(ev.RecordingFinished(duration=recording_seconds))
        elif exits:
            clock += 0.1
            feed(exits.pop(0))
        elif kept:
            clock += 0.1
            note("note", "call-back kept")
            feed(kept.pop(0))
        elif session.ended:
            if offer is None or session.waiting_for != "queue" or (offers and not offer.every):
                break
            clock += offer.every if offers else offer.after
            offers += 1
            note("action", "hear " + " ".join(offer.prompt) + " (the call-back offer)", offer)
            clock += PROMPT_SECONDS * len(offer.prompt)
            key = keys()
            if key == WAIT:
                note("note", "the caller keeps waiting for an agent")
                break
            if key == HANG_UP:
                note("hangup", "caller hangs up")
                feed(ev.Hangup())
            else:
                clock += 0.3
                note("press", f"caller presses {key}", key)
                feed(ev.Digit(key))
        elif playing:
            playback_id = min(playing, key=lambda p: playing[p][1])
            clock = max(clock, playing.pop(playback_id)[1])
            feed(ev.PlaybackFinished(playback_id))
        elif timers:
            key = keys()
            if key == HANG_UP:
                note("hangup", "caller hangs up")
                feed(ev.Hangup())
            elif key == WAIT:
                timer_id = min(timers, key=lambda t: timers[t])
                waited = timers.pop(timer_id) - clock
                clock += max(waited, 0.0)
                note("timeout", f"caller waits {waited:g} s")
                feed(ev.TimerFired(timer_id))
            else:
                clock += 0.3
                note("press", f"caller presses {key}", key)
                feed(ev.Digit(key))
        else:
            note("note", "the flow waits for nothing more; the call would stay silent")
            break
    journey.outcome = session.outcome
    note("end", f"call ends: {session.outcome}", session.outcome)
    return journey


def describe(action: act.Action) -> str:
    """What a hand-off or ending action means, in words."""
    match action:
        case act.Enqueue():
            skills = ", ".join(f"{k}>={v}" for k, v in action.skills.items()) or "any agent"
            offer = f"; call-back on {action.callback.key}" if action.callback else ""
            place = f"; back in the place held since {action.since:%H:%M:%S}" if action.since else ""
            return (
                f"queue {action.queue} ({skills}; priority {action.priority}; music {action.music}; "
                f"max wait {action.max_wait:g} s{offer}{place})"
            )
        case act.LeaveQueue():
            return f"leave the queue ({action.reason})"
        case act.RequestCallback():
            place = (
                f", keeping the place held since {action.place_since:%H:%M:%S}" if action.place_since else ""
            )
            return f"call-back to {action.number} from queue {action.queue}{place}"
        case act.Transfer():
            where = f" in {action.context}" if action.context and action.kind == "extension" else ""
            return f"transfer to {action.kind} {action.target}{where}"
        case act.Hangup():
            return f"hang up ({action.cause})"
        case act.Voicemail():
            return f"voicemail for {action.mailbox}"
    return type(action).__name__


def _fields(data: Mapping[str, Any]) -> str:
    if not data:
        return ""
    return " " + " ".join(f"{k}={_short(v)}" for k, v in data.items())


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def keys_of(journey: Journey) -> Iterator[str]:
    """The keys the caller pressed, in order."""
    return (s.data for s in journey.steps if s.kind == "press")
