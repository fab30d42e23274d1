"""What the deploy test needs to reach the stack: its ports, env file, compose commands and HTTP API."""

from __future__ import annotations

import glob
import json
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.docker import DOCKER, DockerEngine
from support.paths import ROOT

COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
#: A fixed name: the images it builds stay in the cached engine between runs.
PROJECT = "hotline-deploy-test"
#: RTP ports published (each call takes an even one and the odd one after it).
RTP_PORTS = 8
#: How long the stack may take to become healthy, warm (the first build takes longer: see BUILD_TIMEOUT).
HEALTHY_TIMEOUT = 90.0
BUILD_TIMEOUT = 600.0


def say(line: str) -> None:
    print(f"deploy: {line}", flush=True)


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports() -> tuple[int, int, int]:
    """(SIP port, first of RTP_PORTS consecutive RTP ports, API port), free on loopback now.

    Drawn from 20000-28999, below the kernel's ephemeral range and away from the sandbox Asterisk's
    5060, 8088, 5038, 4573 and 10000-10099."""
    rng = random.Random()
    while True:
        sip = rng.randrange(20000, 29000)
        rtp = rng.randrange(20000, 29000, 2)
        api = rng.randrange(20000, 29000)
        udp = [sip, *range(rtp, rtp + RTP_PORTS)]
        if len({*udp, api}) != len(udp) + 1:
            continue
        if all(_bindable(p, socket.SOCK_DGRAM) for p in udp) and _bindable(api, socket.SOCK_STREAM):
            return sip, rtp, api


def local_ca_certificates() -> str:
    """The CAs this machine added to its trust store (a proxy that intercepts TLS needs them in the build)."""
    return "".join(
        Path(path).read_text() for path in sorted(glob.glob("/usr/local/share/ca-certificates/*.crt"))
    )


@dataclass
class Stack:
    """The deployed stack and how the tests reach it."""

    engine: DockerEngine
    env_file: Path
    flows: Path
    values: dict[str, str]
    sip_port: int
    api_url: str
    token: str
    timings: dict[str, float] = field(default_factory=dict)

    def write_env(self, **changes: str) -> None:
        """(Re)write the env file, mode 600, with `changes` over the current values."""
        self.values.update(changes)
        self.token = self.values["HOTLINE_API_TOKENS"].split(",")[-1]
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{key}={value}\n" for key, value in self.values.items()))

    def compose(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        done = self.engine.compose(
            PROJECT,
            COMPOSE_FILE,
            self.env_file,
            *args,
            timeout=timeout,
            check=check,
            environ={"HOTLINE_EXTRA_CA_CERTS": local_ca_certificates()},
        )
        return done.stdout + done.stderr

    def logs(self, lines: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={lines}", check=False)

    def api(self, path: str, *, token: str | None = None, anonymous: bool = False, body: Any = None) -> Any:
        """GET `path` from the API with the current token (or `token`), or POST `body`; its JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path, data=data, method="GET" if data is None else "POST"
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if not anonymous:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def health(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api("/api/health", anonymous=True)
        except (OSError, urllib.error.URLError, ValueError):
            return None
        return found

    def wait_ready(self, timeout: float = HEALTHY_TIMEOUT) -> dict[str, Any]:
        """Back when docker calls the service container healthy and its ARI socket to Asterisk is connected."""
        deadline = time.monotonic() + timeout
        health = None
        container = "none"
        while time.monotonic() < deadline:
            health = self.health()
            if health and health.get("status") == "ok" and health["asterisk"]["connected"]:
                container = self.container_health("hotline")
                if container == "healthy":
                    return health
            time.sleep(0.3)
        raise AssertionError(
            f"the service was not ready within {timeout:.0f} s (container: {container}, last /api/health: "
            f"{health}); logs:\n{self.logs()}"
        )

    def exec(self, service: str, *argv: str, stdin: bytes = b"") -> bytes:
        """Run a command in the service's container (`docker exec -i`), `stdin` in; its output."""
        container = self.compose("ps", "-q", service).strip()
        done = subprocess.run(
            [DOCKER, "exec", "-i", container, *argv],
            input=stdin,
            capture_output=True,
            env=self.engine.env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (
            f"{' '.join(argv)} in {service} failed: {done.stderr.decode(errors='replace')}"
        )
        return done.stdout

    def container_health(self, service: str) -> str:
        name = self.compose("ps", "-q", service).strip()
        shown = self.engine.docker("inspect", "--format", "{{.State.Health.Status}}", name)
        return shown.stdout.strip()
