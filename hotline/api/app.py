"""The aiohttp application: bearer-token auth, one JSON error shape, and the routes of `routes.ROUTES`.

`make_app` wires an app around a store its caller owns (the service, tests); `app_from_config` opens
and closes the store itself in a `cleanup_ctx`, for `hotline api`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from hotline import metrics
from hotline.agents.service import RoutingService
from hotline.api.agents import AGENT_ROUTES, close_streams
from hotline.api.callbacks import CALLBACK_ROUTES
from hotline.api.errors import ApiError, error_response
from hotline.api.keys import (
    BODY_LIMIT,
    CLOCK,
    METRICS,
    OPENAPI,
    ROUTING,
    SERVICE_HEALTH,
    STORE,
    STREAMS,
    TOKENS,
)
from hotline.api.openapi import openapi_document
from hotline.api.routes import ROUTES, Handler, Route
from hotline.config import Config
from hotline.store.db import Store, open_store
from hotline.store.errors import InvalidQuery, StoreUnavailable

log = structlog.get_logger("hotline.api")

#: The largest request body: 10,000 customers with a few phones and attributes fit well within it.
BODY_LIMIT_BYTES = 5 * 1024 * 1024
#: Every route: the store's, then the agents' and supervisors', then the call-backs'.
ALL_ROUTES: tuple[Route, ...] = (*ROUTES, *AGENT_ROUTES, *CALLBACK_ROUTES)
#: Routes a load balancer or a client generator may read without a token.
OPEN_PATHS = frozenset(route.path for route in ALL_ROUTES if route.open)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hotline"'}


def make_app(
    store: Store,
    tokens: Sequence[str],
    *,
    routing: RoutingService | None = None,
    clock: Callable[[], datetime] | None = None,
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    readings: metrics.Readings | None = None,
) -> web.Application:
    """The API over `store`; requests need one of `tokens` (with none, every request is refused).
    With `routing`, the agent and queue routes control it (without, they answer `routing_disabled`);
    `clock` is the service's, for the agents' time in state; `health` adds the service's parts to
    `/api/health` and `readings` its figures to `/metrics`."""
    app = _application(tokens, readings)
    app[STORE] = store
    if routing is not None:
        app[ROUTING] = routing
    if clock is not None:
        app[CLOCK] = clock
    if health is not None:
        app[SERVICE_HEALTH] = health
    return app


def app_from_config(config: Config) -> web.Application:
    """The API with its own store, opened when the app starts and closed when it stops."""
    app = _application(config.api.tokens)

    async def store_context(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(config.store_url)
        app[STORE] = store
        log.info("api.store_opened", dialect=store.dialect)
        yield
        await store.close()

    app.cleanup_ctx.append(store_context)
    return app


def _application(tokens: Sequence[str], readings: metrics.Readings | None = None) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=BODY_LIMIT_BYTES,
    )
    app[TOKENS] = tuple(dict.fromkeys(token.encode() for token in tokens))
    app[METRICS] = metrics.registry(readings or metrics.Readings())
    app[BODY_LIMIT] = BODY_LIMIT_BYTES
    app[OPENAPI] = json.dumps(openapi_document(ALL_ROUTES), indent=2).encode()
    app[STREAMS] = set()
    app.on_shutdown.append(close_streams)
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app


def _token_matches(presented: str, tokens: tuple[bytes, ...]) -> bool:
    """Compares against every token in constant time, so timing tells nothing about any of them."""
    candidate = presented.encode("utf-8", errors="surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    tokens = request.app[TOKENS]
    if not tokens:
        raise ApiError(
            "unauthorized",
            "this service has no API tokens configured, so it refuses every request; "
            "add api.tokens to its config or set HOTLINE_API_TOKENS",
            headers=_CHALLENGE,
        )
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError("unauthorized", "send the header Authorization: Bearer <token>", headers=_CHALLENGE)
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            "unauthorized",
            f"the Authorization header uses the scheme '{scheme}'; send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="hotline", error="invalid_request"'},
        )
    if not _token_matches(presented.strip(), tokens):
        log.info("api.token_refused", path=request.path, peer=request.remote)
        raise ApiError(
            "unauthorized",
            "the token is not one of the service's API tokens; check api.tokens in its config",
            headers={"WWW-Authenticate": 'Bearer realm="hotline", error="invalid_token"'},
        )
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes `{"error", "message", "details"}`; an unexpected one is logged, not shown."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e)
    except web.HTTPNotFound:
        return error_response(
            ApiError("not_found", f"no route {request.path}; /api/openapi.json lists the routes")
        )
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return error_response(
            ApiError(
                "method_not_allowed",
                f"{request.path} does not take {request.method}; it takes {allowed}",
                headers={"Allow": allowed},
            )
        )
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[BODY_LIMIT]
        return error_response(
            ApiError("body_too_large", f"the body is larger than {limit} bytes", {"limit_bytes": limit})
        )
    except web.HTTPException as e:
        if e.status < 400:
            raise
        body = {"error": e.reason.lower().replace(" ", "_"), "message": e.text or e.reason, "details": None}
        return web.json_response(body, status=e.status)
    except InvalidQuery as e:
        return error_response(ApiError("invalid_query", str(e)))
    except StoreUnavailable as e:
        log.warning("api.store_unavailable", path=request.path, error=str(e))
        return error_response(
            ApiError("store_unavailable", f"the store does not answer ({e}); try again soon")
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("api.internal_error", incident=incident, method=request.method, path=request.path)
        return error_response(
            ApiError(
                "internal", f"the service failed to answer; its log has the details under incident {incident}"
            )
        )
