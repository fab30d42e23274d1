"""The AMI adapter: Asterisk's health, and a live view of the agents' phones (registered? busy?).

It speaks the Asterisk Manager Interface through panoramisk 1.4, the only code that does. panoramisk's
last release is from 2021 and its connection handling does not suit a service: it retries a refused
login every 2 s forever, reconnects even after `close()`, logs every failed attempt, and re-sends
actions of a lost connection to the next one. So the adapter uses panoramisk for framing, parsing and
matching answers to actions, and runs the connection itself: one connection at a time, reconnects
with capped exponential backoff (with jitter), one log line per change of state, every action bounded
in time, pending actions failed at once when the connection goes.

    watcher = AmiWatcher("127.0.0.1", 5038, "hotline", secret)
    await watcher.start()                  # raises AmiLoginError for a wrong user or secret
    watcher.on_change(lambda endpoint, state: ...)
    watcher.endpoint_states()              # {"agent1": EndpointState(registered=True, ...), ...}
    await watcher.health()                 # {"available": True, "version": "22.10.1...", ...}
    await watcher.close()

The view of the phones is built at every (re)connect from a snapshot (PJSIPShowEndpoints,
PJSIPShowContacts, DeviceStateList) and kept current by `ContactStatus` and `DeviceStateChange`
events. The pure part, `EndpointTable`, turns AMI messages (plain dicts) into `EndpointState`s.
While AMI is disconnected the view keeps the last known states (`connected` says whether it is live).

AmiError                 what the adapter raises
 ├── AmiLoginError       Asterisk refused the AMI user or secret
 └── AmiUnavailable      AMI cannot be reached, does not answer in time, or the connection is gone
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from panoramisk import actions  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]
from panoramisk.manager import Manager  # type: ignore[import-untyped]

from hotline.asterisk.ari import backoff_delay

log = structlog.get_logger("hotline.asterisk")

AmiMessage = Mapping[str, Any]
ChangeCallback = Callable[[str, "EndpointState"], None]

#: The device state of an endpoint Asterisk has said nothing about.
UNKNOWN = "UNKNOWN"
#: Contact states (`ContactStatus`, `ContactList`) of a phone that cannot take calls.
UNREACHABLE = "Unreachable"
REMOVED = "Removed"
#: The only events the watcher asks Asterisk for (an AMI filter); action answers are not filtered.
WATCHED_EVENTS = ("ContactStatus", "DeviceStateChange", "FullyBooted", "Shutdown")
#: A connection that lasted less than this counts as a failed attempt: the backoff keeps growing.
STABLE_AFTER = 5.0


class AmiError(Exception):
    """Something went wrong speaking AMI; the message says what and what to do."""


class AmiLoginError(AmiError):
    """Asterisk refused the login: retrying with the same user and secret cannot help."""


class AmiUnavailable(AmiError):
    """AMI is not connected, or did not answer in time."""


# --- the pure part: AMI messages -> endpoint states --------------------------------------------------


@dataclass(frozen=True)
class EndpointState:
    """What routing needs to know about one PJSIP endpoint (an agent's phone).

    `registered`: the phone has a contact that is not known to be unreachable.
    `device_state`: Asterisk's device state (NOT_INUSE, INUSE, RINGING, RINGINUSE, BUSY, ONHOLD,
    UNAVAILABLE, INVALID, UNKNOWN). `contacts`: the registered contact URIs.
    """

    registered: bool
    device_state: str = UNKNOWN
    contacts: tuple[str, ...] = ()


def text(message: AmiMessage, key: str) -> str:
    """One header's value as text: "" when missing; the last one when Asterisk repeated the header."""
    value = message.get(key)
    if isinstance(value, list):
        value = value[-1] if value else ""
    return value.strip() if isinstance(value, str) else ""


def endpoint_of_device(device: str) -> str | None:
    """`PJSIP/agent1` -> `agent1`; None for other devices (Local/..., Queue:..., custom states)."""
    technology, sep, name = device.partition("/")
    if sep and technology.upper() == "PJSIP" and name and "/" not in name:
        return name
    return None


