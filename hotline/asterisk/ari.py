"""The ARI client: REST requests to Asterisk, and one event WebSocket that outlives Asterisk restarts.

Requests go over the event WebSocket itself while it is connected (ARI REST over WebSocket, Asterisk
22: a `RESTRequest` message answered by a `RESTResponse` with the same `request_id`): no HTTP request,
no connection, no response parsing per request. Without the socket (before the first connect, while
Asterisk is away, or an Asterisk that does not answer REST on the socket) they go over HTTP, through a
pool of kept-alive connections shared by every client given it.

`events` names the event types the client wants: after every connect Asterisk is told to send those
only (`PUT /applications/<app>/eventFilter`), so the socket does not carry the dozens of events a
call makes that nobody reads.

Events reach the handler as typed values (`hotline.asterisk.events`), in order for each channel, on one
worker task per channel, so a slow handler for one caller never delays another caller's events. The socket reconnects with capped exponential
backoff (with jitter); after every (re)connect `on_connected` runs, so the service can pick up or release
the channels it finds in its app: channels stay in Stasis while no socket is connected.

    client = AriClient("http://127.0.0.1:8088/ari", "hotline", password, "hotline")
    client.start(handler, on_connected=adopt)    # or: await client.run(handler, on_connected=adopt)
    await client.answer(channel_id)
    await client.close()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from hotline.asterisk.errors import AriError, AriNotFound, error_for
from hotline.asterisk.events import AriEvent, Bridge, Channel, ends_channel, parse_event

log = structlog.get_logger("hotline.asterisk")

EventHandler = Callable[[AriEvent], Awaitable[None]]
ConnectedHook = Callable[[], Awaitable[None]]
ParamValue = str | int | float | bool | Sequence[str] | None

#: A connection that lasted less than this counts as a failed attempt: the backoff keeps growing.
STABLE_AFTER = 5.0
#: Seconds before trying an idempotent request again (times the attempt).
RETRY_PAUSE = 0.05
#: How long a request over the socket may wait for its answer before the socket is taken for one
#: that does not answer REST (an Asterisk older than 22): requests go over HTTP from then on.
PROBE_TIMEOUT = 2.0


class _SocketLost(Exception):
    """The event socket closed while a request on it waited for its answer."""


def connection_pool(limit: int = 64) -> aiohttp.ClientSession:
    """An HTTP session for ARI with at most `limit` connections, kept alive and shared by every client
    given it: the whole service stays under Asterisk's `sessionlimit` however many calls it runs."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
    )


def _segment(value: str) -> str:
    return quote(value, safe="")


