"""Live calls on the real Asterisk: the hotline service beside a minimal Stasis app, under the same load.

For each number of concurrent callers (N) and each steady state, the same callers call, one after the
other, these programs on the Asterisk sandbox:

- `service`: `hotline serve` as a subprocess, with its own config, flows, routing file and SQLite store
  in a temporary folder. It is the same command as `hotline serve`; this file only wraps it (`_service`)
  to read its event-loop lag and garbage collections and, when asked, to profile it;
- `minimal`: a Stasis app in this file (aiohttp, raw JSON, `MinimalApp`) that answers, plays the same
  prompts and reacts to the same keys with the fewest requests it can: the baseline, what a program
  driving these calls over ARI from Python costs at least;
- `minimal-ws` (on request): the same app sending its requests over the event WebSocket (ARI REST over
  WebSocket, Asterisk 22) instead of HTTP: what the service could save on its ARI requests.

The two steady states:

- `ivr`: every caller walks a menu loop (`menu_a` -> key 1 -> `menu_b` -> key 1 -> `menu_a` ...): when
  a prompt finishes (or starts, `--press started`: barge-in), after `--think` seconds, the caller
  presses 1 over ARI DTMF;
- `queue`: every caller waits in a routing queue whose two agents are busy (each on a call with one of
  two callers placed first): music on hold, their place and wait announced every 10 s, the call-back
  offer after 5 s and every 20 s.

The callers are a third ARI app (`bench-caller`) in this process; they originate `Local/` channels
whose far half enters the target's app. The app that originates a Local channel gets the events of
both halves, so the callers see, with Asterisk's own timestamps, each key reaching the target's leg
(`ChannelDtmfReceived`) and the next prompt starting on it (`PlaybackStarted`): the difference is the
key -> next prompt latency as Asterisk saw it, with no clock of ours in it (milliseconds: Asterisk
stamps its events to the millisecond).

Each (state, N, target) is a phase with a fresh target process: its idle RSS, the ramp (originates at
`--rate` a second until every call is answered), `--warmup` seconds, then a steady window of
`--duration` seconds in which are measured: the CPU seconds of the target, of Asterisk and of the
callers (/proc), the target's RSS (median of samples every 0.5 s), the latencies, keys and prompts,
the event-loop lag (a probe in the target: how late a 50 ms sleep wakes) and the garbage collections
(with their durations). Then every caller hangs up and the phase checks that no channel or bridge is
left in Asterisk or in the app and, for the service, that it runs no call, waits for no event to be
written, queues nobody, and that its store holds exactly one contact per call, ended.

Run as root (the sandbox is a chroot). It takes the sandbox lock and holds it for the whole run:

    .venv/bin/python bench/calls_bench.py                                # quick: 50 and 150 callers, 10 s
    .venv/bin/python bench/calls_bench.py --callers 50,150,300,500 --duration 20
    .venv/bin/python bench/calls_bench.py --callers 300,500 --states ivr --targets service,minimal,minimal-ws
    .venv/bin/python bench/calls_bench.py --callers 300 --targets service --profile py-spy

Profiles of the service, for the window of each phase, in `--profile-dir`: `py-spy` samples it (py-spy
in the venv: `.venv/bin/pip install py-spy`) and sorts the samples into parts (ARI requests, events,
store, engine...); `cprofile` counts every call (and slows it down); `tracemalloc` lists the lines whose
memory grew from idle to the window, per call. `--gc-freeze` is an experiment: the service calls
`gc.freeze()` once it is up. Progress goes to standard error, the tables to standard output, every
figure to `--json` (var/calls_bench.json).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from hotline.asterisk.sandbox import ARI_APP, DIALPLAN_DIR, Running, Sandbox, placeholders
from hotline.store import open_store

T = TypeVar("T")

CALLER_APP = "bench-caller"
#: The callers' HTTP connections to ARI: few, so that they leave Asterisk's HTTP sessions (http.conf
#: `sessionlimit`, 100 by default) to the target; hundreds of keys a second need no more.
CALLER_CONNECTIONS = 8
MINIMAL_APP = "bench-minimal"
#: Where the callers dial: the same two numbers, `ivr` and `queue`, into each program's app.
SERVICE_CONTEXT = "bench-hotline"
MINIMAL_CONTEXT = "bench-minimal"
STATES = ("ivr", "queue")
TARGETS = ("service", "minimal", "minimal-ws")

#: The two menus' prompts (Asterisk core sounds of 1.4 s and 1.5 s) and the key that goes on.
MENU_PROMPTS = ("hello-world", "vm-onefor")
KEY = "1"
#: The queue: two busy agents (Local channels that answer and wait), announcements and the offer.
AGENTS = 2
AGENT_ENDPOINT = "Local/+4822555000{}@hotline-test"
ANNOUNCE_EVERY = 10.0
OFFER_AFTER = 5.0
OFFER_EVERY = 20.0
#: The call-back offer's default prompts (docs/flows.md, queue: callback) as ARI media.
OFFER_MEDIA = ("sound:vm-press", "sound:digits/1", "sound:vm-tocallback")
#: routing's handle time before an agent's first call: the estimate is position * 180 / 2 agents.
DEFAULT_HANDLE_TIME = 180.0
MUSIC = "default"

#: The file the target's lag probe writes to; the files the service's profiles go to.
LAG_ENV = "CALLS_BENCH_LAG"
CPROFILE_ENV = "CALLS_BENCH_CPROFILE"
TRACEMALLOC_ENV = "CALLS_BENCH_TRACEMALLOC"
#: An experiment, not the service as shipped: `gc.freeze()` once the service is up, before the calls.
GC_FREEZE_ENV = "CALLS_BENCH_GC_FREEZE"
LAG_EVERY = 0.05

BENCH_DIALPLAN = f"""
; calls_bench.py: the numbers the benchmark's callers dial, on the service's app and on the minimal app
[{SERVICE_CONTEXT}]
exten => ivr,1,Stasis({ARI_APP})
 same => n,Hangup()
exten => queue,1,Stasis({ARI_APP})
 same => n,Hangup()

[{MINIMAL_CONTEXT}]
exten => ivr,1,Stasis({MINIMAL_APP})
 same => n,Hangup()
exten => queue,1,Stasis({MINIMAL_APP})
 same => n,Hangup()
"""

IVR_FLOW = f"""\
flow: bench_ivr
languages: [en]
start: menu_a
nodes:
  menu_a:
    menu: {MENU_PROMPTS[0]}
    options: {{{KEY}: menu_b, 9: bye}}
    timeout: 30
    retries: 10
    failure: menu_b
  menu_b:
    menu: {MENU_PROMPTS[1]}
    options: {{{KEY}: menu_a, 9: bye}}
    timeout: 30
    retries: 10
    failure: menu_a
  bye:
    hangup: null
"""

QUEUE_FLOW = f"""\
flow: bench_queue
languages: [en]
start: wait
nodes:
  wait:
    queue:
      name: bench
      callback: {{after: {OFFER_AFTER:g}, estimate_over: null, every: {OFFER_EVERY:g}}}
    overflow: bye
  bye:
    hangup: null
"""


def routing_file() -> str:
    agents = "".join(
        f"""\
  agent{n}:
    name: Bench Agent {n}
    endpoint: {AGENT_ENDPOINT.format(n)}
    skills: {{bench: 5}}
    wrapup: 0
"""
        for n in range(1, AGENTS + 1)
    )
    return f"""\
agents:
{agents}queues:
  bench:
    skills: {{bench: 1}}
    music: {MUSIC}
    announce_every: {ANNOUNCE_EVERY:g}
    max_wait: 86400
    ring_timeout: 30
estimates:
  default_handle_time: {DEFAULT_HANDLE_TIME:g}
