"""/api/openapi.json: a structurally valid OpenAPI 3.1 document that describes every route, and the
answers the API really gives match the schemas it documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jsonschema
import pytest

from hotline.api.app import ALL_ROUTES
from hotline.api.errors import ERROR_IDS
from hotline.store.db import Store
from support.api_helpers import T0, Api, call
from support.paths import DOCS

#: The shape of an OpenAPI 3.1 document, as far as this API uses it.
OPENAPI_SHAPE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["openapi", "info", "paths", "components"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
        },
        "paths": {
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"enum": ["get", "put", "post", "delete", "patch", "head", "options"]},
                "additionalProperties": {"$ref": "#/$defs/operation"},
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {"type": "object", "additionalProperties": {"type": "object"}},
                "securitySchemes": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["http", "apiKey", "oauth2", "openIdConnect"]}},
                    },
                },
            },
        },
        "security": {"type": "array", "items": {"type": "object"}},
    },
    "$defs": {
        "operation": {
            "type": "object",
            "required": ["operationId", "responses"],
            "properties": {
                "operationId": {"type": "string"},
                "summary": {"type": "string"},
                "parameters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "in", "schema"],
                        "properties": {
                            "name": {"type": "string"},
                            "in": {"enum": ["query", "path", "header", "cookie"]},
                            "required": {"type": "boolean"},
                            "schema": {"type": "object"},
                        },
                        "if": {"properties": {"in": {"const": "path"}}},
                        "then": {"required": ["required"], "properties": {"required": {"const": True}}},
                    },
                },
                "requestBody": {
                    "type": "object",
                    "required": ["content"],
                    "properties": {"content": {"$ref": "#/$defs/content"}},
                },
                "responses": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": "^[1-5][0-9][0-9]$"},
                    "additionalProperties": {
                        "type": "object",
                        "required": ["description"],
                        "properties": {
                            "description": {"type": "string"},
                            "content": {"$ref": "#/$defs/content"},
                        },
                    },
                },
                "security": {"type": "array"},
            },
        },
        "content": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["schema"],
                "properties": {"schema": {"type": "object"}},
            },
        },
    },
}


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    status, document = await api.get("/api/openapi.json", token=None)
    assert status == 200
    return dict(document)


def matches(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate `value` against a schema of the document (its $refs resolve inside the document)."""
    jsonschema.validate(
        value, {**schema, "components": document["components"]}, jsonschema.Draft202012Validator
    )


