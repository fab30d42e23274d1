"""A FastAGI server of our own: `AGI(agi://127.0.0.1:4573/<flow>)` runs the same IVR flows from a plain
dialplan, for a PBX that cannot use ARI.

AGI is a small line protocol: Asterisk connects, sends its environment (`agi_*: value` lines up to a
blank line), then the script sends one command per line and reads one answer each
(`200 result=N (data) endtime=...`). panoramisk's server spins at 100 % CPU on a half-open connection
and fails on non-UTF-8 caller names, so this one reads bytes, decodes them tolerantly, bounds every
read in time and length (`AgiLimits`), and drops a client that closes before its environment is
complete (a TCP health check) quietly.

The pure parts (`parse_header`, `parse_response`, `quote`, `command_line`, `refused_call`) work on
plain bytes and strings; `AgiCall` feeds the `ivr` engine and executes its actions with AGI commands.
The script name picks what runs: a flow by name, or `identify`, which sets the caller's customer data as
channel variables (CUSTOMER_ID, CUSTOMER_NAME, ...) and returns to the dialplan.

Every AGI session with a complete environment that asks for a flow is one contact, and every way it
can end closes that contact:

- the caller hangs up (a HANGUP notice, a dead-channel answer): `abandoned`, or `hung_up` by the
  caller once the flow had an outcome;
- the flow hangs up, or sends the call on in the dialplan: `hung_up` by the flow, or `call_ended`
  (`cause` `transferred`);
- the conversation breaks (an answer that is no AGI answer, a line longer than `LINE_LIMIT`, no
  answer in time, the connection closed without a hang-up notice, a fault of ours): `flow_error`
  saying what broke, then `hung_up` by the service with reason `agi_error`; the channel is told
  to hang up;
- the service stops (`drain`): `hung_up` by the service, reason `service_stopping`, the channel hung up;
- a call the server does not run (the service is stopping, `AgiLimits.calls` are running, no such
  flow): `call_started`, then `hung_up` by the service with reason `service_stopping`, `service_busy`
  or `no_flow` (after a `flow_error` naming the flow), and the channel is hung up.

AgiError                 what the protocol layer raises
 ├── AgiHeaderError      the client sent no complete, well-formed AGI environment
 ├── AgiProtocolError    the conversation about a channel broke (garbage, a huge line, silence, a lost link)
 ├── CallerHungUp        the channel hung up (a HANGUP notice or a dead-channel answer)
 └── CallStopped         the server ends the call (it is stopping): the next command is not sent
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from contacts import EventName
from hotline.clock import Clock, utc_now
from ivr import actions, events
from ivr.flowset import FlowSet
from ivr.session import Session

log = structlog.get_logger("hotline.asterisk.fastagi")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573
#: How long a client may take to send its whole AGI environment.
HEADER_TIMEOUT = 10.0
#: The longest line accepted from Asterisk (an answer carrying a long variable value included).
LINE_LIMIT = 16384
#: The most environment lines accepted before the blank line.
HEADER_LINES = 256
#: The longest call id the contact store keeps (`agi_uniqueid`; a longer one is replaced).
CALL_ID_LIMIT = 128
#: Keys that stop a barge-in prompt.
ALL_KEYS = "0123456789*#ABCD"
#: The script name that looks the caller up instead of running a flow.
IDENTIFY_SCRIPT = "identify"
#: Where Asterisk keeps recordings (the same folder ARI records into).
RECORDING_DIR = "/var/spool/asterisk/recording"
RECORDING_FORMAT = "wav"
#: The dialplan context of an `extension` transfer that names none.
TRANSFER_CONTEXT = "hotline-transfer"

#: Why the service ended a call (`hung_up` by the service, `reason`).
SERVICE_STOPPING = "service_stopping"
SERVICE_BUSY = "service_busy"
NO_FLOW = "no_flow"
AGI_ERROR = "agi_error"

Identify = Callable[[str], Awaitable[Mapping[str, str] | None]]
#: Writes a contact event: (call id, event type, data); the store writer in the service.
Record = Callable[[str, EventName, dict[str, Any]], Awaitable[None] | None]
#: Keeps a call-back a caller asked for: (call id, the request) -> the call-back's id; raises to refuse.
KeepCallback = Callable[[str, actions.RequestCallback], Awaitable[str]]
Flows = FlowSet | Callable[[], FlowSet]


@dataclass(frozen=True, slots=True)
class AgiLimits:
    """How long the server waits for Asterisk and how many calls it runs. A session that goes past a
    limit is ended (its contact closed, its channel told to hang up), never left hanging."""

    #: the whole AGI environment, from the connection on
    header_seconds: float = HEADER_TIMEOUT
    #: an answer, beyond the time its command takes (a WAIT FOR DIGIT's wait, a recording's length)
    answer_seconds: float = 10.0
    #: the longest one prompt may play (STREAM FILE, SAY ...): its length is not known beforehand
    prompt_seconds: float = 600.0
    #: the longest a transfer by Dial may ring and then talk before the AGI session is given up
    dial_seconds: float = 4 * 3600.0
    #: flows running at once; a call beyond is refused (`service_busy`); as many connections may be
    #: sending their environment at once, more are closed at once
    calls: int = 500
    #: after the drain, how long a call may take to reach its next command and be hung up there
    #: before it is cut (contact closed at once, HANGUP left for Asterisk after its current command)
    stop_seconds: float = 2.0


class AgiError(Exception):
    """The AGI conversation failed."""


class AgiHeaderError(AgiError):
    """The client sent no complete, well-formed AGI environment."""


class AgiProtocolError(AgiError):
    """The conversation about a channel broke: the call is ended as a fault."""


class CallerHungUp(AgiError):
    """The channel is gone; the call's session gets a Hangup event."""


