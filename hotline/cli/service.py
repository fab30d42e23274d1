"""`hotline serve` runs the service; `hotline call` places a test call into it from the terminal.

`hotline call` is a caller of its own: a second ARI app (`hotline-call`) that dials `Local/<NUMBER>@hotline`,
so the call goes through the dialplan into the service like any caller's. It follows the call's contact
events in the store the service writes to (the same config) and prints them as they come. Whenever the
IVR asks for input (a `node_entered` of a menu, collect, language or callback node, or a `no_input` or
`invalid_input` that asks again) it presses the next group of `--digits`; a group `wait` presses nothing
and lets the timeout run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog
from rich.markup import escape

from contacts import EventName
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound, AriUnauthorized, AriUnavailable
from hotline.asterisk.events import AriEvent, ChannelDestroyed, ChannelHangupRequest, StasisEnd, StasisStart
from hotline.cli.common import config_option, configure_logging, err, load, open_existing, out, shown
from hotline.clock import offset_clock, utc_now
from hotline.config import Config, LogConfig
from hotline.service import Service, ServiceError
from hotline.store import Store, StoredEvent, StoreError
from ivr.errors import FlowErrors
from ivr.nodes import REGISTRY

#: The ARI app `hotline call` dials from.
CALL_APP = "hotline-call"
#: The dialplan context of the hotline numbers (dialplan/extensions.conf).
HOTLINE_CONTEXT = "hotline"
#: Node types that wait for the caller's keys.
INPUT_NODES = frozenset(node.TYPE_KEY for node in REGISTRY if node.TAKES_KEYS)
#: Events after which the engine asks for keys again.
ASK_AGAIN: frozenset[EventName] = frozenset({"no_input", "invalid_input"})
#: Events that end the caller's time with the IVR.
ENDINGS: frozenset[EventName] = frozenset({"hung_up", "abandoned", "transferred"})
#: The environment variable that sets the service's clock (ISO 8601), for demos and tests of opening hours.
CLOCK_ENV = "HOTLINE_CLOCK_AT"
#: How long the hotline may take to answer.
ANSWER_TIMEOUT = 10.0
#: A group of --digits that presses nothing.
WAIT = "wait"

STYLE: dict[EventName, str] = {
    "node_entered": "cyan",
    "option_chosen": "bold yellow",
    "language_chosen": "bold yellow",
    "input_collected": "bold yellow",
    "no_input": "yellow",
    "invalid_input": "yellow",
    "hung_up": "bold green",
    "abandoned": "bold red",
    "flow_error": "bold red",
}

T = TypeVar("T")


def _clock_from_env() -> datetime | None:
    value = os.environ.get(CLOCK_ENV)
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.ClickException(
            f"{CLOCK_ENV}={value!r} is not a date and time; write it like 2026-11-16T10:00+01:00"
        ) from None
    if at.tzinfo is None:
        raise click.ClickException(f"{CLOCK_ENV}={value!r} needs an offset, like 2026-11-16T10:00+01:00")
    return at


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (less CPU per request and event than asyncio's own;
    docs/benchmarks.md), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
        return None
    return uvloop.new_event_loop


def run_on_best_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the best event loop there is."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


@click.command("serve")
@config_option
@click.option(
    "--drain",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds calls in progress may go on after SIGTERM before they are hung up.",
)
def serve_command(config_path: Path | None, drain: float) -> None:
    """Run the service: the IVR on Asterisk's calls, FastAGI, the HTTP API, flow reload. Stop with SIGTERM."""
    config = load(config_path)
    configure_logging(config.log)
    at = _clock_from_env()
    if at is not None:
        structlog.get_logger("hotline.service").warning(
            f"the service's clock starts at {at.isoformat()} ({CLOCK_ENV})"
        )
    service = Service(config, drain_seconds=drain, clock=utc_now if at is None else offset_clock(at))
    try:
        run_on_best_loop(service.run())
    except FlowErrors as e:
        for error in e.errors:
            err.print(escape(str(error)), style="red")
        err.print(f"{len(e.errors)} error(s) in the flows; the service did not start.", style="bold red")
        raise SystemExit(1) from None
    except ServiceError as e:
        for line in e.errors:
            err.print(escape(line), style="bold red")
        raise SystemExit(1) from None
    except StoreError as e:
        err.print(f"{escape(str(e))} ({escape(shown(config.store_url))})", style="bold red")
        raise SystemExit(1) from None