def device_change(message: AmiMessage) -> tuple[str, str] | None:
    """(endpoint, device state) from a `DeviceStateChange` event or DeviceStateList entry."""
    if text(message, "Event") != "DeviceStateChange":
        return None
    endpoint = endpoint_of_device(text(message, "Device"))
    state = text(message, "State").upper()
    if endpoint is None or not state:
        return None
    return endpoint, state


@dataclass(frozen=True)
class ContactChange:
    """A contact of an endpoint appeared, changed or (status REMOVED) went away."""

    endpoint: str | None  # None when the message names only the AOR
    aor: str
    uri: str
    status: str


def contact_change(message: AmiMessage) -> ContactChange | None:
    """From a `ContactStatus` event (URI, ContactStatus, AOR, EndpointName) or a PJSIPShowContacts
    `ContactList` entry (Uri, Status, ObjectName `aor;@hash`, Endpoint)."""
    event = text(message, "Event")
    if event == "ContactStatus":
        endpoint, aor = text(message, "EndpointName"), text(message, "AOR")
        uri, status = text(message, "URI"), text(message, "ContactStatus")
    elif event == "ContactList":
        endpoint, aor = text(message, "Endpoint"), text(message, "ObjectName").partition(";@")[0]
        uri, status = text(message, "Uri"), text(message, "Status")
    else:
        return None
    if not uri or not (endpoint or aor):
        return None
    return ContactChange(endpoint or None, aor, uri, status or "Unknown")


#: PJSIPShowEndpoints says device states in words (ast_devstate_str); events use the names.
_DEVICE_STATE_WORDS = {
    "unknown": "UNKNOWN",
    "not in use": "NOT_INUSE",
    "in use": "INUSE",
    "busy": "BUSY",
    "invalid": "INVALID",
    "unavailable": "UNAVAILABLE",
    "ringing": "RINGING",
    "ring+inuse": "RINGINUSE",
    "on hold": "ONHOLD",
}


def endpoint_entry(message: AmiMessage) -> tuple[str, list[str], str | None] | None:
    """(endpoint, its AORs, its device state) from a PJSIPShowEndpoints `EndpointList` entry."""
    if text(message, "Event") != "EndpointList":
        return None
    name = text(message, "ObjectName")
    if not name:
        return None
    aors = [aor.strip() for aor in text(message, "Aor").split(",") if aor.strip()]
    return name, aors, _DEVICE_STATE_WORDS.get(text(message, "DeviceState").lower())