class CallStopped(AgiError):
    """The server ends the call (`reason`, e.g. `service_stopping`) instead of sending its next command."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the call is ended by the service: {reason}")


# --- the pure protocol ------------------------------------------------------------------------------

_HEADER_KEY = re.compile(r"agi_[a-z0-9_]+")
_RESPONSE = re.compile(r"(\d{3})[ -]?(.*)")
_RESULT = re.compile(r"result=(-?\d+)\s*(?:\((.*)\))?\s*(.*)")
_FIELD = re.compile(r"(\w+)=(\S*)")


def decode(raw: bytes) -> str:
    """A line from Asterisk as text: UTF-8, with any invalid byte replaced (a Latin-1 caller name), and
    NUL too (no store keeps it)."""
    return raw.rstrip(b"\r\n").decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def shown(line: str, limit: int = 80) -> str:
    """A line quoted for a message, cut at `limit` characters."""
    return repr(line[:limit] + ("..." if len(line) > limit else ""))


def parse_header(lines: Sequence[bytes]) -> dict[str, str]:
    """The AGI environment from its lines (the blank line left out), e.g. `{"agi_callerid": "100"}`.
    Raises AgiHeaderError for a line that is not `agi_<name>: value`, or for no line at all."""
    environment: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = decode(raw)
        key, colon, value = line.partition(":")
        if not colon or _HEADER_KEY.fullmatch(key) is None:
            raise AgiHeaderError(
                f"AGI environment line {number} is not 'agi_<name>: value': {shown(line, 60)}"
            )
        environment[key] = value.strip()
    if not environment:
        raise AgiHeaderError("the AGI environment is empty; the client is not Asterisk")
    return environment


def call_id_of(environment: Mapping[str, str]) -> str | None:
    """The channel's unique id (`agi_uniqueid`), which names the call's contact; None when it is
    missing, longer than the store keeps, or holds control characters."""
    value = environment.get("agi_uniqueid", "")
    if not value or len(value) > CALL_ID_LIMIT or not value.isprintable():
        return None
    return value


def caller_of(environment: Mapping[str, str]) -> str | None:
    """The caller's number, None when Asterisk does not know it."""
    caller = environment.get("agi_callerid", "")
    return caller if caller and caller != "unknown" else None


def refused_call(
    environment: Mapping[str, str], flow: str, reason: str, error: str | None = None
) -> list[tuple[EventName, dict[str, Any]]]:
    """The contact of a call the server does not run (`reason`: `service_stopping`, `service_busy`,
    `no_flow`), as the engine would have started it: `call_started`, a `flow_error` when `error` says
    what is wrong, and `hung_up` by the service."""
    caller = caller_of(environment)
    withheld = caller is None or caller.lower() == "anonymous"
    started: dict[str, Any] = {
        "flow": flow,
        "caller": "" if withheld else caller,
        "caller_withheld": withheld,
        "dialed": environment.get("agi_extension", ""),
    }
    contact: list[tuple[EventName, dict[str, Any]]] = [("call_started", started)]
    if error is not None:
        contact.append(("flow_error", {"node": None, "flow": flow, "reason": error}))
    contact.append(("hung_up", {"by": "service", "node": None, "flow": flow, "reason": reason}))
    return contact


