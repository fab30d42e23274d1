"""A real SIP call into the hotline: SIPp logs in as the `caller` endpoint (digest auth), calls 100 and
presses keys with RFC 4733 packets; the call reaches the hotline app as a `PJSIP/...` channel, the flow
follows the keys, and the contact's events land in the store."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.asterisk.errors import AriError, AriNotFound
from hotline.asterisk.events import AriEvent, ChannelDtmfReceived, StasisStart
from hotline.asterisk.sandbox import Running
from ivr.flowset import FlowSet
from ivr.model import Flow
from support.dtmf_pcap import dtmf_pcap, write_dtmf_pcap
from support.harness import Hotline
from support.paths import SIPP_SCENARIOS
from support.sipp import caller_argv

SCENARIO = SIPP_SCENARIOS / "caller_dtmf.xml"
#: How long SIPp may take for the whole call before the test gives up on it.
SIPP_TIMEOUT = 20.0

FLOW = FlowSet(
    {
        "main": Flow.model_validate(
            {
                "flow": "main",
                "start": "menu",
                "nodes": {
                    "menu": {
                        "menu": "beep",
                        "options": {"1": "account", "2": "bye"},
                        "timeout": 5,
                        "retries": 0,
                        "failure": "bye",
                    },
                    "account": {"collect": "account", "max_length": 6, "timeout": 5, "next": "thanks"},
                    "thanks": {"hangup": "goodbye"},
                    "bye": {"hangup": None},
                },
            }
        )
    }
)


def free_udp_ports(count: int) -> list[int]:
    """Even loopback UDP ports nobody uses now, each with its neighbour (RTP and RTCP)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port % 2 == 0 and port + 1 not in ports and port not in ports:
            ports.append(port)
    return ports


@pytest.fixture
async def hotline(asterisk: Running, tmp_path: Path) -> AsyncIterator[Hotline]:
    line = Hotline(asterisk, tmp_path, FLOW, {"100": "main"})
    try:
        await line.start()
        yield line
    finally:
        # a SIP call the flow did not end (the test failed half-way) is hung up here
        with contextlib.suppress(AriError):
            for channel in await line.ari.list_channels():
                if channel.name.startswith("PJSIP/caller-"):
                    with contextlib.suppress(AriNotFound):
                        await line.ari.hangup(channel.id)
        await line.stop()


async def run_sipp(asterisk: Running, digits: str, folder: Path) -> tuple[int, str]:
    """Place one SIPp call pressing `digits`; (SIPp's exit status, its error log)."""
    sipp = shutil.which("sipp")
    assert sipp is not None, "SIPp is not installed: apt-get install sip-tester (make bootstrap does it)"
    assert asterisk.sip_host is not None and asterisk.sip_port is not None
    pcap = write_dtmf_pcap(folder / "keys.pcap", digits)
    sip_port, media_port = free_udp_ports(2)
    errors = folder / "sipp-errors.log"
    target = f"{asterisk.sip_host}:{asterisk.sip_port}"
    password = asterisk.values["CALLER_PASSWORD"]
    process = await asyncio.create_subprocess_exec(
        *caller_argv(sipp, target, SCENARIO, password, pcap, (sip_port, media_port), errors, SIPP_TIMEOUT),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=folder,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), SIPP_TIMEOUT + 5.0)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    logged = errors.read_text(errors="replace") if errors.exists() else ""
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace") + logged


def pjsip_call(events: list[AriEvent]) -> str:
    started = [e for e in events if isinstance(e, StasisStart) and e.channel.name.startswith("PJSIP/")]
    assert len(started) == 1, f"one SIP call should reach the hotline app: {started}"
    return started[0].channel_id


async def test_a_sip_caller_pressing_keys_walks_the_flow(hotline: Hotline, tmp_path: Path) -> None:
    status, log = await run_sipp(hotline.asterisk, "142#", tmp_path)
    assert status == 0, f"SIPp failed ({status}): {log[-3000:]}"

    channel_id = pjsip_call([e for _, e in hotline.events.got])
    stored = await hotline.ended(channel_id)
    assert [(e.type, e.data.get("node")) for e in stored] == [
        ("call_started", None),
        ("node_entered", "menu"),
        ("option_chosen", "menu"),
        ("node_entered", "account"),
        ("input_collected", "account"),
        ("node_entered", "thanks"),
        ("hung_up", "thanks"),
    ]
    started = stored[0].data
    assert (started["dialed"], started["caller"]) == ("100", "caller")
    assert stored[2].data["digits"] == "1"
    assert stored[4].data["value"] == "42"
    # every key arrived once, in order: each carries its own RTP timestamp
    pressed = [e.digit for e in hotline.events.of(channel_id) if isinstance(e, ChannelDtmfReceived)]
    assert pressed == ["1", "4", "2", "#"]
    contact = await hotline.contact(channel_id)
    assert contact.ivr_path == ["menu", "account", "thanks"]


def test_the_pcap_gives_each_key_its_own_timestamp() -> None:
    """What Asterisk needs to take repeated keys as new presses, not retransmissions."""
    data = dtmf_pcap("11", tone_ms=40, gap_ms=20, lead_ms=0)
    packets, offset = [], 24
    while offset < len(data):
        length = int.from_bytes(data[offset + 8 : offset + 12], "little")
        packets.append(data[offset + 16 + 14 + 20 + 8 : offset + 16 + length])
        offset += 16 + length
    events = [
        (p[1] & 0x7F, int.from_bytes(p[4:8], "big"), p[12], p[13] & 0x80)
        for p in packets
        if p[1] & 0x7F == 101
    ]
    # per key: 2 packets while held, 3 end packets, all with the key's timestamp
    assert [(ts, key, end) for _, ts, key, end in events] == [
        *[(8000, 1, 0)] * 2,
        *[(8000, 1, 0x80)] * 3,
        *[(8000 + 320 + 160, 1, 0)] * 2,
        *[(8000 + 320 + 160, 1, 0x80)] * 3,
    ]
    with pytest.raises(ValueError, match="cannot press X"):
        dtmf_pcap("1X")
