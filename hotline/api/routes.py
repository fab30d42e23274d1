"""The API's routes: each is a handler plus what it takes and answers, so the same table registers the
routes and writes the OpenAPI document (a route cannot go undocumented)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from aiohttp import web
from prometheus_client import generate_latest
from pydantic import BaseModel, TypeAdapter, ValidationError

from hotline.api.errors import ApiError
from hotline.api.keys import BODY_LIMIT, METRICS, OPENAPI, SERVICE_HEALTH, STORE
from hotline.api.schemas import (
    MAX_CUSTOMERS,
    ContactDetail,
    ContactOut,
    ContactPage,
    ContactsQuery,
    CustomerImport,
    CustomerIn,
    CustomerOut,
    CustomerQuery,
    EventOut,
    EventPage,
    EventsQuery,
    Health,
    Identifier,
    ImportResult,
    Query,
)
from hotline.store.errors import InvalidCursor, InvalidCustomer, InvalidPhone, InvalidQuery
from hotline.store.events import Customer

log = structlog.get_logger("hotline.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Q = TypeVar("Q", bound=Query)

#: Query parameters whose bad values are cursor problems (`invalid_cursor`), not filter problems.
_CURSOR_FIELDS = frozenset({"cursor", "after"})
_ID = TypeAdapter(Identifier)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    #: the model of a 200 answer (None: any JSON object)
    response: type[BaseModel] | None
    query: type[Query] | None = None
    body: type[BaseModel] | None = None
    #: error ids this route may answer with, besides unauthorized, internal and store_unavailable
    errors: tuple[str, ...] = ()
    #: open routes need no token
    open: bool = False
    description: str = ""
    path_params: dict[str, str] = field(default_factory=dict)
    #: the media type of a success answer
    content_type: str = "application/json"
    #: the status of a success answer (201 for a route that creates)
    status: int = 200


def respond(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, body=model.model_dump_json().encode(), content_type="application/json")


def _field(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def problems(error: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as `{"field": "3.phones.0", "message": ...}`, without the inputs (they may be large)."""
    return [
        {"field": _field(e["loc"]), "message": str(e["msg"]).removeprefix("Value error, ")}
        for e in error.errors()
    ]


def _summary(details: list[dict[str, str]]) -> str:
    first = details[0]
    text = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    more = len(details) - 1
    return text + (f" (and {more} more problem{'s' if more != 1 else ''})" if more else "")


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """The query string as `model`; unknown or repeated parameters are refused by name.

    An empty value (`?queue=`) counts as left out, as HTML forms and many clients send them.
    """
    allowed = list(model.model_fields)
    names = list(dict.fromkeys(request.query))
    unknown = [name for name in names if name not in model.model_fields]
    if unknown:
        raise ApiError(
            "invalid_query",
            f"unknown query parameter{'s' if len(unknown) != 1 else ''} {', '.join(unknown)}; "
            f"this route takes {', '.join(allowed)}",
            [{"field": name, "message": "unknown parameter"} for name in unknown],
        )
    repeated = [name for name in names if len(request.query.getall(name)) > 1]
    if repeated:
        raise ApiError(
            "invalid_query",
            f"query parameter {', '.join(repeated)} given more than once; give each at most once",
            [{"field": name, "message": "given more than once"} for name in repeated],
        )
    values = {name: value for name, value in request.query.items() if value != ""}
    try:
        return model.model_validate(values)
    except ValidationError as e:
        details = problems(e)
        cursor = all(d["field"] in _CURSOR_FIELDS for d in details)
        raise ApiError("invalid_cursor" if cursor else "invalid_query", _summary(details), details) from None


def path_id(request: web.Request, name: str = "id") -> str:
    try:
        return _ID.validate_python(request.match_info[name])
    except ValidationError as e:
        details = [{"field": name, "message": d["message"]} for d in problems(e)]
        raise ApiError("invalid_id", f"{name}: {details[0]['message']}", details) from None