def _param(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return ",".join(value or ())


def _params(params: Mapping[str, ParamValue]) -> dict[str, str]:
    return {name: _param(value) for name, value in params.items() if value is not None}


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before reconnect `attempt` (0-based): doubling up to `maximum`, with jitter
    between half and all of it, so many clients do not reconnect in step."""
    ceiling = min(maximum, initial * 2 ** min(attempt, 30))
    return random.uniform(ceiling / 2, ceiling)


class AriClient:
    """One ARI user and app on one Asterisk. REST methods raise `AriError`s (hotline.asterisk.errors)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 10.0,
        reconnect_initial: float = 0.2,
        reconnect_max: float = 1.0,
        retries: int = 2,
        events: Sequence[str] | None = None,
        rest_over_socket: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.app = app
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._retries = retries
        self._events = tuple(events) if events is not None else None
        self._rest_over_socket = rest_over_socket
        self._socket_rest = False  # the connected socket answers REST requests
        self._pending: dict[str, asyncio.Future[tuple[int, str]]] = {}
        self._request_ids = itertools.count(1)
        self.requests_over_socket = 0  # requests answered on the event socket since the start
        self._workers: dict[str | None, tuple[asyncio.Queue[AriEvent], asyncio.Task[None]]] = {}
        self._hooks: set[asyncio.Task[None]] = set()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._runner: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._stop = asyncio.Event()
        self._state = "stopped"
        self.connections = 0  # how many times the event socket connected

    # --- REST ---------------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = connection_pool()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue] | None = None,
        body: Any = None,
        *,
        idempotent: bool | None = None,
    ) -> Any:
        """`method /ari<path>`: the parsed JSON answer, or None when Asterisk sends no body (204).

        A request that cannot have changed anything twice (GET, DELETE, or one the caller says is
        `idempotent`) is tried again, up to `retries` times, when the connection fails under it (a
        kept-alive connection Asterisk closed, a moment of overload); any other is tried once."""
        again = (
            self._retries if (idempotent if idempotent is not None else method in ("GET", "DELETE")) else 0
        )
        for attempt in range(again + 1):
            try:
                ws = self._ws
                if ws is not None and self._socket_rest and not ws.closed:
                    self.requests_over_socket += 1
                    status, text = await self._over_socket(
                        ws, method, path, params, body, self._timeout.total
                    )
                else:
                    status, text = await self._over_http(method, path, params, body)
                break
            except (aiohttp.ClientError, OSError, TimeoutError, _SocketLost) as e:
                if attempt < again and not isinstance(e, TimeoutError):
                    await asyncio.sleep(RETRY_PAUSE * (attempt + 1))
                    continue
                raise error_for(method, path, None, f"{type(e).__name__}: {e}".rstrip(": ")) from e
        if status >= 400:
            raise error_for(method, path, status, _message(text))
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise AriError(method, path, status, f"the answer is not JSON: {text[:200]!r}") from e

    async def _over_http(
        self, method: str, path: str, params: Mapping[str, ParamValue] | None, body: Any
    ) -> tuple[int, str]:
        async with self._http().request(
            method,
            self.base_url + path,
            params=_params(params or {}),
            json=body,
            headers=self._headers,
            timeout=self._timeout,
        ) as response:
            return response.status, await response.text()

    async def _over_socket(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        method: str,
        path: str,
        params: Mapping[str, ParamValue] | None,
        body: Any,
        timeout: float | None,
    ) -> tuple[int, str]:
        """One request as a `RESTRequest` on the event socket; its status and body."""
        request_id = str(next(self._request_ids))
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "request_id": request_id,
            "method": method,
            "uri": path.lstrip("/"),
        }
        query = _params(params or {})
        if query:
            message["query_strings"] = [{"name": name, "value": value} for name, value in query.items()]
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(body)
        answer: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            await ws.send_str(json.dumps(message))
            async with asyncio.timeout(timeout):
                return await answer
        finally:
            self._pending.pop(request_id, None)

    def _answered(self, response: Mapping[str, Any]) -> None:
        answer = self._pending.pop(str(response.get("request_id")), None)
        if answer is None or answer.done():
            return
        status = response.get("status_code")
        body = response.get("message_body")
        answer.set_result((status if isinstance(status, int) else 500, body if isinstance(body, str) else ""))

    def _drop_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(_SocketLost("the ARI event socket closed"))

    async def get(self, path: str, **params: ParamValue) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, *, idempotent: bool = False, **params: ParamValue) -> Any:
        return await self.request("POST", path, params, idempotent=idempotent)

    async def delete(self, path: str, **params: ParamValue) -> Any:
        return await self.request("DELETE", path, params)

    async def ping(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/asterisk/ping")
        return result

    async def list_channels(self) -> list[Channel]:
        result = await self.get("/channels")
        channels = (Channel.parse(raw) for raw in (result if isinstance(result, list) else []))
        return [channel for channel in channels if channel is not None]

    async def stasis_channels(self) -> list[Channel]:
        """The channels sitting in this client's app (e.g. left there while no socket was connected)."""
        return [channel for channel in await self.list_channels() if channel.in_app(self.app)]

    async def application_channels(self) -> list[str]:
        """The ids of the channels the app holds now (`GET /applications/<app>`)."""
        app = await self.get(f"/applications/{_segment(self.app)}")
        ids = app.get("channel_ids") if isinstance(app, dict) else None
        return [str(channel_id) for channel_id in ids] if isinstance(ids, list) else []

    async def list_bridges(self) -> list[Bridge]:
        result = await self.get("/bridges")
        bridges = (Bridge.parse(raw) for raw in (result if isinstance(result, list) else []))
        return [bridge for bridge in bridges if bridge is not None]

    async def playback_exists(self, playback_id: str) -> bool:
        """Is the prompt still playing (or queued)? False once it ended."""
        try:
            await self.get(f"/playbacks/{_segment(playback_id)}")
        except AriNotFound:
            return False
        return True

    async def answer(self, channel_id: str) -> None:
        await self.post(f"/channels/{_segment(channel_id)}/answer", idempotent=True)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.delete(f"/channels/{_segment(channel_id)}", reason=reason)

    async def play(
        self, channel_id: str, media: Sequence[str], lang: str | None = None, playback_id: str | None = None
    ) -> dict[str, Any]:
        """Play `media` (e.g. ["sound:hello-world", "digits:42"]) one after the other."""
        path = f"/channels/{_segment(channel_id)}/play"
        if playback_id is not None:
            path += f"/{_segment(playback_id)}"
        result: dict[str, Any] = await self.post(path, media=list(media), lang=lang)
        return result

    async def stop_playback(self, playback_id: str) -> None:
        await self.delete(f"/playbacks/{_segment(playback_id)}")

    async def send_dtmf(self, channel_id: str, dtmf: str) -> None:
        await self.post(f"/channels/{_segment(channel_id)}/dtmf", dtmf=dtmf)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.post(
            f"/channels/{_segment(channel_id)}/variable", idempotent=True, variable=name, value=value
        )

    async def get_variable(self, channel_id: str, name: str) -> str:
        result = await self.get(f"/channels/{_segment(channel_id)}/variable", variable=name)
        return str(result["value"])

    async def originate(
        self,
        endpoint: str,
        app: str,
        channel_id: str,
        other_channel_id: str | None = None,
        formats: str | None = "ulaw",
        app_args: str | None = None,
        variables: Mapping[str, str] | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """A new channel to `endpoint` that enters Stasis `app` when answered. Use fixed-length ids:
        Asterisk rejects an id that is a prefix of a live one."""
        result: dict[str, Any] = await self.request(
            "POST",
            "/channels",
            {
                "endpoint": endpoint,
                "app": app,
                "appArgs": app_args,
                "channelId": channel_id,
                "otherChannelId": other_channel_id,
                "formats": formats,
                "callerId": caller_id,
                "timeout": timeout,
            },
            {"variables": dict(variables)} if variables else None,
        )
        return result

    async def record(
        self,
        channel_id: str,
        name: str,
        max_duration: int = 0,
        beep: bool = False,
        terminate_on: str = "none",
        *,
        format: str = "wav",
        max_silence: int = 0,
        if_exists: str = "overwrite",
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/channels/{_segment(channel_id)}/record",
            name=name,
            format=format,
            maxDurationSeconds=max_duration,
            maxSilenceSeconds=max_silence,
            ifExists=if_exists,
            beep=beep,
            terminateOn=terminate_on,
        )
        return result

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Let the channel leave Stasis and go on in the dialplan (by default after its Stasis() line)."""
        await self.post(
            f"/channels/{_segment(channel_id)}/continue",
            context=context,
            extension=extension,
            priority=priority,
        )

    async def create_bridge(
        self, bridge_id: str | None = None, bridge_type: str = "mixing", name: str | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/bridges", type=bridge_type, bridgeId=bridge_id, name=name)
        return result

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.post(f"/bridges/{_segment(bridge_id)}/addChannel", channel=channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.delete(f"/bridges/{_segment(bridge_id)}")

    # --- events -------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Back once the event socket is connected (raises TimeoutError after `timeout` seconds)."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    def start(
        self,
        handler: EventHandler,
        *,
        on_connected: ConnectedHook | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        """Run the event socket in the background until `close()`."""
        if self._runner is not None and not self._runner.done():
            raise RuntimeError(f"the ARI event socket of app {self.app!r} is already running")
        self._runner = asyncio.create_task(
            self.run(handler, on_connected=on_connected, on_disconnected=on_disconnected)
        )

    async def run(
        self,
        handler: EventHandler,
        *,
        on_connected: ConnectedHook | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        """Receive events until `close()`, reconnecting whenever the socket closes or Asterisk is down.
        `on_disconnected` is told at once when a connected socket is lost (what it held may be gone);
        `on_connected` runs after each (re)connect."""
        self._closing = False
        self._stop.clear()
        url = f"{self.base_url}/events"
        params = {"app": self.app, "subscribeAll": "false"}
        attempt = 0
        try:
            while not self._closing:
                try:
                    ws = await self._http().ws_connect(
                        url, params=params, headers=self._headers, heartbeat=20.0
                    )
                except aiohttp.WSServerHandshakeError as e:
                    self._change_state("refused", status=e.status, error=_refusal(e.status, url))
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    self._change_state("unreachable", url=url, error=f"{type(e).__name__}: {e}")
                else:
                    connected_at = time.monotonic()
                    await self._receive(ws, handler, on_connected)
                    if time.monotonic() - connected_at >= STABLE_AFTER:
                        attempt = 0
                    if self._closing:
                        break
                    self._change_state("lost", url=url)
                    if on_disconnected is not None:
                        try:
                            on_disconnected()
                        except Exception:
                            log.exception("ari on_disconnected hook failed", app=self.app)
                delay = backoff_delay(attempt, self._reconnect_initial, self._reconnect_max)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            self._connected.clear()
            self._change_state("stopped")

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, handler: EventHandler, on_connected: ConnectedHook | None
    ) -> None:
        self._ws = ws
        self._socket_rest = False
        self.connections += 1
        hook = asyncio.create_task(self._set_up(ws, on_connected))
        self._hooks.add(hook)
        hook.add_done_callback(self._hooks.discard)
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    event = json.loads(message.data)
                except ValueError:
                    log.warning("ari event is not JSON", app=self.app, data=str(message.data)[:200])
                    continue
                if not isinstance(event, dict):
                    continue
                if event.get("type") == "RESTResponse":
                    self._answered(event)
                else:
                    self.dispatch(parse_event(event), handler)
        finally:
            self._connected.clear()
            self._ws = None
            self._socket_rest = False
            self._drop_pending()
            await ws.close()

    async def _set_up(self, ws: aiohttp.ClientWebSocketResponse, on_connected: ConnectedHook | None) -> None:
        """Once connected: does the socket answer REST, the event filter, then `connected`."""
        if self._rest_over_socket:
            try:
                await self._over_socket(ws, "GET", "/asterisk/ping", None, None, PROBE_TIMEOUT)
            except (TimeoutError, _SocketLost, aiohttp.ClientError, OSError, RuntimeError):
                log.info(
                    "Asterisk does not answer REST on the event socket; requests go over HTTP", app=self.app
                )
            else:
                self._socket_rest = True
        if self._events is not None:
            try:
                await self.request(
                    "PUT",
                    f"/applications/{_segment(self.app)}/eventFilter",
                    # the answers to requests on the socket are events too: a filter without them
                    # leaves every request on it unanswered
                    body={"allowed": [{"type": name} for name in (*self._events, "RESTResponse")]},
                    idempotent=True,
                )
            except AriError as e:
                log.warning(
                    "Asterisk sends every event: the event filter was refused", app=self.app, error=str(e)
                )
        if ws.closed:
            return
        self._connected.set()
        self._change_state(
            "connected", connections=self.connections, rest="socket" if self._socket_rest else "http"
        )
        if on_connected is not None:
            await self._run_hook(on_connected)

    async def _run_hook(self, on_connected: ConnectedHook) -> None:
        try:
            await on_connected()
        except Exception:
            log.exception("ari on_connected hook failed", app=self.app)

    def _change_state(self, state: str, **details: Any) -> None:
        """One log line per change of the socket's state, not one per retry."""
        if state == self._state:
            return
        self._state = state
        if state in ("connected", "stopped"):
            log.info(f"ari events {state}", app=self.app, **details)
        else:
            log.warning(f"ari events {state}, reconnecting", app=self.app, **details)

    def dispatch(self, event: AriEvent, handler: EventHandler) -> None:
        """Queue `event` on its channel's worker (started on the channel's first event)."""
        key = event.channel_id
        worker = self._workers.get(key)
        if worker is None:
            queue: asyncio.Queue[AriEvent] = asyncio.Queue()
            task = asyncio.create_task(self._work(key, queue, handler), name=f"ari-channel-{key}")
            worker = self._workers[key] = (queue, task)
        worker[0].put_nowait(event)

    async def _work(self, key: str | None, queue: asyncio.Queue[AriEvent], handler: EventHandler) -> None:
        while True:
            event = await queue.get()
            try:
                await handler(event)
            except Exception:
                log.exception(
                    "ari event handler failed", app=self.app, channel=key, event_type=type(event).__name__
                )
            if key is not None and ends_channel(event) and queue.empty():
                del self._workers[key]
                return

    @property
    def channel_workers(self) -> int:
        """How many channels have a worker now (the general worker not counted)."""
        return sum(1 for key in self._workers if key is not None)

    async def close(self) -> None:
        """Stop the event socket and the workers; close the HTTP session if this client made it."""
        self._closing = True
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()
        tasks = [task for _, task in self._workers.values()] + list(self._hooks)
        if self._runner is not None:
            tasks.append(self._runner)
        for task in tasks:
            task.cancel()
        try:
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("ari client task had failed", app=self.app, error=repr(outcome))
        finally:
            self._workers.clear()
            self._runner = None
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None


def _refusal(status: int, url: str) -> str:
    """Why Asterisk would not open the event socket, and what to do."""
    if status == 401:
        return f"{url}: wrong ARI user or password; check ari.conf (HOTLINE_ARI_PASSWORD for the sandbox)"
    if status == 404:
        return f"{url}: no ARI here yet (Asterisk still starting, or res_ari not loaded; see modules.conf)"
    return f"{url}: HTTP {status}; see Asterisk's log"


def _message(text: str) -> str:
    """Asterisk's reason from an error body: `{"message": ...}` (or `{"error": ...}`), else the text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or text.strip()[:200])
    return text.strip()[:200]