def response_schema(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    response = document["paths"][path][method]["responses"][str(status)]
    return dict(response["content"]["application/json"]["schema"])


async def test_the_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(OPENAPI_SHAPE)
    jsonschema.validate(document, OPENAPI_SHAPE, jsonschema.Draft202012Validator)
    for name, schema in document["components"]["schemas"].items():
        assert name and jsonschema.Draft202012Validator.check_schema(schema) is None
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_every_route_is_documented(api: Api, document: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    registered = {
        (route.method, route.resource.canonical)
        for route in api.client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert documented == registered == {(route.method, route.path) for route in ALL_ROUTES}
    assert documented == {
        ("GET", "/api/contacts"),
        ("GET", "/api/contacts/{id}"),
        ("GET", "/api/customers"),
        ("POST", "/api/customers"),
        ("PUT", "/api/customers"),
        ("GET", "/api/customers/{id}"),
        ("GET", "/api/events"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/health"),
        ("GET", "/metrics"),
        ("GET", "/api/agents"),
        ("POST", "/api/agents/{id}/login"),
        ("POST", "/api/agents/{id}/logout"),
        ("POST", "/api/agents/{id}/pause"),
        ("POST", "/api/agents/{id}/resume"),
        ("POST", "/api/agents/{id}/wrapup/end"),
        ("PUT", "/api/agents/{id}/skills"),
        ("GET", "/api/queues"),
        ("GET", "/api/stream"),
        ("POST", "/api/callbacks"),
        ("GET", "/api/callbacks"),
        ("GET", "/api/callbacks/{id}"),
        ("DELETE", "/api/callbacks/{id}"),
        ("POST", "/api/callbacks/{id}/reschedule"),
    }


async def test_parameters_bodies_and_security(document: dict[str, Any]) -> None:
    paths = document["paths"]
    contacts = paths["/api/contacts"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in contacts["parameters"]] == [
        (name, "query", False)
        for name in ("since", "until", "number", "outcome", "queue", "agent", "limit", "cursor")
    ]
    limit = next(p for p in contacts["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 500, 50)
    assert paths["/api/customers"]["get"]["parameters"][0] | {"schema": None} == {
        "name": "phone",
        "in": "query",
        "required": True,
        "description": "the number to look up, in any common format",
        "schema": None,
    }
    assert paths["/api/contacts/{id}"]["get"]["parameters"][0]["in"] == "path"
    body = paths["/api/customers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == paths["/api/customers"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    matches(
        document, body, [{"id": "c-1", "name": "A", "phones": ["+48 22 123 45 67"], "attributes": {"a": 1}}]
    )
    with pytest.raises(jsonschema.ValidationError):
        matches(document, body, [{"name": "no id"}])
    with pytest.raises(jsonschema.ValidationError):
        matches(document, body, [{"id": "c-1", "extra": 1}])
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert paths["/api/health"]["get"]["security"] == []
    assert paths["/api/openapi.json"]["get"]["security"] == []
    assert "security" not in contacts
    assert set(contacts["responses"]) == {"200", "400", "401", "405", "500", "503"}
    assert contacts["responses"]["400"]["description"] == "Bad input: error invalid_query or invalid_cursor"
    imports = paths["/api/customers"]["post"]["responses"]
    assert set(imports) == {"200", "400", "401", "405", "413", "500", "503"}
    every_id = {
        error
        for item in paths.values()
        for op in item.values()
        for status, response in op["responses"].items()
        if not status.startswith("2")
        for error in response["description"].split(": error ")[1].split(" or ")
    }
    assert every_id == set(ERROR_IDS)


async def test_answers_match_their_documented_schemas(
    api: Api, store: Store, document: dict[str, Any]
) -> None:
    await store.append(call("c-1", T0) + call("c-2", T0 + timedelta(minutes=1), agent=None))
    await api.send("POST", "/api/customers", [{"id": "k-1", "name": "Anna", "phones": ["+48221234567"]}])
    answers = [
        ("/api/contacts", "get", {"limit": "1"}, 200),
        ("/api/contacts/{id}", "get", None, 200),
        ("/api/customers", "get", {"phone": "+48221234567"}, 200),
        ("/api/customers/{id}", "get", None, 200),
        ("/api/events", "get", {"limit": "3"}, 200),
        ("/api/health", "get", None, 200),
        ("/api/contacts", "get", {"limit": "0"}, 400),
        ("/api/customers/{id}", "get", None, 404),
    ]
    for path, method, params, expected in answers:
        concrete = path.replace(
            "{id}", "c-1" if "contacts" in path else ("k-1" if expected == 200 else "nobody")
        )
        status, body = await api.get(concrete, params)
        assert status == expected, (path, body)
        matches(document, response_schema(document, path, method, status), body)
    status, body = await api.send("PUT", "/api/customers", [{"id": "k-2"}])
    assert status == 200
    matches(document, response_schema(document, "/api/customers", "put", 200), body)
    status, body = await api.get("/api/contacts", token="wrong-token-0123456789")
    matches(document, response_schema(document, "/api/contacts", "get", 401), body)


def test_the_api_doc_covers_every_route_and_error() -> None:
    doc = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{r.method} {r.path}" for r in ALL_ROUTES if f"{r.method} {r.path}" not in doc.replace("?phone=", "")
    ]
    missing += [error for error in ERROR_IDS if f"`{error}`" not in doc]
    assert missing == []