"""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """aiohttp 3.14 deprecates `BasicAuth`: the header is built by hand, as hotline's AriClient does."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- what /proc says --------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms_of_day(timestamp: str) -> int:
    """`2026-12-05T20:45:02.227+0000` -> milliseconds since midnight (only differences are used)."""
    t = timestamp
    return ((int(t[11:13]) * 60 + int(t[14:16])) * 60 + int(t[17:19])) * 1000 + int(t[20:23])


# --- the event-loop lag probe, in the targets ----------------------------------------------------------


async def probe_lag(path: Path) -> None:
    """How late a 50 ms sleep wakes, every 50 ms, as `monotonic lag` lines (seconds); and each garbage
    collection, as `gc monotonic generation seconds` lines (a collection stops the loop while it runs)."""
    loop = asyncio.get_running_loop()
    collections: list[str] = []
    began = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            collections.append(
                f"gc {time.monotonic():.4f} {info['generation']} {time.perf_counter() - began[0]:.5f}"
            )

    gc.callbacks.append(collected)
    try:
        with path.open("a", encoding="utf-8") as out:
            while True:
                before = loop.time()
                await asyncio.sleep(LAG_EVERY)
                now = loop.time()
                out.write(f"{now:.4f} {now - before - LAG_EVERY:.5f}\n")
                if collections:
                    out.write("\n".join(collections) + "\n")
                    collections.clear()
    finally:
        gc.callbacks.remove(collected)


def lag_in(path: Path, start: float, end: float) -> tuple[list[float], list[tuple[int, float]]]:
    """The lags (ms) the probe wrote between `start` and `end` (time.monotonic()), and the garbage
    collections (generation, ms) that ended between them."""
    lags: list[float] = []
    collections: list[tuple[int, float]] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            with contextlib.suppress(ValueError, IndexError):
                if fields[0] == "gc":
                    if start <= float(fields[1]) <= end:
                        collections.append((int(fields[2]), float(fields[3]) * 1000))
                elif start <= float(fields[0]) <= end:
                    lags.append(float(fields[1]) * 1000)
    return lags, collections


# --- role `_service`: `hotline serve`, with the probe and the profiles -------------------------------


def serve(argv: list[str]) -> None:
    """`hotline serve ...` in this process, the lag probe beside the service on its loop. The bench
    signals the phase's moments: SIGUSR1 when the service is idle and the calls come next (tracemalloc's
    first snapshot, or gc.freeze()) or when the window starts (cProfile on); SIGUSR2 when the window ends
    (cProfile's stats, or tracemalloc's growth, written to the file its variable names)."""
    import hotline.cli.service as cli_service

    lag_path = os.environ.get(LAG_ENV)
    original = cli_service.run_on_best_loop

    def run(main: Coroutine[Any, Any, T]) -> T:
        async def probed() -> T:
            probe = asyncio.create_task(probe_lag(Path(lag_path))) if lag_path else None
            try:
                return await main
            finally:
                if probe is not None:
                    probe.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await probe

        return original(probed())

    cli_service.run_on_best_loop = run
    if os.environ.get(GC_FREEZE_ENV):

        def freeze(signum: int, frame: object) -> None:
            gc.collect()
            gc.freeze()

        signal.signal(signal.SIGUSR1, freeze)
    stats_path = os.environ.get(CPROFILE_ENV)
    if stats_path:
        profiler = cProfile.Profile()

        def start(signum: int, frame: object) -> None:
            profiler.enable()

        def stop(signum: int, frame: object) -> None:
            profiler.disable()
            profiler.dump_stats(stats_path)

        signal.signal(signal.SIGUSR1, start)
        signal.signal(signal.SIGUSR2, stop)
    growth_path = os.environ.get(TRACEMALLOC_ENV)
    if growth_path:
        tracemalloc.start()
        idle: list[tracemalloc.Snapshot] = []

        def before(signum: int, frame: object) -> None:
            idle.append(tracemalloc.take_snapshot())

        def after(signum: int, frame: object) -> None:
            snapshot = tracemalloc.take_snapshot()
            lines = [
                f"{stat.size_diff} {stat.count_diff} {stat.traceback[0].filename}:{stat.traceback[0].lineno}"
                for stat in snapshot.compare_to(idle[-1], "lineno")[:60]
            ]
            Path(growth_path).write_text("\n".join(lines) + "\n", encoding="utf-8")

        signal.signal(signal.SIGUSR1, before)
        signal.signal(signal.SIGUSR2, after)
    from hotline.cli import main

    main(args=argv, prog_name="hotline")


# --- role `_minimal`: the baseline Stasis app ---------------------------------------------------------


#: An ARI request of the minimal app: method, path, query.
Request = tuple[str, str, dict[str, str]]


@dataclass(slots=True)
class MinimalCall:
    """A caller of the minimal app: which menu it hears, or its place in the queue and its timers."""

    channel: str
    state: str
    menu: int = 0
    playback: str | None = None  # the prompt playing now
    prompts: int = 0
    due: tuple[str, ...] | None = None  # an announcement or offer that falls due while a prompt plays
    position: int = 0
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)  # announce, offer
    agent_leg: str | None = None
    bridge: str | None = None


def announcement(position: int, estimated_wait: float) -> tuple[str, ...]:
    """The same media as the service's position announcement (routing/switchboard/waiting.py)."""
    if position <= 1:
        media = ["sound:queue-youarenext"]
    else:
        media = ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if estimated_wait < 60:
        media += ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]
    else:
        minutes = round(estimated_wait / 60)
        media += [
            "sound:queue-holdtime",
            f"number:{minutes}",
            "sound:queue-minute" if minutes == 1 else "sound:queue-minutes",
        ]
    return tuple(media)


