"""Every way a FastAGI session can end, with Asterisk played by the test on a raw loopback socket
(`support.agi.FakeAsterisk`): each test counts the contacts the server recorded and their outcomes
against what the client did, and checks that the channel is told to hang up, never left waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from hotline.asterisk.fastagi import LINE_LIMIT, AgiLimits, FastAgiServer
from ivr.loader import load_flowset
from support.agi import CLOCK_FLOW, CLOSED_AT, FLOW, KEYS, OPEN_AT, Contacts, FakeAsterisk

CALL = "1700000000.12"  # the uniqueid in support.agi.HEADER
#: Short limits, so a client that stops answering is given up in a test's time (a prompt: 0.8 s).
FAST = AgiLimits(header_seconds=0.5, answer_seconds=0.3, prompt_seconds=0.5, stop_seconds=0.5)


@pytest.fixture
async def contacts() -> Contacts:
    return Contacts()


@pytest.fixture
async def agi(contacts: Contacts) -> AsyncIterator[FastAgiServer]:
    server = FastAgiServer(
        load_flowset({"agitest.yaml": FLOW, "clock.yaml": CLOCK_FLOW}),
        port=0,
        record=contacts.record,
        limits=FAST,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


# --- the conversation breaks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"\x16\x03\x01 garbage", "not an AGI answer: '\\x16\\x03\\x01 garbage', in answer to 'ANSWER'"),
        (b"HTTP/1.1 200 OK", "not an AGI answer: 'HTTP/1.1 200 OK'"),
        (b"200 result=0 " + b"x" * (LINE_LIMIT + 10), f"longer than {LINE_LIMIT} bytes"),
    ],
)
async def test_garbage_after_a_valid_header_closes_the_contact_as_a_fault(
    agi: FastAgiServer, contacts: Contacts, answer: bytes, says: str
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.expect(b"ANSWER", answer)
    assert await asterisk.closed() == b"HANGUP\n"  # the channel is told to hang up; no answer awaited
    asterisk.close()
    await contacts.wait_closed(CALL)
    assert contacts.types(CALL) == ["call_started", "node_entered", "flow_error", "hung_up"]
    assert says in contacts.data(CALL, "flow_error")[0]["reason"]
    assert contacts.ends() == {CALL: ("ended_in_ivr", "service", "agi_error")}
    assert contacts.refused == []


async def test_garbage_mid_call_names_the_command_it_answered(agi: FastAgiServer, contacts: Contacts) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.answer_call()
    await asterisk.expect(b'STREAM FILE "vm-onefor" ' + KEYS, b"GET / HTTP/1.1")
    assert await asterisk.closed() == b"HANGUP\n"
    asterisk.close()
    await contacts.wait_closed(CALL)
    error = contacts.data(CALL, "flow_error")
    assert error == [
        {
            "node": "menu",
            "flow": "agitest",
            "reason": "not an AGI answer: 'GET / HTTP/1.1', in answer to "
            '\'STREAM FILE "vm-onefor" "0123456789*#ABCD"\'',
        }
    ]
    assert contacts.ends() == {CALL: ("ended_in_ivr", "service", "agi_error")}


async def test_a_socket_closed_mid_call_without_a_hang_up_notice_is_a_fault(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.reach_menu()
    asterisk.close()  # no HANGUP line first: Asterisk went away, or the network did
    await contacts.wait_closed(CALL)
    assert contacts.types(CALL)[-2:] == ["flow_error", "hung_up"]
    reason = contacts.data(CALL, "flow_error")[0]["reason"]
    assert reason.startswith("Asterisk closed the AGI connection during 'WAIT FOR DIGIT ")
    assert reason.endswith("without a hang-up notice")
    assert contacts.ends() == {CALL: ("ended_in_ivr", "service", "agi_error")}


async def test_a_socket_closed_after_the_hang_up_notice_is_the_caller_abandoning(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.reach_menu()
    await asterisk.answer(b"HANGUP")
    asterisk.close()
    await contacts.wait_closed(CALL)
    assert contacts.types(CALL)[-1] == "abandoned"
    assert contacts.ends() == {CALL: ("abandoned_ivr", None, None)}


async def test_a_caller_gone_before_the_answer_still_has_a_closed_contact(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.expect(b"ANSWER", b"HANGUP", b"200 result=-1")
    assert await asterisk.closed() == b""
    asterisk.close()
    await contacts.wait_closed(CALL)
    assert contacts.types(CALL) == ["call_started", "node_entered", "abandoned"]
    assert contacts.ends() == {CALL: ("abandoned_ivr", None, None)}


@pytest.mark.parametrize("how", ["silent", "trickling"])
async def test_a_client_that_stops_answering_is_hung_up_within_the_limit(
    agi: FastAgiServer, contacts: Contacts, how: str
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.answer_call()
    assert await asterisk.command() == b'STREAM FILE "vm-onefor" ' + KEYS + b"\n"
    began = time.monotonic()
    if how == "trickling":  # an answer one byte at a time: slower than the prompt may take
        with contextlib.suppress(ConnectionError):  # until the server gives up on it
            for byte in b"200 result=0 endpos=8000":
                asterisk.writer.write(bytes([byte]))
                await asterisk.writer.drain()
                await asyncio.sleep(0.05)
    await contacts.wait_closed(CALL, timeout=3)
    waited = time.monotonic() - began
    assert FAST.prompt_seconds + FAST.answer_seconds <= waited < 2.5
    if how == "silent":  # a trickling client's connection is reset: it sent what was not read
        assert await asterisk.closed() == b"HANGUP\n"
    asterisk.close()
    assert contacts.data(CALL, "flow_error")[0]["reason"] == (
        'Asterisk did not answer \'STREAM FILE "vm-onefor" "0123456789*#ABCD"\' within 0.8 s'
    )
    assert contacts.ends() == {CALL: ("ended_in_ivr", "service", "agi_error")}


async def test_a_wait_for_a_key_is_given_its_own_time_before_it_counts_as_silence(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.reach_menu()  # WAIT FOR DIGIT 5000: 5 s are the caller's, not a fault
    await asyncio.sleep(1.0)
    assert contacts.ends() == {CALL: (None, None, None)}
    await asterisk.answer(b"200 result=49")  # "1"
    await asterisk.expect(b"HANGUP", b"200 result=1")
    asterisk.close()
    await contacts.wait_closed(CALL)
    assert contacts.ends() == {CALL: ("ended_in_ivr", "flow", None)}


# --- what a client sends that the store would refuse ----------------------------------------------------


async def test_nul_bytes_and_a_bad_uniqueid_do_not_cost_the_contact(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    asterisk = await FakeAsterisk.connect(
        agi.port, "agitest", agi_uniqueid=b"x" * 200, agi_callerid=b"4822\x001234567"
    )
    await asterisk.answer_call()
    await asterisk.expect(b'STREAM FILE "vm-onefor" ' + KEYS, b"200 result=50 endpos=10")  # "2"
    await asterisk.expect(b"HANGUP", b"200 result=1")
    asterisk.close()
    [call] = contacts.calls()
    await contacts.wait_closed(call)
    assert call.startswith("agi-") and len(call) == 36  # a fresh id: the store keeps 128 characters
    assert contacts.data(call, "call_started")[0]["caller"] == "4822\ufffd1234567"
    assert contacts.refused == []
    assert contacts.ends() == {call: ("ended_in_ivr", "flow", None)}


async def test_a_store_that_refuses_an_event_does_not_stop_the_call() -> None:
    kept: list[str] = []

    def record(call_id: str, event_type: str, data: dict[str, object]) -> None:
        if event_type == "node_entered":
            raise RuntimeError("the store refused it")
        kept.append(event_type)

    async with FastAgiServer(load_flowset({"agitest.yaml": FLOW}), port=0, record=record) as agi:
        asterisk = await FakeAsterisk.connect(agi.port, "agitest")
        await asterisk.answer_call()
        await asterisk.expect(b'STREAM FILE "vm-onefor" ' + KEYS, b"200 result=49 endpos=10")
        await asterisk.expect(b"HANGUP", b"200 result=1")
        assert await asterisk.closed() == b""
        asterisk.close()
    assert kept == ["call_started", "option_chosen", "hung_up"]


async def test_a_customer_lookup_that_hangs_does_not_hold_the_channel() -> None:
    async def identify(phone: str) -> dict[str, str] | None:
        await asyncio.sleep(3600)  # a customer store that never answers
        return None

    limits = AgiLimits(answer_seconds=0.3)
    async with FastAgiServer(
        load_flowset({"agitest.yaml": FLOW}), port=0, identify=identify, limits=limits
    ) as agi:
        asterisk = await FakeAsterisk.connect(agi.port, "identify")
        began = time.monotonic()
        await asterisk.expect(
            b'VERBOSE "hotline: customer lookup for 48221234567 took too long; no customer data" 1',
            b"200 result=1",
        )
        assert time.monotonic() - began < 1.0
        assert await asterisk.closed() == b""  # back to the dialplan
        asterisk.close()


# --- many sessions -----------------------------------------------------------------------------------


async def test_calls_beyond_the_limit_are_refused_with_a_closed_contact(contacts: Contacts) -> None:
    limits = AgiLimits(calls=2, header_seconds=0.5)
    async with FastAgiServer(
        load_flowset({"agitest.yaml": FLOW}), port=0, record=contacts.record, limits=limits
    ) as agi:
        running = [
            await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=f"1.{n}".encode()) for n in (1, 2)
        ]
        for asterisk in running:
            await asterisk.reach_menu()
        assert agi.calls == 2
        refused = await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=b"1.3")
        line = await refused.command()
        assert line.startswith(b'VERBOSE "hotline: 2 AGI calls are running, the most this service takes"')
        await refused.answer(b"200 result=1")
        await refused.expect(b"HANGUP", b"200 result=1")
        assert await refused.closed() == b""
        refused.close()

        # connections that never send their environment take no more than the limit either
        silent = [await asyncio.open_connection("127.0.0.1", agi.port) for _ in range(2)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
        assert await asyncio.wait_for(reader.read(), 0.3) == b""  # closed at once, not after 0.5 s
        writer.close()
        for _, silent_writer in silent:
            silent_writer.close()

        for asterisk in running:
            await asterisk.answer(b"200 result=49")
            await asterisk.expect(b"HANGUP", b"200 result=1")
            asterisk.close()
        for n in (1, 2):
            await contacts.wait_closed(f"1.{n}")
        taken = await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=b"1.4")  # room again
        await taken.expect(b"ANSWER", b"200 result=0")
        taken.close()
        await contacts.wait_closed("1.4")
    assert contacts.ends() == {
        "1.1": ("ended_in_ivr", "flow", None),
        "1.2": ("ended_in_ivr", "flow", None),
        "1.3": ("ended_in_ivr", "service", "service_busy"),
        "1.4": ("ended_in_ivr", "service", "agi_error"),
    }
    assert contacts.types("1.3") == ["call_started", "hung_up"]
    assert (agi.calls_served, agi.calls_refused, agi.connections_dropped) == (3, 1, 3)


async def test_a_hundred_sessions_at_once_each_close_their_own_contact(
    agi: FastAgiServer, contacts: Contacts
) -> None:
    async def one(n: int) -> None:
        asterisk = await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=f"2.{n}".encode())
        await asterisk.reach_menu()
        if n % 3 == 0:
            await asterisk.answer(b"200 result=50")
            await asterisk.expect(b"HANGUP", b"200 result=1")
        elif n % 3 == 1:
            await asterisk.answer(b"HANGUP", b"200 result=-1")
        else:
            await asterisk.answer(b"?")
        await asterisk.closed()
        asterisk.close()

    await asyncio.gather(*(one(n) for n in range(100)))
    for n in range(100):
        await contacts.wait_closed(f"2.{n}")
    ends = contacts.ends()
    assert len(ends) == 100
    expected = [
        ("ended_in_ivr", "flow", None),
        ("abandoned_ivr", None, None),
        ("ended_in_ivr", "service", "agi_error"),
    ]
    assert all(ends[f"2.{n}"] == expected[n % 3] for n in range(100))
    assert agi.calls == 0


# --- the service stops --------------------------------------------------------------------------------


async def test_drain_lets_calls_end_refuses_new_ones_and_hangs_up_the_rest(contacts: Contacts) -> None:
    limits = AgiLimits(stop_seconds=1.5)
    agi = FastAgiServer(load_flowset({"agitest.yaml": FLOW}), port=0, record=contacts.record, limits=limits)
    await agi.start()
    calls = {}
    for name in ("ends", "next", "silent"):
        calls[name] = await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=name.encode())
        await calls[name].reach_menu()

    began = time.monotonic()
    drained = asyncio.create_task(agi.drain(0.5))
    await asyncio.sleep(0.1)
    assert not agi.taking_calls
    # a call in progress ends on its own during the drain: the flow's own end
    await calls["ends"].answer(b"200 result=49")
    await calls["ends"].expect(b"HANGUP", b"200 result=1")
    # a new call is not run: its contact says why, Asterisk's log too, and the channel is hung up
    late = await FakeAsterisk.connect(agi.port, "agitest", agi_uniqueid=b"late")
    await late.expect(b'VERBOSE "hotline: the service is stopping; call again" 1', b"200 result=1")
    await late.expect(b"HANGUP", b"200 result=1")
    identify = await FakeAsterisk.connect(agi.port, "identify", agi_uniqueid=b"who")
    await identify.expect(b'VERBOSE "hotline: the service is stopping; no customer data" 1', b"200 result=1")

    # past the drain time: a call that reaches its next command is hung up there
    await asyncio.sleep(0.8 - (time.monotonic() - began))
    await calls["next"].answer(b"200 result=0 (timeout)")
    await calls["next"].expect(b"HANGUP", b"200 result=1")
    # one that does not within stop_seconds is cut: HANGUP is left for after its command
    await drained
    assert 0.5 + limits.stop_seconds <= time.monotonic() - began < 0.5 + limits.stop_seconds + 1.0
    assert await calls["silent"].closed() == b"HANGUP\n"
    await agi.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", agi.port)
    for asterisk in (*calls.values(), late, identify):
        asterisk.close()

    assert contacts.ends() == {
        "ends": ("ended_in_ivr", "flow", None),
        "next": ("ended_in_ivr", "service", "service_stopping"),
        "silent": ("ended_in_ivr", "service", "service_stopping"),
        "late": ("ended_in_ivr", "service", "service_stopping"),
    }
    assert contacts.types("late") == ["call_started", "hung_up"]
    assert contacts.types("next")[-2:] == ["no_input", "hung_up"]  # the wait's end is still counted
    assert (agi.calls_served, agi.calls_refused) == (3, 1)


async def test_close_without_a_drain_closes_every_contact(contacts: Contacts) -> None:
    limits = AgiLimits(stop_seconds=0.3)
    agi = FastAgiServer(load_flowset({"agitest.yaml": FLOW}), port=0, record=contacts.record, limits=limits)
    await agi.start()
    asterisk = await FakeAsterisk.connect(agi.port, "agitest")
    await asterisk.reach_menu()
    _, header_only = await asyncio.open_connection("127.0.0.1", agi.port)
    header_only.write(b"agi_network: yes\n")
    await agi.close()
    assert await asterisk.closed() == b"HANGUP\n"
    asterisk.close()
    header_only.close()
    assert contacts.ends() == {CALL: ("ended_in_ivr", "service", "service_stopping")}


# --- the clock ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "target"), [(OPEN_AT, "open"), (CLOSED_AT, "closed")])
async def test_every_call_reads_the_servers_clock(contacts: Contacts, at: datetime, target: str) -> None:
    flows = load_flowset({"clock.yaml": CLOCK_FLOW})
    async with FastAgiServer(flows, port=0, record=contacts.record, clock=lambda: at) as agi:
        asterisk = await FakeAsterisk.connect(agi.port, "clock")
        await asterisk.expect(b"ANSWER", b"200 result=0")
        await asterisk.expect(b"HANGUP", b"200 result=1")
        asterisk.close()
        await contacts.wait_closed(CALL)
    assert contacts.data(CALL, "branch_taken") == [
        {"node": "check", "case": 0 if target == "open" else "else", "target": target}
    ]
