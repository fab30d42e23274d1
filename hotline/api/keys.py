"""What the API keeps on its `web.Application`, as typed keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

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