# --- hotline call -----------------------------------------------------------------------------------


def parse_digits(digits: str | None) -> list[str]:
    """`1,2,#` -> ["1", "2", "#"]; `wait` stays a group that presses nothing."""
    if not digits:
        return []
    groups = [group.strip() for group in digits.split(",") if group.strip()]
    for group in groups:
        if group != WAIT and any(key not in "0123456789*#ABCD" for key in group):
            raise click.BadParameter(
                f"'{group}' is not keys; use 0-9, *, # (A-D), or 'wait' to let a timeout run",
                param_hint="--digits",
            )
    return groups


def describe(event: StoredEvent) -> str:
    data = dict(event.data)
    if event.type == "node_entered":
        text = f"{data.pop('node', '?')} ({data.pop('type', '?')})"
        flow = data.pop("flow", None)
        return text + (f" in flow {flow}" if flow else "")
    data.pop("flow", None)
    return " ".join(f"{key}={_short(value)}" for key, value in data.items())


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TestCall:
    """One call from the terminal: dial, follow the contact in the store, press keys when asked."""

    def __init__(
        self, config: Config, store: Store, number: str, digits: list[str], caller: str | None
    ) -> None:
        assert config.asterisk.ari_password is not None
        self.config = config
        self.store = store
        self.number = number
        self.digits = list(digits)
        self.caller = caller
        self.ari = AriClient(
            config.asterisk.ari_url,
            config.asterisk.ari_username,
            config.asterisk.ari_password,
            CALL_APP,
            reconnect_initial=0.2,
            reconnect_max=1.0,
        )
        self.caller_leg = uuid.uuid4().hex
        self.hotline_leg = uuid.uuid4().hex
        self.answered = asyncio.Event()
        self.hung_up = asyncio.Event()
        self.began = time.monotonic()
        self.contact_id: str | None = None
        self.outcome: str | None = None

    async def _on_event(self, event: AriEvent) -> None:
        if event.channel_id != self.caller_leg:
            return
        if isinstance(event, StasisStart):
            self.answered.set()
        elif isinstance(event, StasisEnd | ChannelDestroyed | ChannelHangupRequest):
            self.hung_up.set()

    def say(self, text: str, style: str = "") -> None:
        out.print(f"{time.monotonic() - self.began:6.1f}s  {escape(text)}", style=style)

    async def reachable(self) -> None:
        """Asterisk answers and the service's app is there; ClickException saying which is not."""
        url = self.config.asterisk.ari_url
        try:
            await self.ari.ping()
        except AriUnauthorized:
            raise click.ClickException(
                f"Asterisk at {url} refused the ARI user {self.config.asterisk.ari_username!r}: "
                "check asterisk.ari_username and asterisk.ari_password (HOTLINE_ARI_PASSWORD)"
            ) from None
        except AriError as e:
            raise click.ClickException(
                f"Asterisk is not reachable at {url} ({e.message}); start it (`make run` or "
                "`hotline asterisk start`) or fix asterisk.ari_url"
            ) from None
        app = self.config.asterisk.app
        try:
            await self.ari.get(f"/applications/{app}")
        except AriNotFound:
            raise click.ClickException(
                f"the service is not connected to Asterisk (no ARI app {app!r}); start it with `hotline serve`"
            ) from None

    async def run(self, timeout: float) -> int:
        await self.reachable()
        self.ari.start(self._on_event)
        try:
            await self.ari.wait_connected(5.0)
        except TimeoutError:
            raise click.ClickException(
                f"could not open the ARI event socket at {self.config.asterisk.ari_url}"
            ) from None
        endpoint = f"Local/{self.number}@{HOTLINE_CONTEXT}"
        out.print(
            f"Calling {self.number} ({endpoint}) from {self.caller or 'a withheld number'}"
            + (f", pressing {','.join(self.digits)}" if self.digits else ""),
            style="bold",
        )
        after = await self._last_seq()
        self.began = time.monotonic()
        try:
            await self.ari.originate(
                endpoint,
                CALL_APP,
                self.caller_leg,
                self.hotline_leg,
                formats="ulaw",
                caller_id=self.caller,
            )
        except AriError as e:
            raise click.ClickException(f"Asterisk refused the call: {e}") from None
        try:
            return await self._follow(after, timeout)
        finally:
            with contextlib.suppress(AriError):
                await self.ari.hangup(self.caller_leg)

    async def _last_seq(self) -> int:
        after = 0
        while True:
            page = await self.store.events_after(after, 1000)
            if not page:
                return after
            after = page[-1].seq

    async def _follow(self, after: int, timeout: float) -> int:
        deadline = self.began + timeout
        answer_by = self.began + ANSWER_TIMEOUT
        ended_at: float | None = None
        while True:
            now = time.monotonic()
            for event in await self.store.events_after(after, 500):
                after = event.seq
                if event.call_id != self.hotline_leg:
                    continue
                await self._on_contact_event(event)
                if event.type in ENDINGS:
                    ended_at = ended_at or now
            if ended_at is not None and now - ended_at > 0.3:
                return self._done()
            if self.hung_up.is_set() and ended_at is None:
                ended_at = now + 1.0  # the hotline's last events may still be on their way
            if not self.answered.is_set() and now > answer_by and self.contact_id is None:
                err.print(
                    f"the hotline did not answer {self.number} within {ANSWER_TIMEOUT:.0f} s: is `hotline serve` "
                    "running with this config, and is the number in the dialplan's [hotline] context?",
                    style="bold red",
                )
                return 1
            if now > deadline:
                self.say(f"timed out after {timeout:.0f} s; hanging up", "bold red")
                return 1
            await asyncio.sleep(0.1)

    async def _on_contact_event(self, event: StoredEvent) -> None:
        self.contact_id = event.contact_id
        self.say(f"{event.type} {describe(event)}".rstrip(), STYLE.get(event.type, ""))
        if event.type in ("hung_up", "abandoned"):
            self.outcome = event.type
        asks = (
            event.type == "node_entered" and event.data.get("type") in INPUT_NODES
        ) or event.type in ASK_AGAIN
        if asks and self.digits:
            group = self.digits.pop(0)
            if group == WAIT:
                self.say("(waiting: no keys)", "yellow")
                return
            self.say(f"press {group}", "bold yellow")
            try:
                await self.ari.send_dtmf(self.caller_leg, group)
            except AriError as e:
                self.say(f"could not press {group}: {e}", "red")

    def _done(self) -> int:
        if self.contact_id is not None:
            out.print(f"contact {self.contact_id}; `hotline contacts` lists it", style="bold")
        if self.digits:
            out.print(f"keys never asked for: {','.join(self.digits)}", style="yellow")
        return 0


