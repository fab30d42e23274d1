"""Every API error is one JSON shape with a stable id an integrator can switch on.

    {"error": "invalid_query", "message": "since: ...", "details": [{"field": "since", "message": "..."}]}

The ids (with their HTTP status):

- 400 ``invalid_query``, ``invalid_cursor``, ``invalid_id``, ``invalid_json``, ``invalid_body``,
  ``too_many_customers``, ``invalid_number``, ``unknown_queue``, ``window_in_the_past``,
  ``window_outside_hours``, ``time_in_the_past``
- 401 ``unauthorized``
- 404 ``not_found``
- 405 ``method_not_allowed``
- 409 ``illegal_transition``, ``callback_final``
- 413 ``body_too_large``
- 503 ``store_unavailable``, ``routing_disabled``
- 500 ``internal``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

#: Every error id the API answers with, and its HTTP status (also listed in the OpenAPI document).
ERROR_IDS: dict[str, int] = {
    "invalid_query": 400,
    "invalid_cursor": 400,
    "invalid_id": 400,
    "invalid_json": 400,
    "invalid_body": 400,
    "too_many_customers": 400,
    "invalid_number": 400,
    "unknown_queue": 400,
    "window_in_the_past": 400,
    "window_outside_hours": 400,
    "time_in_the_past": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "illegal_transition": 409,
    "callback_final": 409,
    "body_too_large": 413,
    "internal": 500,
    "store_unavailable": 503,
    "routing_disabled": 503,
}


class ApiError(Exception):
    """An answer other than success; the error middleware turns it into the JSON body."""

    def __init__(
        self,
        error: str,
        message: str,
        details: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = ERROR_IDS[error]
        self.error = error
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def error_response(error: ApiError) -> web.Response:
    body = {"error": error.error, "message": error.message, "details": error.details}
    return web.Response(
        status=error.status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=error.headers,
    )
