"""The ARI client against the real Asterisk. The test plays the caller through a second ARI app
(`testcaller`) that originates `Local/100@hotline`: its `;2` half runs the dialplan into Stasis(hotline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from hotline.asterisk.ari import AriClient, backoff_delay
from hotline.asterisk.errors import AriNotFound, AriUnauthorized, AriUnavailable
from hotline.asterisk.events import (
    SERVICE_EVENTS,
    ApplicationReplaced,
    ChannelDtmfReceived,
    ChannelStateChange,
    Dial,
    Other,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    parse_event,
)
from hotline.asterisk.sandbox import ARI_APP, DIALPLAN_DIR, Running, Sandbox
from support.harness import HOTLINE_NUMBER, Caller, Events, ari_client, is_event, new_id


@dataclass
class Line:
    """The two ARI apps of a test: the hotline and the caller."""

    hotline: AriClient
    caller: Caller
    calls: Events

    async def call(self) -> tuple[str, str]:
        """Dial the hotline; returns (the caller's leg, the hotline's leg)."""
        return await self.caller.call(HOTLINE_NUMBER)


@pytest.fixture
async def line(asterisk: Running) -> AsyncIterator[Line]:
    hotline, caller = ari_client(asterisk, ARI_APP), Caller(asterisk)
    result = Line(hotline, caller, Events())
    hotline.start(result.calls)
    caller.start()
    try:
        await asyncio.gather(hotline.wait_connected(5), caller.wait_connected(5))
        yield result
    finally:
        await caller.hang_up_all()
        await hotline.close()
        await caller.close()


def test_events_belong_to_the_channel_they_name() -> None:
    start = parse_event({"type": "StasisStart", "channel": {"id": "c1"}, "args": ["agent", "x"]})
    assert isinstance(start, StasisStart) and start.channel_id == "c1" and start.args == ("agent", "x")
    finished = parse_event({"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "channel:c2"}})
    assert isinstance(finished, PlaybackFinished) and finished.channel_id == "c2"
    recorded = parse_event(
        {"type": "RecordingFinished", "recording": {"name": "r", "target_uri": "channel:c3"}}
    )
    assert isinstance(recorded, RecordingFinished) and recorded.channel_id == "c3"
    on_bridge = parse_event({"type": "PlaybackStarted", "playback": {"id": "p", "target_uri": "bridge:b1"}})
    assert isinstance(on_bridge, PlaybackStarted) and on_bridge.channel_id is None
    dial = parse_event({"type": "Dial", "peer": {"id": "c4"}, "dialstatus": "BUSY"})
    assert isinstance(dial, Dial) and (dial.channel_id, dial.status) == ("c4", "BUSY")
    assert isinstance(parse_event({"type": "ApplicationReplaced", "application": "a"}), ApplicationReplaced)


def test_odd_events_become_other_without_raising() -> None:
    for raw in (
        {},
        {"type": "StasisStart"},
        {"type": "StasisStart", "channel": {"id": 5}},
        {"type": "PlaybackFinished", "playback": "x"},
        {"type": "ChannelDtmfReceived", "channel": {"id": "c"}},
        {"type": "Dial", "peer": None},
        {"type": "BridgeCreated", "bridge": {"id": "b"}},
    ):
        assert isinstance(parse_event(raw), Other), raw
    destroyed = parse_event({"type": "ChannelDestroyed", "channel": {"id": "c"}, "cause": "17"})
    assert destroyed.channel_id == "c" and getattr(destroyed, "cause", 0) is None


def test_reconnects_back_off_up_to_a_cap_with_jitter() -> None:
    delays = [[backoff_delay(attempt, 0.5, 30.0) for attempt in range(12)] for _ in range(20)]
    for run in delays:
        for attempt, delay in enumerate(run):
            ceiling = min(30.0, 0.5 * 2**attempt)
            assert ceiling / 2 <= delay <= ceiling
    assert len({run[5] for run in delays}) > 1
    assert backoff_delay(10_000, 0.5, 30.0) <= 30.0


async def test_ping(asterisk: Running) -> None:
    ari = ari_client(asterisk, ARI_APP)
    try:
        pong = await ari.ping()
    finally:
        await ari.close()
    assert pong["ping"] == "pong"
    assert len(pong["asterisk_id"]) == 17


async def test_errors_say_what_asterisk_said(asterisk: Running) -> None:
    ari = ari_client(asterisk, ARI_APP)
    missing = new_id()
    try:
        with pytest.raises(AriNotFound) as not_found:
            await ari.answer(missing)
    finally:
        await ari.close()
    assert (not_found.value.method, not_found.value.path) == ("POST", f"/channels/{missing}/answer")
    assert (not_found.value.status, not_found.value.message) == (404, "Channel not found")
    assert str(not_found.value).startswith(
        f"ARI POST /channels/{missing}/answer: HTTP 404: Channel not found;"
    )

    intruder = ari_client(asterisk, ARI_APP, password="wrong")
    try:
        with pytest.raises(AriUnauthorized) as unauthorized:
            await intruder.ping()
    finally:
        await intruder.close()
    assert unauthorized.value.status == 401
    assert "check the ARI user and password" in str(unauthorized.value)

    nowhere = ari_client(asterisk, ARI_APP, url="http://127.0.0.1:1/ari")
    try:
        with pytest.raises(AriUnavailable) as unavailable:
            await nowhere.ping()
    finally:
        await nowhere.close()
    assert unavailable.value.status is None
    assert "is Asterisk running" in str(unavailable.value)


async def test_a_call_is_answered_plays_a_prompt_and_hears_digits(line: Line) -> None:
    line.calls.fail_on = (PlaybackStarted,)  # a failing handler must not stop later events
    caller_leg, hotline_leg = await line.call()

    start = await line.calls.wait_for(is_event(hotline_leg, StasisStart))
    assert isinstance(start, StasisStart) and start.channel.in_app(ARI_APP)
    assert start.channel.exten == "100"
    assert [c.id for c in await line.hotline.stasis_channels()] == [hotline_leg]
    assert await line.hotline.application_channels() == [hotline_leg]
    await line.hotline.answer(hotline_leg)
    await line.caller.events.wait_for(is_event(caller_leg, StasisStart))

    playback_id = new_id()
    playback = await line.hotline.play(hotline_leg, ["sound:beep"], lang="en", playback_id=playback_id)
    assert (playback["id"], playback["target_uri"]) == (playback_id, f"channel:{hotline_leg}")
    finished = await line.calls.wait_for(is_event(hotline_leg, PlaybackFinished))
    assert isinstance(finished, PlaybackFinished) and finished.playback.id == playback_id

    await line.hotline.set_variable(hotline_leg, "FLOW", "sales")
    assert await line.hotline.get_variable(hotline_leg, "FLOW") == "sales"

    await line.caller.press(caller_leg, "12#")
    await line.calls.wait_for(lambda e: isinstance(e, ChannelDtmfReceived) and e.digit == "#")
    digits = [e.digit for e in line.calls.of(hotline_leg) if isinstance(e, ChannelDtmfReceived)]
    assert digits == ["1", "2", "#"]

    await line.hotline.hangup(hotline_leg)
    await line.calls.wait_for(is_event(hotline_leg, StasisEnd))
    types = [type(e) for e in line.calls.of(hotline_leg)]
    assert types.index(StasisStart) < types.index(PlaybackStarted) < types.index(PlaybackFinished)
    assert types.index(PlaybackFinished) < types.index(ChannelDtmfReceived)
    for _ in range(50):
        if line.hotline.channel_workers == 0:
            break
        await asyncio.sleep(0.02)
    assert line.hotline.channel_workers == 0


async def test_a_slow_call_does_not_hold_up_another(line: Line) -> None:
    slow_caller, slow_leg = new_id(), new_id()
    line.calls.slow_channels = frozenset({slow_leg})
    await line.caller.call(HOTLINE_NUMBER, legs=(slow_caller, slow_leg), formats=None)
    quick_caller, quick_leg = await line.call()
    began = time.monotonic()

    await line.calls.wait_for(is_event(quick_leg, StasisStart))
    await line.hotline.answer(quick_leg)
    await line.hotline.answer(slow_leg)
    await line.caller.events.wait_for(is_event(quick_caller, StasisStart))
    await line.caller.press(quick_caller, "5")
    when, _ = await line.calls.arrival(is_event(quick_leg, ChannelDtmfReceived))
    assert when - began < 1.9
    assert line.calls.of(slow_leg) == []  # still in its first event

    await line.calls.wait_for(is_event(slow_leg, ChannelStateChange), timeout=7)
    slow = line.calls.of(slow_leg)
    assert [type(e) for e in slow[:2]] == [StasisStart, ChannelStateChange]
    stamps = [e.timestamp for e in slow]
    assert all(stamps)
    assert stamps == sorted(stamps)


async def test_another_client_picks_up_calls_left_in_the_app(asterisk: Running, line: Line) -> None:
    _, hotline_leg = await line.call()
    await line.calls.wait_for(is_event(hotline_leg, StasisStart))
    await line.hotline.close()

    found: list[list[str]] = []

    async def adopt() -> None:
        found.append([c.id for c in await successor.stasis_channels()])

    successor = ari_client(asterisk, ARI_APP)
    successor.start(Events(), on_connected=adopt)
    try:
        for _ in range(100):
            if found:
                break
            await asyncio.sleep(0.02)
        assert found == [[hotline_leg]]
    finally:
        await successor.close()


async def test_the_client_comes_back_after_asterisk_restarts(asterisk: Running) -> None:
    connects: list[float] = []

    async def on_connected() -> None:
        connects.append(time.monotonic())

    calls = Events()
    hotline, caller = ari_client(asterisk, ARI_APP), Caller(asterisk)
    hotline.start(calls, on_connected=on_connected)
    caller.start()
    try:
        await asyncio.gather(hotline.wait_connected(5), caller.wait_connected(5))
        await asyncio.to_thread(Sandbox(asterisk.root).start, DIALPLAN_DIR, asterisk.values)
        restarted = time.monotonic()
        await asyncio.gather(hotline.wait_connected(5), caller.wait_connected(5))
        for _ in range(100):
            if len(connects) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(connects) == 2 and hotline.connections == 2
        assert connects[1] - restarted < 3.0

        _, hotline_leg = await caller.call(HOTLINE_NUMBER, formats=None)
        start = await calls.wait_for(is_event(hotline_leg, StasisStart))
        assert start.channel_id == hotline_leg
    finally:
        await caller.hang_up_all()
        await hotline.close()
        await caller.close()


async def test_requests_go_over_the_event_socket_and_the_filter_keeps_their_answers(
    asterisk: Running,
) -> None:
    filtered = AriClient(
        asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, "filtered", events=SERVICE_EVENTS
    )
    got = Events()
    filtered.start(got)
    try:
        await filtered.wait_connected(5)
        before = filtered.requests_over_socket
        app = await filtered.get("/applications/filtered")
        assert filtered.requests_over_socket == before + 1  # answered on the socket, not over HTTP
        allowed = {kind["type"] for kind in app["events_allowed"]}
        assert allowed == {*SERVICE_EVENTS, "RESTResponse"}
        # a call into the filtered app: its StasisStart comes, the variables and dialplan steps not
        leg = new_id()
        await filtered.originate("Local/answer@hotline-test", "filtered", leg)
        await got.wait_for(is_event(leg, StasisStart), 5)
        with pytest.raises(AriNotFound):  # errors come back over the socket as over HTTP
            await filtered.answer(new_id())
        await filtered.hangup(leg)
        await got.wait_for(is_event(leg, StasisEnd), 5)
        assert {type(e).__name__ for _, e in got.got} <= {
            "StasisStart",
            "StasisEnd",
            "ChannelHangupRequest",
            "ChannelDestroyed",
            "Dial",
        }
    finally:
        await filtered.close()


async def test_without_the_socket_requests_go_over_http(asterisk: Running) -> None:
    plain = AriClient(
        asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, "plain", rest_over_socket=False
    )
    plain.start(Events())
    try:
        await plain.wait_connected(5)
        assert (await plain.ping())["ping"] == "pong"
        assert plain.requests_over_socket == 0
    finally:
        await plain.close()
