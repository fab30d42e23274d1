"""What the API accepts and answers, as pydantic models: they validate every input before it reaches the
store, serialise every answer, and are the schemas of the OpenAPI document."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    WithJsonSchema,
    model_validator,
)

from hotline.store.errors import InvalidPhone
from hotline.store.events import MAX_ID, OUTCOMES
from hotline.store.phones import normalise

#: The most customers one import request may carry; larger imports go in several requests.
MAX_CUSTOMERS = 10_000
#: The largest page of contacts or events.
MAX_LIMIT = 500

# An unencoded `+` in a query string arrives as a space: `...T08:00:00 01:00` means `...+01:00`.
_SPACE_OFFSET = re.compile(r"(\d{4}-\d\d-\d\dT[\d:.,]+) (\d\d(?::?\d\d)?)")


def _parse_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a time is a string like 2026-11-01T08:00:00+01:00")
    text = value.strip()
    unencoded = _SPACE_OFFSET.fullmatch(text)
    if unencoded:
        text = f"{unencoded.group(1)}+{unencoded.group(2)}"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{value}' is not an ISO 8601 time; write it like 2026-11-01T08:00:00+01:00 or 2026-11-01T07:00:00Z"
        ) from None
    if at.tzinfo is None:
        raise ValueError(f"'{value}' has no UTC offset; add one, like 2026-11-01T08:00:00+01:00 or ...Z")
    return at


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _phone(value: str) -> str:
    try:
        return normalise(value)
    except InvalidPhone as e:
        raise ValueError(str(e)) from None


def _known_outcome(value: Any) -> Any:
    if isinstance(value, str) and value not in OUTCOMES:
        raise ValueError(f"unknown outcome '{value}'; the outcomes are {', '.join(sorted(OUTCOMES))}")
    return value


def _id_from_int(value: Any) -> Any:
    """CRMs often number their customers; 42 and "42" are the same id."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: An aware time, given in any offset, kept in UTC.
Time = Annotated[
    datetime,
    BeforeValidator(_parse_time),
    AfterValidator(_utc),
    Field(description="ISO 8601 with a UTC offset or Z", examples=["2026-11-01T08:00:00+01:00"]),
]
#: A time the API answers with: always UTC, written with Z.
UtcTime = Annotated[datetime, AfterValidator(_utc)]
Phone = Annotated[
    str,
    Field(min_length=1, max_length=40, examples=["+48 22 123-45-67"]),
    AfterValidator(_phone),
]
#: A queue or agent name as the store keeps it.
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Outcome = Annotated[
    str,
    BeforeValidator(_known_outcome),
    Field(json_schema_extra={"enum": sorted(OUTCOMES)}, examples=["abandoned_queue"]),
]
#: A contact or customer id: anything printable up to 64 characters.
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID, pattern=r"^[^\x00-\x1f\x7f]+$"), BeforeValidator(_id_from_int)
]
Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9_\-=.:~+/]+$",
        description="next_cursor of the previous page, as it was given",
    ),
]


class Query(BaseModel):
    """A query string: unknown parameters are refused by the handler before validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactsQuery(Query):
    since: Time | None = Field(None, description="contacts started at or after this time")
    until: Time | None = Field(None, description="contacts started before this time")
    number: Phone | None = Field(None, description="the caller's number, in any common format")
    outcome: Outcome | None = None
    queue: Label | None = None
    agent: Label | None = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="contacts per page")
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _range(self) -> ContactsQuery:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since is after until; swap them")
        return self


class EventsQuery(Query):
    after: int = Field(
        0, ge=0, description="`next` of the previous answer (0, or left out, starts from the first event)"
    )
    limit: int = Field(500, ge=1, le=MAX_LIMIT, description="events per answer")


class CustomerQuery(Query):
    phone: Phone = Field(description="the number to look up, in any common format")


class CustomerIn(BaseModel):
    """One customer as a CRM sends it; it replaces what the store had under the same id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[
        Identifier,
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID}, {"type": "integer"}],
                "description": "the CRM's id; an integer is kept as its text",
            }
        ),
    ]
    name: str | None = Field(None, max_length=200)
    phones: list[Phone] = Field(default_factory=list, max_length=20)
    attributes: dict[Annotated[str, Field(max_length=64)], JsonValue] = Field(
        default_factory=dict, max_length=100, description="shown to agents and available to IVR lookups"
    )


class CustomerImport(RootModel[list[CustomerIn]]):
    """The body of POST and PUT /api/customers."""

    root: list[CustomerIn] = Field(max_length=MAX_CUSTOMERS)


class ContactOut(BaseModel):
    """One contact with its KPIs, as the projection keeps it."""

    id: str
    parent_id: str | None = Field(description="the contact this call-back came from")
    call_id: str | None
    caller: str | None
    dialed: str | None
    customer_id: str | None
    language: str | None
    started_at: UtcTime | None
    queued_at: UtcTime | None
    answered_at: UtcTime | None
    ended_at: UtcTime | None
    wait_seconds: float | None
    talk_seconds: float | None
    outcome: str | None
    queue: str | None
    agent: str | None
    ended_by: str | None = Field(None, description="who hung up: caller, agent, system ...")
    ivr_path: list[str] = Field(description="the IVR nodes the caller went through, in order")
    last_seq: int


class EventOut(BaseModel):
    """One contact event; `seq` orders all events and is the /api/events cursor."""

    seq: int
    id: str
    type: str
    at: UtcTime
    contact_id: str
    call_id: str | None
    data: dict[str, Any]


class ContactDetail(ContactOut):
    timeline: list[EventOut]


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class EventPage(BaseModel):
    items: list[EventOut]
    next: int = Field(description="pass as `after` to get the events that follow")


class CustomerOut(BaseModel):
    id: str
    name: str | None
    phones: list[str]
    attributes: dict[str, Any]
    created_at: UtcTime | None
    updated_at: UtcTime | None


class ImportResult(BaseModel):
    created: int
    updated: int


class AsteriskHealth(BaseModel):
    connected: bool = Field(description="whether the service's ARI event socket is connected")
    connections: int = Field(description="how many times the event socket connected (1 + reconnects)")
    calls: int = Field(description="calls in progress on the service")
    ami: dict[str, Any] | None = Field(None, description="what the AMI watcher reports, when one runs")


class FlowsHealth(BaseModel):
    version: str = Field(description="a digest of the live flow files; it changes with every reload")
    loaded_at: UtcTime
    flows: list[str] = Field(description="the names of the live flows")
    reloads: int = Field(description="how many reloads were taken since the service started")
    rejected: int = Field(description="how many edits were rejected (the old set stayed live)")


class WriterHealth(BaseModel):
    backlog: int = Field(description="contact events not yet in the database (in memory or spooled)")


class Health(BaseModel):
    """`hotline api` answers status and store; `hotline serve` adds asterisk, flows and writer."""

    status: Literal["ok"]
    store: str = Field(description="the store's database: sqlite or postgresql")
    asterisk: AsteriskHealth | None = None
    flows: FlowsHealth | None = None
    writer: WriterHealth | None = None


class ErrorBody(BaseModel):
    """Every error answer: `error` is a stable id, `message` says what to fix."""

    error: str = Field(examples=["invalid_query"])
    message: str
    details: Any = Field(None, description="per-field problems for 400s, otherwise usually null")
