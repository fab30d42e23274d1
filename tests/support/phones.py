"""SIPp phones for the tests through a running `hotline serve`: agent1's phone, which registers with
digest auth and answers one call on the same port."""

from __future__ import annotations

import shutil
import socket
import subprocess

from hotline.asterisk.sandbox import Running
from support.paths import SIPP_SCENARIOS


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AgentPhone:
    """agent1's SIP phone: SIPp registers it with digest auth, then answers one call on the same port."""

    def __init__(self, asterisk: Running) -> None:
        sipp = shutil.which("sipp")
        assert sipp, "SIPp is missing: apt-get install sip-tester"
        self.sipp = sipp
        self.asterisk = asterisk
        self.port = free_udp_port()
        self.answering: subprocess.Popen[bytes] | None = None

    def _argv(self, *scenario: str) -> list[str]:
        return [
            self.sipp,
            f"{self.asterisk.sip_host}:{self.asterisk.sip_port}",
            *scenario,
            *("-i", "127.0.0.1", "-p", str(self.port), "-mp", str(free_udp_port()), "-nostdin", "-m", "1"),
        ]

    def register(self, expires: int) -> None:
        """`expires=0` logs the phone out."""
        done = subprocess.run(
            self._argv(
                *("-sf", str(SIPP_SCENARIOS / "agent_register.xml"), "-s", "agent1", "-au", "agent1"),
                *("-ap", self.asterisk.values["AGENT_PASSWORD"], "-key", "expires", str(expires)),
                *("-timeout", "5s", "-timeout_error"),
            ),
            capture_output=True,
            timeout=10,
        )
        assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")[-2000:]

    def answer(self) -> None:
        self.answering = subprocess.Popen(
            self._argv("-sn", "uas"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.answering is not None and self.answering.poll() is None:
            self.answering.kill()
            self.answering.wait(10)
