"""The FastAGI server's protocol on plain bytes, and the server over loopback with a scripted Asterisk."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hotline.asterisk.fastagi import (
    AgiError,
    AgiHeaderError,
    AgiLimits,
    AgiResponse,
    FastAgiServer,
    command_line,
    media_command,
    parse_header,
    parse_response,
    quote,
    response_done,
)
from ivr.loader import load_flowset
from support.agi import HEADER


def test_the_header_is_read_as_bytes_and_a_foreign_caller_name_survives() -> None:
    environment = parse_header(HEADER)
    assert environment["agi_network_script"] == "hotline"
    assert environment["agi_callerid"] == "48221234567"
    assert environment["agi_calleridname"] == "Zo\ufffd Ma\ufffdecka"
    assert environment["agi_request"] == "agi://127.0.0.1:4573/hotline"
    assert environment["agi_arg_1"] == ""
    assert parse_header([b"agi_calleridname: Zo\xc5\xbc\r\n"]) == {"agi_calleridname": "Zo\u017c"}


@pytest.mark.parametrize(
    "lines",
    [
        [b"GET / HTTP/1.1", b"Host: example"],
        [b"agi_network yes"],
        [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],  # a TLS hello
        [b"AGI_CALLERID: 1"],
        [],
    ],
)
def test_garbage_is_no_header(lines: list[bytes]) -> None:
    with pytest.raises(AgiHeaderError):
        parse_header(lines)


def test_answers_with_result_data_and_fields() -> None:
    assert parse_response([b"200 result=0 (timeout) endtime=52000"]) == AgiResponse(
        200, 0, "timeout", {"endtime": "52000"}, "result=0 (timeout) endtime=52000"
    )
    digit = parse_response([b"200 result=49 endpos=10240"])
    assert (digit.result, digit.data, digit.fields) == (49, "", {"endpos": "10240"})
    value = parse_response([b"200 result=1 (Zo\xbf (gold))"])
    assert (value.result, value.data) == (1, "Zo\ufffd (gold)")
    assert parse_response([b"200 result=-1"]).result == -1
    assert parse_response([b"200 result=1 (sales)\r\n"]).data == "sales"


def test_refusals_and_the_multi_line_usage() -> None:
    invalid = parse_response([b"510 Invalid or unknown command"])
    assert (invalid.code, invalid.result, invalid.text, invalid.ok) == (
        510,
        None,
        "Invalid or unknown command",
        False,
    )
    dead = parse_response([b"511 Command Not Permitted on a dead channel or intercepted channel"])
    assert (dead.code, dead.result) == (511, None)
    usage = [
        b"520-Invalid command syntax.  Proper usage follows:",
        b" Usage: STREAM FILE <filename> <escape_digits> [<sample offset>]",
        b"520 End of proper usage.",
    ]
    assert not response_done(usage[0])
    assert response_done(usage[2])
    parsed = parse_response(usage)
    assert parsed.code == 520 and parsed.result is None
    assert parsed.text.splitlines() == [
        "Invalid command syntax.  Proper usage follows:",
        " Usage: STREAM FILE <filename> <escape_digits> [<sample offset>]",
        "End of proper usage.",
    ]


@pytest.mark.parametrize("line", [b"", b"HTTP/1.1 200 OK", b"20 result=1"])
def test_a_line_that_is_no_answer_is_an_error(line: bytes) -> None:
    with pytest.raises(AgiError):
        parse_response([line])


def test_arguments_are_quoted_so_a_value_cannot_add_a_command() -> None:
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote("x\nHANGUP\r") == '"x HANGUP "'
    assert command_line("SET VARIABLE", quoted=("CUSTOMER_NAME", "Zoë")) == (
        'SET VARIABLE "CUSTOMER_NAME" "Zoë"\n'.encode()
    )
    assert command_line("WAIT FOR DIGIT", "5000") == b"WAIT FOR DIGIT 5000\n"


def test_media_becomes_stream_file_or_say() -> None:
    assert media_command("sound:hello", "0123456789*#") == b'STREAM FILE "hello" "0123456789*#"\n'
    assert media_command("sound:custom/en/welcome", "") == b'STREAM FILE "custom/en/welcome" ""\n'
    assert media_command("digits:123", "") == b'SAY DIGITS "123" ""\n'
    assert media_command("number:42", "1") == b'SAY NUMBER "42" "1"\n'
    assert media_command("characters:ab", "") == b'SAY ALPHA "ab" ""\n'
    assert media_command("recording:x", "") is None
    assert media_command("digits:", "") is None


# --- the server over loopback, Asterisk played by the test -------------------------------------------

HANDOFF = """
flow: handoff
start: queue
nodes:
  queue: {queue: {name: support}, overflow: operator}
  operator: {transfer: {extension: operator, timeout: 20}}
"""

FLOW = """
flow: agitest
start: welcome
nodes:
  welcome: {play: hello, next: menu}
  menu: {menu: vm-onefor, options: {"1": hangup-a, "2": hangup-b}, timeout: 5}
  hangup-a: {hangup: null}
  hangup-b: {hangup: null}
