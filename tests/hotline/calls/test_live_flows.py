"""Every node type on a live call: the hotline app (`CallApp`) runs a small flow on the real Asterisk while
the test plays the caller over ARI, and each call's contact events are checked in a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hotline.asterisk.errors import AriNotFound
from hotline.asterisk.events import (
    AriEvent,
    ChannelVarset,
    PlaybackFinished,
    PlaybackStarted,
    RecordingStarted,
    StasisEnd,
    StasisStart,
)
from hotline.asterisk.sandbox import Running
from hotline.calls.runner import NO_ROUTING
from hotline.store import StoredEvent
from ivr.flowset import FlowSet
from ivr.model import Flow
from support.harness import HOTLINE_NUMBER, Caller, Hotline, is_event

#: Asterisk core sounds the flows play, with their lengths: long ones to press keys into.
MONKEYS = "tt-monkeys"  # 16 s
WEASELS = "tt-weasels"  # 2 s
BEEP = "beep"  # 0.4 s
CALLER_ID = "+48221234567"


def flows(*specs: dict[str, Any]) -> FlowSet:
    return FlowSet({spec["flow"]: Flow.model_validate(spec) for spec in specs})


def flow(start: str, nodes: dict[str, Any], name: str = "main", **more: Any) -> dict[str, Any]:
    return {"flow": name, "start": start, "nodes": nodes, **more}


def journey(stored: list[StoredEvent]) -> list[tuple[str, Any]]:
    return [(e.type, e.data.get("node")) for e in stored]


def of_type(stored: list[StoredEvent], event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in stored if e.type == event_type]


def playback(
    channel_id: str, event_type: type[PlaybackStarted | PlaybackFinished], media: str
) -> Callable[[AriEvent], bool]:
    """Matches the playback event of `media` on the channel."""

    def matches(e: AriEvent) -> bool:
        return isinstance(e, event_type) and e.channel_id == channel_id and e.playback.media_uri == media

    return matches


@dataclass
class Call:
    line: Line
    caller_leg: str
    hotline_leg: str

    async def press(self, digits: str) -> None:
        await self.line.caller.press(self.caller_leg, digits)

    async def playing(self, media: str, timeout: float = 5.0) -> float:
        """Once the hotline starts playing `media` on the call; when it started (monotonic)."""
        return (
            await self.line.hotline.events.arrival(
                playback(self.hotline_leg, PlaybackStarted, media), timeout
            )
        )[0]

    async def played(self, media: str, timeout: float = 5.0) -> float:
        """Once the hotline has finished playing `media`; when it finished."""
        return (
            await self.line.hotline.events.arrival(
                playback(self.hotline_leg, PlaybackFinished, media), timeout
            )
        )[0]

    async def stored_until(self, event_type: str, timeout: float = 8.0) -> list[StoredEvent]:
        return await self.line.hotline.stored_until(self.hotline_leg, event_type, timeout)

    async def ended(self, timeout: float = 8.0) -> list[StoredEvent]:
        return await self.line.hotline.ended(self.hotline_leg, timeout)

    def media(self) -> list[str]:
        return self.line.hotline.media_played(self.hotline_leg)


@dataclass
class Line:
    hotline: Hotline
    caller: Caller
    recordings: list[str] = field(default_factory=list)

    async def call(self, flow_set: FlowSet, caller_id: str | None = None) -> Call:
        """Dial the hotline running `flow_set` and wait until it answers."""
        self.hotline.flows = flow_set
        caller_leg, hotline_leg = await self.caller.call(HOTLINE_NUMBER, caller_id=caller_id)
        await self.caller.events.wait_for(is_event(caller_leg, StasisStart))
        return Call(self, caller_leg, hotline_leg)


@pytest.fixture
async def line(asterisk: Running, tmp_path: Path) -> AsyncIterator[Line]:
    hotline = Hotline(asterisk, tmp_path, flows(flow("bye", {"bye": {"hangup": None}})), {"100": "main"})
    caller = Caller(asterisk)
    result = Line(hotline, caller)
    try:
        await hotline.start()
        caller.start()
        await caller.wait_connected(5)
        yield result
    finally:
        await caller.hang_up_all()
        for name in result.recordings:
            with contextlib.suppress(AriNotFound):
                await hotline.ari.delete(f"/recordings/stored/{name}")
        await hotline.stop()
        await caller.close()


# --- play ------------------------------------------------------------------------------------------


async def test_a_key_during_a_barge_in_prompt_stops_it_and_the_next_menu_takes_it(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "intro",
                {
                    "intro": {"play": MONKEYS, "barge_in": True, "next": "menu"},
                    "menu": {"menu": WEASELS, "options": {"1": "one", "2": "two"}, "failure": "one"},
                    "one": {"hangup": None},
                    "two": {"hangup": None},
                },
            )
        )
    )
    await call.playing(f"sound:{MONKEYS}")
    pressed = time.monotonic()
    await call.press("2")

    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "intro"),
        ("node_entered", "menu"),
        ("option_chosen", "menu"),
        ("node_entered", "two"),
        ("hung_up", "two"),
    ]
    assert of_type(stored, "option_chosen")[0]["digits"] == "2"
    # the 16 s prompt was cut short, and the menu's prompt skipped: the caller already answered it
    assert await call.played(f"sound:{MONKEYS}") - pressed < 2.0
    assert call.media() == [f"sound:{MONKEYS}"]


async def test_a_key_during_a_prompt_without_barge_in_is_ignored(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "intro",
                {
                    "intro": {"play": WEASELS, "next": "menu"},
                    "menu": {
                        "menu": BEEP,
                        "options": {"1": "one"},
                        "timeout": 0.5,
                        "retries": 0,
                        "failure": "silence",
                    },
                    "one": {"hangup": None},
                    "silence": {"hangup": None},
                },
            )
        )
    )
    started = await call.playing(f"sound:{WEASELS}")
    await call.press("1")

    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "intro"),
        ("node_entered", "menu"),
        ("no_input", "menu"),
        ("node_entered", "silence"),
        ("hung_up", "silence"),
    ]
    assert await call.played(f"sound:{WEASELS}") - started > 1.5  # played to its end
    assert call.media() == [f"sound:{WEASELS}", f"sound:{BEEP}"]


# --- menu and hang-up ----------------------------------------------------------------------------


async def test_an_invalid_digit_then_a_valid_one(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "menu",
                {
                    "menu": {"menu": BEEP, "options": {"1": "one"}, "invalid": WEASELS, "timeout": 5},
                    "one": {"hangup": None},
                },
            )
        )
    )
    await call.played(f"sound:{BEEP}")
    await call.press("9")
    await call.stored_until("invalid_input")
    await call.playing(f"sound:{WEASELS}")
    await call.press("1")

    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "menu"),
        ("invalid_input", "menu"),
        ("option_chosen", "menu"),
        ("node_entered", "one"),
        ("hung_up", "one"),
    ]
    assert of_type(stored, "invalid_input")[0]["digits"] == "9"
    assert of_type(stored, "option_chosen")[0]["digits"] == "1"


async def test_silence_until_the_retries_run_out_fails_to_a_goodbye(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "menu",
                {
                    "menu": {
                        "menu": BEEP,
                        "options": {"1": "one"},
                        "timeout": 0.5,
                        "retries": 1,
                        "no_input": BEEP,
                        "failure": "bye",
                    },
                    "one": {"hangup": None},
                    "bye": {"hangup": "goodbye"},
                },
            )
        )
    )
    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "menu"),
        ("no_input", "menu"),
        ("no_input", "menu"),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    # the goodbye is heard to its end before the flow hangs up
    said_goodbye = await call.played("sound:goodbye")
    hung_up, _ = await line.caller.events.arrival(is_event(call.caller_leg, StasisEnd))
    assert said_goodbye <= hung_up
    assert call.media()[-1] == "sound:goodbye"
    assert (await line.hotline.contact(call.hotline_leg)).outcome == "ended_in_ivr"


async def test_a_caller_hanging_up_mid_menu_is_abandoned_in_the_ivr(line: Line) -> None:
    call = await line.call(
        flows(flow("menu", {"menu": {"menu": MONKEYS, "options": {"1": "one"}}, "one": {"hangup": None}}))
    )
    await call.playing(f"sound:{MONKEYS}")
    await line.caller.hang_up(call.caller_leg)

    stored = await call.ended()
    assert journey(stored) == [("call_started", None), ("node_entered", "menu"), ("abandoned", "menu")]
    contact = await line.hotline.contact(call.hotline_leg)
    assert contact.outcome == "abandoned_ivr"
    assert contact.ivr_path == ["menu"]
    assert contact.ended_at is not None


# --- collect and say -----------------------------------------------------------------------------


async def test_collect_retries_a_wrong_pattern_reads_back_and_says_the_digits(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "account",
                {
                    "account": {
                        "collect": "account",
                        "prompt": BEEP,
                        "pattern": "^[0-9]{2}$",
                        "invalid": BEEP,
                        "retries": 1,
                        "timeout": 5,
                        "confirm": {"prompt": WEASELS, "question": BEEP},
                        "next": "say_digits",
                    },
                    "say_digits": {"say": "{account}", "next": "say_number"},
                    "say_number": {"say": "{account}", "as": "number", "next": "bye"},
                    "bye": {"hangup": None},
                },
            )
        )
    )
    await call.played(f"sound:{BEEP}")
    await call.press("7#")
    await call.stored_until("invalid_input")
    await call.press("42#")
    await call.playing(f"sound:{WEASELS}")
    await call.press("1")

    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "account"),
        ("invalid_input", "account"),
        ("input_collected", "account"),
        ("node_entered", "say_digits"),
        ("node_entered", "say_number"),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    assert of_type(stored, "invalid_input")[0]["digits"] == "7"
    assert of_type(stored, "input_collected")[0]["value"] == "42"
    media = call.media()
    assert media.count("digits:42") == 1  # the read-back stopped when the caller pressed 1
    assert media[-2:] == ["digits:42", "number:42"]


# --- branch and set ------------------------------------------------------------------------------


BRANCHING = flow(
    "note",
    {
        "note": {"set": {"tier": "gold", "greeting": "hello {caller}"}, "next": "where"},
        "where": {"branch": [{"if": {"caller": "+4822*"}, "goto": "warsaw"}], "else": "elsewhere"},
        "warsaw": {
            "branch": [{"if": {"var": "tier", "equals": "gold"}, "goto": "gold"}],
            "else": "elsewhere",
        },
        "gold": {"hangup": None},
        "elsewhere": {"hangup": None},
    },
)


@pytest.mark.parametrize(
    ("caller_id", "path"),
    [(CALLER_ID, ["note", "where", "warsaw", "gold"]), ("+48611234567", ["note", "where", "elsewhere"])],
)
async def test_set_and_branch_on_the_caller_and_a_variable(
    line: Line, caller_id: str, path: list[str]
) -> None:
    call = await line.call(flows(BRANCHING), caller_id=caller_id)

    stored = await call.ended()
    assert [e.data["node"] for e in stored if e.type == "node_entered"] == path
    assert [e["target"] for e in of_type(stored, "branch_taken")] == path[2:]
    assert of_type(stored, "call_started")[0]["caller"] == caller_id
    # the variables reached the channel, where the dialplan and agents see them
    varset = {
        e.variable: e.value
        for e in line.hotline.events.of(call.hotline_leg, ChannelVarset)
        if isinstance(e, ChannelVarset)
    }
    assert varset["tier"] == "gold"
    assert varset["greeting"] == f"hello {caller_id}"


# --- language ------------------------------------------------------------------------------------


async def test_choosing_polish_sets_the_channel_language(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "choose",
                {
                    "choose": {
                        "language": {"1": "en", "2": "pl"},
                        "prompt": BEEP,
                        "timeout": 5,
                        "next": "menu",
                    },
                    "menu": {"menu": MONKEYS, "options": {"1": "bye"}, "timeout": 5, "failure": "bye"},
                    "bye": {"hangup": None},
                },
                languages=["en", "pl"],
            )
        )
    )
    await call.played(f"sound:{BEEP}")
    await call.press("2")
    stored = await call.stored_until("language_chosen")
    assert of_type(stored, "language_chosen") == [{"language": "pl", "how": "key"}]
    assert await line.hotline.ari.get_variable(call.hotline_leg, "CHANNEL(language)") == "pl"
    started = await line.hotline.events.wait_for(
        playback(call.hotline_leg, PlaybackStarted, f"sound:{MONKEYS}")
    )
    assert isinstance(started, PlaybackStarted) and started.playback.language == "pl"
    await call.press("1")

    stored = await call.ended()
    assert journey(stored)[-2:] == [("node_entered", "bye"), ("hung_up", "bye")]
    assert (await line.hotline.contact(call.hotline_leg)).language == "pl"


# --- lookup to a CRM -----------------------------------------------------------------------------


@dataclass
class Crm:
    """A small CRM on loopback: `/customers/<phone>` answers, `/broken` fails, `/slow` takes too long."""

    base: str
    asked: list[str]


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    asked: list[str] = []
    released = asyncio.Event()

    async def customer(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response(
            {"customer": {"id": 42, "tier": "gold", "phone": request.match_info["phone"]}}
        )

    async def broken(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"error": "database down"}, status=500)

    async def slow(request: web.Request) -> web.Response:
        asked.append(request.path)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), 5.0)
        return web.json_response({"customer": {"id": 42, "tier": "gold"}})

    app = web.Application()
    app.router.add_get("/customers/{phone}", customer)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Crm(f"http://{host}:{port}", asked)
    finally:
        released.set()
        await runner.cleanup()


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def lookup_flow(url: str) -> FlowSet:
    """Ask the CRM; a gold customer hears their customer number, anyone else (and any failure) a sorry."""
    return flows(
        flow(
            "find",
            {
                "find": {
                    "lookup": {
                        "url": url,
                        "timeout": 0.5,
                        "fields": {"customer_id": "customer.id", "tier": "customer.tier"},
                    },
                    "next": "route",
                    "fallback": "sorry",
                },
                "route": {
                    "branch": [{"if": {"var": "tier", "equals": "gold"}, "goto": "gold"}],
                    "else": "sorry",
                },
                "gold": {"say": "{customer_id}", "as": "number", "next": "bye"},
                "sorry": {"play": BEEP, "next": "bye"},
                "bye": {"hangup": None},
            },
        )
    )


async def test_a_crm_answer_becomes_variables_the_flow_says_and_branches_on(line: Line, crm: Crm) -> None:
    call = await line.call(lookup_flow(crm.base + "/customers/{caller}"), caller_id=CALLER_ID)

    stored = await call.ended()
    assert [e.data["node"] for e in stored if e.type == "node_entered"] == ["find", "route", "gold", "bye"]
    assert of_type(stored, "lookup_done") == [
        {"node": "find", "status": 200, "fields": ["customer_id", "tier"]}
    ]
    assert crm.asked == [f"/customers/{CALLER_ID}"]
    assert call.media() == ["number:42"]


@pytest.mark.parametrize(
    ("where", "reason"),
    [("/broken", "HTTP status 500"), ("refused", "ClientConnectorError"), ("/slow", "TimeoutError")],
)
async def test_a_crm_failing_or_too_slow_takes_the_fallback(
    line: Line, crm: Crm, where: str, reason: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/customers" if where == "refused" else crm.base + where
    call = await line.call(lookup_flow(url), caller_id=CALLER_ID)
    began = time.monotonic()

    stored = await call.ended()
    assert [e.data["node"] for e in stored if e.type == "node_entered"] == ["find", "sorry", "bye"]
    (failed,) = of_type(stored, "lookup_failed")
    assert failed["node"] == "find"
    assert failed["reason"].startswith(reason)
    assert call.media() == [f"sound:{BEEP}"]
    assert time.monotonic() - began < 0.5 + 0.5 + 2.0  # the lookup's timeout and grace, then the beep
    assert crm.asked == ([] if where == "refused" else [where])


# --- queue, goto into another flow, callback -----------------------------------------------------


async def test_a_queue_without_routing_overflows_into_a_shared_flow(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "support",
                {
                    "support": {
                        "queue": {"name": "support", "skills": {"printers": 2}},
                        "overflow": "elsewhere",
                    },
                    "elsewhere": {"goto": {"flow": "shared", "node": "goodbye"}},
                },
            ),
            flow(
                "hello",
                {"hello": {"play": BEEP, "next": "goodbye"}, "goodbye": {"hangup": "goodbye"}},
                name="shared",
            ),
        )
    )
    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "support"),
        ("queued", None),
        ("queue_overflow", None),
        ("node_entered", "elsewhere"),
        ("node_entered", "goodbye"),
        ("hung_up", "goodbye"),
    ]
    assert of_type(stored, "queued")[0]["skills"] == {"printers": 2}
    assert of_type(stored, "queue_overflow") == [{"queue": "support", "reason": NO_ROUTING}]
    assert [e["flow"] for e in of_type(stored, "node_entered")] == ["main", "main", "shared"]
    assert call.media() == ["sound:goodbye"]
    contact = await line.hotline.contact(call.hotline_leg)
    assert contact.queue == "support"
    assert contact.ivr_path == ["support", "elsewhere", "goodbye"]


async def test_a_caller_confirming_their_own_number_for_a_call_back(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "offer",
                {
                    "offer": {
                        "callback": {
                            "queue": "support",
                            "confirm": WEASELS,
                            "question": BEEP,
                            "done": "goodbye",
                            "timeout": 5,
                        }
                    }
                },
            )
        ),
        caller_id=CALLER_ID,
    )
    await call.playing(f"sound:{WEASELS}")
    await call.press("1")

    stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "offer"),
        ("callback_requested", None),
        ("hung_up", "offer"),
    ]
    assert of_type(stored, "callback_requested") == [{"queue": "support", "number": CALLER_ID}]
    assert call.media() == [f"sound:{WEASELS}", "sound:goodbye"]
    await line.caller.events.wait_for(is_event(call.caller_leg, StasisEnd))
    assert (await line.hotline.contact(call.hotline_leg)).outcome == "callback"


# --- transfer and voicemail ----------------------------------------------------------------------


async def test_a_transfer_leaves_the_app_for_the_dialplan(line: Line) -> None:
    call = await line.call(
        flows(
            flow(
                "out", {"out": {"transfer": {"extension": "answer", "context": "hotline-test", "timeout": 7}}}
            )
        )
    )
    stored = await call.stored_until("transferred")
    assert of_type(stored, "transferred") == [{"kind": "extension", "target": "answer"}]
    await line.hotline.events.wait_for(is_event(call.hotline_leg, StasisEnd))

    # the call goes on in the dialplan, out of the hotline app: the far end answered it
    deadline = time.monotonic() + 5.0
    while True:
        channel = await line.hotline.ari.get(f"/channels/{call.hotline_leg}")
        if channel["dialplan"]["context"] == "hotline-test" and channel["dialplan"]["app_name"] == "Wait":
            break
        assert time.monotonic() < deadline, f"the transfer did not reach hotline-test: {channel['dialplan']}"
        await asyncio.sleep(0.05)
    assert channel["dialplan"]["exten"] == "answer"
    assert await line.hotline.ari.get_variable(call.hotline_leg, "TRANSFER_TIMEOUT") == "7"
    assert call.hotline_leg not in (c.id for c in await line.hotline.ari.stasis_channels())
    contact = await line.hotline.contact(call.hotline_leg)
    assert contact.outcome == "transferred"
    ended = await call.stored_until("call_ended")
    assert of_type(ended, "call_ended") == [{"by": "flow", "cause": "transferred"}]
    assert of_type(ended, "hung_up") == []
    contact = await line.hotline.contact(call.hotline_leg)
    assert contact.ended_by == "flow" and contact.ended_at is not None


def voicemail_flow(max_duration: float) -> FlowSet:
    return flows(
        flow(
            "leave",
            {
                "leave": {
                    "voicemail": {
                        "mailbox": "sales",
                        "prompt": BEEP,
                        "max_duration": max_duration,
                        "beep": False,
                    },
                    "next": "bye",
                },
                "bye": {"hangup": "goodbye"},
            },
        )
    )


#: Where Asterisk keeps stored recordings, inside the sandbox's root.
RECORDINGS = Path("var/spool/asterisk/recording")


@contextlib.contextmanager
def recording_folder(asterisk: Running, present: bool) -> Iterator[Path]:
    """Asterisk's folder for recordings, made to exist or not for one test. Asterisk never creates it
    itself, and Debian's package does not either, so an installation must."""
    folder = asterisk.root / RECORDINGS
    if present:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    aside = folder.with_name(f"recording-aside-{uuid.uuid4().hex}")
    moved = folder.exists()
    if moved:
        folder.rename(aside)
    try:
        yield folder
    finally:
        if moved:
            aside.rename(folder)


