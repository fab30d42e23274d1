"""A FastAGI server of our own: `AGI(agi://127.0.0.1:4573/<flow>)` runs the same IVR flows from a plain
dialplan, for a PBX that cannot use ARI.

AGI is a small line protocol: Asterisk connects, sends its environment (`agi_*: value` lines up to a
blank line), then the script sends one command per line and reads one answer each
(`200 result=N (data) endtime=...`). panoramisk's server spins at 100 % CPU on a half-open connection
and fails on non-UTF-8 caller names, so this one reads bytes, decodes them tolerantly, bounds every
header read in time and length, and drops a client that closes early (a TCP health check) quietly.

The pure parts (`parse_header`, `parse_response`, `quote`, `command_line`) work on plain bytes and
strings; `AgiCall` feeds the `ivr` engine and executes its actions with AGI commands. The script name
picks what runs: a flow by name, or `identify`, which sets the caller's customer data as channel
variables (CUSTOMER_ID, CUSTOMER_NAME, ...) and returns to the dialplan.

AgiError                 what the protocol layer raises
 ├── AgiHeaderError      the client sent no complete, well-formed AGI environment
 └── CallerHungUp        the channel hung up (a HANGUP notice, a dead-channel answer or a closed socket)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from contacts import EventName
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
#: Keys that stop a barge-in prompt.
ALL_KEYS = "0123456789*#ABCD"
#: The script name that looks the caller up instead of running a flow.
IDENTIFY_SCRIPT = "identify"
#: Where Asterisk keeps recordings (the same folder ARI records into).
RECORDING_DIR = "/var/spool/asterisk/recording"
RECORDING_FORMAT = "wav"
#: The dialplan context of an `extension` transfer that names none.
TRANSFER_CONTEXT = "hotline-transfer"

Identify = Callable[[str], Awaitable[Mapping[str, str] | None]]
#: Writes a contact event: (call id, event type, data); the store writer in the service.
Record = Callable[[str, EventName, dict[str, Any]], Awaitable[None] | None]
#: Keeps a call-back a caller asked for: (call id, the request) -> the call-back's id; raises to refuse.
KeepCallback = Callable[[str, actions.RequestCallback], Awaitable[str]]
Flows = FlowSet | Callable[[], FlowSet]


class AgiError(Exception):
    """The AGI conversation failed."""


class AgiHeaderError(AgiError):
    """The client sent no complete, well-formed AGI environment."""


class CallerHungUp(AgiError):
    """The channel is gone; the call's session gets a Hangup event."""


# --- the pure protocol ------------------------------------------------------------------------------

_HEADER_KEY = re.compile(r"agi_[a-z0-9_]+")
_RESPONSE = re.compile(r"(\d{3})[ -]?(.*)")
_RESULT = re.compile(r"result=(-?\d+)\s*(?:\((.*)\))?\s*(.*)")
_FIELD = re.compile(r"(\w+)=(\S*)")


def decode(raw: bytes) -> str:
    """A line from Asterisk as text: UTF-8, with any invalid byte replaced (a Latin-1 caller name)."""
    return raw.rstrip(b"\r\n").decode("utf-8", errors="replace")


def parse_header(lines: Sequence[bytes]) -> dict[str, str]:
    """The AGI environment from its lines (the blank line left out), e.g. `{"agi_callerid": "100"}`.
    Raises AgiHeaderError for a line that is not `agi_<name>: value`, or for no line at all."""
    environment: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = decode(raw)
        key, colon, value = line.partition(":")
        if not colon or _HEADER_KEY.fullmatch(key) is None:
            shown = line[:60] + ("..." if len(line) > 60 else "")
            raise AgiHeaderError(f"AGI environment line {number} is not 'agi_<name>: value': {shown!r}")
        environment[key] = value.strip()
    if not environment:
        raise AgiHeaderError("the AGI environment is empty; the client is not Asterisk")
    return environment


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


def response_done(first_line: bytes) -> bool:
    """Whether an answer is complete with this line: a `520-` line starts a usage text that ends at a
    line `520 ...`."""
    return not re.match(rb"\d{3}-", first_line)


def parse_response(lines: Sequence[bytes]) -> AgiResponse:
    """An answer from its lines: `200 result=1 (timeout) endtime=42`, `510 Invalid or unknown command`,
    or a multi-line `520-...` usage text. Raises AgiError for a line that is no AGI answer."""
    if not lines:
        raise AgiError("no AGI answer to parse")
    texts = [decode(raw) for raw in lines]
    match = _RESPONSE.fullmatch(texts[0])
    if match is None:
        raise AgiError(f"not an AGI answer: {texts[0][:80]!r}")
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


