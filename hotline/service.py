"""The hotline service in one asyncio process: `hotline serve`.

`Service(config)` opens the contact store, starts the event writer, loads the flows, connects to
Asterisk over ARI (the Stasis app that runs the IVR on each call), serves FastAGI and the HTTP API, and
watches the flow files. Everything is started in order on one `AsyncExitStack` and torn down in the
reverse order, so a failure half-way leaves nothing running.

Flows reload while calls go on: `FlowLibrary` polls the flow files' sizes and modification times once a
second and, on a change, loads the whole set again. A set with a mistake is rejected, every lint line
in the log, and the old set stays live. New calls start on the live set; a call in progress keeps the
set it started with (its `Session` holds it).

Every part speaks to ARI through one pool of at most `asterisk.ari_connections` kept-alive connections,
under Asterisk's HTTP `sessionlimit`. While the event socket is down the calls pause; on every
(re)connect `hotline.pickup.Pickup` settles the calls the service runs and picks up what it finds from
before a restart (conversations go on, callers resume or go back to their queue, contacts left open
are closed with `service_restarted`).

On SIGTERM or SIGINT the service stops taking calls (a new call is hung up), gives the calls in
progress, ARI and FastAGI, `drain_seconds` to end and hangs up the rest; then it stops FastAGI, the
calls, the call-backs, routing, AMI and ARI, then the API, lets the writer flush every event to the
database (or its spool) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from contacts import EventName
from hotline import metrics
from hotline.agents.routing_file import RoutingConfigError, load_routing_config, watch_routing_file
from hotline.agents.service import RoutingService
from hotline.api import make_app
from hotline.asterisk.ami import AmiLoginError, AmiWatcher
from hotline.asterisk.ari import AriClient, connection_pool
from hotline.asterisk.errors import AriError
from hotline.asterisk.events import (
    SERVICE_EVENTS,
    AriEvent,
    Channel,
    ChannelDestroyed,
    StasisEnd,
    StasisStart,
)
from hotline.asterisk.fastagi import FastAgiServer
from hotline.callbacks.requests import CallbackRequests
from hotline.callbacks.worker import CallbackWorker
from hotline.calls.app import CallApp
from hotline.calls.runner import CallRunner
from hotline.clock import Clock, utc_now
from hotline.config import Config
from hotline.dispatch import AppEvents
from hotline.flowfiles import POLL_SECONDS, FlowLibrary
from hotline.pickup import Pickup
from hotline.store import (
    CallbackStore,
    EventWriter,
    Store,
    StoreError,
    default_spool_dir,
    new_event,
    open_store,
)
from ivr.actions import RequestCallback
from ivr.events import ServiceHangup
from routing.model import RoutingConfig
from routing.switchboard import Settings, Switchboard

log = structlog.get_logger("hotline.service")

#: How long calls in progress may go on after SIGTERM before they are hung up.
DRAIN_SECONDS = 5.0
#: After a (re)connect, how long a channel found in the app may take to show up as a call of ours
#: (its StasisStart may be on its way) before it is taken for a leftover and hung up.
ADOPT_GRACE = 1.0
#: The AGI path has no channel of its own in the service: its contact id is derived from the call id.
AGI_CONTACTS = uuid.UUID("5b8f8c1e-2f7a-4d8e-9a57-6f1f0f3c2a11")


class ServiceError(Exception):
    """The service cannot start; `errors` holds one line per problem, each naming the fix."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


# --- the service ------------------------------------------------------------------------------------


