"""What the API keeps on its `web.Application`, as typed keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from hotline.agents.service import RoutingService
from hotline.store.db import Store

STORE = web.AppKey("store", Store)
#: the accepted bearer tokens, as bytes for `hmac.compare_digest`
TOKENS = web.AppKey[tuple[bytes, ...]]("tokens")
#: the OpenAPI document, serialised once
OPENAPI = web.AppKey("openapi", bytes)
#: the largest request body accepted, in bytes
BODY_LIMIT = web.AppKey("body_limit", int)
#: the running service's part of /api/health (asterisk, flows, writer); absent under `hotline api`
SERVICE_HEALTH = web.AppKey[Callable[[], Awaitable[dict[str, Any]]]]("service_health")
#: the figures of `GET /metrics` (the running service's; under `hotline api` the process's alone)
METRICS = web.AppKey("metrics", CollectorRegistry)
#: the agents, queues and live stream of the running service; absent without a routing file
ROUTING = web.AppKey("routing", RoutingService)
#: the service's clock, for "seconds in state" (a demo may run the service at another time of day)
CLOCK = web.AppKey[Callable[[], datetime]]("clock")
#: seconds between keepalive comments on /api/stream, so proxies keep a quiet stream open
STREAM_KEEPALIVE = web.AppKey("stream_keepalive", float)
#: the /api/stream answers in progress, ended when the app shuts down
STREAMS = web.AppKey[set[asyncio.Task[Any]]]("streams")
