"""The `service` fixture: a started `hotline serve` in tmp_path (service_harness.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.asterisk.sandbox import Running
from support.service_harness import ServiceProcess, make_service


@pytest.fixture
def service(asterisk: Running, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A started `hotline serve`; killed at the end if the test did not stop it."""
    running = make_service(tmp_path, asterisk)
    try:
        running.start()
        yield running
    finally:
        with contextlib.suppress(Exception):
            running.stop(10)
        running.kill()