@dataclass(frozen=True, slots=True)
class AgiResponse:
    """One answer from Asterisk. `result` is None when the answer carries none (510, 520, 511)."""

    code: int
    result: int | None = None
    data: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def key(self) -> str | None:
        """The key the result stands for (a key pressed during a prompt or a wait), if any."""
        if self.result is None or not 0 < self.result < 128:
            return None
        key = chr(self.result)
        return key if key in ALL_KEYS else None


def response_done(first_line: bytes) -> bool:
    """Whether an answer is complete with this line: a `520-` line starts a usage text that ends at a
    line `520 ...`."""
    return not re.match(rb"\d{3}-", first_line)


def parse_response(lines: Sequence[bytes]) -> AgiResponse:
    """An answer from its lines: `200 result=1 (timeout) endtime=42`, `510 Invalid or unknown command`,
    or a multi-line `520-...` usage text. Raises AgiProtocolError for a line that is no AGI answer."""
    if not lines:
        raise AgiProtocolError("no AGI answer to parse")
    texts = [decode(raw) for raw in lines]
    match = _RESPONSE.fullmatch(texts[0])
    if match is None:
        raise AgiProtocolError(f"not an AGI answer: {shown(texts[0])}")
    code, rest = int(match.group(1)), match.group(2)
    if len(texts) > 1:
        last = texts[-1].removeprefix(f"{code} ")
        return AgiResponse(code, text="\n".join([rest, *texts[1:-1], last]))
    result = _RESULT.match(rest)
    if result is None:
        return AgiResponse(code, text=rest)
    return AgiResponse(
        code,
        result=int(result.group(1)),
        data=result.group(2) or "",
        fields=dict(_FIELD.findall(result.group(3))),
        text=rest,
    )


def quote(value: str) -> str:
    """One command argument, in double quotes with `"` and `\\` escaped; a line break would end the
    command early, so it becomes a space."""
    flat = value.replace("\r", " ").replace("\n", " ")
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(*words: str, quoted: Sequence[str] = ()) -> bytes:
    """A command line: `words` as written (the command, numbers, arguments already quoted), then
    `quoted` arguments."""
    return (" ".join([*words, *(quote(q) for q in quoted)]) + "\n").encode("utf-8")


def media_command(uri: str, escape: str) -> bytes | None:
    """The command that plays one media URI of a `Play` action; None for a kind AGI cannot play."""
    kind, _, what = uri.partition(":")
    if kind == "sound":
        return command_line("STREAM FILE", quoted=(what, escape))
    say = {"digits": "SAY DIGITS", "number": "SAY NUMBER", "characters": "SAY ALPHA"}.get(kind)
    if say is None or not what:
        return None
    return command_line(say, quoted=(what, escape))


HANGUP = command_line("HANGUP")

# --- one call -----------------------------------------------------------------------------------------


async def write_event(
    record: Record | None, call_id: str, event_type: EventName, data: dict[str, Any]
) -> None:
    """One contact event through `record`; a failure is logged and the call goes on."""
    if record is None:
        return
    try:
        written = record(call_id, event_type, data)
        if inspect.isawaitable(written):
            await written
    except Exception:
        log.exception("contact event not written", call=call_id, type=event_type)