class MinimalApp:
    """The fewest ARI requests that give a caller the same call.

    ivr:   answer + play on arrival; per key one play (stop + play when the key barges in).
    queue: the first AGENTS callers: answer, originate an agent leg, bridge both (one addChannel);
           the others: answer + music; per announcement or offer: music off, play, music on.

    `transport` "http" sends the requests over aiohttp's HTTP client, like the service; "ws" sends them
    as `RESTRequest` messages on the event WebSocket itself (ARI REST over WebSocket, Asterisk 22).
    """

    def __init__(self, ari_url: str, user: str, password: str, transport: str = "http") -> None:
        self.url = ari_url.rstrip("/")
        self.transport = transport
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.answers: dict[str, asyncio.Future[int]] = {}
        self.requests = 0
        self.headers = basic_auth(user, password)
        self.calls: dict[str, MinimalCall] = {}
        self.agent_legs: dict[str, str] = {}  # agent leg -> caller's channel
        self.agents_free = AGENTS
        self.arrivals = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.failures: Counter[str] = Counter()
        self.http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        lag_path = os.environ.get(LAG_ENV)
        probe = asyncio.create_task(probe_lag(Path(lag_path))) if lag_path else None
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with aiohttp.ClientSession(headers=self.headers) as http:
            self.http = http
            ws = self.ws = await http.ws_connect(
                f"{self.url}/events", params={"app": MINIMAL_APP, "subscribeAll": "false"}
            )
            reader = asyncio.create_task(self.receive(ws))
            await stop.wait()
            reader.cancel()
            await ws.close()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        if self.failures:
            say(f"minimal app: failed requests {dict(self.failures)}")

    async def receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.on_event(json.loads(message.data))

    # the requests: one task per chain, so a channel's requests go in order and no channel waits for another

    def send(self, *requests: Request) -> None:
        task = asyncio.create_task(self.chain(requests))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def chain(self, requests: tuple[Request, ...]) -> None:
        if self.transport == "ws":
            await self.chain_ws(requests)
            return
        assert self.http is not None
        for method, path, params in requests:
            try:
                async with self.http.request(method, self.url + path, params=params) as answer:
                    await answer.read()
                    if answer.status >= 400:
                        self.failures[f"{method} {answer.status}"] += 1
            except (aiohttp.ClientError, OSError) as e:
                self.failures[type(e).__name__] += 1

    async def chain_ws(self, requests: tuple[Request, ...]) -> None:
        assert self.ws is not None
        for method, path, params in requests:
            self.requests += 1
            request_id = str(self.requests)
            answer = self.answers[request_id] = asyncio.get_running_loop().create_future()
            message = {
                "type": "RESTRequest",
                "request_id": request_id,
                "method": method,
                "uri": path.lstrip("/"),
                "query_strings": [{"name": k, "value": v} for k, v in params.items()],
            }
            try:
                await self.ws.send_str(json.dumps(message))
                status = await asyncio.wait_for(answer, 10)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                self.failures[type(e).__name__] += 1
                self.answers.pop(request_id, None)
                continue
            if status >= 400:
                self.failures[f"{method} {status}"] += 1

    def play(self, call: MinimalCall, media: tuple[str, ...]) -> Request:
        call.prompts += 1
        call.playback = f"{call.channel}-{call.prompts}"
        return ("POST", f"/channels/{call.channel}/play/{call.playback}", {"media": ",".join(media)})

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "RESTResponse":
            answer = self.answers.pop(str(event.get("request_id")), None)
            if answer is not None and not answer.done():
                answer.set_result(int(event.get("status_code", 0)))
        elif kind == "ChannelDtmfReceived":
            call = self.calls.get(event["channel"]["id"])
            if call is not None and call.state == "ivr" and event.get("digit") == KEY:
                playing = call.playback
                call.menu = 1 - call.menu
                play = self.play(call, (f"sound:{MENU_PROMPTS[call.menu]}",))
                if playing is not None:
                    self.send(("DELETE", f"/playbacks/{playing}", {}), play)
                else:
                    self.send(play)
        elif kind == "PlaybackFinished":
            playback = event["playback"]
            call = self.calls.get(str(playback.get("target_uri", "")).removeprefix("channel:"))
            if call is not None and call.playback == playback["id"]:
                call.playback = None
                if call.state == "queue":
                    self.prompt_ended(call)
        elif kind == "StasisStart":
            self.arrived(event)
        elif kind == "StasisEnd":
            self.left(event["channel"]["id"])

    def arrived(self, event: dict[str, Any]) -> None:
        channel = event["channel"]["id"]
        args = event.get("args") or []
        if args and args[0] == "agent":
            self.agent_answered(channel, args[1])
            return
        state = event["channel"]["dialplan"]["exten"]
        call = self.calls[channel] = MinimalCall(channel, state)
        answer: Request = ("POST", f"/channels/{channel}/answer", {})
        if state == "ivr":
            self.send(answer, self.play(call, (f"sound:{MENU_PROMPTS[0]}",)))
        elif self.agents_free > 0:
            agent = AGENT_ENDPOINT.format(AGENTS - self.agents_free + 1)
            self.agents_free -= 1
            call.agent_leg = uuid.uuid4().hex
            self.agent_legs[call.agent_leg] = channel
            originate = {
                "endpoint": agent,
                "app": MINIMAL_APP,
                "appArgs": f"agent,{channel}",
                "channelId": call.agent_leg,
                "formats": "ulaw",
            }
            self.send(answer, ("POST", "/channels", originate))
        else:
            self.arrivals += 1
            call.position = self.arrivals
            self.send(answer, ("POST", f"/channels/{channel}/moh", {"mohClass": MUSIC}))
            loop = asyncio.get_running_loop()
            call.timers["announce"] = loop.call_later(ANNOUNCE_EVERY, self.announce, call)
            call.timers["offer"] = loop.call_later(OFFER_AFTER, self.offer, call)

    def agent_answered(self, agent_leg: str, caller: str) -> None:
        call = self.calls.get(caller)
        if call is None:
            self.send(("DELETE", f"/channels/{agent_leg}", {}))
            return
        call.bridge = uuid.uuid4().hex
        self.send(
            ("POST", "/bridges", {"type": "mixing", "bridgeId": call.bridge}),
            ("POST", f"/bridges/{call.bridge}/addChannel", {"channel": f"{caller},{agent_leg}"}),
        )

    def announce(self, call: MinimalCall) -> None:
        call.timers["announce"] = asyncio.get_running_loop().call_later(ANNOUNCE_EVERY, self.announce, call)
        self.between_music(call, announcement(call.position, call.position * DEFAULT_HANDLE_TIME / AGENTS))

    def offer(self, call: MinimalCall) -> None:
        call.timers["offer"] = asyncio.get_running_loop().call_later(OFFER_EVERY, self.offer, call)
        self.between_music(call, OFFER_MEDIA)

    def between_music(self, call: MinimalCall, media: tuple[str, ...]) -> None:
        if call.playback is not None:
            call.due = media  # it follows the prompt playing now
            return
        self.send(("DELETE", f"/channels/{call.channel}/moh", {}), self.play(call, media))

    def prompt_ended(self, call: MinimalCall) -> None:
        if call.due is not None:
            media, call.due = call.due, None
            self.send(self.play(call, media))
        else:
            self.send(("POST", f"/channels/{call.channel}/moh", {"mohClass": MUSIC}))

    def left(self, channel: str) -> None:
        call = self.calls.pop(channel, None)
        if call is None:
            self.agent_legs.pop(channel, None)
            return
        for timer in call.timers.values():
            timer.cancel()
        if call.agent_leg is not None:
            self.agent_legs.pop(call.agent_leg, None)
            self.send(("DELETE", f"/channels/{call.agent_leg}", {}))
            self.agents_free += 1
        if call.bridge is not None:
            self.send(("DELETE", f"/bridges/{call.bridge}", {}))


def run_minimal(transport: str) -> None:
    app = MinimalApp(
        os.environ["CALLS_BENCH_ARI_URL"],
        os.environ["CALLS_BENCH_ARI_USER"],
        os.environ["CALLS_BENCH_ARI_PASSWORD"],
        transport,
    )
    asyncio.run(app.run())


# --- the callers ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    """One caller: its own leg (in the callers' app) and the far leg the target runs."""

    caller_leg: str
    far_leg: str
    state: str
    answered: bool = False
    gone: int = 0  # legs destroyed
    key_ms: int | None = None  # Asterisk's time of the last key not yet followed by a prompt


@dataclass
class Window:
    """What the callers saw in the steady window."""

    start: float = math.inf
    end: float = math.inf
    keys: int = 0
    prompts: int = 0
    latencies: list[float] = field(default_factory=list)
    media: Counter[str] = field(default_factory=Counter)

    def holds(self, now: float) -> bool:
        return self.start <= now < self.end


