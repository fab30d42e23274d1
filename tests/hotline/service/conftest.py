"""The `service` fixture, a started `hotline serve` in tmp_path (service_harness.py), and the test's
`caller`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.asterisk.sandbox import Running
from support.harness import Caller
from support.service_harness import ServiceProcess, make_service


@pytest.fixture
def service(asterisk: Running, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A started `hotline serve`; killed at the end if the test did not stop it."""
    with make_service(tmp_path, asterisk).serving() as running:
        yield running


@pytest.fixture
async def caller(asterisk: Running) -> AsyncIterator[Caller]:
    """The test's caller (an ARI app of its own); every call it made is hung up at the end."""
    made = Caller(asterisk)
    made.start()
    await made.wait_connected(5)
    try:
        yield made
    finally:
        with contextlib.suppress(Exception):
            await made.hang_up_all()
        await made.close()