async def list_contacts(request: web.Request) -> web.Response:
    query = parse_query(request, ContactsQuery)
    try:
        page = await request.app[STORE].contacts(
            since=query.since,
            until=query.until,
            number=query.number,
            outcome=query.outcome,
            queue=query.queue,
            agent=query.agent,
            limit=query.limit,
            cursor=query.cursor,
        )
    except InvalidCursor as e:
        raise ApiError(
            "invalid_cursor",
            f"{e}; pass next_cursor from the previous page as it was, or leave cursor out to start again",
            [{"field": "cursor", "message": str(e)}],
        ) from None
    except InvalidQuery as e:
        raise ApiError("invalid_query", str(e)) from None
    items = [ContactOut.model_validate(contact, from_attributes=True) for contact in page.items]
    return respond(ContactPage(items=items, next_cursor=page.next_cursor))


async def get_contact(request: web.Request) -> web.Response:
    contact_id = path_id(request)
    store = request.app[STORE]
    contact = await store.contact(contact_id)
    if contact is None:
        raise ApiError("not_found", f"no contact with id '{contact_id}'")
    timeline = [
        EventOut.model_validate(event, from_attributes=True) for event in await store.timeline(contact_id)
    ]
    detail = ContactDetail.model_validate(
        {**ContactOut.model_validate(contact, from_attributes=True).model_dump(), "timeline": timeline}
    )
    return respond(detail)


async def find_customer(request: web.Request) -> web.Response:
    query = parse_query(request, CustomerQuery)
    customer = await request.app[STORE].customer_by_phone(query.phone)
    if customer is None:
        raise ApiError("not_found", f"no customer has the number {query.phone}")
    return respond(CustomerOut.model_validate(customer, from_attributes=True))


