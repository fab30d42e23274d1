"""Key presses as RTP: a pcap file that SIPp's `play_pcap_audio` sends into a call, so a real SIP call
presses keys the way a phone does (RFC 4733, formerly RFC 2833: `telephone-event` packets).

One pcap carries the whole digit string. Debian's SIPp ships one pcap per digit, all with the same RTP
timestamp, so Asterisk takes every digit after the first for a retransmission of it and drops it: here
each digit gets a fresh timestamp, sequence numbers run on, and PCMU silence fills the gaps.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: RFC 4733 event codes of the keys.
EVENTS: dict[str, int] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
#: The `telephone-event` payload type a scenario's SDP offers (`a=rtpmap:101 telephone-event/8000`).
TELEPHONE_EVENT = 101
PCMU = 0
FRAME_MS = 20
SAMPLES_PER_FRAME = 160  # 8 kHz
VOLUME = 10  # dBm0 below the reference, as phones send
END_PACKETS = 3  # the end of an event is sent three times, in case one is lost

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet frames
_LOOPBACK = bytes([127, 0, 0, 1])
_PORT = 10000


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(payload: bytes, at_us: int) -> bytes:
    """One captured Ethernet/IPv4/UDP packet; SIPp sends the UDP payload to the call's media address."""
    udp = struct.pack("!HHHH", _PORT, _PORT, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, _LOOPBACK, _LOOPBACK)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    packet = b"\x00" * 12 + b"\x08\x00" + ip + udp
    return struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000, len(packet), len(packet)) + packet


def dtmf_pcap(
    digits: str,
    *,
    payload_type: int = TELEPHONE_EVENT,
    tone_ms: int = 160,
    gap_ms: int = 240,
    lead_ms: int = 100,
) -> bytes:
    """The pcap bytes pressing `digits` (0-9, *, #, A-D): `lead_ms` of silence, then each key held for
    `tone_ms` with `gap_ms` of silence after it."""
    unknown = sorted({d for d in digits.upper() if d not in EVENTS})
    if unknown:
        raise ValueError(f"cannot press {', '.join(unknown)}: keys are 0-9, *, #, A-D")
    if tone_ms < FRAME_MS or gap_ms < 0 or lead_ms < 0:
        raise ValueError(f"a key is held at least {FRAME_MS} ms, and silences are not negative")
    out = [_PCAP_HEADER]
    ssrc, sequence, timestamp, at_us = 0x5EED1234, 1000, 8000, 0

    def rtp(payload_type: int, marker: bool, payload: bytes) -> bytes:
        nonlocal sequence
        sequence = (sequence + 1) & 0xFFFF
        first = (0x80 if marker else 0) | payload_type
        return struct.pack("!BBHII", 0x80, first, sequence, timestamp & 0xFFFFFFFF, ssrc) + payload

    def silence(ms: int) -> None:
        nonlocal timestamp, at_us
        for _ in range(ms // FRAME_MS):
            out.append(_frame(rtp(PCMU, False, b"\xff" * SAMPLES_PER_FRAME), at_us))
            timestamp += SAMPLES_PER_FRAME
            at_us += FRAME_MS * 1000

    silence(lead_ms)
    for digit in digits.upper():
        event = EVENTS[digit]
        frames = tone_ms // FRAME_MS
        # the packets of one key share its timestamp; their duration grows until the end bit is set
        for i in range(1, frames + 1):
            payload = struct.pack("!BBH", event, VOLUME, SAMPLES_PER_FRAME * i)
            out.append(_frame(rtp(payload_type, i == 1, payload), at_us))
            at_us += FRAME_MS * 1000
        end = struct.pack("!BBH", event, 0x80 | VOLUME, SAMPLES_PER_FRAME * frames)
        for _ in range(END_PACKETS):
            out.append(_frame(rtp(payload_type, False, end), at_us))
        timestamp += SAMPLES_PER_FRAME * frames
        at_us += FRAME_MS * 1000
        silence(gap_ms)
    return b"".join(out)


def write_dtmf_pcap(path: Path, digits: str, **options: int) -> Path:
    """Write `dtmf_pcap(digits, **options)` to `path` (for SIPp's `-key dtmf_pcap PATH`)."""
    path.write_bytes(dtmf_pcap(digits, **options))
    return path
