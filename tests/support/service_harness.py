"""`hotline serve` as a subprocess against the real Asterisk sandbox: its own config, SQLite store, copy
of flows/ and free API port in tmp_path; the test talks to it as callers do (ARI `Local/...` calls, `ari`)
and reads what it wrote (the store, its log, /api/health), waiting for it with `until`."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.asterisk.sandbox import Running
from support.paths import FLOWS

HOTLINE = Path(sys.executable).parent / "hotline"
#: A Monday morning in Warsaw: the shipped flow's office is open.
OPEN_HOURS = "2026-11-16T10:00+01:00"

#: The small flow the tests dial on extension `s` (Local/s@hotline): a menu, 1 or 2, goodbye.
TEST_FLOW = """\
flow: test
languages: [en]
start: menu
nodes:
  menu:
    menu: beep
    options: {1: one, 2: two}
    timeout: MENU_TIMEOUT
    retries: 0
    failure: bye
  one:
    play: digits/1
    next: bye
  two:
    play: digits/2
    next: bye
  bye:
    hangup: null
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """A running `hotline serve` and the files it uses."""

    folder: Path
    config: Path
    flows: Path
    log: Path
    api: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0, drain: float = 0.5) -> None:
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(HOTLINE), "serve", "--config", str(self.config), "--drain", f"{drain:g}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.folder,
        )
        log.close()
        self.wait_for(
            lambda h: h["asterisk"]["connected"], timeout, "the service did not connect to Asterisk"
        )

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.api}/api/health", timeout=2) as answer:
                result: dict[str, Any] = json.loads(answer.read())
                return result
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_for(self, what: Any, timeout: float, message: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"hotline serve exited with {self.process.returncode}:\n{self.text()}")
            health = self.health()
            if health is not None and "asterisk" in health and what(health):
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"{message}; health {health}; log:\n{self.text()}")
            time.sleep(0.1)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, and the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @contextlib.contextmanager
    def serving(self, *, start: bool = True) -> Iterator[ServiceProcess]:
        """The service for a test: started (unless the test starts it), and at the end stopped with
        SIGTERM, or killed when it does not stop."""
        try:
            if start:
                self.start()
            yield self
        finally:
            with contextlib.suppress(Exception):
                self.stop(10)
            self.kill()

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Another `hotline` command with this service's config."""
        return subprocess.run(
            [str(HOTLINE), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env={**self.env, "COLUMNS": "200"},
            cwd=self.folder,
            timeout=timeout,
        )


def make_service(folder: Path, asterisk: Running, menu_timeout: float = 8.0) -> ServiceProcess:
    flows = folder / "flows"
    shutil.copytree(FLOWS, flows)
    (flows / "test.yaml").write_text(TEST_FLOW.replace("MENU_TIMEOUT", str(menu_timeout)), encoding="utf-8")
    port = free_port()
    config = folder / "hotline.yaml"
    config.write_text(
        f"""\
data_dir: var
api:
  listen: 127.0.0.1:{port}
flows:
  directory: flows
  numbers: {{"100": hotline, s: test}}
  default: hotline
asterisk:
  ari_url: {asterisk.ari_url}
  ari_username: {asterisk.ari_user}
  ari_password: ${{HOTLINE_ARI_PASSWORD}}
  ami: {{host: {asterisk.ami_host}, port: {asterisk.ami_port}, username: {asterisk.ami_user}, secret: '${{HOTLINE_AMI_SECRET}}'}}
log:
  level: info
  format: console
""",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "HOTLINE_ARI_PASSWORD": asterisk.ari_password,
        "HOTLINE_AMI_SECRET": asterisk.ami_secret,
        "HOTLINE_CLOCK_AT": OPEN_HOURS,
    }
    env.pop("HOTLINE_CONFIG", None)
    return ServiceProcess(folder, config, flows, folder / "service.log", f"http://127.0.0.1:{port}", env)


def ari(asterisk: Running, method: str, path: str) -> Any:
    """One ARI request with the sandbox's credentials; its JSON answer, or None for an empty one."""
    login = base64.b64encode(f"{asterisk.ari_user}:{asterisk.ari_password}".encode()).decode()
    request = urllib.request.Request(
        f"{asterisk.ari_url}{path}", method=method, headers={"Authorization": f"Basic {login}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def until(what: Callable[[], Any], timeout: float, why: str) -> Any:
    """`what()` once it is truthy, polled every 0.1 s; fails with `why` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, why
        time.sleep(0.1)