@click.command("call")
@click.argument("number", default="100")
@click.option(
    "--digits", help="Keys to press each time the IVR asks, e.g. 1,2,# ('wait' lets a timeout run)."
)
@click.option(
    "--caller", default="+48221234567", show_default=True, help="The caller's number ('' to withhold)."
)
@config_option
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Give up after this many seconds.",
)
def call_command(
    config_path: Path | None, number: str, digits: str | None, caller: str, timeout: float
) -> None:
    """Place a test call to NUMBER (default 100) in the running service and print the caller's journey."""
    groups = parse_digits(digits)
    config = load(config_path)
    configure_logging(LogConfig(level="error", format=config.log.format))
    if not config.asterisk.ari_password:
        raise click.ClickException(
            "asterisk.ari_password is not set in the config; `hotline call` dials through ARI with the service's user"
        )

    async def work() -> int:
        try:
            store = await open_existing(config.store_url)
        except StoreError as e:
            raise click.ClickException(f"{e}; is `hotline serve` running with this config?") from None
        call = TestCall(config, store, number, groups, caller or None)
        try:
            return await call.run(timeout)
        finally:
            await call.ari.close()
            await store.close()

    try:
        code = asyncio.run(work())
    except AriUnavailable as e:
        raise click.ClickException(f"Asterisk stopped answering: {e}") from None
    sys.exit(code)


COMMANDS = (serve_command, call_command)