"""


@pytest.fixture
async def server() -> AsyncIterator[tuple[FastAgiServer, list[tuple[str, str, dict[str, Any]]]]]:
    recorded: list[tuple[str, str, dict[str, Any]]] = []

    async def record(call_id: str, event_type: str, data: dict[str, Any]) -> None:
        recorded.append((call_id, event_type, data))

    async def identify(phone: str) -> dict[str, str] | None:
        return {"CUSTOMER_ID": "c-7", "CUSTOMER_NAME": "Zoë"} if phone == "48221234567" else None

    agi = FastAgiServer(
        load_flowset({"agitest.yaml": FLOW, "handoff.yaml": HANDOFF}),
        port=0,
        record=record,
        identify=identify,
        limits=AgiLimits(header_seconds=0.5),
    )
    await agi.start()
    try:
        yield agi, recorded
    finally:
        await agi.close()


async def _connect(port: int, script: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = [line for line in HEADER if not line.startswith(b"agi_network_script")]
    writer.write(b"\n".join([*header, b"agi_network_script: " + script.encode(), b"", b""]))
    await writer.drain()
    return reader, writer


async def _expect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes, answer: bytes
) -> None:
    line = await asyncio.wait_for(reader.readline(), 2)
    assert line == command
    writer.write(answer + b"\n")
    await writer.drain()


Server = tuple[FastAgiServer, list[tuple[str, str, dict[str, Any]]]]


async def test_a_flow_runs_over_agi_with_a_key_pressed_during_the_menu(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "agitest")
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "hello" ""\n', b"200 result=0 endpos=8000")
    await _expect(
        reader, writer, b'STREAM FILE "vm-onefor" "0123456789*#ABCD"\n', b"200 result=0 endpos=8000"
    )
    await _expect(reader, writer, b"WAIT FOR DIGIT 5000\n", b"200 result=0 (timeout)")  # no key yet
    await _expect(
        reader, writer, b'STREAM FILE "vm-onefor" "0123456789*#ABCD"\n', b"200 result=0 endpos=8000"
    )
    line = await asyncio.wait_for(reader.readline(), 2)
    assert line.startswith(b"WAIT FOR DIGIT ")
    writer.write(b"200 result=50\n")  # "2"
    await _expect(reader, writer, b"HANGUP\n", b"HANGUP\n200 result=1")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # the server closes
    writer.close()
    types = [t for _, t, _ in recorded]
    assert types == [
        "call_started",
        "node_entered",
        "node_entered",
        "no_input",
        "option_chosen",
        "node_entered",
        "hung_up",
    ]
    assert {c for c, _, _ in recorded} == {"1700000000.12"}
    assert recorded[4][2] == {"node": "menu", "digits": "2", "target": "hangup-b"}


async def test_a_caller_hanging_up_mid_menu_is_abandoned(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "agitest")
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "hello" ""\n', b"HANGUP\n200 result=-1 endpos=100")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert [t for _, t, _ in recorded][-1] == "abandoned"
    assert recorded[-1][2]["node"] == "welcome"


async def test_an_unknown_flow_is_said_in_the_log_and_hung_up(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "nosuch")
    line = await asyncio.wait_for(reader.readline(), 2)
    assert line.startswith(b"VERBOSE \"hotline: no flow 'nosuch'")
    assert b"loaded flows: agitest, handoff" in line
    writer.write(b"200 result=1\n")
    await _expect(reader, writer, b"HANGUP\n", b"200 result=1")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert [(t, d.get("reason")) for _, t, d in recorded] == [
        ("call_started", None),
        (
            "flow_error",
            "no flow 'nosuch' for this AGI call (loaded flows: agitest, handoff); "
            "set FLOW to one of them, or map the number dialed to a flow",
        ),
        ("hung_up", "no_flow"),
    ]
    assert recorded[-1][2]["by"] == "service" and recorded[0][2]["caller"] == "48221234567"


async def test_identify_sets_the_customer_as_channel_variables(server: Server) -> None:
    agi, _ = server
    reader, writer = await _connect(agi.port, "identify")
    await _expect(reader, writer, b'SET VARIABLE "CUSTOMER_ID" "c-7"\n', b"200 result=1")
    await _expect(reader, writer, 'SET VARIABLE "CUSTOMER_NAME" "Zoë"\n'.encode(), b"200 result=1")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_health_checks_and_garbage_are_dropped_without_spinning(server: Server) -> None:
    agi, _ = server
    cpu_before = time.process_time()
    for _ in range(5):  # connect and close at once, like a TCP health check
        _, writer = await asyncio.open_connection("127.0.0.1", agi.port)
        writer.close()
    half = socket.create_connection(("127.0.0.1", agi.port))
    half.sendall(b"agi_network: yes\n")
    half.shutdown(socket.SHUT_WR)  # half-open: we stop sending but keep reading
    _, garbage = await asyncio.open_connection("127.0.0.1", agi.port)
    garbage.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _, long_line = await asyncio.open_connection("127.0.0.1", agi.port)
    long_line.write(b"agi_x: " + b"x" * 40000 + b"\n")
    _, silent = await asyncio.open_connection("127.0.0.1", agi.port)  # sends nothing: times out
    await asyncio.sleep(1.0)
    assert time.process_time() - cpu_before < 0.5
    assert agi.connections_dropped == 9

    began = time.monotonic()
    reader, writer = await _connect(agi.port, "identify")
    await _expect(reader, writer, b'SET VARIABLE "CUSTOMER_ID" "c-7"\n', b"200 result=1")
    assert time.monotonic() - began < 0.5
    for stream in (writer, garbage, long_line, silent):
        stream.close()
    half.close()


async def test_a_key_during_the_menu_prompt_barges_in(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "agitest")
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "hello" ""\n', b"200 result=0 endpos=8000")
    await _expect(reader, writer, b'STREAM FILE "vm-onefor" "0123456789*#ABCD"\n', b"200 result=49 endpos=10")
    await _expect(reader, writer, b"HANGUP\n", b"200 result=1")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    chosen = [data for _, t, data in recorded if t == "option_chosen"]
    assert chosen == [{"node": "menu", "digits": "1", "target": "hangup-a"}]


async def test_a_wait_answered_with_minus_one_is_the_caller_gone(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "agitest")
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "hello" ""\n', b"200 result=0 endpos=8000")
    await _expect(reader, writer, b'STREAM FILE "vm-onefor" "0123456789*#ABCD"\n', b"200 result=0 endpos=10")
    line = await asyncio.wait_for(reader.readline(), 2)
    assert line.startswith(b"WAIT FOR DIGIT ")
    writer.write(b"200 result=-1\n")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert recorded[-1][1:] == ("abandoned", {"node": "menu", "flow": "agitest", "where": "ivr"})


async def test_a_queue_overflows_and_a_transfer_goes_back_to_the_dialplan(server: Server) -> None:
    agi, recorded = server
    reader, writer = await _connect(agi.port, "handoff")
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'SET VARIABLE "TRANSFER_TIMEOUT" "20"\n', b"200 result=1")
    await _expect(reader, writer, b'SET CONTEXT "hotline-transfer"\n', b"200 result=0")
    await _expect(reader, writer, b'SET EXTENSION "operator"\n', b"200 result=0")
    await _expect(reader, writer, b"SET PRIORITY 1\n", b"200 result=0")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert [t for _, t, _ in recorded] == [
        "call_started",
        "node_entered",
        "queued",
        "queue_overflow",
        "node_entered",
        "transferred",
        "call_ended",  # the call went on in the dialplan: the hotline's part is over
    ]
    assert recorded[3][2] == {"queue": "support", "reason": "no routing for AGI calls"}
    assert recorded[-1][2] == {"by": "flow", "cause": "transferred"}


OFFER = """
flow: offer
start: offer
nodes:
  offer:
    callback: {queue: support, confirm: num-we-have, question: press-1, enter_number: enter-num,
               done: thanks, timeout: 5, retries: 0}
    failure: sorry
  sorry: {hangup: sorry}
