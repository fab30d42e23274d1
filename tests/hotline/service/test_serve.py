"""`hotline serve` on the real Asterisk: test calls from the terminal, concurrent callers, flow reload
with calls in progress, an Asterisk restart, and SIGTERM; FastAGI calls on the service's clock and
through SIGTERM (restarts with calls up: test_faults.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any

from hotline.asterisk.events import ChannelDestroyed, StasisEnd
from hotline.asterisk.sandbox import DIALPLAN_DIR, Running, Sandbox
from hotline.store import Store, StoredEvent, open_store
from hotline.store.writer import SEGMENT_PREFIX, SEGMENT_SUFFIX
from support.agi import CLOCK_FLOW
from support.harness import Caller, is_event
from support.service_harness import OPEN_HOURS, ServiceProcess, make_service, until

TEST_NUMBER = "Local/s@hotline"  # extension s: the test flow (flows.numbers in conftest)
AGI_NUMBER = "Local/s@hotline-agi"  # the same over FastAGI; the channel variable FLOW names the flow


async def open_service_store(service: ServiceProcess) -> Store:
    return await open_store(f"sqlite+aiosqlite:///{service.folder / 'var' / 'hotline.db'}", migrate=False)


async def events_of(store: Store, call_id: str) -> list[StoredEvent]:
    return [e for e in await store.events_after(0, limit=10_000) if e.call_id == call_id]


async def wait_events(
    store: Store, call_id: str, done: Any, timeout: float = 10.0, what: str = "the call's events"
) -> list[StoredEvent]:
    deadline = time.monotonic() + timeout
    while True:
        found = await events_of(store, call_id)
        if done(found):
            return found
        assert time.monotonic() < deadline, f"{what} did not come: {[e.type for e in found]}"
        await asyncio.sleep(0.05)


def in_menu(found: list[StoredEvent]) -> bool:
    return any(e.type == "node_entered" and e.data.get("node") == "menu" for e in found)


def ended(found: list[StoredEvent]) -> bool:
    return bool(found) and found[-1].type in ("hung_up", "abandoned", "call_lost")


def journey(found: list[StoredEvent]) -> list[tuple[str, Any]]:
    return [(e.type, e.data.get("node")) for e in found]


def test_hotline_call_walks_the_shipped_flow_and_the_contact_is_stored(service: ServiceProcess) -> None:
    done = service.run("call", "100", "--digits", "1,1,1", "--timeout", "45")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [re.sub(r"^\s*\d+\.\d+s\s+", "", line) for line in done.stdout.splitlines()]
    steps = [
        "node_entered welcome (play) in flow hotline",
        "node_entered choose_language (language) in flow hotline",
        "press 1",
        "language_chosen",
        "node_entered main_menu (menu) in flow hotline",
        "press 1",
        "option_chosen",
        "queued",
        "queue_overflow",
        "node_entered all_busy (play) in flow shared",
        "node_entered offer_callback (callback) in flow shared",
        "press 1",
        "callback_requested",
        "hung_up",
    ]
    at = 0
    for step in steps:
        found = [i for i, line in enumerate(lines) if i >= at and line.startswith(step)]
        assert found, f"{step!r} missing after line {at} of:\n{done.stdout}"
        at = found[0] + 1
    assert "keys never asked for" not in done.stdout
    contact_id = re.search(r"contact ([0-9a-f]{32})", done.stdout)
    assert contact_id is not None, done.stdout

    async def timeline() -> list[StoredEvent]:
        store = await open_service_store(service)
        try:
            return await store.timeline(contact_id.group(1))
        finally:
            await store.close()

    stored = asyncio.run(timeline())
    nodes = [e.data["node"] for e in stored if e.type == "node_entered"]
    assert nodes[:3] == ["welcome", "choose_language", "office_hours"]
    assert nodes[-2:] == ["all_busy", "offer_callback"]
    assert [e.type for e in stored[-2:]] == ["callback_requested", "hung_up"]
    assert stored[0].type == "call_started" and stored[0].data["caller"] == "+48221234567"

    listed = service.run("contacts")
    assert listed.returncode == 0, listed.stderr
    assert "+48221234567" in listed.stdout and "welcome > choose_language" in listed.stdout


def test_hotline_call_says_when_the_service_is_not_there(service: ServiceProcess, asterisk: Running) -> None:
    assert service.stop() == 0
    done = service.run("call", "--digits", "1", "--timeout", "10")
    assert done.returncode == 1
    assert (
        "the service is not connected to Asterisk (no ARI app 'hotline'); start it with `hotline serve`"
        in (done.stderr)
    )
    service.env["HOTLINE_ARI_PASSWORD"] = "wrong"
    done = service.run("call", "--timeout", "10")
    assert done.returncode == 1 and "refused the ARI user" in done.stderr


async def test_twenty_concurrent_calls_are_kept_apart(service: ServiceProcess, caller: Caller) -> None:
    store = await open_service_store(service)
    try:
        legs = await asyncio.gather(*(caller.call(TEST_NUMBER) for _ in range(20)))
        await asyncio.gather(*(wait_events(store, leg, in_menu, 15) for _, leg in legs))
        for index, (caller_leg, _) in enumerate(legs):
            await caller.press(caller_leg, str(index % 2 + 1))
        results = await asyncio.gather(*(wait_events(store, leg, ended, 20) for _, leg in legs))
    finally:
        await store.close()
    contacts = set()
    for index, found in enumerate(results):
        digit = str(index % 2 + 1)
        target = "one" if digit == "1" else "two"
        assert journey(found) == [
            ("call_started", None),
            ("node_entered", "menu"),
            ("option_chosen", "menu"),
            ("node_entered", target),
            ("node_entered", "bye"),
            ("hung_up", "bye"),
        ]
        assert found[2].data["digits"] == digit
        assert len({e.contact_id for e in found}) == 1
        contacts.add(found[0].contact_id)
    assert len(contacts) == 20


async def test_a_reload_reaches_new_calls_while_a_call_in_progress_keeps_its_flow(
    service: ServiceProcess, caller: Caller
) -> None:
    store = await open_service_store(service)
    try:
        before = service.health()
        assert before is not None
        old_leg, old_hotline = await caller.call(TEST_NUMBER)
        await wait_events(store, old_hotline, in_menu)

        test_flow = service.flows / "test.yaml"
        test_flow.write_text(
            test_flow.read_text().replace("options: {1: one, 2: two}", "options: {1: two, 2: one}"), "utf-8"
        )
        after = await asyncio.to_thread(
            service.wait_for, lambda h: h["flows"]["reloads"] == 1, 5, "the flows were not reloaded"
        )
        assert after["flows"]["version"] != before["flows"]["version"]

        new_leg, new_hotline = await caller.call(TEST_NUMBER)
        await wait_events(store, new_hotline, in_menu)
        await caller.press(old_leg, "1")
        await caller.press(new_leg, "1")
        old = await wait_events(store, old_hotline, ended)
        new = await wait_events(store, new_hotline, ended)
    finally:
        await store.close()
    assert [e.data["target"] for e in old if e.type == "option_chosen"] == ["one"]
    assert [e.data["target"] for e in new if e.type == "option_chosen"] == ["two"]
    assert "flows reloaded" in service.text()


async def test_a_broken_edit_is_rejected_and_calls_go_on(service: ServiceProcess, caller: Caller) -> None:
    before = service.health()
    assert before is not None
    test_flow = service.flows / "test.yaml"
    test_flow.write_text(test_flow.read_text().replace("{1: one, 2: two}", "{1: nowhere, 2: two}"), "utf-8")
    after = await asyncio.to_thread(
        service.wait_for, lambda h: h["flows"]["rejected"] == 1, 5, "the broken edit was not noticed"
    )
    assert after["flows"]["version"] == before["flows"]["version"]
    assert after["flows"]["reloads"] == 0
    rejected = [line for line in service.text().splitlines() if "flows not reloaded: " in line]
    assert any(f"{test_flow}:" in line and "'nowhere'" in line for line in rejected), service.text()

    store = await open_service_store(service)
    try:
        caller_leg, hotline_leg = await caller.call(TEST_NUMBER)
        await wait_events(store, hotline_leg, in_menu)
        await caller.press(caller_leg, "1")
        found = await wait_events(store, hotline_leg, ended)
    finally:
        await store.close()
    assert [e.data["target"] for e in found if e.type == "option_chosen"] == ["one"]


async def test_the_service_comes_back_after_asterisk_restarts(
    service: ServiceProcess, caller: Caller, asterisk: Running
) -> None:
    store = await open_service_store(service)
    try:
        _, cut_off = await caller.call(TEST_NUMBER)
        await wait_events(store, cut_off, in_menu)
        await asyncio.to_thread(Sandbox(asterisk.root).start, DIALPLAN_DIR, asterisk.values)
        health = await asyncio.to_thread(
            service.wait_for,
            lambda h: h["asterisk"]["connected"] and h["asterisk"]["connections"] >= 2,
            10,
            "the service did not reconnect",
        )
        assert health["asterisk"]["calls"] == 0
        lost = await wait_events(store, cut_off, ended, what="the cut-off call's end")
        # a restart hangs the call up before it stops: the call ends where it was (a kill: test_faults.py)
        assert journey(lost) == [("call_started", None), ("node_entered", "menu"), ("abandoned", "menu")]

        await caller.wait_connected(5)
        caller_leg, hotline_leg = await caller.call(TEST_NUMBER)
        await wait_events(store, hotline_leg, in_menu)
        await caller.press(caller_leg, "2")
        found = await wait_events(store, hotline_leg, ended)
    finally:
        await store.close()
    assert journey(found)[-3:] == [("node_entered", "two"), ("node_entered", "bye"), ("hung_up", "bye")]


async def test_sigterm_ends_calls_flushes_the_writer_and_exits_0(
    service: ServiceProcess, caller: Caller
) -> None:
    store = await open_service_store(service)
    try:
        _, hotline_leg = await caller.call(TEST_NUMBER)
        await wait_events(store, hotline_leg, in_menu)
        began = time.monotonic()
        assert await asyncio.to_thread(service.stop) == 0
        assert time.monotonic() - began < 8
        found = await events_of(store, hotline_leg)
    finally:
        await store.close()
    assert journey(found) == [("call_started", None), ("node_entered", "menu"), ("hung_up", "menu")]
    assert found[-1].data["by"] == "service" and found[-1].data["reason"] == "service_stopping"
    assert "SIGTERM: stopping" in service.text() and "service stopped" in service.text()
    spool = service.folder / "var" / "spool"
    assert sorted(spool.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")) == []  # nothing left waiting


async def agi_contact(store: Store, call_id: str) -> tuple[list[str], Any]:
    """A FastAGI call's event types and its contact row, once the contact has ended."""
    found = await wait_events(store, call_id, lambda f: bool(f) and f[-1].type in ("hung_up", "abandoned"))
    contact = await store.contact(found[0].contact_id)
    assert contact is not None and {e.contact_id for e in found} == {contact.id}
    return [e.type for e in found], contact