# --- one call -----------------------------------------------------------------------------------------


class AgiChannel:
    """The command/answer conversation with Asterisk about one channel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.hung_up = False

    async def send(self, line: bytes) -> AgiResponse:
        """Send one command and read its answer. Raises CallerHungUp once the channel is gone."""
        if self.hung_up:
            raise CallerHungUp("the channel hung up")
        try:
            self._writer.write(line)
            await self._writer.drain()
            lines = [await self._line()]
            while lines[0] == b"HANGUP":  # Asterisk tells us at once; the command's answer follows
                self.hung_up = True
                lines = [await self._line()]
            if not response_done(lines[0]):
                code = lines[0][:3] + b" "
                while not lines[-1].startswith(code):
                    lines.append(await self._line())
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            self.hung_up = True
            raise CallerHungUp("Asterisk closed the AGI connection") from e
        response = parse_response(lines)
        if response.code == 511 or self.hung_up:
            self.hung_up = True
            raise CallerHungUp(response.text)
        if not response.ok:
            log.warning("agi command refused", command=decode(line), code=response.code, answer=response.text)
        return response

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
    """A flow on one AGI channel: events in, actions out, until the call ends or leaves for the dialplan."""

    def __init__(
        self,
        channel: AgiChannel,
        environment: Mapping[str, str],
        session: Session,
        *,
        record: Record | None,
        http: aiohttp.ClientSession,
        keep_callback: KeepCallback | None = None,
    ) -> None:
        self.channel = channel
        self._keep = keep_callback
        self.environment = environment
        self.session = session
        self.call_id = environment.get("agi_uniqueid", "call")
        self._record = record
        self._http = http
        self._events: deque[events.Event] = deque()
        self._timer: tuple[str, float] | None = None  # (id, monotonic deadline)
        self._language = environment.get("agi_language", "")
        self._left = False  # the call went back to the dialplan (a transfer to an extension)

    async def run(self) -> None:
        caller = self.environment.get("agi_callerid", "")
        name = self.environment.get("agi_calleridname", "")
        self._events.append(
            events.CallStarted(
                caller=caller if caller and caller != "unknown" else None,
                dialed=self.environment.get("agi_extension", ""),
                caller_name=name if name and name != "unknown" else None,
            )
        )
        try:
            await self.channel.send(command_line("ANSWER"))
            await self._loop()
        except CallerHungUp:
            await self._feed_all([events.Hangup()])

    async def _loop(self) -> None:
        while not self._left:
            if self._events:
                await self._feed(self._events.popleft())
                continue
            if self.session.waiting_for is None:
                return
            if self._timer is None:
                log.warning("agi call waits for nothing it can get", waiting_for=self.session.waiting_for)
                return
            await self._wait_for_digit()

    async def _feed(self, event: events.Event) -> None:
        batch = self.session.handle(event, datetime.now(UTC))
        for done, action in enumerate(batch, 1):
            if self._left:
                return
            try:
                await self._execute(action)
            except CallerHungUp:
                for rest in batch[done:]:  # what the engine already decided still goes to the store
                    if isinstance(rest, actions.RecordEvent):
                        await self._write(rest)
                raise

    async def _feed_all(self, pending: list[events.Event]) -> None:
        """Events after the channel is gone: only their contact events still count."""
        for event in pending:
            for action in self.session.handle(event, datetime.now(UTC)):
                if isinstance(action, actions.RecordEvent):
                    await self._write(action)

    async def _write(self, action: actions.RecordEvent) -> None:
        if self._record is None:
            return
        try:
            written = self._record(self.call_id, action.type, action.data)
            if inspect.isawaitable(written):
                await written
        except Exception:
            log.exception("contact event not written", call=self.call_id, event=action.type)

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
            await self.channel.send(command_line("HANGUP"))
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
            response = await self.channel.send(line)
            if response.result is not None and response.result > 0:
                self._events.append(events.Digit(chr(response.result)))
                break
            if response.result == -1 and not uri.startswith("sound:"):
                raise CallerHungUp("the channel hung up while saying a value")
            if response.result == -1:
                log.warning("sound could not be played", media=uri, call=self.call_id)
        self._events.append(events.PlaybackFinished(play.playback_id))

    async def _wait_for_digit(self) -> None:
        assert self._timer is not None
        timer_id, deadline = self._timer
        milliseconds = max(0, round((deadline - time.monotonic()) * 1000))
        response = await self.channel.send(command_line("WAIT FOR DIGIT", str(milliseconds)))
        if response.result is None or response.result < 0:
            raise CallerHungUp("the channel hung up while waiting for a key")
        if response.result == 0:
            self._timer = None
            self._events.append(events.TimerFired(timer_id))
        else:
            self._events.append(events.Digit(chr(response.result)))

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
            self._left = True  # the dialplan goes on from there once the AGI returns
            return
        target = transfer.target
        if transfer.kind == "number":
            target = f"Local/{target}@{TRANSFER_CONTEXT}"
        seconds = max(1, round(transfer.timeout))
        await self.channel.send(command_line("EXEC", "Dial", quoted=(f"{target},{seconds}",)))
        status = await self.channel.get_variable("DIALSTATUS") or "unknown"
        if status == "ANSWER":
            await self.channel.send(command_line("HANGUP"))
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
            response = await self.channel.send(command_line(*words))
        except CallerHungUp:
            await self._feed_all([events.Hangup(), events.RecordingFinished(time.monotonic() - began)])
            raise
        finished = events.RecordingFinished(time.monotonic() - began)
        if response.result is not None and response.result < 0:
            await self._feed_all([events.Hangup(), finished])
            self.channel.hung_up = True
            self._left = True
            return
        self._events.append(finished)


# --- the server -------------------------------------------------------------------------------------


class FastAgiServer:
    """Serves `AGI(agi://HOST:PORT/<flow>)` and `AGI(agi://HOST:PORT/identify)`.

    `flows` is the flow set, or a callable giving the current one (hot reload: each call keeps the set
    it started with). An empty script name picks the flow by the number dialed, from `numbers`.
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
        header_timeout: float = HEADER_TIMEOUT,
        keep_callback: KeepCallback | None = None,
    ) -> None:
        self._flows = flows
        self._keep_callback = keep_callback
        self.host = host
        self.port = port
        self._record = record
        self._identify = identify
        self._numbers = dict(numbers or {})
        self._header_timeout = header_timeout
        self._server: asyncio.Server | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls_served = 0
        self.connections_dropped = 0

    async def start(self) -> None:
        """Listen; with port 0 the system picks one, then found in `.port`."""
        self._http = aiohttp.ClientSession()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=LINE_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fastagi listening", host=self.host, port=self.port)

    async def close(self) -> None:
        """Stop listening and end the calls in progress."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _current_flows(self) -> FlowSet:
        return self._flows if isinstance(self._flows, FlowSet) else self._flows()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            try:
                environment = await self._read_header(reader)
            except AgiHeaderError as e:
                self.connections_dropped += 1
                log.info("agi connection dropped", peer=str(peer), reason=str(e))
                return
            await self._run_script(AgiChannel(reader, writer), environment)
        except CallerHungUp:
            pass
        except Exception:
            log.exception("agi call failed", peer=str(peer))
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read_header(self, reader: asyncio.StreamReader) -> dict[str, str]:
        lines: list[bytes] = []
        try:
            async with asyncio.timeout(self._header_timeout):
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
            raise AgiHeaderError(f"no complete AGI environment within {self._header_timeout:g} s") from None
        except (ConnectionError, OSError) as e:
            raise AgiHeaderError(f"connection failed: {e}") from None

    async def _run_script(self, channel: AgiChannel, environment: Mapping[str, str]) -> None:
        script = environment.get("agi_network_script", "").strip("/").partition("?")[0]
        if script == IDENTIFY_SCRIPT:
            await self._run_identify(channel, environment)
            return
        flows = self._current_flows()
        flow = script or self._numbers.get(environment.get("agi_extension", ""), "")
        if flow not in flows:
            known = ", ".join(sorted(flows)) or "none"
            message = (
                f"hotline: no flow '{flow}' for this AGI call (loaded flows: {known}); "
                "set FLOW to one of them, or map the number dialed to a flow"
            )
            log.warning("agi call for an unknown flow", flow=flow, known=known)
            await channel.verbose(message)
            await channel.send(command_line("HANGUP"))
            return
        assert self._http is not None
        call_id = environment.get("agi_uniqueid", "call")
        session = Session(flows, flow, call_id=call_id)
        self.calls_served += 1
        log.info("agi call", flow=flow, call=call_id)
        await AgiCall(
            channel,
            environment,
            session,
            record=self._record,
            http=self._http,
            keep_callback=self._keep_callback,
        ).run()

    async def _run_identify(self, channel: AgiChannel, environment: Mapping[str, str]) -> None:
        caller = environment.get("agi_callerid", "")
        if self._identify is None:
            await channel.verbose("hotline: identify is not set up in this service; no customer data")
            return
        try:
            found = await self._identify(caller)
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