async def get_customer(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    customer = await request.app[STORE].customer(customer_id)
    if customer is None:
        raise ApiError("not_found", f"no customer with id '{customer_id}'")
    return respond(CustomerOut.model_validate(customer, from_attributes=True))


async def read_json(
    request: web.Request,
    example: str = "a JSON list of customers",
    too_large: str = "send the customers in several requests",
) -> Any:
    """The body as JSON; too large a body is refused before it is read in full. `example` says what to
    send, `too_large` what to do about a body over the limit."""
    limit = request.app[BODY_LIMIT]
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit, too_large)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit, too_large) from None
    if not raw.strip():
        raise ApiError("invalid_json", f"the body is empty; send {example}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError("invalid_json", f"the body is not JSON: {e}") from None


def _too_large(limit: int, hint: str) -> ApiError:
    return ApiError(
        "body_too_large",
        f"the body is larger than {limit // (1024 * 1024)} MB; {hint}",
        {"limit_bytes": limit},
    )


def customers_from(body: Any) -> list[CustomerIn]:
    if not isinstance(body, list):
        raise ApiError(
            "invalid_body",
            'the body must be a JSON list of customers: [{"id": "c-1", "name": ..., "phones": [...]}]',
        )
    if len(body) > MAX_CUSTOMERS:
        raise ApiError(
            "too_many_customers",
            f"{len(body)} customers in one request; send at most {MAX_CUSTOMERS} per request",
            {"count": len(body), "limit": MAX_CUSTOMERS},
        )
    try:
        customers = CustomerImport.model_validate(body).root
    except ValidationError as e:
        details = problems(e)
        raise ApiError("invalid_body", _summary(details), details) from None
    clashes: list[dict[str, str]] = []
    ids: dict[str, int] = {}
    phones: dict[str, tuple[int, str]] = {}
    for index, customer in enumerate(customers):
        if customer.id in ids:
            clashes.append(
                {"field": f"{index}.id", "message": f"id '{customer.id}' is also customer {ids[customer.id]}"}
            )
        ids.setdefault(customer.id, index)
        for number in customer.phones:
            owner = phones.setdefault(number, (index, customer.id))
            if owner[1] != customer.id:
                clashes.append(
                    {
                        "field": f"{index}.phones",
                        "message": f"{number} also belongs to customer {owner[0]} ('{owner[1]}')",
                    }
                )
    if clashes:
        raise ApiError("invalid_body", _summary(clashes), clashes)
    return customers


async def import_customers(request: web.Request) -> web.Response:
    customers = customers_from(await read_json(request))
    records = [
        Customer(id=c.id, name=c.name, phones=list(dict.fromkeys(c.phones)), attributes=dict(c.attributes))
        for c in customers
    ]
    try:
        created, updated = await request.app[STORE].upsert_customers(records)
    except (InvalidCustomer, InvalidPhone) as e:
        raise ApiError("invalid_body", str(e)) from None
    return respond(ImportResult(created=created, updated=updated))


async def list_events(request: web.Request) -> web.Response:
    query = parse_query(request, EventsQuery)
    events = await request.app[STORE].events_after(query.after, query.limit)
    items = [EventOut.model_validate(event, from_attributes=True) for event in events]
    return respond(EventPage(items=items, next=events[-1].seq if events else query.after))


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def health(request: web.Request) -> web.Response:
    """Open to load balancers: says whether the store answers; under `hotline serve` also whether
    Asterisk is connected, which flows are live and how many events wait for the database."""
    store = request.app[STORE]
    try:
        await store.contact("health-check")
    except Exception as e:
        log.warning("api.health_failed", error=str(e))
        raise ApiError("store_unavailable", f"the {store.dialect} store does not answer: {e}") from None
    details = await request.app[SERVICE_HEALTH]() if SERVICE_HEALTH in request.app else {}
    health = Health.model_validate({"status": "ok", "store": store.dialect, **details})
    return web.Response(
        body=health.model_dump_json(exclude_none=True).encode(), content_type="application/json"
    )


async def metrics(request: web.Request) -> web.Response:
    """The service's figures in Prometheus's text format (`hotline.metrics`)."""
    return web.Response(
        body=generate_latest(request.app[METRICS]), content_type="text/plain", charset="utf-8"
    )


_IMPORT_DESCRIPTION = (
    "Bulk import from a CRM: a JSON list of up to 10,000 customers. Each customer replaces what the store "
    "had under its id (name, phones and attributes are not merged). Phones may be written in any common "
    "format; they are stored as + and digits. POST and PUT do the same."
)

ROUTES: Sequence[Route] = (
    Route(
        "GET",
        "/api/contacts",
        list_contacts,
        "Contacts, newest first, filtered and paged",
        ContactPage,
        query=ContactsQuery,
        errors=("invalid_query", "invalid_cursor"),
    ),
    Route(
        "GET",
        "/api/contacts/{id}",
        get_contact,
        "One contact and its timeline of events",
        ContactDetail,
        errors=("invalid_id", "not_found"),
        path_params={"id": "the contact's id"},
    ),
    Route(
        "GET",
        "/api/customers",
        find_customer,
        "The customer a phone number belongs to",
        CustomerOut,
        query=CustomerQuery,
        errors=("invalid_query", "not_found"),
    ),
    *(
        Route(
            method,
            "/api/customers",
            import_customers,
            "Import customers (create or replace by id)",
            ImportResult,
            body=CustomerImport,
            errors=("invalid_json", "invalid_body", "too_many_customers", "body_too_large"),
            description=_IMPORT_DESCRIPTION,
        )
        for method in ("POST", "PUT")
    ),
    Route(
        "GET",
        "/api/customers/{id}",
        get_customer,
        "One customer by id",
        CustomerOut,
        errors=("invalid_id", "not_found"),
        path_params={"id": "the customer's id, as the CRM gave it"},
    ),
    Route(
        "GET",
        "/api/events",
        list_events,
        "Contact events after a cursor, oldest first, for incremental sync",
        EventPage,
        query=EventsQuery,
        errors=("invalid_query", "invalid_cursor"),
        description="Start with after=0 (or without after); then pass `next` of each answer as `after`. "
        "An answer with fewer items than `limit` means the sync has caught up for now.",
    ),
    Route("GET", "/api/openapi.json", openapi, "This document", None, open=True),
    Route(
        "GET",
        "/api/health",
        health,
        "Whether the service and its store answer",
        Health,
        open=True,
        errors=("store_unavailable",),
    ),
    Route(
        "GET",
        "/metrics",
        metrics,
        "The service's figures for Prometheus",
        None,
        content_type="text/plain",
        description="Calls in progress, callers and call-back placeholders waiting by queue, agents by state, "
        "the store's backlog, contact events by type, flow reloads, and the process's CPU and memory, in "
        "Prometheus's text format. Scrape it with the bearer token like any route.",
    ),
)