async def test_a_fastagi_flow_follows_the_service_clock(service: ServiceProcess, caller: Caller) -> None:
    (service.flows / "clock.yaml").write_text(CLOCK_FLOW, "utf-8")  # open on 2026-11-16 only
    await asyncio.to_thread(
        service.wait_for, lambda h: "clock" in h["flows"]["flows"], 5, "the clock flow was not loaded"
    )
    store = await open_service_store(service)
    try:
        caller_leg, agi_leg = await caller.call(AGI_NUMBER, {"FLOW": "clock"})
        types, contact = await agi_contact(store, agi_leg)
        branch = [e.data for e in await events_of(store, agi_leg) if e.type == "branch_taken"]
    finally:
        await store.close()
    # HOTLINE_CLOCK_AT is Monday 2026-11-16 10:00 in Warsaw: the flow and the contact's times say so,
    # whatever the wall clock says
    assert service.env["HOTLINE_CLOCK_AT"] == OPEN_HOURS
    assert branch == [{"node": "check", "case": 0, "target": "open"}]
    assert types == ["call_started", "node_entered", "branch_taken", "node_entered", "hung_up"]
    assert contact.started_at is not None and contact.started_at.date().isoformat() == "2026-11-16"
    assert (contact.outcome, contact.ended_by) == ("ended_in_ivr", "flow")
    await caller.events.wait_for(is_event(caller_leg, StasisEnd), 10)


