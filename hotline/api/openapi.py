"""The OpenAPI 3.1 document, written from the route table and the pydantic models' JSON schemas."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hotline.api.errors import ERROR_IDS
from hotline.api.routes import Route
from hotline.api.schemas import ErrorBody

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "Bad input",
    401: "No token, or a wrong one",
    404: "Not found",
    405: "Method not allowed",
    409: "Not allowed in the agent's state",
    413: "Body too large",
    500: "Internal error (the service log has the details)",
    503: "Not available",
}
#: a 409 of the call-back routes is about the call-back's state, not an agent's
_CALLBACK_CONFLICT = "Not allowed in the call-back's state"
#: every protected route may answer with these
_ALWAYS = ("unauthorized", "internal", "store_unavailable")


def _version() -> str:
    try:
        return metadata.version("hotline")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0"


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    used: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for route in routes:
        if route.response is not None:
            used[(route.response, "serialization")] = None
        if route.body is not None:
            used[(route.body, "validation")] = None
    refs, schema = models_json_schema(list(used), ref_template=_REF)
    error_ref = refs[(ErrorBody, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
            "summary": route.summary,
        }
        if route.description:
            operation["description"] = route.description
        parameters = [
            {"name": name, "in": "path", "required": True, "description": text, "schema": {"type": "string"}}
            for name, text in route.path_params.items()
        ]
        if route.query is not None:
            parameters += _query_parameters(route.query)
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        success: dict[str, Any] = {"description": _STATUS_TEXT[route.status]}
        if route.content_type.startswith("text/"):
            success["content"] = {route.content_type: {"schema": {"type": "string"}}}
        else:
            success["content"] = {
                route.content_type: {
                    "schema": refs[(route.response, "serialization")]
                    if route.response is not None
                    else {"type": "object"}
                }
            }
        responses: dict[str, Any] = {str(route.status): success}
        errors = route.errors if route.open else (*route.errors, *_ALWAYS)
        by_status: dict[int, list[str]] = {}
        for error in (*errors, "method_not_allowed"):
            by_status.setdefault(ERROR_IDS[error], []).append(error)
        for status, ids in sorted(by_status.items()):
            text = _CALLBACK_CONFLICT if "callback_final" in ids else _STATUS_TEXT[status]
            responses[str(status)] = {
                "description": f"{text}: error {' or '.join(ids)}",
                "content": {"application/json": {"schema": error_ref}},
            }
        operation["responses"] = responses
        if route.open:
            operation["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hotline API",
            "version": _version(),
            "description": "The contact store of the hotline: contacts with their KPIs and timelines, "
            "customers, and every contact event for incremental sync; and, under `hotline serve` with "
            "routing, the agents and queues: log in, pause, skills, waiting callers, a live event stream. Send `Authorization: Bearer <token>` "
            "with a token from the service config. Every error is "
            '`{"error": id, "message": ..., "details": ...}`; the ids are: ' + ", ".join(ERROR_IDS) + ".",
        },
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    if "$defs" in schema:  # pragma: no cover - query models hold plain values only
        raise TypeError(f"{model.__name__} has nested models; a query string cannot carry them")
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema["properties"].items():
        property_schema = _not_null(dict(property_schema))
        property_schema.pop("title", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = property_schema.pop("description", None)
        if description:
            parameter["description"] = description
        parameter["schema"] = property_schema
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is left out rather than null: `anyOf: [X, null]` with default null reads as X."""
    members = schema.get("anyOf")
    if not isinstance(members, list) or {"type": "null"} not in members or len(members) != 2:
        return schema
    [member] = [m for m in members if m != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**member, **rest}