class Callers:
    """The callers' ARI app: dials, presses the key, hangs up, and keeps what it saw."""

    def __init__(self, running: Running, press: str, think: float) -> None:
        self.url = running.ari_url.rstrip("/")
        self.headers = basic_auth(running.ari_user, running.ari_password)
        self.press = press
        self.think = think
        self.legs: dict[str, tuple[Call, bool]] = {}  # leg -> (call, is the far leg)
        self.calls: list[Call] = []
        self.window = Window()
        self.failures: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()
        self.hanging_up = False  # keys that race the hang-up are no failure
        self.http: aiohttp.ClientSession | None = None
        self.reader: asyncio.Task[None] | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            headers=self.headers, connector=aiohttp.TCPConnector(limit=CALLER_CONNECTIONS)
        )
        self.ws = await self.http.ws_connect(
            f"{self.url}/events", params={"app": CALLER_APP, "subscribeAll": "false"}
        )
        self.reader = asyncio.create_task(self.receive(self.ws))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    async def request(self, method: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        assert self.http is not None
        async with self.http.request(method, self.url + path, params=params) as answer:
            body = await answer.read()
            if answer.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {answer.status} {body[:200]!r}")
            return json.loads(body) if body else None

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.on_event(json.loads(message.data))

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("PlaybackStarted", "PlaybackFinished"):
            playback = event["playback"]
            found = self.legs.get(str(playback.get("target_uri", "")).removeprefix("channel:"))
            if found is None or not found[1]:
                return
            call = found[0]
            if kind == "PlaybackStarted":
                now = time.monotonic()
                counted = self.window.holds(now)
                if counted:
                    self.window.prompts += 1
                    self.window.media[str(playback.get("media_uri"))] += 1
                if call.key_ms is not None:
                    if counted:
                        self.window.latencies.append(
                            (ms_of_day(event["timestamp"]) - call.key_ms) % 86_400_000
                        )
                    call.key_ms = None
                if self.press == "started" and call.state == "ivr":
                    self.press_key(call)
            elif self.press == "finished" and call.state == "ivr":
                self.press_key(call)
            return
        channel = event.get("channel")
        if not isinstance(channel, dict):
            return
        found = self.legs.get(channel.get("id", ""))
        if found is None:
            return
        call, far = found
        if kind == "ChannelDtmfReceived" and far:
            call.key_ms = ms_of_day(event["timestamp"])
        elif kind == "StasisStart" and not far:
            call.answered = True
            self.changed.set()
        elif kind == "ChannelDestroyed":
            call.gone += 1
            self.changed.set()

    def press_key(self, call: Call) -> None:
        if call.gone:
            return
        if self.think > 0:
            asyncio.get_running_loop().call_later(self.think, lambda: self.spawn(self.send_key(call)))
        else:
            self.spawn(self.send_key(call))

    async def send_key(self, call: Call) -> None:
        if call.gone:
            return
        try:
            await self.request("POST", f"/channels/{call.caller_leg}/dtmf", {"dtmf": KEY})
        except (RuntimeError, aiohttp.ClientError, OSError) as e:
            if not call.gone and not self.hanging_up:
                self.failures[f"dtmf: {str(e)[:70]}"] += 1
            return
        if self.window.holds(time.monotonic()):
            self.window.keys += 1

    async def until(self, what: Callable[[], bool], timeout: float, why: str) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(why)
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))

    async def dial(self, context: str, state: str, count: int, rate: float) -> list[Call]:
        """`count` calls to `state` in `context`, `rate` a second; back once all are answered."""
        made: list[Call] = []
        began = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            call = Call(uuid.uuid4().hex, uuid.uuid4().hex, state)
            self.legs[call.caller_leg] = (call, False)
            self.legs[call.far_leg] = (call, True)
            self.calls.append(call)
            made.append(call)
            params = {
                "endpoint": f"Local/{state}@{context}",
                "app": CALLER_APP,
                "channelId": call.caller_leg,
                "otherChannelId": call.far_leg,
                "formats": "ulaw",
                "callerId": f"+4822{len(self.calls):07d}",
            }
            self.spawn(self.originate(call, params))
        await self.until(
            lambda: all(c.answered or c.gone for c in made),
            30 + count / rate,
            f"{sum(not c.answered for c in made)} of {count} calls were not answered",
        )
        return made

    async def originate(self, call: Call, params: dict[str, str]) -> None:
        try:
            await self.request("POST", "/channels", params)
        except (RuntimeError, aiohttp.ClientError, OSError) as e:
            self.failures[f"originate: {str(e)[:60]}"] += 1
            call.gone = 2

    async def hang_up(self, calls: list[Call], timeout: float = 30.0) -> list[str]:
        """Hang up the callers' legs, then, for calls whose far leg stays, that leg too; back once both
        legs of every call are gone, or with what is left."""
        limit = asyncio.Semaphore(CALLER_CONNECTIONS)
        self.hanging_up = True

        async def one(leg: str) -> None:
            async with limit:
                with contextlib.suppress(RuntimeError, aiohttp.ClientError, OSError):
                    await self.request("DELETE", f"/channels/{leg}")

        await asyncio.gather(*(one(c.caller_leg) for c in calls if c.gone < 2))
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: all(c.gone >= 2 for c in calls), timeout, "")
            return []
        stuck = [c for c in calls if c.gone < 2]
        await asyncio.gather(*(one(leg) for c in stuck for leg in (c.caller_leg, c.far_leg)))
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: all(c.gone >= 2 for c in calls), timeout, "")
        left = sum(c.gone < 2 for c in calls)
        return [
            f"{len(stuck)} calls still had a leg {timeout:g} s after the caller hung up"
            + (
                f"; {left} even after both legs were hung up"
                if left
                else " (gone once both legs were hung up)"
            )
        ]

    def forget(self) -> None:
        self.hanging_up = False
        self.legs.clear()
        self.calls.clear()
        self.window = Window()


# --- the targets --------------------------------------------------------------------------------------