@dataclass
class EndpointTable:
    """The phones' states, fed with AMI messages; every method returns the endpoints whose state
    changed, with their new state."""

    _endpoints: set[str] = field(default_factory=set)
    _aor_owners: dict[str, str] = field(default_factory=dict)
    _contacts: dict[str, dict[str, str]] = field(default_factory=dict)  # endpoint -> uri -> status
    _devices: dict[str, str] = field(default_factory=dict)

    def state(self, endpoint: str) -> EndpointState:
        contacts = self._contacts.get(endpoint, {})
        live = tuple(sorted(uri for uri, status in contacts.items() if status != UNREACHABLE))
        return EndpointState(bool(live), self._devices.get(endpoint, UNKNOWN), live)

    def states(self) -> dict[str, EndpointState]:
        names = self._endpoints | self._contacts.keys() | self._devices.keys()
        return {name: self.state(name) for name in sorted(names)}

    def _changes(self, before: Mapping[str, EndpointState], names: Iterable[str]) -> dict[str, EndpointState]:
        changed = {}
        for name in names:
            now = self.state(name)
            if before.get(name) != now:
                changed[name] = now
        return changed

    def _owner(self, change: ContactChange) -> str:
        return change.endpoint or self._aor_owners.get(change.aor, change.aor)

    def apply(self, message: AmiMessage) -> dict[str, EndpointState]:
        """One live event: `ContactStatus` or `DeviceStateChange`; anything else changes nothing."""
        device = device_change(message)
        if device is not None:
            endpoint, state = device
            before = {endpoint: self.state(endpoint)}
            self._endpoints.add(endpoint)
            self._devices[endpoint] = state
            return self._changes(before, [endpoint])
        contact = contact_change(message)
        if contact is None:
            return {}
        endpoint = self._owner(contact)
        before = {endpoint: self.state(endpoint)}
        self._endpoints.add(endpoint)
        contacts = self._contacts.setdefault(endpoint, {})
        if contact.status == REMOVED:
            contacts.pop(contact.uri, None)
        elif contact.status != "Updated" or contact.uri not in contacts:
            contacts[contact.uri] = contact.status  # "Updated" keeps what qualify last said
        if not contacts:
            del self._contacts[endpoint]
        return self._changes(before, [endpoint])

    def load_endpoints(self, messages: Iterable[AmiMessage]) -> dict[str, EndpointState]:
        """The endpoints Asterisk has (PJSIPShowEndpoints), with their AORs and device states."""
        before = self.states()
        self._aor_owners = {}
        for message in messages:
            found = endpoint_entry(message)
            if found is not None:
                name, aors, state = found
                self._endpoints.add(name)
                for aor in aors:
                    self._aor_owners.setdefault(aor, name)
                if state is not None:
                    self._devices[name] = state
        return self._changes(before, self.states())

    def load_contacts(self, messages: Iterable[AmiMessage]) -> dict[str, EndpointState]:
        """Every contact there is now (PJSIPShowContacts): those not listed are gone."""
        before = self.states()
        self._contacts = {}
        for message in messages:
            contact = contact_change(message)
            if contact is not None and contact.status != REMOVED:
                endpoint = self._owner(contact)
                self._endpoints.add(endpoint)
                self._contacts.setdefault(endpoint, {})[contact.uri] = contact.status
        return self._changes(before, before.keys() | self.states().keys())

    def load_devices(self, messages: Iterable[AmiMessage]) -> dict[str, EndpointState]:
        """The device states Asterisk has cached (DeviceStateList). Just after a start it may not list
        every endpoint yet: those keep the state PJSIPShowEndpoints gave."""
        before = self.states()
        for message in messages:
            found = device_change(message)
            if found is not None:
                self._endpoints.add(found[0])
                self._devices[found[0]] = found[1]
        return self._changes(before, before.keys() | self.states().keys())


def health_report(
    core_status: AmiMessage,
    core_settings: AmiMessage,
    booted: AmiMessage | None = None,
    seconds_since_login: float = 0.0,
) -> dict[str, Any]:
    """Asterisk's health from CoreStatus and CoreSettings answers; `booted` is the FullyBooted event
    of the login (Uptime, LastReload in seconds), aged by `seconds_since_login`."""

    def number(message: AmiMessage | None, key: str) -> int | None:
        try:
            return int(text(message or {}, key))
        except ValueError:
            return None

    def moment(prefix: str) -> str | None:
        day, clock = text(core_status, f"{prefix}Date"), text(core_status, f"{prefix}Time")
        return f"{day} {clock}" if day and clock else None

    def aged(value: int | None) -> int | None:
        return None if value is None else value + int(seconds_since_login)

    return {
        "available": True,
        "version": text(core_settings, "AsteriskVersion"),
        "ami_version": text(core_settings, "AMIversion"),
        "system_name": text(core_settings, "SystemName"),
        "started": moment("CoreStartup"),
        "reloaded": moment("CoreReload"),
        "uptime_seconds": aged(number(booted, "Uptime")),
        "seconds_since_reload": aged(number(booted, "LastReload")),
        "current_calls": number(core_status, "CoreCurrentCalls"),
        "processed_calls": number(core_status, "CoreProcessedCalls"),
        "max_calls": number(core_settings, "CoreMaxCalls") or None,
    }


