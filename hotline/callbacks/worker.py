"""The call-back worker: hands the switchboard the call-backs that fall due and keeps its leases.

The store (`CallbackStore`) makes each call-back happen once: the worker claims a due one under a
lease in its name and hands it to the switchboard (`CallbackDue`), which queues its placeholder, rings
the agent, dials the customer and settles the attempt (`routing.switchboard.dialing`). While the
switchboard holds a call-back, the worker renews its lease; a call-back cancelled or rescheduled
meanwhile (through the API), or whose lease was lost, is withdrawn from the switchboard
(`CallbackWithdrawn`). At start `recover()` settles what a crashed worker with the same name left
behind, and the legs a crash left in the call-backs' Stasis app are hung up.

The worker listens on the call-backs' own Stasis app (its `ari` client): events on those legs go to the
switchboard, and never reach the calls' app.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime, timedelta

import structlog

from hotline.agents.service import RoutingService
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.asterisk.events import AriEvent, StasisStart
from hotline.clock import Clock, utc_now
from hotline.store.callbacks import Callback, CallbackStore
from routing.switchboard import events as ev
from routing.switchboard.dialing import retry_policy

log = structlog.get_logger("hotline.callbacks")

#: A dial string through a PJSIP trunk: `PJSIP/{number}@<endpoint>`.
_TRUNK = re.compile(r"PJSIP/\{number\}@([A-Za-z0-9_.\-]+)")


class CallbackWorker:
    """Claims due call-backs for the switchboard. `start()` before use, `close()` at the end."""

    def __init__(
        self,
        callbacks: CallbackStore,
        routing: RoutingService,
        ari: AriClient,
        *,
        owner: str,
        dial: str,
        clock: Clock = utc_now,
        poll: float = 1.0,
        lease: float = 60.0,
    ) -> None:
        self.callbacks = callbacks
        self.routing = routing
        self.ari = ari
        self.owner = owner
        self.dial = dial
        self.poll = poll
        self.lease = lease
        self._clock = clock
        self._leases: dict[str, datetime] = {}  # call-back id -> until when our lease runs
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._store_down = False

    @property
    def held(self) -> list[str]:
        """The call-backs the switchboard holds now (waiting as placeholders or being made)."""
        return self.routing.held_callbacks()

    # --- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Settle what this worker's name left behind, listen on the call-backs' app, start the loop.
        Legs left in the app from before a restart are the service's pick-up's (`hotline.pickup`): a
        conversation goes on, any other leg is hung up."""
        now = self._clock()
        config = self.routing.config
        recovered = await self.callbacks.recover(
            self.owner, now, lambda cb: retry_policy(config, cb.queue).next_attempt(cb, "failed", now)
        )
        for cb in recovered:
            log.info("call-back recovered after a restart", callback=cb.id, state=cb.state)
        self.ari.start(self._on_event)
        try:
            await self.ari.wait_connected(5)
        except TimeoutError:
            log.warning("call-backs wait for Asterisk; the ARI socket reconnects", app=self.ari.app)
        else:
            await self._check_dial()
        self._loop_task = asyncio.create_task(self._run(), name="hotline-callbacks")

    async def _on_event(self, event: AriEvent) -> None:
        if event.channel_id is not None and self.routing.owns(event.channel_id):
            self.routing.channel_event(event)
        elif isinstance(event, StasisStart):
            # a leg placed before a restart answered late: its attempt is settled, nobody waits for it
            log.info("a call-back leg answered that is no longer held; hanging up", leg=event.channel_id)
            with contextlib.suppress(AriError):
                await self.ari.hangup(event.channel_id)

    async def _check_dial(self) -> None:
        """Say at start when the customers' dial string names a PJSIP trunk Asterisk does not have:
        otherwise every call-back would ring an agent and then fail to reach its customer."""
        trunk = _TRUNK.fullmatch(self.dial)
        if trunk is None:
            return
        try:
            await self.ari.get(f"/endpoints/PJSIP/{trunk.group(1)}")
        except AriNotFound:
            log.warning(
                "call-backs cannot reach customers: Asterisk has no such PJSIP endpoint",
                dial=self.dial,
                endpoint=trunk.group(1),
                fix="define the trunk in pjsip.conf (dialplan/pjsip.conf has an example) or set callbacks.dial",
            )
        except AriError as e:
            log.info("could not check the call-backs' trunk", dial=self.dial, error=str(e))

    async def close(self) -> None:
        """Stop claiming; the leases of what is held lapse and are recovered."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.ari.close()

    # --- the loop -----------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due call-backs now (one was just requested), not at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception as e:
                if not self._store_down:
                    log.warning("call-backs wait for the store; trying again", owner=self.owner, error=str(e))
                    self._store_down = True
            else:
                if self._store_down:
                    log.info("call-backs: the store answers again", owner=self.owner)
                    self._store_down = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def tick(self) -> None:
        """One round: expire, renew what the switchboard holds, withdraw what is no longer ours, claim
        what is due."""
        now = self._clock()
        for cb in await self.callbacks.expire(now):
            log.info("call-back expired", callback=cb.id)
        held = set(self.routing.held_callbacks())
        for callback_id in [c for c in self._leases if c not in held]:
            del self._leases[callback_id]
        await self._renew(now)
        await self._withdraw_taken()
        for cb in await self.callbacks.claim_due(self.owner, now, self.lease):
            await self._hand_over(cb)

    async def _hand_over(self, cb: Callback) -> None:
        self._leases[cb.id] = cb.lease_until or self._clock()
        customer = await self.routing.customer_of(cb.number)
        await self.routing.feed(ev.CallbackDue(cb, customer))

    async def _renew(self, now: datetime) -> None:
        for callback_id, until in list(self._leases.items()):
            if until - now > timedelta(seconds=self.lease / 2):
                continue
            renewed = await self.callbacks.renew(callback_id, self.owner, now, self.lease)
            if renewed is not None and renewed.lease_until is not None:
                self._leases[callback_id] = renewed.lease_until
                continue
            log.info("call-back lease lost", callback=callback_id)
            del self._leases[callback_id]
            await self.routing.feed(ev.CallbackWithdrawn(callback_id, "lease lost"))

    async def _withdraw_taken(self) -> None:
        """Call-backs taken from this worker meanwhile (cancelled or rescheduled through the API)."""
        if not self._leases:
            return
        leases = await self.callbacks.leases(list(self._leases))
        for callback_id in list(self._leases):
            state, owner = leases.get(callback_id, (None, None))
            if owner == self.owner and state in ("queued", "dialing"):
                continue
            log.info("call-back taken from this worker", callback=callback_id, state=state)
            del self._leases[callback_id]
            await self.routing.feed(ev.CallbackWithdrawn(callback_id, "cancelled"))
