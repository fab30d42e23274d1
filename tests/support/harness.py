"""The caller's side of a test call on the real Asterisk: a second ARI app (`testcaller`) that dials
`Local/...` numbers, presses keys and hangs up what it made, a recorder of the events an app gets, and
the hotline app itself (`Hotline`) running in the test against a real contact store."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hotline.agents import RoutingService
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriNotFound, AriUnavailable
from hotline.asterisk.events import AriEvent, PlaybackContinuing, PlaybackFinished, PlaybackStarted
from hotline.asterisk.sandbox import ARI_APP, Running
from hotline.callbacks import CallbackRequests
from hotline.calls import CallApp
from hotline.dispatch import AppEvents
from hotline.store import CallbackStore, Contact, EventWriter, Store, StoredEvent, open_store
from ivr.flowset import FlowSet

CALLER_APP = "testcaller"
HOTLINE_NUMBER = "Local/100@hotline"


def new_id() -> str:
    """A channel or playback id of fixed length: Asterisk rejects an id that is a prefix of a live one."""
    return uuid.uuid4().hex


def is_event(channel_id: str, event_type: type[AriEvent]) -> Callable[[AriEvent], bool]:
    return lambda e: isinstance(e, event_type) and e.channel_id == channel_id


def media_uri(event: AriEvent) -> str | None:
    """The media a playback event is about (None for other events)."""
    if isinstance(event, PlaybackStarted | PlaybackContinuing | PlaybackFinished):
        return event.playback.media_uri
    return None


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
    fail_on: tuple[type[AriEvent], ...] = ()
    slow_channels: frozenset[str] = frozenset()
    got: list[tuple[float, AriEvent]] = field(default_factory=list)

    async def __call__(self, event: AriEvent) -> None:
        if event.channel_id in self.slow_channels:
            await asyncio.sleep(2.0)
        self.got.append((time.monotonic(), event))
        if isinstance(event, self.fail_on):
            raise RuntimeError(f"handler failed on {type(event).__name__}")

    def of(self, channel_id: str, *types: type[AriEvent]) -> list[AriEvent]:
        return [e for _, e in self.got if e.channel_id == channel_id and (not types or isinstance(e, types))]

    async def wait_for(self, what: Callable[[AriEvent], bool], timeout: float | None = None) -> AriEvent:
        return (await self.arrival(what, timeout))[1]

    async def arrival(
        self, what: Callable[[AriEvent], bool], timeout: float | None = None
    ) -> tuple[float, AriEvent]:
        """The first event that matches, with the time it came."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for got in self.got:
                if what(got[1]):
                    return got
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no such event within {timeout} s; got {[type(e).__name__ for _, e in self.got]}"
        )


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


class Hotline:
    """The hotline app inside the test: a `CallApp` on its own ARI connection, writing contact events
    through a real `EventWriter` into a SQLite store. `flows` may be swapped between calls."""

    def __init__(self, asterisk: Running, data_dir: Path, flows: FlowSet, numbers: Mapping[str, str]) -> None:
        self.asterisk = asterisk
        self.data_dir = data_dir
        self.flows = flows
        self.numbers = dict(numbers)
        self.ari = ari_client(asterisk, ARI_APP)
        self.events = Events()
        self.store: Store | None = None
        self.writer: EventWriter | None = None
        self.app: CallApp | None = None

    async def start(self) -> None:
        self.store = await open_store(f"sqlite+aiosqlite:///{self.data_dir / 'hotline.db'}")
        self.writer = EventWriter(self.store, spool_dir=self.data_dir / "spool", max_delay=0.01)
        await self.writer.start()
        routing = await self.start_routing()
        default = next(iter(self.numbers.values()))
        self.app = CallApp(
            self.ari,
            lambda: self.flows,
            self.numbers,
            default,
            self.writer,
            queueing=routing,
            callbacks=self.callback_requests(),  # a flow's call-back is kept, as in the service
        )
        dispatch = AppEvents(self.ari, self.app, routing)

        async def handle(event: AriEvent) -> None:
            await self.events(event)
            await dispatch(event)

        self.ari.start(handle)
        await self.ari.wait_connected(5)

    async def start_routing(self) -> RoutingService | None:
        """The switchboard behind the calls (none here: a queued caller takes the overflow)."""
        return None

    def callback_requests(self) -> CallbackRequests:
        assert self.store is not None
        return CallbackRequests(CallbackStore(self.store))

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.close()
        await self.ari.close()
        if self.writer is not None:
            await self.writer.stop()
        if self.store is not None:
            await self.store.close()

    def _store(self) -> Store:
        assert self.store is not None, "start the hotline first"
        return self.store

    async def stored(self, call_id: str) -> list[StoredEvent]:
        """The contact events of the call on channel `call_id`, in the store's order."""
        return [e for e in await self._store().events_after(0, limit=10_000) if e.call_id == call_id]

    async def stored_until(self, call_id: str, event_type: str, timeout: float = 8.0) -> list[StoredEvent]:
        """The call's contact events, once one of type `event_type` is among them."""
        deadline = time.monotonic() + timeout
        while True:
            stored = await self.stored(call_id)
            if any(e.type == event_type for e in stored):
                return stored
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {event_type} within {timeout} s; stored: {[e.type for e in stored]}"
                )
            await asyncio.sleep(0.05)

    async def ended(self, call_id: str, timeout: float = 8.0) -> list[StoredEvent]:
        """The call's contact events once the call has left the app and its last event is stored."""
        assert self.app is not None
        deadline = time.monotonic() + timeout
        while True:
            stored = await self.stored(call_id)
            if call_id not in self.app.calls and stored and stored[-1].type in ("hung_up", "abandoned"):
                return stored
            if time.monotonic() > deadline:
                heard = [(type(e).__name__, media_uri(e)) for e in self.events.of(call_id)]
                raise AssertionError(
                    f"the call did not end within {timeout} s: {[e.type for e in stored]}; ARI events: {heard}"
                )
            await asyncio.sleep(0.05)

    async def contact(self, call_id: str) -> Contact:
        """The contact row of the call on channel `call_id`."""
        stored = await self.stored(call_id)
        assert stored, f"no contact events for {call_id}"
        contact = await self._store().contact(stored[0].contact_id)
        assert contact is not None
        return contact

    def media_played(self, channel_id: str) -> list[str]:
        """Every media URI Asterisk started playing on the channel, in order."""
        return [str(media_uri(e)) for e in self.events.of(channel_id, PlaybackStarted, PlaybackContinuing)]


#: (event, events of the same contact that must be stored before it)
BEFORE: dict[str, frozenset[str]] = {
    "agent_offered": frozenset({"call_started", "queued"}),
    "answered": frozenset({"queued", "agent_offered"}),
    "position_announced": frozenset({"queued"}),
    "callback_offered": frozenset({"queued"}),
    "wrapup_ended": frozenset({"answered"}),
}


def in_order(stored: list[StoredEvent]) -> None:
    """Assert that one contact's events are stored in the order they happened: their times never go
    back, the call starts first, and nothing comes before what it follows from."""
    assert stored, "no events"
    assert stored[0].type == "call_started", [e.type for e in stored]
    seen: set[str] = set()
    for before, after in itertools.pairwise(stored):
        assert before.seq < after.seq and before.at <= after.at, (before, after)
    for event in stored:
        missing = BEFORE.get(event.type, frozenset()) - seen
        assert not missing, f"{event.type} stored before {sorted(missing)}: {[e.type for e in stored]}"
        seen.add(event.type)