async def test_sigterm_drains_fastagi_calls_and_closes_every_contact(
    tmp_path: Path, asterisk: Running, caller: Caller
) -> None:
    service = make_service(tmp_path, asterisk)  # the test flow's menu waits 8 s for a key
    service.start(drain=3.0)
    store = await open_service_store(service)
    try:
        legs = {name: await caller.call(AGI_NUMBER, {"FLOW": "test"}) for name in ("presses", "silent")}
        for _, agi_leg in legs.values():
            await wait_events(store, agi_leg, in_menu)
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(
            until, lambda: "fastagi: no new calls" in service.text(), 10, "the FastAGI drain did not start"
        )
        # during the drain: a call in progress ends as the caller wants, a new call is not taken
        await caller.press(legs["presses"][0], "1")
        legs["late"] = await caller.call(AGI_NUMBER, {"FLOW": "test"})
        for caller_leg, _ in legs.values():  # no channel is left behind (the late one was never answered)
            await caller.events.wait_for(is_event(caller_leg, ChannelDestroyed), 15)
        assert await asyncio.to_thread(service.process.wait, 20) == 0
        ends = {name: await agi_contact(store, agi_leg) for name, (_, agi_leg) in legs.items()}
    finally:
        await store.close()
        service.kill()
    assert {name: (c.outcome, c.ended_by) for name, (_, c) in ends.items()} == {
        "presses": ("ended_in_ivr", "flow"),
        "silent": ("ended_in_ivr", "service"),
        "late": ("ended_in_ivr", "service"),
    }
    assert ends["presses"][0][-4:] == ["option_chosen", "node_entered", "node_entered", "hung_up"]
    assert ends["silent"][0] == ["call_started", "node_entered", "hung_up"]
    assert ends["late"][0] == ["call_started", "hung_up"]

    async def reasons() -> dict[str, Any]:
        store = await open_service_store(service)
        try:
            return {
                name: [e.data.get("reason") for e in await events_of(store, leg) if e.type == "hung_up"]
                for name, (_, leg) in legs.items()
            }
        finally:
            await store.close()

    assert await reasons() == {
        "presses": [None],
        "silent": ["service_stopping"],
        "late": ["service_stopping"],
    }
    assert "service stopped" in service.text()


def test_a_broken_flow_set_at_start_stops_the_service_with_the_lint_lines(
    tmp_path: Path, asterisk: Running
) -> None:
    service = make_service(tmp_path, asterisk)
    (service.flows / "test.yaml").write_text(
        (service.flows / "test.yaml").read_text().replace("next: bye", "next: byee", 1), "utf-8"
    )
    done = service.run("serve", timeout=30)
    assert done.returncode == 1
    assert f"{service.flows / 'test.yaml'}:" in done.stderr and "'byee'" in done.stderr
    assert "the service did not start" in done.stderr