# --- panoramisk, held on a short leash ----------------------------------------------------------------


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's AMI protocol, decoding UTF-8 across reads (a name split between two TCP reads
    keeps its letters; invalid bytes become U+FFFD) and failing pending actions when it closes."""

    responses: dict[str, Any]
    closed: bool

    def __init__(self, manager: _Manager) -> None:
        super().__init__()
        self._manager = manager
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        self.factory = manager
        self.log = manager.log
        self.config = manager.config
        self.encoding = "utf-8"
        self.version = ""  # skips panoramisk's log line per connection; CoreSettings has the version

    def data_received(self, data: bytes) -> None:
        decoded = self._decoder.decode(data)
        if decoded:
            super().data_received(decoded.encode("utf-8"))

    def close(self) -> None:
        """Fail every unanswered action (panoramisk would re-send it on the next connection)."""
        pending = list(self.responses.values())
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(
                    AmiUnavailable("the AMI connection closed before Asterisk answered")
                )
        if not self.closed:
            self.closed = True
            self.transport.close()


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its own reconnect, pinger and re-sending of old actions."""

    def __init__(self, on_event: Callable[[Any], None], on_lost: Callable[[], None]) -> None:
        super().__init__(
            ping_delay=0, reconnect_timeout=0, log=logging.getLogger("hotline.asterisk.panoramisk")
        )
        self._on_event = on_event
        self._on_lost = on_lost
        self.encoding = "utf-8"

    async def open(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        _, protocol = await loop.create_connection(lambda: _Protocol(self), host, port)
        self.protocol = protocol
        self.responses = protocol.responses
        self._connected = True

    def dispatch(self, event: Any) -> list[str]:
        self._on_event(event)
        return []

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        self._on_lost()

    def ping(self) -> None:
        """The watcher sends its own pings and notices when they go unanswered."""

    async def send_awaiting_actions(self, *_: object) -> None:
        """Actions of a lost connection are failed, never re-sent."""
        self.awaiting_actions.clear()

    def close(self) -> None:
        self._connected = False
        if self.protocol is not None:
            self.protocol.close()


class _Snapshot(actions.Action):  # type: ignore[misc]
    """A list action whose answer is applied the moment its last message is read, in stream order
    with the events around it: an event read after the list is newer than the list."""

    def __init__(self, fields: Mapping[str, str], on_complete: Callable[[list[Any]], None]) -> None:
        super().__init__(dict(fields))
        self._on_complete = on_complete
        self._applied = False

    def add_message(self, message: Any) -> bool | None:
        done = super().add_message(message)
        if self.future.done() and not self._applied:
            self._applied = True
            self._on_complete(list(self.responses))
        return done  # type: ignore[no-any-return]


# --- the watcher --------------------------------------------------------------------------------------


class AmiWatcher:
    """One AMI user on one Asterisk: health on request, the agents' phones live. Nothing touches the
    event loop before `start()`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 5.0,
        keepalive: float = 10.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self._action_timeout = action_timeout
        self._keepalive = keepalive
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._table = EndpointTable()
        self._subscribers: list[ChangeCallback] = []
        self._loading = False
        self._manager: _Manager | None = None
        self._refreshing: set[asyncio.Task[None]] = set()
        self._lost: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._connected: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._booted: AmiMessage | None = None
        self._logged_in_at = 0.0
        self._state = "stopped"
        self._last_error = "not started"
        self.connections = 0  # how many times the watcher logged in

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._connected is not None and self._connected.is_set()

    # --- the phones ---

    def endpoint_states(self) -> dict[str, EndpointState]:
        """Every PJSIP endpoint's last known state, by endpoint name."""
        return self._table.states()

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call `callback(endpoint, state)` whenever an endpoint's state changes (also when a reconnect's
        snapshot differs from what was known). Returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _publish(self, changed: Mapping[str, EndpointState]) -> None:
        if self._loading:
            return  # a reconnect's snapshot is loading: its net change is published at the end
        for endpoint, state in changed.items():
            for callback in list(self._subscribers):
                try:
                    callback(endpoint, state)
                except Exception:
                    log.exception("ami endpoint subscriber failed", endpoint=endpoint)

    def _on_event(self, event: Any) -> None:
        name = text(event, "Event")
        if name == "FullyBooted":
            self._booted = dict(event)
            self._logged_in_at = time.monotonic()
            if self._manager is not None:
                task = asyncio.get_running_loop().create_task(self._refresh())
                self._refreshing.add(task)
                task.add_done_callback(self._refreshing.discard)
        elif name in ("ContactStatus", "DeviceStateChange"):
            self._publish(self._table.apply(dict(event)))

    def _on_lost(self) -> None:
        if self._connected is not None:
            self._connected.clear()
        if self._lost is not None:
            self._lost.set()

    # --- health ---

    async def health(self) -> dict[str, Any]:
        """Asterisk's version, uptime, last reload and calls; `{"available": False, "error": ...}` when
        AMI is not connected or does not answer."""
        try:
            status = await self.action({"Action": "CoreStatus"})
            settings = await self.action({"Action": "CoreSettings"})
        except AmiUnavailable as e:
            return {"available": False, "error": str(e)}
        return health_report(status, settings, self._booted, time.monotonic() - self._logged_in_at)

    async def action(self, fields: Mapping[str, str], *, as_list: bool | None = None) -> Any:
        """Send one AMI action and return its answer (a panoramisk Message, or a list of them);
        raises AmiUnavailable when not connected or when Asterisk does not answer in time."""
        if not self.connected or self._manager is None:
            raise AmiUnavailable(f"AMI at {self.address} is not connected ({self._last_error}); {_HINT}")
        return await self._send(self._manager, actions.Action(dict(fields), as_list=as_list))

    async def _send(self, manager: _Manager, action: Any) -> Any:
        name = action["Action"]
        try:
            async with asyncio.timeout(self._action_timeout):
                return await manager.send_action(action)
        except TimeoutError:
            raise AmiUnavailable(
                f"AMI at {self.address} did not answer {name} within {self._action_timeout:g} s; {_HINT}"
            ) from None
        except AmiUnavailable as e:
            raise AmiUnavailable(f"AMI at {self.address}: {name}: {e}; {_HINT}") from None

    # --- the connection ---

    async def start(self) -> None:
        """Connect and log in, then stay connected until `close()`. Raises AmiLoginError when Asterisk
        refuses the user or secret. When Asterisk cannot be reached the watcher keeps trying in the
        background (`health()` says unavailable meanwhile)."""
        if self._runner is not None and not self._runner.done():
            raise RuntimeError(f"the AMI watcher for {self.address} is already running")
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(first), name=f"ami-{self.address}")
        try:
            await first
        except AmiLoginError:
            await self.close()
            raise

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Back once logged in (raises TimeoutError after `timeout` seconds)."""
        if self._connected is None:
            raise RuntimeError(f"the AMI watcher for {self.address} is not started; call start() first")
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def _run(self, first: asyncio.Future[None]) -> None:
        assert self._stop is not None
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    manager = await self._open()
                except AmiLoginError as e:
                    self._last_error = str(e)
                    if not first.done():
                        first.set_exception(e)
                        return
                    self._change_state("refused", error=str(e))
                except (OSError, TimeoutError, AmiUnavailable) as e:
                    self._last_error = f"{type(e).__name__}: {e}".rstrip(": ")
                    self._change_state("unreachable", address=self.address, error=self._last_error)
                    if not first.done():
                        first.set_result(None)
                else:
                    if not first.done():
                        first.set_result(None)
                    connected_at = time.monotonic()
                    await self._hold(manager)
                    if time.monotonic() - connected_at >= STABLE_AFTER:
                        attempt = 0
                    if self._stop.is_set():
                        break
                    self._change_state("lost", address=self.address, error=self._last_error)
                delay = backoff_delay(attempt, self._reconnect_initial, self._reconnect_max)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            if self._connected is not None:
                self._connected.clear()
            if not first.done():
                first.set_result(None)
            self._change_state("stopped")

    async def _open(self) -> _Manager:
        """A logged-in connection with the phones' snapshot loaded, or an error saying why not."""
        self._lost = lost = asyncio.Event()

        def on_lost() -> None:
            if self._lost is lost:
                self._on_lost()

        manager = _Manager(self._on_event, on_lost)
        try:
            async with asyncio.timeout(self._action_timeout):
                await manager.open(self.host, self.port)
            login = await self._send(
                manager,
                actions.Action(
                    {
                        "Action": "Login",
                        "Username": self.username,
                        "Secret": self._secret,
                        "Events": "system,call",
                    }
                ),
            )
            if not login.success:
                raise AmiLoginError(
                    f"AMI at {self.address} refused user {self.username!r} "
                    f"({text(login, 'Message') or 'no reason given'}); check the AMI user and secret "
                    "(manager.conf; HOTLINE_AMI_SECRET for the sandbox)"
                )
            for event in WATCHED_EVENTS:
                await self._send(
                    manager,
                    actions.Action({"Action": "Filter", "Operation": "Add", "Filter": f"Event: {event}"}),
                )
            await self._snapshot(manager)
        except BaseException:
            self._lost = None
            manager.close()
            raise
        self._manager = manager
        self.connections += 1
        assert self._connected is not None
        self._connected.set()
        self._last_error = "connection lost"
        self._change_state("connected", address=self.address, connections=self.connections)
        return manager

    async def _snapshot(self, manager: _Manager) -> None:
        """Load the phones' state from Asterisk's lists; subscribers get the net change at the end."""
        known, self._loading = self._table.states(), True
        try:
            for list_action, load in (
                ("PJSIPShowEndpoints", self._table.load_endpoints),
                ("PJSIPShowContacts", self._table.load_contacts),
                ("DeviceStateList", self._table.load_devices),
            ):
                await self._send(manager, _Snapshot({"Action": list_action}, self._loader(load)))
        finally:
            self._loading = False
            now = self._table.states()
            self._publish({name: state for name, state in now.items() if known.get(name) != state})

    async def _refresh(self) -> None:
        """Asterisk finished booting after we connected: what its lists said while it booted may be
        incomplete, so read them again."""
        manager = self._manager
        if manager is None or self._loading:
            return
        try:
            await self._snapshot(manager)
        except Exception as e:  # the connection's own loop reports a lost connection
            log.info("ami snapshot after boot failed", error=str(e))

    @staticmethod
    def _loader(
        load: Callable[[list[dict[str, Any]]], dict[str, EndpointState]],
    ) -> Callable[[list[Any]], None]:
        """Feed a list's messages to the table; what changed is published once the snapshot is in."""

        def apply(messages: list[Any]) -> None:
            load([dict(m) for m in messages])

        return apply

    async def _hold(self, manager: _Manager) -> None:
        """Until the connection is lost or the watcher stops; a ping unanswered drops the connection."""
        assert self._lost is not None and self._stop is not None
        lost, stop = self._lost, self._stop
        try:
            while not lost.is_set() and not stop.is_set():
                waiters = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiters, timeout=self._keepalive, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                if lost.is_set() or stop.is_set():
                    break
                try:
                    await self._send(manager, actions.Action({"Action": "Ping"}))
                except AmiUnavailable as e:
                    self._last_error = str(e)
                    break
        finally:
            if self._connected is not None:
                self._connected.clear()
            self._manager = None
            self._lost = None
            manager.close()

    def _change_state(self, state: str, **details: Any) -> None:
        """One log line per change of the connection's state, not one per retry."""
        if state == self._state:
            return
        self._state = state
        if state in ("connected", "stopped"):
            log.info(f"ami {state}", **details)
        else:
            log.warning(f"ami {state}, reconnecting", **details)

    async def close(self) -> None:
        """Log out and stop reconnecting."""
        if self._stop is not None:
            self._stop.set()
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        for task in list(self._refreshing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._manager is not None:
            self._manager.close()
            self._manager = None


_HINT = "is Asterisk running with AMI enabled (manager.conf)? `hotline asterisk status` tells"
