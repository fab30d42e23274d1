"""Faults with calls up, on the real Asterisk and a real `hotline serve`: Asterisk killed (`kill -9`) and
the service killed (`kill -9`) with callers in a menu, waiting in a queue and talking to an agent, and
the service killed while PostgreSQL is down; each test counts events, contacts and channels against
what the callers did.

The agent is `Local/answer@hotline-test`: a phone that answers at once, so a queued caller is bridged
with it as soon as the agent is logged in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.asterisk.sandbox import DIALPLAN_DIR, Running, Sandbox
from hotline.store import Contact, Store, StoredEvent, open_store
from hotline.store.writer import SEGMENT_PREFIX, SEGMENT_SUFFIX
from support.harness import Caller
from support.pg import Cluster
from support.service_harness import ServiceProcess, ari, make_service

TOKEN = "faults-token-0123456789abcdef"
MENU = "Local/s@hotline"  # the flow below
MENU_TIMEOUT = 5.0
ROUTING = """\
agents:
  ann: {name: Ann, endpoint: Local/answer@hotline-test, skills: {support: 1}, wrapup: 1}
queues:
  support: {skills: {support: 1}, ring_timeout: 10, announce_every: 0}
"""
FLOW = """\
flow: test
languages: [en]
start: menu
nodes:
  menu:
    menu: beep
    options: {1: one, 2: two, 3: wait}
    timeout: MENU_TIMEOUT
    retries: 0
    failure: bye
  one: {play: digits/1, next: bye}
  two: {play: digits/2, next: bye}
  wait:
    queue: {name: support, max_wait: 600}
    overflow: bye
  bye:
    hangup: null
"""


@pytest.fixture
def service(asterisk: Running, tmp_path: Path) -> Iterator[ServiceProcess]:
    """`hotline serve` with the flow above on `s` (5 s menu timeout) and one agent."""
    running = make_service(tmp_path, asterisk)
    add_routing(running, tmp_path, menu_timeout=MENU_TIMEOUT)
    with running.serving():
        yield running


def add_routing(running: ServiceProcess, folder: Path, menu_timeout: float) -> None:
    """The flow on `s`: a menu whose 3 queues for support; one agent, ann."""
    (running.flows / "test.yaml").write_text(
        FLOW.replace("MENU_TIMEOUT", str(menu_timeout)), encoding="utf-8"
    )
    (folder / "routing.yaml").write_text(ROUTING, encoding="utf-8")
    config = running.config.read_text(encoding="utf-8")
    running.config.write_text(config + "routing:\n  file: routing.yaml\n", encoding="utf-8")
    running.env["HOTLINE_API_TOKENS"] = TOKEN
    running.env.pop("HOTLINE_CLOCK_AT")  # the real clock: a restart must not turn it back


@pytest.fixture
def pg_service(
    asterisk: Running, tmp_path: Path, pg_cluster: Cluster
) -> Iterator[tuple[ServiceProcess, str]]:
    """Like `service`, on a fresh PostgreSQL database; with the database's URL."""
    if not pg_cluster.running():
        pg_cluster.start()
    url = pg_cluster.url(pg_cluster.create_database())
    running = make_service(tmp_path, asterisk)
    add_routing(running, tmp_path, menu_timeout=20.0)
    running.config.write_text(
        running.config.read_text(encoding="utf-8") + f"store:\n  url: {url}\n", encoding="utf-8"
    )
    try:
        with running.serving():
            yield running, url
    finally:
        if not pg_cluster.running():
            pg_cluster.start()


@pytest.fixture
async def store(service: ServiceProcess) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{service.folder / 'var' / 'hotline.db'}", migrate=False)
    try:
        yield opened
    finally:
        await opened.close()