class Target:
    """A program the callers call: started fresh for each phase, stopped after it."""

    name = ""
    app = ""
    context = ""

    def __init__(self, running: Running, folder: Path) -> None:
        self.running = running
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.lag_file = folder / "lag.txt"
        self.log = folder / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env, LAG_ENV: str(self.lag_file)},
                cwd=self.folder,
            )

    def alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the {self.name} exited with {self.process.returncode}; the end of its log:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        return "(no log)"

    async def start(self, state: str) -> None:
        raise NotImplementedError

    async def idle(self) -> list[str]:
        """Problems once every caller hung up, while the target still runs (none: all is well)."""
        return []

    async def stop(self) -> list[str]:
        """Stop the target; problems found on the way out."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.process.wait, 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)
            return [f"the {self.name} did not stop within 30 s of SIGTERM"]
        return [] if code == 0 else [f"the {self.name} exited with {code}; see {self.log}"]


class ServiceTarget(Target):
    """`hotline serve` with the bench's flows, routing file and a SQLite store of its own."""

    name = "service"
    app = ARI_APP
    context = SERVICE_CONTEXT

    def __init__(
        self,
        running: Running,
        folder: Path,
        profile: tuple[str, Path] | None = None,
        gc_freeze: bool = False,
        limit: int | None = None,
    ) -> None:
        super().__init__(running, folder)
        self.gc_freeze = gc_freeze
        self.limit = limit  # the service's `calls.limit`; None: none
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.profile = profile
        self.database = folder / "var" / "hotline.db"
        self.refused = 0  # contacts the last check found refused (busy)

    def write_files(self) -> Path:
        flows = self.folder / "flows"
        flows.mkdir(parents=True, exist_ok=True)
        (flows / "bench_ivr.yaml").write_text(IVR_FLOW, encoding="utf-8")
        (flows / "bench_queue.yaml").write_text(QUEUE_FLOW, encoding="utf-8")
        (self.folder / "routing.yaml").write_text(routing_file(), encoding="utf-8")
        a = self.running
        config = self.folder / "hotline.yaml"
        config.write_text(
            f"""\
data_dir: var
api:
  listen: 127.0.0.1:{self.port}
flows:
  directory: flows
  numbers: {{ivr: bench_ivr, queue: bench_queue}}
  default: bench_ivr
asterisk:
  ari_url: {a.ari_url}
  ari_username: {a.ari_user}
  ari_password: ${{HOTLINE_ARI_PASSWORD}}
  ami: {{host: {a.ami_host}, port: {a.ami_port}, username: {a.ami_user}, secret: '${{HOTLINE_AMI_SECRET}}'}}
  agi: {{listen: 127.0.0.1:{free_port()}}}
calls:
  limit: {"" if self.limit is None else self.limit}
routing:
  file: routing.yaml
log:
  level: info
  format: json
""",
            encoding="utf-8",
        )
        return config

    async def api_call(self, method: str, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, self.api + path, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as answer,
        ):
            body = await answer.read()
            if answer.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {answer.status} {body[:200]!r}")
            return json.loads(body)

    async def health(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.api_call("GET", "/api/health")
            return found
        except (RuntimeError, aiohttp.ClientError, OSError, ValueError):
            return None

    async def start(self, state: str) -> None:
        config = self.write_files()
        env = {
            "HOTLINE_ARI_PASSWORD": self.running.ari_password,
            "HOTLINE_AMI_SECRET": self.running.ami_secret,
            "HOTLINE_API_TOKENS": self.token,
        }
        if self.profile is not None:
            env[self.profile[0]] = str(self.profile[1])
        if self.gc_freeze:
            env[GC_FREEZE_ENV] = "1"
        self.spawn(["_service", "serve", "--config", str(config), "--drain", "0.5"], env)
        deadline = time.monotonic() + 30
        while True:
            self.alive()
            health = await self.health()
            if health is not None and health.get("asterisk", {}).get("connected"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not connect to Asterisk within 30 s; see {self.log}")
            await asyncio.sleep(0.1)
        if state == "queue":
            for n in range(1, AGENTS + 1):
                await self.api_call("POST", f"/api/agents/agent{n}/login")

    async def idle(self) -> list[str]:
        problems: list[str] = []
        deadline = time.monotonic() + 15
        while True:
            health = await self.health() or {}
            calls = health.get("asterisk", {}).get("calls")
            backlog = health.get("writer", {}).get("backlog")
            if calls == 0 and backlog == 0:
                break
            if time.monotonic() > deadline:
                problems.append(f"the service still runs {calls} calls, {backlog} events unwritten")
                break
            await asyncio.sleep(0.2)
        queues = await self.api_call("GET", "/api/queues")
        waiting = sum(len(q.get("waiting") or []) for q in queues.get("items", []))
        if waiting:
            problems.append(f"{waiting} callers still wait in the service's queues")
        return problems

    async def check_store(self, calls: list[Call]) -> list[str]:
        """Every call has exactly one contact, and it is ended (an end time and an outcome)."""
        store = await open_store(f"sqlite+aiosqlite:///{self.database}")
        contacts: Counter[str | None] = Counter()
        ended: Counter[str | None] = Counter()
        self.refused = 0
        try:
            cursor: str | None = None
            while True:
                page = await store.contacts(limit=1000, cursor=cursor)
                for contact in page.items:
                    contacts[contact.call_id] += 1
                    self.refused += contact.outcome == "refused"
                    if contact.ended_at is not None and contact.outcome is not None:
                        ended[contact.call_id] += 1
                cursor = page.next_cursor
                if cursor is None:
                    break
        finally:
            await store.close()
        problems: list[str] = []
        ids = [c.far_leg for c in calls]
        for what, counted in (("contact", contacts), ("ended contact", ended)):
            wrong = [i for i in ids if counted[i] != 1]
            if wrong:
                problems.append(
                    f"{len(wrong)} calls do not have exactly one {what} in the store "
                    f"(e.g. {wrong[0]}: {counted[wrong[0]]})"
                )
        strangers = set(contacts) - set(ids)
        if strangers:
            problems.append(f"{len(strangers)} contacts of no call of the benchmark")
        return problems

    def log_levels(self) -> Counter[str]:
        levels: Counter[str] = Counter()
        with contextlib.suppress(FileNotFoundError):
            for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    levels[str(json.loads(line).get("level", "?"))] += 1
                except (ValueError, AttributeError):
                    levels["not json"] += 1
        return levels


class MinimalTarget(Target):
    name = "minimal"
    app = MINIMAL_APP
    context = MINIMAL_CONTEXT
    transport = "http"

    async def start(self, state: str) -> None:
        a = self.running
        env = {
            "CALLS_BENCH_ARI_URL": a.ari_url,
            "CALLS_BENCH_ARI_USER": a.ari_user,
            "CALLS_BENCH_ARI_PASSWORD": a.ari_password,
        }
        self.spawn(["_minimal", self.transport], env)
        async with aiohttp.ClientSession(headers=basic_auth(a.ari_user, a.ari_password)) as http:
            deadline = time.monotonic() + 15
            while True:
                self.alive()
                async with http.get(f"{a.ari_url}/applications/{MINIMAL_APP}") as answer:
                    if answer.status == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the minimal app did not connect within 15 s; see {self.log}")
                await asyncio.sleep(0.1)


class MinimalWsTarget(MinimalTarget):
    """The minimal app with its requests on the event WebSocket (ARI REST over WebSocket)."""

    name = "minimal-ws"
    transport = "ws"


# --- a phase ------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One target under N callers in one steady state, and what was measured in its window."""

    state: str
    callers: int
    target: str
    window_s: float = 0.0
    ramp_s: float = 0.0
    target_cpu_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    callers_cpu_s: float = 0.0
    machine_busy_cores: float = 0.0
    idle_rss_kib: int = 0
    rss_kib: int = 0
    open_files_max: int = 0
    keys: int = 0
    prompts: int = 0
    latency_samples: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    gc_collections: list[int] = field(default_factory=list)  # per generation, in the window
    gc_ms: list[float] = field(default_factory=list)  # time spent in them, per generation
    gc_max_ms: list[float] = field(default_factory=list)  # the longest, per generation
    media: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    log_levels: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    limit: int | None = None  # the service's calls.limit
    refused: int = 0  # callers who got busy (a `call_refused` contact each)
    recovery_calls: int = 0  # after the load fell: callers of a second round, all to be served

    @property
    def ratio(self) -> float:
        """Target CPU over Asterisk CPU in the window."""
        return self.target_cpu_s / self.asterisk_cpu_s if self.asterisk_cpu_s else math.inf

    @property
    def core_pct_per_call(self) -> float:
        return 100 * self.target_cpu_s / self.window_s / self.callers if self.window_s else math.nan

    @property
    def kib_per_call(self) -> float:
        return (self.rss_kib - self.idle_rss_kib) / self.callers

    @property
    def cpu_ms_per_key(self) -> float | None:
        return 1000 * self.target_cpu_s / self.keys if self.keys else None

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "core_pct_per_call": self.core_pct_per_call,
            "kib_per_call": self.kib_per_call,
            "cpu_ms_per_key": self.cpu_ms_per_key,
        }


@dataclass
class Options:
    duration: float
    warmup: float
    rate: float
    limit: int | None
    profile: str
    profile_dir: Path


async def ari_get(callers: Callers, path: str) -> Any:
    return await callers.request("GET", path)


async def leftovers(callers: Callers, app: str, timeout: float = 30.0) -> list[str]:
    """What is left in Asterisk once every call hung up (waits up to `timeout` for it to go)."""
    deadline = time.monotonic() + timeout
    while True:
        channels = await ari_get(callers, "/channels")
        bridges = await ari_get(callers, "/bridges")
        application = await ari_get(callers, f"/applications/{app}")
        in_app = application.get("channel_ids") or []
        if not channels and not bridges and not in_app:
            return []
        if time.monotonic() > deadline:
            return [
                f"left after {timeout:g} s: {len(channels)} channels in Asterisk, {len(bridges)} bridges, "
                f"{len(in_app)} channels in the app {app}"
            ]
        await asyncio.sleep(0.25)


async def sweep(callers: Callers) -> None:
    """Hang up every channel and destroy every bridge left in Asterisk, so the next phase starts empty
    (the benchmark's Asterisk holds nothing else)."""
    with contextlib.suppress(RuntimeError, aiohttp.ClientError, OSError):
        for channel in await ari_get(callers, "/channels"):
            with contextlib.suppress(RuntimeError, aiohttp.ClientError, OSError):
                await callers.request("DELETE", f"/channels/{channel['id']}")
        for bridge in await ari_get(callers, "/bridges"):
            with contextlib.suppress(RuntimeError, aiohttp.ClientError, OSError):
                await callers.request("DELETE", f"/bridges/{bridge['id']}")


class Sampler:
    """The target's RSS and open files, every half second through the window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss: list[int] = []
        self.files: list[int] = []

    async def run(self) -> None:
        while True:
            self.rss.append(rss_kib(self.pid))
            self.files.append(open_files(self.pid))
            await asyncio.sleep(0.5)


async def busy_agents(callers: Callers, target: Target, rate: float) -> list[Call]:
    """Two callers first, each taken by an agent: the queue's agents are busy for everyone after them."""
    warm = await callers.dial(target.context, "queue", AGENTS, rate)
    deadline = time.monotonic() + 15
    while len([b for b in await ari_get(callers, "/bridges") if len(b["channels"]) == 2]) < AGENTS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {target.name}'s agents did not take the first {AGENTS} callers")
        await asyncio.sleep(0.1)
    return warm


async def measure_window(
    phase: Phase, running: Running, callers: Callers, target: Target, options: Options
) -> tuple[float, float]:
    """The steady window: CPU, RSS, keys, prompts and latencies into `phase`; returns its (start, end)."""
    service = isinstance(target, ServiceTarget)
    sampler = Sampler(target.pid)
    sampling = asyncio.create_task(sampler.run())
    profiler = (
        start_py_spy(target.pid, options, phase.state, phase.callers)
        if service and options.profile == "py-spy"
        else None
    )
    if service and options.profile == "cprofile":
        os.kill(target.pid, signal.SIGUSR1)
    cpu = (cpu_seconds(target.pid), cpu_seconds(running.pid), cpu_seconds(os.getpid()))
    busy = machine_jiffies()
    start = callers.window.start = time.monotonic()
    callers.window.end = start + options.duration
    await asyncio.sleep(options.duration)
    end = time.monotonic()
    cpu_end = (cpu_seconds(target.pid), cpu_seconds(running.pid), cpu_seconds(os.getpid()))
    busy_end = machine_jiffies()
    if service and options.profile in ("cprofile", "tracemalloc"):
        os.kill(target.pid, signal.SIGUSR2)
    sampling.cancel()
    phase.window_s = end - start
    phase.target_cpu_s, phase.asterisk_cpu_s, phase.callers_cpu_s = (
        b - a for a, b in zip(cpu, cpu_end, strict=True)
    )
    jiffies = busy_end[1] - busy[1]
    phase.machine_busy_cores = (busy_end[0] - busy[0]) / jiffies * (os.cpu_count() or 1) if jiffies else 0.0
    rss = sorted(sampler.rss) or [rss_kib(target.pid)]
    phase.rss_kib = rss[len(rss) // 2]
    phase.open_files_max = max(sampler.files, default=0)
    w = callers.window
    phase.keys, phase.prompts = w.keys, w.prompts
    phase.latency_samples = len(w.latencies)
    phase.latency_p50_ms = percentile(w.latencies, 50)
    phase.latency_p99_ms = percentile(w.latencies, 99)
    phase.latency_max_ms = max(w.latencies, default=None)
    phase.media = dict(w.media.most_common(12))
    if profiler is not None:
        await asyncio.to_thread(profiler.wait, options.duration + 30)
    return start, end


async def run_phase(
    running: Running, callers: Callers, target: Target, state: str, count: int, options: Options
) -> Phase:
    """One target under `count` callers in `state`: start it, fill it, measure, empty it, check it."""
    phase = Phase(state, count, target.name)
    say(f"{state} N={count} {target.name}: starting")
    await target.start(state)
    await asyncio.sleep(0.5)
    phase.idle_rss_kib = rss_kib(target.pid)
    if isinstance(target, ServiceTarget) and (options.profile == "tracemalloc" or target.gc_freeze):
        os.kill(target.pid, signal.SIGUSR1)  # tracemalloc's snapshot before the calls, or gc.freeze()
        await asyncio.sleep(0.5)
    window = (0.0, 0.0)
    try:
        warm = await busy_agents(callers, target, options.rate) if state == "queue" else []
        began = time.monotonic()
        try:
            await callers.dial(target.context, state, count, options.rate)
        except TimeoutError as e:
            phase.problems.append(str(e))  # measured all the same, with the calls that are up
        made = callers.calls[len(warm) :]
        phase.ramp_s = time.monotonic() - began
        say(f"{state} N={count} {target.name}: {count} calls up in {phase.ramp_s:.1f} s; warming up")
        await asyncio.sleep(options.warmup)
        target.alive()
        window = await measure_window(phase, running, callers, target, options)
        say(f"{state} N={count} {target.name}: hanging up")
        phase.problems += await callers.hang_up(made)
        phase.problems += await callers.hang_up(warm)  # last: a free agent would take a waiting caller
        phase.problems += await leftovers(callers, target.app)
        phase.problems += await target.idle()
        if isinstance(target, ServiceTarget) and target.limit is not None and state == "ivr":
            phase.problems += await recovery(callers, target, count, options)
            phase.recovery_calls = max(1, min(count, target.limit) // 2)
    finally:
        with contextlib.suppress(Exception):
            await callers.hang_up(callers.calls, timeout=10)
        phase.problems += await target.stop()
        await sweep(callers)
    lags, collections = lag_in(target.lag_file, *window)
    phase.lag_p50_ms, phase.lag_p99_ms = percentile(lags, 50), percentile(lags, 99)
    phase.lag_max_ms = max(lags, default=None)
    phase.gc_collections = [sum(1 for g, _ in collections if g == n) for n in range(3)]
    phase.gc_ms = [round(sum(ms for g, ms in collections if g == n), 1) for n in range(3)]
    phase.gc_max_ms = [round(max((ms for g, ms in collections if g == n), default=0.0), 1) for n in range(3)]
    if isinstance(target, ServiceTarget):
        phase.problems += await target.check_store(callers.calls)
        phase.log_levels = dict(target.log_levels())
        phase.limit, phase.refused = target.limit, target.refused
        if phase.limit is not None:
            say(f"{state} N={count} service: limit {phase.limit}, {phase.refused} callers got busy")
    phase.failures = dict(callers.failures)
    callers.failures.clear()
    callers.forget()
    verdict = "ok" if not phase.problems else "; ".join(phase.problems)
    say(
        f"{state} N={count} {target.name}: cpu {phase.target_cpu_s:.2f} s, asterisk {phase.asterisk_cpu_s:.2f} s "
        f"(ratio {phase.ratio:.3f}), key->prompt p50/p99 {fmt(phase.latency_p50_ms)}/{fmt(phase.latency_p99_ms)} ms, "
        f"{phase.keys} keys, {phase.prompts} prompts; loop lag p99/max {fmt(phase.lag_p99_ms)}/"
        f"{fmt(phase.lag_max_ms)} ms, gen2 GC {phase.gc_collections[2]}x max {phase.gc_max_ms[2]} ms; {verdict}"
    )
    return phase


async def recovery(callers: Callers, target: ServiceTarget, count: int, options: Options) -> list[str]:
    """After an overload: the load falls to half the limit, and every caller of this round is served
    (answered, walking the menu), none refused, by the same service process, with nothing reset."""
    assert target.limit is not None
    again = max(1, min(count, target.limit) // 2)
    say(f"recovery: {again} callers after the load fell")
    made = await callers.dial(target.context, "ivr", again, options.rate)
    await asyncio.sleep(options.warmup)
    health = await target.health() or {}
    problems = []
    taken = health.get("asterisk", {}).get("calls")
    if taken != again:
        problems.append(f"after the load fell the service ran {taken} of {again} calls")
    problems += await callers.hang_up(made)
    problems += await leftovers(callers, target.app)
    problems += await target.idle()
    return problems


# --- profiles -----------------------------------------------------------------------------------------


def start_py_spy(pid: int, options: Options, state: str, count: int) -> subprocess.Popen[bytes]:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    options.profile_dir.mkdir(parents=True, exist_ok=True)
    out = options.profile_dir / f"py-spy-{state}-{count}.txt"
    return subprocess.Popen(
        [
            found,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(math.ceil(options.duration)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def short_path(path: str) -> str:
    """`.../site-packages/aiohttp/client.py` -> `aiohttp/client.py`; the repository's files likewise."""
    for marker in ("site-packages/", "lib/python3.11/", f"{Path(__file__).resolve().parents[1]}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def frame_name(frame: str) -> str:
    """`request (hotline/asterisk/ari.py:123)` -> `hotline/asterisk/ari.py:request`."""
    name, _, where = frame.partition(" (")
    return f"{short_path(where.rsplit(':', 1)[0])}:{name}"


#: Where the service's busy samples go, first match wins: (what, any of these in the stack).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store: SQLite in the aiosqlite thread", ("aiosqlite/core.py:_connection_worker_thread",)),
    (
        "store: SQLAlchemy statements, Store.append and the projection",
        ("sqlalchemy/", "hotline/store/db.py", "hotline/store/projection.py", "aiosqlite/"),
    ),
    (
        "store: building events (new_event, JSON, uuid) and EventWriter",
        ("hotline/store/events.py", "hotline/store/writer.py"),
    ),
    (
        "ARI requests: building and sending (aiohttp client)",
        (
            "hotline/asterisk/ari.py:AriClient.request",
            "aiohttp/client.py:",
            "aiohttp/http_writer.py",
            "ClientRequest",
        ),
    ),
    ("ARI answers: aiohttp response parsing", ("aiohttp/client_proto.py:", "ClientResponse")),
    (
        "ARI events: websocket, JSON, parse_event",
        ("hotline/asterisk/ari.py:AriClient._receive", "aiohttp/client_ws.py", "aiohttp/_websocket"),
    ),
    ("ARI events: per-channel workers and dispatch", ("hotline/asterisk/ari.py:AriClient._work",)),
    ("IVR engine (Session.handle)", ("ivr/",)),
    ("call runner (inbox, actions, timers)", ("hotline/calls/",)),
    ("switchboard and routing", ("routing/", "hotline/agents/")),
    (
        "AMI, API, health, flow reloads, call-backs",
        (
            "hotline/service.py",
            "hotline/asterisk/ami.py",
            "hotline/api/",
            "hotline/flowfiles.py",
            "hotline/callbacks/",
            "hotline/metrics.py",
            "panoramisk/",
            "aiohttp/web",
        ),
    ),
    ("asyncio loop: wake-ups, callbacks, socket reads", ("",)),
)
#: Leaf frames that wait rather than work: the loop's epoll and the SQLite thread's queue.
IDLE = ("selectors.py:EpollSelector.select", "aiosqlite/core.py:_connection_worker_thread")


def summarise_py_spy(path: Path, top: int = 25) -> dict[str, Any]:
    """Where the busy samples go (CATEGORIES), and the functions with the most of them (self and
    inclusive), from py-spy's collapsed stacks; samples that only wait (IDLE) are left out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        if frames[-1] in IDLE:
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        joined = ";".join(frames)
        categories[next(what for what, marks in CATEGORIES if any(m in joined for m in marks))] += count

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "busy_samples": total,
        "idle_samples": idle,
        "categories": [(what, share(n)) for what, n in categories.most_common()],
        "self": [(name, share(n)) for name, n in own.most_common(top)],
        "inclusive": [(name, share(n)) for name, n in inclusive.most_common(top * 2)],
    }


def summarise_cprofile(path: Path, keys: int, top: int = 30) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    rows = []
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, name), (_cc, ncalls, tottime, cumtime, _callers) in entries.items():
        rows.append((tottime, cumtime, ncalls, f"{frame_name(f'{name} ({file}:{line})')}"))
    rows.sort(reverse=True)
    per_key = {
        label: sum(r[2] for r in rows if r[3].endswith(suffix)) / keys if keys else None
        for label, suffix in (
            ("ari_requests", "hotline/asterisk/ari.py:request"),
            ("session_handle", "ivr/session.py:handle"),
            ("json_loads", "json/__init__.py:loads"),
            ("uuid4", "uuid.py:uuid4"),
        )
    }
    return {
        "per_key": per_key,
        "by_self_time": [(name, round(tot, 3), n) for tot, _cum, n, name in rows[:top]],
        "by_cumulative_time": [
            (name, round(cum, 3), n) for _tot, cum, n, name in sorted(rows, key=lambda r: -r[1])[:top]
        ],
    }


def summarise_tracemalloc(path: Path, callers: int) -> dict[str, Any]:
    """The lines whose allocations grew most between idle and the window, per call."""
    growth = []
    for line in path.read_text(encoding="utf-8").splitlines():
        size, count, where = line.split(" ", 2)
        growth.append((short_path(where), int(size) / 1024 / callers, int(count) / callers))
    return {
        "kib_per_call": sum(g[1] for g in growth),
        "growth": [(where, round(kib, 2), round(n, 1)) for where, kib, n in growth[:40]],
    }


# --- the report ---------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def table(phases: list[Phase]) -> str:
    head = (
        "| state | N | target | CPU s | Asterisk CPU s | ratio | % core/call | CPU ms/key | KiB/call | keys/s | prompts/s "
        "| key->prompt p50 / p99 ms | loop lag p99 ms | gen2 GC max ms | machine busy (cores) | checks |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for p in phases:
        lines.append(
            f"| {p.state} | {p.callers} | {p.target} | {p.target_cpu_s:.2f} | {p.asterisk_cpu_s:.2f} | {p.ratio:.3f} "
            f"| {p.core_pct_per_call:.3f} | {fmt(p.cpu_ms_per_key, 2)} | {p.kib_per_call:.0f} | {p.keys / p.window_s:.0f} "
            f"| {p.prompts / p.window_s:.0f} | {fmt(p.latency_p50_ms, 0)} / {fmt(p.latency_p99_ms, 0)} | {fmt(p.lag_p99_ms)} "
            f"| {fmt(max(p.gc_max_ms[2:], default=None), 0)} "
            f"| {p.machine_busy_cores:.2f} | {'ok' if not p.problems else 'FAILED'} |"
        )
    return "\n".join(lines)


def comparisons(phases: list[Phase]) -> list[dict[str, Any]]:
    """Each target against the minimal app of the same run, per state and N (house rule: on a shared
    machine the ratios hold where the absolute figures move)."""
    found = []
    by = {(p.state, p.callers, p.target): p for p in phases}
    for (state, count, target), phase in by.items():
        minimal = by.get((state, count, "minimal"))
        if target == "minimal" or minimal is None:
            continue
        found.append(
            {
                "state": state,
                "callers": count,
                "target": target,
                "ratio": phase.ratio,
                "minimal_ratio": minimal.ratio,
                "cpu_vs_minimal": phase.ratio / minimal.ratio if minimal.ratio else None,
                "cpu_ms_per_key_vs_minimal": (
                    phase.cpu_ms_per_key / minimal.cpu_ms_per_key
                    if phase.cpu_ms_per_key and minimal.cpu_ms_per_key
                    else None
                ),
                "kib_per_call": phase.kib_per_call,
                "minimal_kib_per_call": minimal.kib_per_call,
                "added_p50_ms": _minus(phase.latency_p50_ms, minimal.latency_p50_ms),
                "added_p99_ms": _minus(phase.latency_p99_ms, minimal.latency_p99_ms),
                "keys_vs_minimal": phase.keys / minimal.keys if minimal.keys else None,
                "prompts_vs_minimal": phase.prompts / minimal.prompts if minimal.prompts else None,
            }
        )
    return found


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def comparison_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| state | N | target | ratio | minimal's ratio | ratio / minimal's | CPU per key / minimal's "
        "| KiB/call (minimal's) | added p50 / p99 ms | keys, prompts / minimal's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['state']} | {r['callers']} | {r['target']} | {r['ratio']:.3f} | {r['minimal_ratio']:.3f} "
            f"| {fmt(r['cpu_vs_minimal'])} | {fmt(r['cpu_ms_per_key_vs_minimal'])} "
            f"| {r['kib_per_call']:.0f} ({r['minimal_kib_per_call']:.0f}) "
            f"| {fmt(r['added_p50_ms'], 0)} / {fmt(r['added_p99_ms'], 0)} "
            f"| {fmt(r['keys_vs_minimal'], 2)}, {fmt(r['prompts_vs_minimal'], 2)} |"
        )
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def asterisk(lock_timeout: float) -> Iterator[Running]:
    """The sandbox with dialplan/ and the benchmark's numbers, held alone (Sandbox.lock) while it runs."""
    sandbox = Sandbox(progress=lambda line: say(f"asterisk: {line}"))
    if not sandbox.installed():
        raise SystemExit("no Asterisk sandbox: install it first with `hotline asterisk install` (as root)")
    with sandbox.lock(lock_timeout), tempfile.TemporaryDirectory(prefix="calls-bench-dialplan-") as folder:
        dialplan = Path(folder) / "dialplan"
        shutil.copytree(DIALPLAN_DIR, dialplan)
        with (dialplan / "extensions.conf").open("a", encoding="utf-8") as out:
            out.write(BENCH_DIALPLAN)
        values = {name: secrets.token_hex(16) for name in placeholders(dialplan)}
        running = sandbox.start(dialplan, values)
        try:
            yield running
        finally:
            sandbox.stop()


def keep(log: Path, kept: Path) -> None:
    kept.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        shutil.copy(log, kept)
    say(f"the target's log is in {kept}")


async def bench(running: Running, args: argparse.Namespace) -> list[Phase]:
    options = Options(args.duration, args.warmup, args.rate, args.limit, args.profile, Path(args.profile_dir))
    callers = Callers(running, args.press, args.think)
    await callers.start()
    phases: list[Phase] = []
    try:
        for state in args.states:
            for count in args.callers:
                for name in args.targets:
                    with tempfile.TemporaryDirectory(prefix=f"calls-bench-{name}-") as folder:
                        target: Target
                        if name == "service":
                            profile = None
                            folder_of = options.profile_dir.resolve()
                            if options.profile == "cprofile":
                                profile = (CPROFILE_ENV, folder_of / f"cprofile-{state}-{count}.pstats")
                            elif options.profile == "tracemalloc":
                                profile = (TRACEMALLOC_ENV, folder_of / f"tracemalloc-{state}-{count}.txt")
                            if profile is not None:
                                folder_of.mkdir(parents=True, exist_ok=True)
                            target = ServiceTarget(running, Path(folder), profile, args.gc_freeze, args.limit)
                        elif name == "minimal":
                            target = MinimalTarget(running, Path(folder))
                        else:
                            target = MinimalWsTarget(running, Path(folder))
                        kept = Path(args.profile_dir) / f"log-{state}-{count}-{name}.txt"
                        try:
                            phase = await run_phase(running, callers, target, state, count, options)
                        except Exception:
                            keep(target.log, kept)
                            raise
                        if phase.problems or args.keep_logs:
                            keep(target.log, kept)
                        phases.append(phase)
    finally:
        await callers.close()
    return phases


def profiles(args: argparse.Namespace, phases: list[Phase]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    folder = Path(args.profile_dir)
    for phase in phases:
        if phase.target != "service":
            continue
        key = f"{phase.state}-{phase.callers}"
        if args.profile == "py-spy" and (folder / f"py-spy-{key}.txt").exists():
            found[key] = summarise_py_spy(folder / f"py-spy-{key}.txt")
        elif args.profile == "cprofile" and (folder / f"cprofile-{key}.pstats").exists():
            found[key] = summarise_cprofile(folder / f"cprofile-{key}.pstats", phase.keys)
        elif args.profile == "tracemalloc" and (folder / f"tracemalloc-{key}.txt").exists():
            found[key] = summarise_tracemalloc(folder / f"tracemalloc-{key}.txt", phase.callers)
    for key, summary in found.items():
        say(f"\nprofile of the service, {key} ({args.profile}):")
        if "growth" in summary:
            say(f"  growth over idle: {summary['kib_per_call']:.1f} KiB per call traced; by line:")
            for where, kib_per_call, count_per_call in summary["growth"]:
                say(f"    {kib_per_call:6.2f} KiB/call {count_per_call:6.1f} blocks/call  {where}")
        elif "self" in summary:
            say(
                f"  {summary['busy_samples']} busy samples ({summary['idle_samples']} waiting, left out); by part:"
            )
            for what, share in summary["categories"]:
                say(f"    {share:5.1f} %  {what}")
            say("  self time:")
            for name, share in summary["self"]:
                say(f"    {share:5.1f} %  {name}")
            say("  inclusive:")
            for name, share in summary["inclusive"]:
                say(f"    {share:5.1f} %  {name}")
        else:
            say(f"  per key: {summary['per_key']}")
            for name, tot, n in summary["by_self_time"]:
                say(f"    {tot:8.3f} s {n:>9}  {name}")
    return found


def positive_ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers of callers like 50,150,300,500")
    return values


def names(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        wrong = [v for v in values if v not in choices]
        if wrong or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: give some of {', '.join(choices)}, comma-separated")
        return values

    return parse


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_service":
        serve(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_minimal":
        run_minimal(sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--callers",
        type=positive_ints,
        default=[50, 150],
        help="concurrent callers, e.g. 50,150,300,500 (default 50,150)",
    )
    parser.add_argument("--states", type=names(STATES), default=list(STATES), help="ivr,queue (default both)")
    parser.add_argument(
        "--targets",
        type=names(TARGETS),
        default=["service", "minimal"],
        help="service,minimal,minimal-ws (default service,minimal)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of the steady window (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds between the last call up and the window (default 3)",
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="calls placed per second while ramping up (default 100)"
    )
    parser.add_argument(
        "--press",
        choices=["finished", "started"],
        default="finished",
        help="ivr: press the key when a prompt finishes (default) or starts (barge-in)",
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="ivr: seconds the caller waits before pressing (default 0)"
    )
    parser.add_argument(
        "--profile",
        choices=["none", "py-spy", "cprofile", "tracemalloc"],
        default="none",
        help="profile the service in each window",
    )
    parser.add_argument(
        "--profile-dir",
        default="var/calls_bench",
        help="where profiles and failed phases' logs go (default var/calls_bench)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: the service calls gc.freeze() once it is up, before the calls (not as shipped)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep every target's log in --profile-dir")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="the service's calls.limit (default none: every caller is taken). With a limit, callers "
        "beyond it get busy (counted), and an ivr phase ends with a recovery round at half the limit",
    )
    parser.add_argument(
        "--json",
        default="var/calls_bench.json",
        help="where every figure goes (default var/calls_bench.json)",
    )
    parser.add_argument(
        "--lock-timeout", type=float, default=900.0, help="seconds to wait for another user of the sandbox"
    )
    args = parser.parse_args()
    if args.gc_freeze and args.profile in ("cprofile", "tracemalloc"):
        parser.error("--gc-freeze goes with --profile none or py-spy (they share the service's SIGUSR1)")
    if os.geteuid() != 0:
        raise SystemExit("run as root: the Asterisk sandbox is a chroot")
    began = time.monotonic()
    with asterisk(args.lock_timeout) as running:
        say(f"asterisk {running.version} (pid {running.pid}) up in {running.seconds:.1f} s")
        phases = asyncio.run(bench(running, args))
    found = profiles(args, phases)
    rows = comparisons(phases)
    print(table(phases))
    print()
    print(comparison_table(rows))
    result = {
        "command": " ".join(["bench/calls_bench.py", *sys.argv[1:]]),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "asterisk": running.version,
        },
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "rate": args.rate,
            "press": args.press,
            "think": args.think,
            "menu_prompts": MENU_PROMPTS,
            "announce_every": ANNOUNCE_EVERY,
            "offer_after": OFFER_AFTER,
            "offer_every": OFFER_EVERY,
            "agents": AGENTS,
            "gc_freeze": args.gc_freeze,
        },
        "seconds": round(time.monotonic() - began, 1),
        "phases": [p.summary() for p in phases],
        "comparisons": rows,
        "profiles": found,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    say(f"\nfigures in {out}; {result['seconds']} s in all")
    if any(p.problems for p in phases):
        for p in phases:
            for problem in p.problems:
                say(f"FAILED {p.state} N={p.callers} {p.target}: {problem}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