"""


async def _confirm_own_number(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The number read back (the caller id, 48221234567), and 1 pressed to confirm it."""
    keys = b'"0123456789*#ABCD"'
    await _expect(reader, writer, b"ANSWER\n", b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "num-we-have" ' + keys + b"\n", b"200 result=0 endpos=800")
    await _expect(reader, writer, b'SAY DIGITS "48221234567" "0123456789*#ABCD"\n', b"200 result=0")
    await _expect(reader, writer, b'STREAM FILE "press-1" ' + keys + b"\n", b"200 result=0 endpos=800")
    await _expect(reader, writer, b"WAIT FOR DIGIT 5000\n", b"200 result=49")  # "1"


async def test_a_call_back_asked_for_over_agi_is_kept_before_the_caller_is_thanked() -> None:
    kept: list[tuple[str, str, str]] = []

    async def keep(call_id: str, action: Any) -> str:
        kept.append((call_id, action.queue, action.number))
        return "cb-1"

    agi = FastAgiServer(load_flowset({"offer.yaml": OFFER}), port=0, keep_callback=keep)
    async with agi:
        reader, writer = await _connect(agi.port, "offer")
        await _confirm_own_number(reader, writer)
        await _expect(reader, writer, b'STREAM FILE "thanks" ""\n', b"200 result=0 endpos=800")
        await _expect(reader, writer, b"HANGUP\n", b"200 result=1")
        writer.close()
    assert kept == [("1700000000.12", "support", "48221234567")]


async def test_a_call_back_nothing_keeps_is_not_thanked_for() -> None:
    agi = FastAgiServer(load_flowset({"offer.yaml": OFFER}), port=0)  # no keep_callback hook
    async with agi:
        reader, writer = await _connect(agi.port, "offer")
        await _confirm_own_number(reader, writer)
        # refused: no retries left, so the flow's failure node says sorry instead of thanks
        await _expect(reader, writer, b'STREAM FILE "sorry" ""\n', b"200 result=0 endpos=800")
        await _expect(reader, writer, b"HANGUP\n", b"200 result=1")
        writer.close()