class Service:
    """Everything `hotline serve` runs, in one asyncio process."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utc_now,
        drain_seconds: float = DRAIN_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        adopt_grace: float = ADOPT_GRACE,
        routing_config: RoutingConfig | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.drain_seconds = drain_seconds
        self.poll_seconds = poll_seconds
        self.adopt_grace = adopt_grace
        self.library = FlowLibrary(config.flows.directory, config.flows.numbers, config.flows.default)
        self.store: Store | None = None
        self.writer: EventWriter | None = None
        self.ari: AriClient | None = None
        self.calls: CallApp | None = None
        self.events: AppEvents | None = None
        self.callback_requests: CallbackRequests | None = None
        self.agi: FastAgiServer | None = None
        self.ami: AmiWatcher | None = None
        self.routing: RoutingService | None = None
        self.callback_worker: CallbackWorker | None = None
        self.pickup: Pickup | None = None
        self._api: web.AppRunner | None = None
        self._routing_config = routing_config
        self.api_address: tuple[str, int] | None = None
        self._stack = AsyncExitStack()
        self._pool: aiohttp.ClientSession | None = None  # the ARI connection pool, once started
        self._stop = asyncio.Event()
        self._draining = False
        self._ours: set[str] = set()  # channels whose StasisStart this service handled

    # --- start and stop ---------------------------------------------------------------------------

    def check(self) -> None:
        """What must be in the config before anything starts (ServiceError otherwise)."""
        if not self.config.asterisk.ari_password:
            raise ServiceError(
                [
                    f"{self.config.source or 'the config'}: asterisk.ari_password is not set; write "
                    "ari_password: ${HOTLINE_ARI_PASSWORD} under asterisk: and set the variable "
                    "(the sandbox prints it: hotline asterisk status)"
                ]
            )

    async def start(self) -> None:
        """Start everything; raises ServiceError, FlowErrors or StoreError with nothing left running."""
        self.check()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        config = self.config
        live = self.library.load()
        log.info(
            "flows loaded",
            version=live.version,
            flows=sorted(live.flows),
            directory=str(config.flows.directory),
        )

        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.store = await open_store(config.store_url)
        self._stack.push_async_callback(store.close)
        writer = self.writer = EventWriter(store, spool_dir=default_spool_dir(config.data_dir))
        await writer.start()
        self._stack.push_async_callback(self._stop_writer)
        self._stack.push_async_callback(self._stop_api)  # the API stops last, after every call

        asterisk = config.asterisk
        assert asterisk.ari_password is not None
        started_at = self.clock()
        pool = self._pool = connection_pool(asterisk.ari_connections)
        self._stack.push_async_callback(pool.close)
        ari = self.ari = AriClient(
            asterisk.ari_url,
            asterisk.ari_username,
            asterisk.ari_password,
            asterisk.app,
            session=pool,
            events=SERVICE_EVENTS,
        )
        self._stack.push_async_callback(ari.close)
        await self._start_ami()
        routing = await self._start_routing(ari, writer, store)
        worker = await self._start_callbacks(routing, store)
        requests = self.callback_requests = CallbackRequests(
            CallbackStore(store),
            routing=lambda: None if routing is None else routing.config,
            country_code=config.callbacks.country_code,
            kept=worker.wake if worker is not None else lambda: None,
        )
        # one HTTP session for every flow's CRM lookups: connections kept alive, not one session each
        lookups = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
        self._stack.push_async_callback(lookups.close)
        calls = self.calls = CallApp(
            ari,
            self.library.current,
            config.flows.numbers,
            config.flows.default,
            writer,
            http=lookups,
            clock=self.clock,
            queueing=routing,
            callbacks=requests,
            limit=config.calls.limit,
            busy_prompt=config.calls.busy_prompt,
        )
        self.events = AppEvents(ari, calls, routing)
        self._stack.push_async_callback(calls.close)
        pickup = self.pickup = Pickup(
            ari,
            calls,
            routing=routing,
            callback_app=routing.callback_ari.app if routing is not None and routing.callback_ari else None,
            store=store,
            writer=writer,
            clock=self.clock,
            started_at=started_at,
            grace=self.adopt_grace,
            is_ours=self._ours.__contains__,
        )
        self._stack.push_async_callback(pickup.close)

        if asterisk.agi.enabled:
            agi = self.agi = FastAgiServer(
                self.library.current,
                host=asterisk.agi.host,
                port=asterisk.agi.port,
                record=self._record_agi,
                identify=self._identify,
                numbers=config.flows.numbers,
                keep_callback=self._keep_agi_callback,
                clock=self.clock,
            )
            try:
                await agi.start()
            except OSError as e:
                raise ServiceError(
                    [
                        f"asterisk.agi.listen: cannot listen on {asterisk.agi.listen}: {e}; free the port or set enabled: false"
                    ]
                ) from None
            self._stack.push_async_callback(agi.close)

        await self._start_api(store)

        watcher = asyncio.create_task(self.library.watch(self.poll_seconds), name="hotline-flow-watcher")
        self._stack.push_async_callback(_cancel, watcher)

        ari.start(self._on_event, on_connected=pickup.connected, on_disconnected=pickup.disconnected)
        log.info("service started", ari=asterisk.ari_url, app=asterisk.app, api=config.api.listen)

    async def _start_ami(self) -> None:
        ami = self.config.asterisk.ami
        if not ami.secret:
            log.warning("not watching AMI: asterisk.ami.secret is not set")
            return
        watcher = AmiWatcher(ami.host, ami.port, ami.username, ami.secret)
        try:
            await watcher.start()
        except AmiLoginError as e:
            raise ServiceError(
                [f"asterisk.ami: {e}; check asterisk.ami.username and asterisk.ami.secret (manager.conf)"]
            ) from None
        self.ami = watcher
        self._stack.push_async_callback(watcher.close)

    async def _start_routing(
        self, ari: AriClient, writer: EventWriter, store: Store
    ) -> RoutingService | None:
        """Routing, when there is a routing file (or a config given in code): queued calls reach agents."""
        config = self._routing_config
        path = self.config.routing.file
        if config is None and path is not None:
            config = _load_routing(path)
        if config is None:
            log.info("no routing file: queued callers take the flow's overflow", fix="set routing.file")
            return None
        settings, asterisk = self.config.callbacks, self.config.asterisk
        callback_ari: AriClient | None = None
        if settings.enabled:
            assert asterisk.ari_password is not None
            callback_ari = AriClient(
                asterisk.ari_url,
                asterisk.ari_username,
                asterisk.ari_password,
                settings.app,
                session=self._pool,
                events=SERVICE_EVENTS,
            )
        switchboard = Switchboard(
            config,
            Settings(
                dial=settings.dial,
                dial_timeout=settings.dial_timeout,
                seed=uuid.uuid4().hex,
            ),
        )
        routing = self.routing = RoutingService(
            switchboard,
            ari,
            writer,
            clock=self.clock,
            ami=self.ami,
            store=store,
            callbacks=CallbackStore(store),
            callback_ari=callback_ari,
            owner=settings.worker or socket.gethostname(),
        )
        await routing.start()
        self._stack.push_async_callback(routing.close)
        log.info("routing started", agents=sorted(config.agents), queues=sorted(config.queues))
        if path is not None and self._routing_config is None:
            watcher = asyncio.create_task(
                watch_routing_file(routing, path, self.poll_seconds), name="hotline-routing-watcher"
            )
            self._stack.push_async_callback(_cancel, watcher)
        return routing

    async def _start_callbacks(self, routing: RoutingService | None, store: Store) -> CallbackWorker | None:
        """The call-back worker: due call-backs join their queues and are dialed on their own Stasis app."""
        settings = self.config.callbacks
        if routing is None:
            return None
        if not settings.enabled or routing.callback_ari is None:
            log.info("call-backs are not dialed here", fix="set callbacks.enabled: true")
            return None
        worker = self.callback_worker = CallbackWorker(
            CallbackStore(store),
            routing,
            routing.callback_ari,
            owner=routing.owner,
            dial=settings.dial,
            clock=self.clock,
        )
        await worker.start()
        self._stack.push_async_callback(worker.close)
        log.info("call-backs dialed", app=settings.app, worker=worker.owner, dial=settings.dial)
        return worker

    def _readings(self) -> metrics.Readings:
        """What `/metrics` reads at each scrape: the live state of each part that runs."""
        routing, writer = self.routing, self.writer
        return metrics.Readings(
            ari_connected=lambda: self.ari is not None and self.ari.connected,
            calls=lambda: len(self.calls.calls) if self.calls is not None else 0,
            writer_backlog=None if writer is None else (lambda: writer.backlog),
            events=None if writer is None else (lambda: writer.submitted),
            flow_reloads=lambda: (self.library.reloads, self.library.rejected),
            queues=None if routing is None else routing.queues,
            agents=None if routing is None else routing.agents,
            callbacks_held=None if routing is None else (lambda: len(routing.held_callbacks())),
        )

    async def _start_api(self, store: Store) -> None:
        api = self.config.api
        app = make_app(
            store,
            api.tokens,
            routing=self.routing,
            clock=self.clock,
            health=self.health,
            readings=self._readings(),
        )
        runner = self._api = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, api.host, api.port).start()
        except OSError as e:
            raise ServiceError(
                [f"api.listen: cannot listen on {api.listen}: {e}; free the port or change it"]
            ) from None
        address = runner.addresses[0]
        self.api_address = (str(address[0]), int(address[1]))
        if not api.tokens:
            log.warning(
                "the API has no tokens: it refuses every request but /api/health", fix="add api.tokens"
            )
        log.info("api listening", listen=f"{api.host}:{self.api_address[1]}")

    async def stop(self) -> None:
        """Stop taking calls, end the calls in progress, close everything (the API last), flush the
        writer."""
        self._draining = True
        try:
            await self._drain()
        finally:
            await self._stack.aclose()
        log.info("service stopped")

    async def _stop_api(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await api.cleanup()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, on_started: Callable[[Service], Awaitable[None] | None] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT (or `request_stop()`), stop."""
        loop = asyncio.get_running_loop()
        await self.start()
        # what starting made (modules, flows, schemas) lives as long as the service: out of the
        # collector's sight, so its full collections stay short while calls run
        gc.collect()
        gc.freeze()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._signalled, sig)
                handled.append(sig)
        try:
            if on_started is not None:
                started = on_started(self)
                if started is not None:
                    await started
            await self._stop.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await self.stop()

    def _signalled(self, sig: signal.Signals) -> None:
        log.info(f"{sig.name}: stopping; no new calls", calls=len(self.calls.calls) if self.calls else 0)
        self._draining = True
        self._stop.set()

    async def _drain(self) -> None:
        """Give the calls in progress, ARI and FastAGI, time to end, then hang up what is left."""
        self._draining = True
        if self.agi is None:
            await self._drain_ari()
        else:
            await asyncio.gather(self._drain_ari(), self.agi.drain(self.drain_seconds))

    async def _drain_ari(self) -> None:
        """Give the ARI calls time to end, then end what is left (the service hangs up) and wait for
        their end. A caller talking to an agent is never cut: the conversation goes on in Asterisk and
        the next start adopts it."""
        calls, ari = self.calls, self.ari
        if calls is None or ari is None:
            return

        def draining() -> list[CallRunner]:
            return [runner for runner in calls.calls.values() if not self._talking(runner)]

        deadline = time.monotonic() + self.drain_seconds
        while draining() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for runner in draining():
            log.info("ending a call: the service is stopping", channel=runner.channel_id)
            runner.feed(ServiceHangup("service_stopping"))
        deadline = time.monotonic() + 3.0
        while draining() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for runner in draining():
            runner.feed_ari(StasisEnd(found_channel(runner.channel_id)))  # Asterisk did not tell: close it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.wait(), 1.0)
        talking = [runner.channel_id for runner in calls.calls.values() if self._talking(runner)]
        if talking:
            log.info("conversations go on without the service; the next start adopts them", channels=talking)

    def _talking(self, runner: CallRunner) -> bool:
        return self.routing is not None and self.routing.talking(runner.contact_id)

    async def _stop_writer(self) -> None:
        if self.writer is not None:
            await self.writer.stop()
            backlog = self.writer.backlog
            if backlog:
                log.warning(
                    f"{backlog} events wait in the spool for the database; the next start writes them"
                )

    # --- calls ------------------------------------------------------------------------------------

    async def _on_event(self, event: AriEvent) -> None:
        assert self.events is not None and self.ari is not None
        if isinstance(event, StasisStart):
            if self._draining:
                log.info("not taking the call: the service is stopping", channel=event.channel_id)
                with contextlib.suppress(AriError):
                    await self.ari.hangup(event.channel_id)
                return
            self._ours.add(event.channel_id)
        elif isinstance(event, StasisEnd | ChannelDestroyed):
            self._ours.discard(event.channel_id)
        await self.events(event)

    def _record_agi(self, call_id: str, event_type: EventName, data: dict[str, Any]) -> None:
        """A contact event of a FastAGI call; the call id (Asterisk's uniqueid) names its contact."""
        if self.writer is None:
            return
        contact_id = uuid.uuid5(AGI_CONTACTS, call_id).hex
        try:
            written = self.writer.submit(
                new_event(event_type, contact_id, at=self.clock(), call_id=call_id, data=data)
            )
        except StoreError as e:
            log.error("contact event not written", call=call_id, type=event_type, error=str(e))
            return
        written.add_done_callback(_log_failed_write)

    async def _keep_agi_callback(self, call_id: str, action: RequestCallback) -> str:
        """An AGI call's call-back, kept like an ARI call's on the contact its events are written on."""
        assert self.callback_requests is not None
        contact_id = uuid.uuid5(AGI_CONTACTS, call_id).hex
        stored = await self.callback_requests.keep(action, contact_id, self.clock())
        return stored.id

    async def _identify(self, phone: str) -> dict[str, str] | None:
        """Channel variables for the caller from the customer store: CUSTOMER_ID, CUSTOMER_NAME and
        CUSTOMER_<ATTRIBUTE> for each plain attribute."""
        if self.store is None:
            return None
        customer = await self.store.customer_by_phone(phone)
        if customer is None:
            return None
        found = {"CUSTOMER_ID": customer.id}
        if customer.name:
            found["CUSTOMER_NAME"] = customer.name
        for name, value in customer.attributes.items():
            if isinstance(value, str | int | float | bool):
                found[f"CUSTOMER_{name.upper()}"] = str(value)
        return found

    # --- health -----------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """The service's part of /api/health."""
        details: dict[str, Any] = {}
        if self.ari is not None:
            ami = None
            if self.ami is not None:
                ami = await self.ami.health()
            details["asterisk"] = {
                "connected": self.ari.connected,
                "connections": self.ari.connections,
                "calls": len(self.calls.calls) if self.calls is not None else 0,
                "ami": ami,
            }
        live = self.library.loaded
        if live is not None:
            details["flows"] = {
                "version": live.version,
                "loaded_at": live.loaded_at,
                "flows": sorted(live.flows),
                "reloads": self.library.reloads,
                "rejected": self.library.rejected,
            }
        if self.writer is not None:
            details["writer"] = {"backlog": self.writer.backlog}
        return details


def found_channel(channel_id: str) -> Channel:
    """A channel known by its id alone (to tell a call that its channel is gone)."""
    return Channel(channel_id)


def _load_routing(path: Path) -> RoutingConfig:
    """The routing file, or ServiceError with every mistake in it."""
    try:
        return load_routing_config(path)
    except RoutingConfigError as e:
        raise ServiceError(list(e.errors)) from None


def _log_failed_write(written: asyncio.Future[None]) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.error("contact event not written", error=str(written.exception()))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