@pytest.mark.parametrize(("max_duration", "press"), [(10.0, True), (2.0, False)])
async def test_a_voicemail_is_recorded_until_the_caller_presses_pound_or_time_runs_out(
    line: Line, asterisk: Running, max_duration: float, press: bool
) -> None:
    with recording_folder(asterisk, present=True):
        await leave_a_voicemail(line, asterisk, max_duration, press)


async def leave_a_voicemail(line: Line, asterisk: Running, max_duration: float, press: bool) -> None:
    call = await line.call(voicemail_flow(max_duration))
    started, _ = await line.hotline.events.arrival(is_event(call.hotline_leg, RecordingStarted))
    # the caller speaks: a 2 s message and then `#`, or on and on; ARI sends the key after the prompt
    await line.caller.client.play(call.caller_leg, [f"sound:{WEASELS if press else MONKEYS}"])
    if press:
        await call.press("#")
    stored = await call.stored_until("voicemail_left", timeout=max_duration + 3.0)
    finished = time.monotonic()

    (left,) = of_type(stored, "voicemail_left")
    line.recordings.append(left["recording"])
    assert left["mailbox"] == "sales"
    assert left["recording"] == f"{call.hotline_leg}-1"
    if press:
        assert 1.0 <= left["duration"] < 4.0
        assert finished - started < 4.0
    else:
        assert 1.0 <= left["duration"] <= 3.0
        assert finished - started >= 1.8
    stored = await call.ended()
    assert journey(stored)[-3:] == [("voicemail_left", None), ("node_entered", "bye"), ("hung_up", "bye")]
    assert (await line.hotline.contact(call.hotline_leg)).outcome == "voicemail"
    # the message is on disk, where Asterisk keeps its stored recordings
    on_disk = asterisk.root / RECORDINGS / f"{left['recording']}.wav"
    assert on_disk.stat().st_size > 44  # more than a WAV header
    kept = await line.hotline.ari.get(f"/recordings/stored/{left['recording']}")
    assert kept["format"] == "wav"


async def test_a_recording_asterisk_refuses_does_not_leave_the_caller_in_silence(
    line: Line, asterisk: Running
) -> None:
    with recording_folder(asterisk, present=False):
        call = await line.call(voicemail_flow(10.0))
        stored = await call.ended()
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "leave"),
        ("voicemail_left", None),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    assert of_type(stored, "voicemail_left")[0]["duration"] == 0.0
    assert call.media() == [f"sound:{BEEP}", "sound:goodbye"]
