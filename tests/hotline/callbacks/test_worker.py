"""Call-backs dialed on the real Asterisk: the worker claims a due call-back from a real SQLite store,
the router offers its placeholder to an agent (a Local channel that answers), the agent is rung first,
then the customer (`Local/answer@hotline-test`, or `Local/busy@hotline-test` for a busy line)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog.testing

from hotline.asterisk.events import StasisStart
from hotline.asterisk.sandbox import Running
from hotline.store import Callback, CallbackStore, Contact
from routing.model import RoutingConfig
from routing.switchboard import Settings
from support.routed_hotline import ANSWERS, RINGS, RecordingWorker, RoutedHotline, agent, routing

NUMBER = "+48221234567"
OUTBOUND = "+48225550100"
APP = "hotline-callbacks"


def config(
    attempts: int = 3,
    delay: float = 300.0,
    agents: dict[str, Any] | None = None,
    dial: str = "agent_first",
    caller_id: str | None = None,
) -> RoutingConfig:
    queue: dict[str, Any] = {
        "skills": {"support": 1},
        "callback": {"attempts": attempts, "delay": delay, "dial": dial},
    }
    if caller_id is not None:
        queue["caller_id"] = caller_id
    return routing(agents or {"ann": agent(ANSWERS, {"support": 5})}, {"support": queue})


#: A whisper of one beep: the tests do not wait for the number's digits.
SHORT = {"whisper": ("sound:beep",), "whisper_number": False}


@contextlib.asynccontextmanager
async def worker(
    asterisk: Running,
    tmp_path: Path,
    routing_config: RoutingConfig,
    customer: str,
    whisper: dict[str, Any] | None = None,
    dial_timeout: float = 30.0,
    log_in: bool = True,
) -> AsyncIterator[tuple[RoutedHotline, RecordingWorker]]:
    settings = Settings(
        dial=customer, dial_timeout=dial_timeout, caller_id=OUTBOUND, seed=tmp_path.name, **(whisper or {})
    )
    hotline = RoutedHotline(asterisk, tmp_path, routing_config, None, settings=settings, callback_app=APP)
    try:
        await hotline.start()
        assert hotline.worker is not None
        if log_in:
            await hotline.log_in(*routing_config.agents)
        yield hotline, hotline.worker
    finally:
        await hotline.stop()


async def bridges_of(hotline: RoutedHotline, cb: Callback) -> list[dict[str, Any]]:
    """The bridges Asterisk holds for the call-back (other tests' bridges may still be there)."""
    return [b for b in await hotline.ari.get("/bridges") if b.get("name") == f"callback-{cb.id}"]


async def request(
    hotline: RoutedHotline, *, due: float = 0.0, expires: float = 3600.0, note: str | None = None
) -> Callback:
    now = datetime.now(UTC)
    return await CallbackStore(hotline._store()).create(
        number=NUMBER,
        now=now,
        next_attempt_at=now + timedelta(seconds=due),
        queue="support",
        expires_at=now + timedelta(seconds=expires),
        note=note,
        customer_ref="crm-1001",
    )


async def contact_once(
    hotline: RoutedHotline, contact_id: str, done: Callable[[Contact], bool], timeout: float = 5.0
) -> Contact:
    """The contact's row once `done` holds (the writer's events land within a batch)."""
    deadline = time.monotonic() + timeout
    while True:
        contact = await hotline._store().contact(contact_id)
        if contact is not None and done(contact):
            return contact
        assert time.monotonic() < deadline, f"contact {contact_id} is {contact}"
        await asyncio.sleep(0.05)


def started_legs(dialer: RecordingWorker) -> list[str]:
    """What each leg the worker made was for, in the order they reached the app: customer or callback
    (the agent's)."""
    return [e.args[0] for e in dialer.heard if isinstance(e, StasisStart) and e.args]


async def until(hotline: RoutedHotline, callback_id: str, *states: str, timeout: float = 10.0) -> Callback:
    store = CallbackStore(hotline._store())
    deadline = time.monotonic() + timeout
    while True:
        cb = await store.get(callback_id)
        assert cb is not None
        if cb.state in states:
            return cb
        if time.monotonic() > deadline:
            raise AssertionError(f"call-back {callback_id} is {cb.state}, not {states}")
        await asyncio.sleep(0.05)


async def contact_events(hotline: RoutedHotline, contact_id: str) -> list[tuple[str, dict[str, Any]]]:
    stored = await hotline._store().events_after(0, limit=10_000)
    return [(e.type, e.data) for e in stored if e.contact_id == contact_id]


async def test_a_due_call_back_rings_the_agent_then_bridges_the_customer(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(asterisk, tmp_path, config(), "Local/answer@hotline-test") as (hotline, dialer):
        cb = await request(hotline, note="router keeps rebooting")

        done = await until(hotline, cb.id, "completed", timeout=20)
        # ann's desktop said why before her phone rang: the customer's reference, the note, the attempt
        [pop] = [m for m in hotline.stream if m["type"] == "screen_pop"]
        assert (pop["agent"], pop["caller"], pop["queue"]) == ("ann", NUMBER, "support")
        assert pop["callback"]["id"] == cb.id and pop["callback"]["attempt"] == 1
        assert (pop["callback"]["note"], pop["callback"]["customer_ref"]) == (
            "router keeps rebooting",
            "crm-1001",
        )
        # before the customer was dialed, the agent heard whom they are calling
        assert dialer.media_played() == ["sound:to-call-this-number", "digits:48221234567"]
        assert (done.attempts, done.last_outcome, done.lease_owner) == (1, "answered", None)
        assert hotline.state("ann")[0] == "on_call"
        bridges = await bridges_of(hotline, cb)
        assert len(bridges) == 1 and len(bridges[0]["channels"]) == 2
        callers = [(await hotline.ari.get(f"/channels/{c}"))["caller"] for c in bridges[0]["channels"]]
        # the agent's phone shows the customer; the customer sees the queue's outbound number
        assert sorted(c["number"] for c in callers) == sorted([NUMBER, OUTBOUND])

        stored = await contact_events(hotline, cb.contact_id)
        assert [t for t, _ in stored] == ["callback_scheduled", "callback_attempted", "callback_completed"]
        attempted, completed = stored[1][1], stored[2][1]
        assert attempted["contact_id"] == completed["contact_id"] == done.attempt_contact_id
        assert completed["agent"] == "ann"

        # the customer hangs up: the bridge goes, ann wraps up, then takes calls again
        customer = next(
            c for c, who in zip(bridges[0]["channels"], callers, strict=True) if who["number"] == OUTBOUND
        )
        await hotline.ari.hangup(customer)
        await hotline.until_state("ann", "wrap_up", timeout=3)
        # the attempt's own contact: ann answered it, the customer talked, then hung up
        attempt = await contact_once(hotline, done.attempt_contact_id or "", lambda c: c.ended_by is not None)
        assert (attempt.outcome, attempt.agent, attempt.ended_by) == ("answered", "ann", "customer")
        assert attempt.talk_seconds is not None and attempt.talk_seconds > 0
        await hotline.until_state("ann", "available", timeout=3)
        assert await bridges_of(hotline, cb) == []


async def test_a_busy_customer_is_tried_again_after_the_delay_then_the_call_back_fails(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(
        asterisk, tmp_path, config(attempts=2, delay=1.5), "Local/busy@hotline-test", SHORT
    ) as (
        hotline,
        _,
    ):
        cb = await request(hotline)

        waiting = await until(hotline, cb.id, "retry_wait")
        assert (waiting.attempts, waiting.last_outcome) == (1, "busy")
        assert waiting.next_attempt_at is not None
        assert waiting.next_attempt_at - waiting.updated_at >= timedelta(seconds=1.5)
        await hotline.until_state("ann", "wrap_up", timeout=3)

        failed = await until(hotline, cb.id, "failed")
        assert (failed.attempts, failed.last_outcome, failed.next_attempt_at) == (2, "busy", None)
        assert failed.updated_at >= waiting.next_attempt_at
        stored = await contact_events(hotline, cb.contact_id)
        assert [t for t, _ in stored] == [
            "callback_scheduled",
            "callback_attempted",
            "callback_scheduled",
            "callback_attempted",
            "callback_failed",
        ]
        assert stored[-1][1] == {"reason": "busy", "attempts": 2}
        await hotline.until_state("ann", "available", timeout=3)
        assert await bridges_of(hotline, cb) == []


async def test_an_agent_who_does_not_answer_is_paused_and_the_next_agent_makes_the_call_back(
    asterisk: Running, tmp_path: Path
) -> None:
    agents = {"ann": agent(RINGS, {"support": 9}), "bob": agent(ANSWERS, {"support": 3})}
    async with worker(asterisk, tmp_path, config(agents=agents), "Local/answer@hotline-test", SHORT) as (
        hotline,
        _,
    ):
        cb = await request(hotline)

        done = await until(hotline, cb.id, "completed")
        assert (done.attempts, done.last_outcome) == (1, "answered")
        stored = await contact_events(hotline, cb.contact_id)
        assert stored[-1] == ("callback_completed", {"contact_id": done.attempt_contact_id, "agent": "bob"})
        assert hotline.state("ann") == ("paused", "no answer")
        assert hotline.state("bob")[0] == "on_call"
        # ann's phone stopped ringing; only bob's leg and the customer's are up
        ringing = [c for c in await hotline.ari.list_channels() if "ring@hotline-test" in c.name]
        assert ringing == []
        assert len((await bridges_of(hotline, cb))[0]["channels"]) == 2


async def test_customer_first_dials_the_customer_then_rings_the_agent_and_bridges_them(
    asterisk: Running, tmp_path: Path
) -> None:
    routing_config = config(dial="customer_first", caller_id="+48225550199")
    async with worker(asterisk, tmp_path, routing_config, "Local/answer@hotline-test") as (hotline, dialer):
        cb = await request(hotline)

        done = await until(hotline, cb.id, "completed", timeout=20)
        assert (done.attempts, done.last_outcome) == (1, "answered")
        # the customer answered first, then the agent's phone rang; no whisper on this order
        assert started_legs(dialer) == ["customer", "callback"]
        assert dialer.media_played() == []
        assert hotline.state("ann")[0] == "on_call"
        [bridge] = await bridges_of(hotline, cb)
        callers = [(await hotline.ari.get(f"/channels/{c}"))["caller"]["number"] for c in bridge["channels"]]
        # the queue's own outbound number (routing file) wins over the worker's fallback
        assert sorted(callers) == sorted([NUMBER, "+48225550199"])


async def test_customer_first_a_customer_who_does_not_answer_frees_the_agent_without_a_pause(
    asterisk: Running, tmp_path: Path
) -> None:
    routing_config = config(dial="customer_first", delay=60)
    async with worker(asterisk, tmp_path, routing_config, "Local/ring@hotline-test", dial_timeout=1.5) as (
        hotline,
        dialer,
    ):
        cb = await request(hotline)

        waiting = await until(hotline, cb.id, "retry_wait", timeout=10)
        assert (waiting.attempts, waiting.last_outcome) == (1, "no_answer")
        # ann was only reserved: never rung, and back to available, not paused
        await hotline.until_state("ann", "available", timeout=3)
        assert started_legs(dialer) == []
        assert [q.waiting for q in hotline.service().queues()] == [[]]


async def test_a_customer_who_does_not_answer_is_called_again_and_answers_the_second_time(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(
        asterisk, tmp_path, config(attempts=3, delay=1.0), "Local/ring@hotline-test", SHORT, dial_timeout=1.5
    ) as (hotline, _):
        cb = await request(hotline)

        waiting = await until(hotline, cb.id, "retry_wait", timeout=10)
        assert (waiting.attempts, waiting.last_outcome) == (1, "no_answer")
        board = hotline.service().switchboard  # the customer is back at their phone
        board.settings = replace(board.settings, dial="Local/answer@hotline-test")
        done = await until(hotline, cb.id, "completed", timeout=10)
        assert (done.attempts, done.last_outcome) == (2, "answered")
        assert waiting.next_attempt_at is not None and done.updated_at >= waiting.next_attempt_at
        stored = await contact_events(hotline, cb.contact_id)
        assert [t for t, _ in stored] == [
            "callback_scheduled",
            "callback_attempted",
            "callback_scheduled",
            "callback_attempted",
            "callback_completed",
        ]
        # each attempt is a contact of its own, linked from the call-back's contact
        first, second = stored[1][1]["contact_id"], stored[3][1]["contact_id"]
        assert first != second and stored[4][1]["contact_id"] == second
        assert stored[2][1]["outcome"] == "no_answer"  # why there was a second attempt
        missed = await contact_once(hotline, first, lambda c: c.outcome == "not_reached")
        assert missed.agent == "ann"  # ann was rung and heard the number; the customer did not pick up
        reached = await contact_once(hotline, second, lambda c: c.answered_at is not None)
        assert reached.outcome == "answered"


async def test_a_call_back_waiting_for_an_agent_expires_and_leaves_the_queue(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(asterisk, tmp_path, config(), "Local/answer@hotline-test", log_in=False) as (
        hotline,
        dialer,
    ):
        cb = await request(hotline, expires=1.5)
        queued = await until(hotline, cb.id, "queued")
        assert queued.lease_owner == "node-1"
        [queue] = hotline.service().queues()
        assert [w.callback for w in queue.waiting] == [True]

        expired = await until(hotline, cb.id, "expired", timeout=6)
        assert expired.attempts == 0 and expired.lease_owner is None
        assert [q.waiting for q in hotline.service().queues()] == [[]]
        assert dialer.held == []
        stored = await contact_events(hotline, cb.contact_id)
        assert [t for t, _ in stored] == ["callback_scheduled", "callback_expired"]


async def test_a_call_back_scheduled_seconds_ahead_is_made_at_its_time(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(asterisk, tmp_path, config(), "Local/answer@hotline-test", SHORT) as (hotline, _):
        cb = await request(hotline, due=2.0)
        assert cb.next_attempt_at is not None
        await asyncio.sleep(1.0)
        early = await CallbackStore(hotline._store()).get(cb.id)
        assert early is not None and (early.state, early.attempts) == ("scheduled", 0)

        done = await until(hotline, cb.id, "completed", timeout=10)
        stored = await hotline._store().events_after(0, limit=10_000)
        [attempted] = [e for e in stored if e.contact_id == cb.contact_id and e.type == "callback_attempted"]
        assert attempted.at >= cb.next_attempt_at
        assert done.attempts == 1


async def test_a_call_back_cancelled_while_it_waits_leaves_the_queue_at_once(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(asterisk, tmp_path, config(), "Local/answer@hotline-test", log_in=False) as (
        hotline,
        dialer,
    ):
        cb = await request(hotline)
        await until(hotline, cb.id, "queued")
        assert [w.callback for w in hotline.service().queues()[0].waiting] == [True]

        assert await CallbackStore(hotline._store()).cancel(cb.id, datetime.now(UTC), "solved by e-mail")
        deadline = time.monotonic() + 3  # a poll or two, not the lease's 30 s
        while hotline.service().queues()[0].waiting:
            assert time.monotonic() < deadline, "the cancelled call-back still waits in the queue"
            await asyncio.sleep(0.05)
        assert dialer.held == []
        # the agent who logs in now is not rung for it
        await hotline.log_in("ann")
        await asyncio.sleep(0.5)
        assert hotline.state("ann")[0] == "available" and started_legs(dialer) == []


async def test_a_call_back_cancelled_mid_dial_hangs_up_the_customer_and_frees_the_agent(
    asterisk: Running, tmp_path: Path
) -> None:
    async with worker(asterisk, tmp_path, config(), "Local/ring@hotline-test", SHORT) as (hotline, dialer):
        cb = await request(hotline)
        await until(hotline, cb.id, "dialing")
        assert started_legs(dialer) == ["callback"]  # ann answered; the customer's phone rings

        cancelled = await CallbackStore(hotline._store()).cancel(
            cb.id, datetime.now(UTC), "customer called in"
        )
        assert cancelled is not None
        await hotline.until_state("ann", "wrap_up", timeout=4)
        ringing = [c for c in await hotline.ari.list_channels() if "ring@hotline-test" in c.name]
        assert ringing == []
        stored = await CallbackStore(hotline._store()).get(cb.id)
        assert stored is not None and (stored.state, stored.attempts) == ("cancelled", 1)
        stored_events = await contact_events(hotline, cb.contact_id)
        assert stored_events[-1] == ("callback_cancelled", {"reason": "customer called in", "attempts": 1})
        await hotline.until_state("ann", "available", timeout=3)
        assert dialer.held == []


async def test_a_dial_string_naming_a_trunk_asterisk_lacks_is_said_at_start(
    asterisk: Running, tmp_path: Path
) -> None:
    warned: dict[str, list[str]] = {}
    for trunk in ("no-such-trunk", "agent2"):  # agent2 is one of the sandbox's PJSIP endpoints
        with structlog.testing.capture_logs() as logs:
            async with worker(
                asterisk, tmp_path / trunk, config(), f"PJSIP/{{number}}@{trunk}", log_in=False
            ):
                pass
        warned[trunk] = [e["endpoint"] for e in logs if e["log_level"] == "warning" and "endpoint" in e]
    assert warned == {"no-such-trunk": ["no-such-trunk"], "agent2": []}
