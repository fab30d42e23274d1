"""The real Asterisk the tests talk to: installed into the cache folder once (`hotline asterisk install`),
started once per test session with fresh random credentials, stopped at the end.

A test session holds the sandbox alone (`Sandbox.lock`): a second session on the same machine waits
for the first instead of restarting its Asterisk. Without root, or when Asterisk cannot start, every
test that needs it fails: it is never skipped."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from hotline.asterisk.sandbox import DIALPLAN_DIR, Running, Sandbox, SandboxError, placeholders

T = TypeVar("T")

#: How long a session waits for another session's Asterisk.
LOCK_TIMEOUT = 900.0


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal even while output is captured: installing takes half a minute."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(f"asterisk: {line}")


@pytest.fixture(scope="session")
def asterisk_values() -> dict[str, str]:
    """A random value for every placeholder in dialplan/ (ARI_PASSWORD, AMI_SECRET, ...)."""
    return {name: secrets.token_hex(16) for name in placeholders(DIALPLAN_DIR)}


@pytest.fixture(scope="session")
def asterisk(pytestconfig: pytest.Config, asterisk_values: dict[str, str]) -> Iterator[Running]:
    """A running Asterisk 22 with dialplan/ installed; `.ari_url`, `.ari_password`, `.cli(...)`..."""
    if os.geteuid() != 0:
        pytest.fail(
            "the Asterisk tests need root (the sandbox uses chroot and mount); run the tests as root",
            pytrace=False,
        )
    sandbox = Sandbox(progress=lambda line: _say(pytestconfig, line))
    if not sandbox.installed():
        _say(pytestconfig, f"installing Asterisk into {sandbox.root} (once, about 35 s)")
        _or_fail(sandbox.install)
    with contextlib.ExitStack() as held:
        _or_fail(lambda: held.enter_context(sandbox.lock(LOCK_TIMEOUT)))
        running = _or_fail(lambda: sandbox.start(DIALPLAN_DIR, asterisk_values))
        try:
            yield running
        finally:
            sandbox.stop()


def _or_fail(action: Callable[[], T]) -> T:
    """`action()`, or a test failure that says why the sandbox could not do it."""
    try:
        return action()
    except SandboxError as e:
        error = e
    pytest.fail(f"the Asterisk sandbox failed: {error}", pytrace=False)
