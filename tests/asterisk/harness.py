"""The caller's side of a test call on the real Asterisk: a second ARI app (`testcaller`) that dials
`Local/...` numbers, presses keys and hangs up what it made, and a recorder of the events an app gets."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hotline.asterisk.ari import AriClient, Event, channel_of
from hotline.asterisk.errors import AriNotFound, AriUnavailable
from hotline.asterisk.sandbox import Running

CALLER_APP = "testcaller"
HOTLINE_NUMBER = "Local/100@hotline"


def new_id() -> str:
    """A channel or playback id of fixed length: Asterisk rejects an id that is a prefix of a live one."""
    return uuid.uuid4().hex


def is_event(channel_id: str, event_type: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == event_type and channel_of(e) == channel_id


def ari_client(asterisk: Running, app: str, password: str | None = None, url: str | None = None) -> AriClient:
    """A client that reconnects quickly, so a test does not wait long after Asterisk restarts."""
    return AriClient(
        url or asterisk.ari_url,
        asterisk.ari_user,
        asterisk.ari_password if password is None else password,
        app,
        reconnect_initial=0.1,
        reconnect_max=0.5,
    )


@dataclass
class Events:
    """An event handler that keeps what it got, with the time it got it; raises for `fail_on` types
    and dawdles on `slow_channels`, to show that one call's trouble does not reach another."""

    timeout: float = 5.0
    fail_on: frozenset[str] = frozenset()
    slow_channels: frozenset[str] = frozenset()
    got: list[tuple[float, Event]] = field(default_factory=list)

    async def __call__(self, event: Event) -> None:
        if channel_of(event) in self.slow_channels:
            await asyncio.sleep(2.0)
        self.got.append((time.monotonic(), event))
        if event["type"] in self.fail_on:
            raise RuntimeError(f"handler failed on {event['type']}")

    def of(self, channel_id: str, *types: str) -> list[Event]:
        return [e for _, e in self.got if channel_of(e) == channel_id and (not types or e["type"] in types)]

    async def wait_for(self, what: Callable[[Event], bool], timeout: float | None = None) -> Event:
        return (await self.arrival(what, timeout))[1]

    async def arrival(
        self, what: Callable[[Event], bool], timeout: float | None = None
    ) -> tuple[float, Event]:
        """The first event that matches, with the time it came."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for got in self.got:
                if what(got[1]):
                    return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such event within {timeout} s; got {[e['type'] for _, e in self.got]}")


class Caller:
    """The test's caller: dials, presses keys, and at the end hangs up every call it made."""

    def __init__(self, asterisk: Running, events: Events | None = None) -> None:
        self.client = ari_client(asterisk, CALLER_APP)
        self.events = Events() if events is None else events
        self.created: list[str] = []

    def start(self) -> None:
        self.client.start(self.events)

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await self.client.wait_connected(timeout)

    async def call(
        self,
        endpoint: str,
        variables: Mapping[str, str] | None = None,
        *,
        legs: tuple[str, str] | None = None,
        formats: str | None = "ulaw",
        caller_id: str | None = None,
    ) -> tuple[str, str]:
        """Dial `endpoint`; returns (the caller's leg, the far leg that runs the dialplan)."""
        caller_leg, far_leg = legs or (new_id(), new_id())
        self.created.append(caller_leg)
        await self.client.originate(
            endpoint,
            CALLER_APP,
            caller_leg,
            far_leg,
            formats=formats,
            variables=variables,
            caller_id=caller_id,
        )
        return caller_leg, far_leg

    async def press(self, channel_id: str, digits: str) -> None:
        await self.client.send_dtmf(channel_id, digits)

    async def hang_up(self, channel_id: str) -> None:
        await self.client.hangup(channel_id)

    async def hang_up_all(self) -> None:
        """Hang up every call this caller made that is still up."""
        for channel_id in self.created:
            with contextlib.suppress(AriNotFound, AriUnavailable):
                await self.client.hangup(channel_id)

    async def close(self) -> None:
        await self.client.close()