class AgiChannel:
    """The command/answer conversation with Asterisk about one channel. Every answer is awaited for a
    bounded time (`AgiLimits`); once the conversation breaks, no answer is read any more."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: AgiLimits | None = None
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits = limits or AgiLimits()
        self.hung_up = False
        self.broken = False
        #: why the server ends the call; its next command is not sent (CallStopped)
        self.stopping: str | None = None

    def stop(self, reason: str) -> None:
        """End the call at its next command instead of sending it."""
        if self.stopping is None:
            self.stopping = reason

    async def send(self, line: bytes, takes: float = 0.0) -> AgiResponse:
        """Send one command and read its answer, allowing `takes` seconds for the command itself (a wait,
        a prompt, a recording) beyond `answer_seconds`. Raises CallerHungUp once the channel is gone,
        CallStopped when the server ends the call, AgiProtocolError when the conversation breaks."""
        if self.hung_up:
            raise CallerHungUp("the channel hung up")
        if self.stopping is not None:
            raise CallStopped(self.stopping)
        return await self._exchange(line, takes)

    async def hang_up(self) -> None:
        """The last command, HANGUP, whatever the server is doing: its answer is read while the
        conversation is sound; after a break it is only written."""
        if self.hung_up:
            return
        if self.broken:
            self.hang_up_now()
            return
        with contextlib.suppress(AgiError):
            await self._exchange(HANGUP, 0.0)

    def hang_up_now(self) -> None:
        """Write HANGUP without waiting: Asterisk runs it as soon as the command in progress ends."""
        if self.hung_up or self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self._writer.write(HANGUP)

    async def _exchange(self, line: bytes, takes: float) -> AgiResponse:
        if self.broken:
            raise AgiProtocolError("the AGI conversation broke earlier")
        seconds = self._limits.answer_seconds + max(0.0, takes)
        try:
            async with asyncio.timeout(seconds):
                self._writer.write(line)
                await self._writer.drain()
                lines = await self._answer()
        except TimeoutError:
            self.broken = True
            raise AgiProtocolError(
                f"Asterisk did not answer {shown(decode(line))} within {seconds:g} s"
            ) from None
        except asyncio.LimitOverrunError:
            self.broken = True
            raise AgiProtocolError(
                f"the answer to {shown(decode(line))} is longer than {LINE_LIMIT} bytes"
            ) from None
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            self.broken = True
            if self.hung_up:
                raise CallerHungUp("the channel hung up and Asterisk closed the AGI connection") from None
            raise AgiProtocolError(
                f"Asterisk closed the AGI connection during {shown(decode(line))} without a hang-up notice"
            ) from None
        try:
            response = parse_response(lines)
        except AgiProtocolError as e:
            self.broken = True
            raise AgiProtocolError(f"{e}, in answer to {shown(decode(line))}") from None
        if response.code == 511 or self.hung_up:
            self.hung_up = True
            raise CallerHungUp(response.text)
        if not response.ok:
            log.warning("agi command refused", command=decode(line), code=response.code, answer=response.text)
        return response

    async def _answer(self) -> list[bytes]:
        lines = [await self._line()]
        while lines[0] == b"HANGUP":  # Asterisk tells us at once; the command's answer follows
            self.hung_up = True
            lines = [await self._line()]
        if not response_done(lines[0]):
            code = lines[0][:3] + b" "
            while not lines[-1].startswith(code):
                if len(lines) > HEADER_LINES:
                    self.broken = True
                    raise AgiProtocolError(f"an answer of more than {HEADER_LINES} lines")
                lines.append(await self._line())
        return lines

    async def _line(self) -> bytes:
        line = await self._reader.readuntil(b"\n")
        return line.rstrip(b"\r\n")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.send(command_line("VERBOSE", quote(message), str(level)))

    async def set_variable(self, name: str, value: str) -> None:
        await self.send(command_line("SET VARIABLE", quoted=(name, value)))

    async def get_variable(self, name: str) -> str | None:
        response = await self.send(command_line("GET VARIABLE", quoted=(name,)))
        return response.data if response.result == 1 else None


class AgiCall:
    """A flow on one AGI channel: events in, actions out, until the call ends or leaves for the
    dialplan. However it ends, the engine hears how and its contact is closed."""

    def __init__(
        self,
        channel: AgiChannel,
        environment: Mapping[str, str],
        session: Session,
        *,
        call_id: str,
        record: Record | None,
        http: aiohttp.ClientSession,
        clock: Clock = utc_now,
        keep_callback: KeepCallback | None = None,
        limits: AgiLimits | None = None,
    ) -> None:
        self.channel = channel
        self.environment = environment
        self.session = session
        self.call_id = call_id
        self._record = record
        self._http = http
        self._clock = clock
        self._keep = keep_callback
        self._limits = limits or AgiLimits()
        name = environment.get("agi_calleridname", "")
        self._started = events.CallStarted(
            caller=caller_of(environment),
            dialed=environment.get("agi_extension", ""),
            caller_name=name if name and name != "unknown" else None,
        )
        self._events: deque[events.Event] = deque()
        self._after_end: list[events.Event] = []  # what still counts once the call has ended
        self._timer: tuple[str, float] | None = None  # (id, monotonic deadline)
        self._language = environment.get("agi_language", "")
        self._transferred = False  # the call went on in the dialplan (a transfer to an extension)

    async def run(self) -> None:
        """Answer and run the flow. Raises nothing but CancelledError, and closes the contact either way."""
        self._events.append(self._started)
        try:
            await self.channel.send(command_line("ANSWER"))
            await self._loop()
        except CallerHungUp:
            await self._end(events.Hangup())
        except CallStopped as e:
            await self._end(events.ServiceHangup(e.reason))
        except AgiError as e:
            log.warning("agi call ended on a fault", call=self.call_id, node=self.session.node, error=str(e))
            await self._end(events.ServiceHangup(AGI_ERROR, str(e)))
        except asyncio.CancelledError:
            await self._end(events.ServiceHangup(self.channel.stopping or SERVICE_STOPPING), at_once=True)
            raise
        except Exception as e:
            log.exception("agi call failed", call=self.call_id, node=self.session.node)
            await self._end(
                events.ServiceHangup(AGI_ERROR, f"a fault in the service: {type(e).__name__}: {e}")
            )
        else:
            if self._transferred:  # the hotline's part of the call is over; the caller did not hang up
                await self._write(actions.RecordEvent("call_ended", {"by": "flow", "cause": "transferred"}))

    async def _loop(self) -> None:
        while not self._transferred:
            if self._events:
                await self._feed(self._events.popleft())
                continue
            waiting = self.session.waiting_for
            if waiting is None:
                return
            if self._timer is None:
                raise AgiError(f"the flow waits for {waiting}, which an AGI call cannot get")
            await self._wait_for_digit()

    async def _feed(self, event: events.Event) -> None:
        batch = self.session.handle(event, self._clock())
        for done, action in enumerate(batch, 1):
            if self._transferred:
                return
            try:
                await self._execute(action)
            except BaseException:
                for rest in batch[done:]:  # what the engine already decided still goes to the store
                    if isinstance(rest, actions.RecordEvent):
                        await self._write(rest)
                raise

    async def _end(self, end: events.Event, *, at_once: bool = False) -> None:
        """The engine hears how the call ended (after its start, when it never heard of it) and its
        contact events are written; the hang-up it asks for is sent, or only written `at_once`."""
        pending = [end, *self._after_end]
        if self.session.waiting_for == "call":
            pending.insert(0, self._started)
        for event in pending:
            for action in self.session.handle(event, self._clock()):
                if isinstance(action, actions.RecordEvent):
                    await self._write(action)
                elif isinstance(action, actions.Hangup):
                    if at_once:
                        self.channel.hang_up_now()
                    else:
                        await self.channel.hang_up()

    async def _write(self, action: actions.RecordEvent) -> None:
        await write_event(self._record, self.call_id, action.type, action.data)

    async def _execute(self, action: actions.Action) -> None:
        if isinstance(action, actions.RecordEvent):
            await self._write(action)
        elif isinstance(action, actions.Play):
            await self._play(action)
        elif isinstance(action, actions.StartTimer):
            self._timer = (action.timer_id, time.monotonic() + action.seconds)
        elif isinstance(action, actions.CancelTimer):
            if self._timer is not None and self._timer[0] == action.timer_id:
                self._timer = None
        elif isinstance(action, actions.SetVariable):
            await self.channel.set_variable(action.name, action.value)
            if action.name == "CHANNEL(language)":
                self._language = action.value
        elif isinstance(action, actions.Lookup):
            self._events.append(await self._lookup(action))
        elif isinstance(action, actions.Hangup):
            await self.channel.hang_up()  # the flow's last word, even while the service stops
        elif isinstance(action, actions.Transfer):
            await self._transfer(action)
        elif isinstance(action, actions.Voicemail):
            await self._voicemail(action)
        elif isinstance(action, actions.Enqueue):
            # no routing over AGI yet: the flow takes its overflow path
            self._events.append(events.QueueExited("no routing for AGI calls"))
        elif isinstance(action, actions.RequestCallback):
            self._events.append(await self._keep_callback(action))
        # StopPlayback: playback over AGI is done by the time the engine hears of a key

    async def _keep_callback(self, action: actions.RequestCallback) -> events.Event:
        """The call-back kept through the server's `keep_callback` hook, or refused without one."""
        if self._keep is None:
            log.info(
                "call-back asked for over AGI; nothing keeps it here", call=self.call_id, queue=action.queue
            )
            return events.CallbackRefused("call-backs are not kept for AGI calls here")
        try:
            return events.CallbackStored(await self._keep(self.call_id, action))
        except Exception as e:
            log.warning("call-back over AGI not kept", call=self.call_id, queue=action.queue, error=str(e))
            return events.CallbackRefused(str(e))

    async def _play(self, play: actions.Play) -> None:
        if play.language and play.language != self._language:
            await self.channel.set_variable("CHANNEL(language)", play.language)
            self._language = play.language
        escape = ALL_KEYS if play.barge_in else ""
        for uri in play.media:
            line = media_command(uri, escape)
            if line is None:
                log.warning("media AGI cannot play, skipped", media=uri, call=self.call_id)
                continue
            response = await self.channel.send(line, takes=self._limits.prompt_seconds)
            key = response.key
            if key is not None:
                self._events.append(events.Digit(key))
                break
            if response.result == -1 and not uri.startswith("sound:"):
                raise CallerHungUp("the channel hung up while saying a value")
            if response.result == -1:
                log.warning("sound could not be played", media=uri, call=self.call_id)
        self._events.append(events.PlaybackFinished(play.playback_id))

    async def _wait_for_digit(self) -> None:
        assert self._timer is not None
        timer_id, deadline = self._timer
        seconds = max(0.0, deadline - time.monotonic())
        line = command_line("WAIT FOR DIGIT", str(round(seconds * 1000)))
        response = await self.channel.send(line, takes=seconds)
        if response.result is None:
            raise AgiProtocolError(f"Asterisk answered WAIT FOR DIGIT with no result: {shown(response.text)}")
        if response.result < 0:
            raise CallerHungUp("the channel hung up while waiting for a key")
        if response.result == 0:
            self._timer = None
            self._events.append(events.TimerFired(timer_id))
        elif response.key is not None:
            self._events.append(events.Digit(response.key))
        # a result that is no key is ignored: the wait goes on for the rest of the time

    async def _lookup(self, lookup: actions.Lookup) -> events.Event:
        try:
            async with self._http.request(
                lookup.method,
                lookup.url,
                headers=lookup.headers,
                json=lookup.body,
                timeout=aiohttp.ClientTimeout(total=lookup.timeout),
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                return events.LookupAnswered(lookup.request_id, response.status, body)
        except TimeoutError:
            return events.LookupFailed(lookup.request_id, f"no answer within {lookup.timeout:g} s")
        except aiohttp.ClientError as e:
            return events.LookupFailed(lookup.request_id, f"{type(e).__name__}: {e}")

    async def _transfer(self, transfer: actions.Transfer) -> None:
        await self.channel.set_variable("TRANSFER_TIMEOUT", f"{transfer.timeout:g}")
        if transfer.kind == "extension":
            await self.channel.send(
                command_line("SET CONTEXT", quoted=(transfer.context or TRANSFER_CONTEXT,))
            )
            await self.channel.send(command_line("SET EXTENSION", quoted=(transfer.target,)))
            await self.channel.send(command_line("SET PRIORITY", "1"))
            self._transferred = True  # the dialplan goes on from there once the AGI returns
            return
        target = transfer.target
        if transfer.kind == "number":
            target = f"Local/{target}@{TRANSFER_CONTEXT}"
        seconds = max(1, round(transfer.timeout))
        await self.channel.send(
            command_line("EXEC", "Dial", quoted=(f"{target},{seconds}",)),
            takes=seconds + self._limits.dial_seconds,
        )
        status = await self.channel.get_variable("DIALSTATUS") or "unknown"
        if status == "ANSWER":
            await self.channel.hang_up()
            raise CallerHungUp("the transferred call ended")
        self._events.append(events.TransferFailed(status.lower()))

    async def _voicemail(self, voicemail: actions.Voicemail) -> None:
        words = [
            "RECORD FILE",
            quote(f"{RECORDING_DIR}/{voicemail.recording_name}"),
            RECORDING_FORMAT,
            quote(voicemail.terminator),
            str(max(1, round(voicemail.max_duration * 1000))),
        ]
        if voicemail.beep:
            words.append("BEEP")
        began = time.monotonic()
        try:
            response = await self.channel.send(command_line(*words), takes=voicemail.max_duration + 2.0)
        except CallerHungUp:  # the message is kept all the same
            self._after_end.append(events.RecordingFinished(time.monotonic() - began))
            raise
        finished = events.RecordingFinished(time.monotonic() - began)
        if response.result is not None and response.result < 0:
            self.channel.hung_up = True
            self._after_end.append(finished)
            raise CallerHungUp("the channel hung up while recording")
        self._events.append(finished)


# --- the server -------------------------------------------------------------------------------------


class FastAgiServer:
    """Serves `AGI(agi://HOST:PORT/<flow>)` and `AGI(agi://HOST:PORT/identify)`.

    `flows` is the flow set, or a callable giving the current one (hot reload: each call keeps the set
    it started with). An empty script name picks the flow by the number dialed, from `numbers`. Every
    call reads the time from `clock` (the service's, which `HOTLINE_CLOCK_AT` may set).

    `drain(seconds)` stops taking calls and ends the calls in progress; `close()` then stops listening.
    """

    def __init__(
        self,
        flows: Flows,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        record: Record | None = None,
        identify: Identify | None = None,
        numbers: Mapping[str, str] | None = None,
        keep_callback: KeepCallback | None = None,
        clock: Clock = utc_now,
        limits: AgiLimits | None = None,
    ) -> None:
        self._flows = flows
        self._keep_callback = keep_callback
        self.host = host
        self.port = port
        self._record = record
        self._identify = identify
        self._numbers = dict(numbers or {})
        self._clock = clock
        self.limits = limits or AgiLimits()
        self._server: asyncio.Server | None = None
        self._http: aiohttp.ClientSession | None = None
        self._connections: set[asyncio.Task[None]] = set()  # every connection being served
        self._sessions: dict[asyncio.Task[None], AgiChannel] = {}  # those with a complete environment
        self._calls: set[asyncio.Task[None]] = set()  # those running a flow
        self._taking = True
        self.calls_served = 0
        self.calls_refused = 0
        self.connections_dropped = 0

    @property
    def calls(self) -> int:
        """Flows running now."""
        return len(self._calls)

    @property
    def taking_calls(self) -> bool:
        return self._taking

    async def start(self) -> None:
        """Listen; with port 0 the system picks one, then found in `.port`."""
        self._http = aiohttp.ClientSession()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=LINE_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fastagi listening", host=self.host, port=self.port)

    async def drain(self, seconds: float) -> None:
        """Stop taking calls: from now on a new call is not run (its contact says `service_stopping`
        and its channel is hung up). The calls in progress get `seconds` to end on their own; the rest
        are hung up at their next command, and a call that does not reach one within
        `limits.stop_seconds` is cut: its contact is closed at once and HANGUP is left for Asterisk to
        run when the command in progress ends. Listening goes on until `close()`."""
        self._taking = False
        if self._calls:
            log.info(
                "fastagi: no new calls; calls in progress may go on", calls=len(self._calls), seconds=seconds
            )
            await asyncio.wait(set(self._calls), timeout=max(0.0, seconds))
        await self._end_sessions(SERVICE_STOPPING)

    async def close(self) -> None:
        """Stop listening and end what is still going on, as `drain(0)` does: every contact is closed."""
        self._taking = False
        if self._server is not None:
            self._server.close()
        await self._end_sessions(SERVICE_STOPPING)
        for task in self._connections:  # still sending their environment: nothing to close but the socket
            task.cancel()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=self.limits.stop_seconds)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _end_sessions(self, reason: str) -> None:
        sessions = dict(self._sessions)
        if not sessions:
            return
        for channel in sessions.values():
            channel.stop(reason)
        _, pending = await asyncio.wait(sessions, timeout=self.limits.stop_seconds)
        if not pending:
            return
        log.info("fastagi: cutting calls still in a command", calls=len(pending), reason=reason)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=self.limits.stop_seconds)

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _current_flows(self) -> FlowSet:
        return self._flows if isinstance(self._flows, FlowSet) else self._flows()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = str(writer.get_extra_info("peername"))
        sending_environment = len(self._connections) - len(self._sessions)
        self._connections.add(task)
        try:
            if sending_environment >= self.limits.calls:
                self.connections_dropped += 1
                log.warning("agi connection dropped: too many connections at once", peer=peer)
                return
            try:
                environment = await self._read_header(reader)
            except AgiHeaderError as e:
                self.connections_dropped += 1
                log.info("agi connection dropped", peer=peer, reason=str(e))
                return
            channel = AgiChannel(reader, writer, self.limits)
            self._sessions[task] = channel
            await self._run_script(channel, environment)
        except AgiError as e:  # identify or a refusal could not finish; nothing is left open
            log.info("agi session ended early", peer=peer, reason=str(e))
        except Exception:
            log.exception("agi session failed", peer=peer)
        finally:
            self._connections.discard(task)
            self._sessions.pop(task, None)
            self._calls.discard(task)
            await _close(writer)

    async def _read_header(self, reader: asyncio.StreamReader) -> dict[str, str]:
        lines: list[bytes] = []
        seconds = self.limits.header_seconds
        try:
            async with asyncio.timeout(seconds):
                while True:
                    line = (await reader.readuntil(b"\n")).rstrip(b"\r\n")
                    if not line:
                        return parse_header(lines)
                    lines.append(line)
                    if len(lines) > HEADER_LINES:
                        raise AgiHeaderError(f"more than {HEADER_LINES} AGI environment lines")
        except asyncio.IncompleteReadError:
            raise AgiHeaderError(
                f"closed after {len(lines)} environment lines, before the blank line (a health check?)"
            ) from None
        except asyncio.LimitOverrunError:
            raise AgiHeaderError(f"an environment line is longer than {LINE_LIMIT} bytes") from None
        except TimeoutError:
            raise AgiHeaderError(f"no complete AGI environment within {seconds:g} s") from None
        except (ConnectionError, OSError) as e:
            raise AgiHeaderError(f"connection failed: {e}") from None

    async def _run_script(self, channel: AgiChannel, environment: Mapping[str, str]) -> None:
        script = environment.get("agi_network_script", "").strip("/").partition("?")[0]
        if script == IDENTIFY_SCRIPT:
            await self._run_identify(channel, environment)
            return
        flows = self._current_flows()
        flow = script or self._numbers.get(environment.get("agi_extension", ""), "")
        call_id = call_id_of(environment)
        if call_id is None:
            call_id = f"agi-{uuid.uuid4().hex}"
            log.warning(
                "agi call without a usable agi_uniqueid; its contact is named by a new id",
                call=call_id,
                uniqueid=shown(environment.get("agi_uniqueid", "")),
            )
        if not self._taking:
            await self._refuse(
                channel, environment, call_id, flow, SERVICE_STOPPING, "the service is stopping; call again"
            )
            return
        if flow not in flows:
            known = ", ".join(sorted(flows)) or "none"
            problem = (
                f"no flow '{flow}' for this AGI call (loaded flows: {known}); "
                "set FLOW to one of them, or map the number dialed to a flow"
            )
            log.warning("agi call for an unknown flow", flow=flow, known=known, call=call_id)
            await self._refuse(channel, environment, call_id, flow, NO_FLOW, problem, error=problem)
            return
        if len(self._calls) >= self.limits.calls:
            log.warning("agi call refused: the service runs as many as it may", limit=self.limits.calls)
            await self._refuse(
                channel,
                environment,
                call_id,
                flow,
                SERVICE_BUSY,
                f"{self.limits.calls} AGI calls are running, the most this service takes",
            )
            return
        assert self._http is not None
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        self.calls_served += 1
        log.info("agi call", flow=flow, call=call_id)
        await AgiCall(
            channel,
            environment,
            Session(flows, flow, call_id=call_id),
            call_id=call_id,
            record=self._record,
            http=self._http,
            clock=self._clock,
            keep_callback=self._keep_callback,
            limits=self.limits,
        ).run()

    async def _refuse(
        self,
        channel: AgiChannel,
        environment: Mapping[str, str],
        call_id: str,
        flow: str,
        reason: str,
        message: str,
        *,
        error: str | None = None,
    ) -> None:
        """A call not run: its contact says why, Asterisk's log too, and the channel is hung up."""
        self.calls_refused += 1
        log.info("agi call not run", call=call_id, flow=flow, reason=reason)
        for event_type, data in refused_call(environment, flow, reason, error):
            await write_event(self._record, call_id, event_type, data)
        with contextlib.suppress(AgiError):
            await channel.verbose(f"hotline: {message}")
        await channel.hang_up()

    async def _run_identify(self, channel: AgiChannel, environment: Mapping[str, str]) -> None:
        caller = environment.get("agi_callerid", "")
        if not self._taking:
            await channel.verbose("hotline: the service is stopping; no customer data")
            return
        if self._identify is None:
            await channel.verbose("hotline: identify is not set up in this service; no customer data")
            return
        try:
            async with asyncio.timeout(self.limits.answer_seconds):
                found = await self._identify(caller)
        except TimeoutError:
            log.warning("customer lookup took too long", caller=caller, seconds=self.limits.answer_seconds)
            await channel.verbose(f"hotline: customer lookup for {caller} took too long; no customer data")
            return
        except Exception:
            log.exception("customer lookup failed", caller=caller)
            await channel.verbose(f"hotline: customer lookup for {caller} failed; see the service log")
            return
        self.calls_served += 1
        if not found:
            await channel.verbose(f"hotline: no customer with the number {caller}")
            return
        for name, value in found.items():
            await channel.set_variable(name, value)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection; one whose peer does not take what is left to send is dropped."""
    writer.close()
    try:
        async with asyncio.timeout(2.0):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (ConnectionError, OSError):
        pass
