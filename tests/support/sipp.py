"""The SIPp command line of a test caller: it dials 100 through digest auth and presses keys as RFC 4733
RTP packets from a pcap (`support.dtmf_pcap`), all on loopback."""

from __future__ import annotations

from pathlib import Path


def caller_argv(
    sipp: str,
    target: str,
    scenario: Path,
    password: str,
    pcap: Path,
    ports: tuple[int, int],
    errors: Path,
    timeout: float,
) -> list[str]:
    """SIPp calling `target` (host:port) as user `caller` with `password`, from loopback `ports`
    (SIP, RTP), pressing the keys in `pcap`; one call, failing after `timeout` seconds, errors to
    `errors`."""
    sip_port, media_port = ports
    return [
        sipp, target,
        "-sf", str(scenario),
        "-s", "100",
        "-au", "caller",
        "-ap", password,
        "-key", "dtmf_pcap", str(pcap),
        "-i", "127.0.0.1",
        "-mi", "127.0.0.1",
        "-p", str(sip_port),
        "-mp", str(media_port),
        "-m", "1",
        "-timeout", f"{timeout:g}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file", str(errors),
    ]  # fmt: skip