def api(service: ServiceProcess, method: str, path: str) -> Any:
    request = urllib.request.Request(
        f"{service.api}{path}", method=method, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


async def events_of(store: Store, call_id: str) -> list[StoredEvent]:
    return [e for e in await store.events_after(0, limit=10_000) if e.call_id == call_id]


async def timeline(store: Store, call_id: str) -> list[StoredEvent]:
    """The whole contact of the call (routing's events carry its channel too)."""
    found = await events_of(store, call_id)
    assert found, f"no contact for {call_id}"
    return await store.timeline(found[0].contact_id)


async def until_stored(
    store: Store, call_id: str, what: Any, timeout: float = 10.0, why: str = ""
) -> list[StoredEvent]:
    deadline = time.monotonic() + timeout
    while True:
        found = await events_of(store, call_id)
        if found:
            found = await store.timeline(found[0].contact_id)
            if what(found):
                return found
        assert time.monotonic() < deadline, f"{why or 'the events did not come'}: {types(found)}"
        await asyncio.sleep(0.05)


def types(found: list[StoredEvent]) -> list[str]:
    return [e.type for e in found]


def has(kind: str, **data: Any) -> Any:
    return lambda found: any(
        e.type == kind and all(e.data.get(k) == v for k, v in data.items()) for e in found
    )


async def contact(store: Store, call_id: str) -> Contact:
    found = await timeline(store, call_id)
    row = await store.contact(found[0].contact_id)
    assert row is not None
    return row


def our_channels(asterisk: Running) -> list[str]:
    """Channels of the hotline's apps (and Local legs toward them) still up in Asterisk."""
    return [
        c["name"]
        for c in ari(asterisk, "GET", "/channels")
        if c["name"].startswith(("Local/s@hotline", "Local/q@hotline", "Local/answer@hotline-test"))
    ]


async def until_no_channels(asterisk: Running, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while left := await asyncio.to_thread(our_channels, asterisk):
        assert time.monotonic() < deadline, f"channels left up: {left}"
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Calls:
    """Three calls up at once: the far legs the hotline runs, the callers' own legs, and ann's leg."""

    talking: str
    waiting: str
    in_menu: str
    ann_leg: str
    callers: dict[str, str]  # far leg -> the caller's leg


async def queue_call(caller: Caller, store: Store) -> tuple[str, str]:
    """A caller who presses 3 in the menu and is queued; (their leg, the hotline's)."""
    caller_leg, hotline_leg = await caller.call(MENU)
    await until_stored(store, hotline_leg, has("node_entered", node="menu"), why="no menu")
    await caller.press(caller_leg, "3")
    await until_stored(store, hotline_leg, has("queued"), why="the caller was not queued")
    return caller_leg, hotline_leg


async def three_calls(service: ServiceProcess, caller: Caller, store: Store, asterisk: Running) -> Calls:
    """A caller talking to ann, one waiting in the queue behind, one in the menu."""
    assert api(service, "POST", "/api/agents/ann/login")["state"] == "available"
    talking_caller, talking = await queue_call(caller, store)
    await until_stored(store, talking, has("answered", agent="ann"), why="ann never answered")
    bridges = await asyncio.to_thread(ari, asterisk, "GET", "/bridges")
    [bridge] = [b for b in bridges if talking in b["channels"]]
    [ann_leg] = [c for c in bridge["channels"] if c != talking]
    waiting_caller, waiting = await queue_call(caller, store)
    menu_caller, in_menu = await caller.call(MENU)
    await until_stored(store, in_menu, has("node_entered", node="menu"), why="no menu")
    callers = {talking: talking_caller, waiting: waiting_caller, in_menu: menu_caller}
    return Calls(talking, waiting, in_menu, ann_leg, callers)


# --- Asterisk killed --------------------------------------------------------------------------------


async def test_asterisk_killed_with_calls_up_stops_the_flows_and_every_call_ends_lost(
    service: ServiceProcess, caller: Caller, store: Store, asterisk: Running
) -> None:
    calls = await three_calls(service, caller, store, asterisk)
    talking, waiting, in_menu = calls.talking, calls.waiting, calls.in_menu
    before = {leg: types(await timeline(store, leg)) for leg in (talking, waiting, in_menu)}

    pid = Sandbox(asterisk.root).status().pid  # an earlier test may have restarted it
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(
        service.wait_for, lambda h: not h["asterisk"]["connected"], 10, "the service never saw Asterisk go"
    )
    await asyncio.sleep(MENU_TIMEOUT + 1)  # a flow that ran on would have timed out meanwhile
    during = {leg: types(await timeline(store, leg)) for leg in (talking, waiting, in_menu)}
    assert during == before, "events were invented while Asterisk was away"

    back = await asyncio.to_thread(Sandbox(asterisk.root).start, DIALPLAN_DIR, asterisk.values)
    answered_at = time.monotonic()
    await asyncio.to_thread(
        service.wait_for,
        lambda h: h["asterisk"]["connected"] and h["asterisk"]["calls"] == 0,
        10,
        "the service did not reconnect",
    )
    reconnect = time.monotonic() - answered_at
    assert reconnect < 2.0, f"reconnected {reconnect:.1f} s after Asterisk answered again"

    for leg in (talking, waiting, in_menu):
        found = await until_stored(store, leg, has("call_lost"), why=f"{leg} was not said lost")
        assert types(found)[: len(before[leg])] == before[leg]
        after = types(found)[len(before[leg]) :]
        assert after[0] == "call_lost" and set(after) <= {"call_lost", "wrapup_ended"}, after
        row = await contact(store, leg)
        assert row.ended_at is not None and row.ended_by == "system"
    assert (await contact(store, talking)).outcome == "answered"
    assert (await contact(store, waiting)).outcome == "lost"
    assert (await contact(store, in_menu)).outcome == "lost"

    # the service takes calls again at once, and the flow works
    await caller.wait_connected(5)
    caller_leg, fresh = await caller.call(MENU)
    await until_stored(store, fresh, has("node_entered", node="menu"))
    await caller.press(caller_leg, "1")
    found = await until_stored(store, fresh, has("hung_up"))
    assert [e.data.get("node") for e in found if e.type == "node_entered"] == ["menu", "one", "bye"]
    assert back.pid != pid


# --- the service killed -----------------------------------------------------------------------------


async def test_a_restarted_service_keeps_talkers_talking_resumes_callers_and_closes_every_contact(
    service: ServiceProcess, caller: Caller, store: Store, asterisk: Running
) -> None:
    calls = await three_calls(service, caller, store, asterisk)
    talking, waiting, in_menu, ann_leg = calls.talking, calls.waiting, calls.in_menu, calls.ann_leg
    gone_caller, gone = await caller.call(MENU)
    await until_stored(store, gone, has("node_entered", node="menu"))
    queued_at = next(e.at for e in await timeline(store, waiting) if e.type == "queued")
    contacts_before = {
        (await timeline(store, leg))[0].contact_id for leg in (talking, waiting, in_menu, gone)
    }

    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait(10)
    await caller.hang_up(gone_caller)  # hangs up while nobody watches
    await asyncio.sleep(1)
    await asyncio.to_thread(service.start)

    # the caller who hung up meanwhile: closed, saying where they were
    found = await until_stored(store, gone, has("service_restarted"), why="the gone call was not closed")
    assert found[-1].data == {"where": "ivr", "node": "menu"}
    assert (await contact(store, gone)).outcome == "service_restarted"

    # the caller in the menu goes on at the menu and can finish it
    found = await until_stored(store, in_menu, has("call_resumed"), why="the menu caller was not resumed")
    assert found[-2].type == "call_resumed" and found[-2].data == {"flow": "test", "node": "menu"}
    await caller.press(calls.callers[in_menu], "1")
    found = await until_stored(store, in_menu, has("hung_up"), why="the resumed menu did not go on")
    nodes = [e.data.get("node") for e in found if e.type == "node_entered"]
    assert nodes == ["menu", "menu", "one", "bye"]

    # the waiting caller is back in the queue with the place they had
    found = await until_stored(store, waiting, has("call_resumed"), why="the waiting caller was not resumed")
    requeued = [e for e in found if e.type == "queued"]
    assert (
        len(requeued) == 2
        and requeued[1].data["waited"] >= (requeued[1].at - queued_at).total_seconds() - 0.5
    )

    # the conversation was never cut: the bridge and both channels are still there
    bridges = await asyncio.to_thread(ari, asterisk, "GET", "/bridges")
    assert [sorted(b["channels"]) for b in bridges if talking in b["channels"]] == [
        sorted([talking, ann_leg])
    ]
    assert not has("call_ended")(await timeline(store, talking))

    # ... and ends normally when the caller hangs up: the agent's leg too, and the waiting caller gets ann
    await caller.hang_up(calls.callers[talking])
    found = await until_stored(store, talking, has("call_ended"), why="the adopted talk did not end")
    assert [e.data for e in found if e.type == "call_ended"] == [{"by": "caller", "cause": "caller hung up"}]
    row = await contact(store, talking)
    assert row.outcome == "answered" and row.ended_by == "caller"

    api(service, "POST", "/api/agents/ann/login")  # agents log in again after a restart
    await until_stored(
        store, waiting, has("answered", agent="ann"), timeout=15, why="ann never got the waiting caller"
    )
    await caller.hang_up(calls.callers[waiting])
    await until_stored(store, waiting, has("hung_up"), why="the waiting caller's talk did not end")
    await until_no_channels(asterisk)

    # one contact per call, every one ended
    contacts_after = {(await timeline(store, leg))[0].contact_id for leg in (talking, waiting, in_menu, gone)}
    assert contacts_after == contacts_before
    for leg in (talking, waiting, in_menu, gone):
        row = await contact(store, leg)
        assert row.ended_at is not None, f"{leg}: {row}"
    assert "hanging up a channel left in the app" not in service.text()


# --- the service killed while the database is down --------------------------------------------------


async def test_the_service_killed_during_a_database_outage_loses_nothing_and_every_call_keeps_its_contact(
    pg_service: tuple[ServiceProcess, str], caller: Caller, pg_cluster: Cluster, asterisk: Running
) -> None:
    service, url = pg_service
    store = await open_store(url, migrate=False)
    try:
        before_caller, before = await caller.call(MENU)
        await until_stored(store, before, has("node_entered", node="menu"))
    finally:
        await store.close()

    pg_cluster.stop()
    during_caller, during = await caller.call(MENU)  # a call that starts while the database is down
    await asyncio.sleep(1.5)  # longer than the writer's bound on what a crash can take (0.55 s)
    spool = service.folder / "var" / "spool"
    spooled = [
        json.loads(line)
        for segment in sorted(spool.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))
        for line in segment.read_text(encoding="utf-8").splitlines()
    ]
    assert {(e["call_id"], e["type"]) for e in spooled} >= {
        (during, "call_started"),
        (during, "node_entered"),
    }
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait(10)

    pg_cluster.start()
    await asyncio.to_thread(service.start)
    store = await open_store(url, migrate=False)
    try:
        for leg in (before, during):
            found = await until_stored(store, leg, has("call_resumed"), why=f"{leg} was not resumed")
            assert types(found)[:4] == ["call_started", "node_entered", "call_resumed", "node_entered"]
            assert len({e.contact_id for e in await events_of(store, leg)}) == 1  # one contact per call
        # every event spooled before the kill is in the database, once
        stored = {e.id for e in await store.events_after(0, limit=10_000)}
        assert {e["id"] for e in spooled} <= stored
        for caller_leg, leg in ((before_caller, before), (during_caller, during)):
            await caller.press(caller_leg, "2")
            found = await until_stored(store, leg, has("hung_up"), why="the resumed call did not go on")
            nodes = [e.data.get("node") for e in found if e.type == "node_entered"]
            assert nodes == ["menu", "menu", "two", "bye"]
        await until_no_channels(asterisk)
        for leg in (before, during):
            row = await contact(store, leg)
            assert row.ended_at is not None
    finally:
        await store.close()
    assert "Traceback" not in service.text()


async def test_legs_nobody_can_use_are_hung_up_live_and_after_a_restart(
    service: ServiceProcess, caller: Caller, store: Store, asterisk: Running
) -> None:
    # live: an agent's leg of an offer that is over answers late
    late = "0f" * 16
    await asyncio.to_thread(
        ari,
        asterisk,
        "POST",
        f"/channels?endpoint=Local/answer@hotline-test&app=hotline&appArgs=agent,c1&channelId={late}",
    )
    await until_gone(asterisk, late)
    assert "an agent answered an offer that is no longer held" in service.text()

    # after a restart: a conversation whose bridge was destroyed while no service ran
    assert api(service, "POST", "/api/agents/ann/login")["state"] == "available"
    _, talking = await queue_call(caller, store)
    await until_stored(store, talking, has("answered", agent="ann"), why="ann never answered")
    [bridge] = [
        b for b in await asyncio.to_thread(ari, asterisk, "GET", "/bridges") if talking in b["channels"]
    ]
    [ann_leg] = [c for c in bridge["channels"] if c != talking]
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait(10)
    await asyncio.to_thread(ari, asterisk, "DELETE", f"/bridges/{bridge['id']}")
    await asyncio.to_thread(service.start)
    for leg in (talking, ann_leg):
        await until_gone(asterisk, leg)
    found = await until_stored(
        store, talking, has("service_restarted"), why="the talk's contact was not closed"
    )
    assert found[-1].data == {"where": "talking", "node": "wait", "queue": "support"}
    row = await contact(store, talking)
    assert row.outcome == "answered" and row.ended_by == "service"
    hung_up = [line for line in service.text().splitlines() if "hanging up a channel left in the app" in line]
    assert any(f"channel={ann_leg}" in line for line in hung_up), hung_up
    assert any(f"channel={talking}" in line for line in hung_up), hung_up


async def until_gone(asterisk: Running, channel_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while channel_id in [c["id"] for c in await asyncio.to_thread(ari, asterisk, "GET", "/channels")]:
        assert time.monotonic() < deadline, f"{channel_id} was left up"
        await asyncio.sleep(0.1)
