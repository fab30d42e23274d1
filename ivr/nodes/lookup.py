"""`lookup`: ask a CRM over HTTP; fields of its JSON answer become variables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ivr import actions, events
from ivr.fields import NodeId, Strict, VariableName
from ivr.nodes.base import Call, Exit, NodeBase
from ivr.templates import render_data, render_header, render_url, text

#: The longest an HTTP lookup may take before the flow takes its fallback path.
LOOKUP_TIMEOUT_CAP = 5.0
#: The guard timer of a lookup runs this much longer than the request may take.
LOOKUP_GRACE = 0.5


class Request(Strict):
    """An HTTP request to a CRM."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    timeout: Annotated[float, Field(gt=0)] = 2.0
    fields: dict[VariableName, str] = Field(default_factory=dict)

    @field_validator("timeout")
    @classmethod
    def _cap(cls, v: float) -> float:
        if v > LOOKUP_TIMEOUT_CAP:
            raise ValueError(f"a lookup may wait at most {LOOKUP_TIMEOUT_CAP:g} s; callers are waiting")
        return v

    @model_validator(mode="after")
    def _body(self) -> Request:
        if self.body is not None and self.method == "GET":
            raise ValueError("a GET lookup has no body; use method: POST")
        return self


class Lookup(NodeBase):
    """Ask a CRM over HTTP; fields of its JSON answer become variables."""

    TYPE_KEY: ClassVar[str] = "lookup"
    SHAPE: ClassVar[str] = "cylinder"
    EXAMPLE: ClassVar[str] = """\
nodes:
  find_customer:
    lookup:
      url: http://127.0.0.1:8081/customers?phone={caller}
      method: GET
      timeout: 2
      headers: {Authorization: Bearer hotline-token}
      fields:
        customer_id: customer_id
        customer_name: customer_name
        tier: tier
    next: main_menu
    fallback: main_menu
  open_ticket:
    lookup:
      url: https://crm.example.com/api/tickets
      method: POST
      body: {phone: "{caller}", contract: "{contract}", source: hotline}
      fields: {ticket: ticket.id}
    next: queue_support
    fallback: queue_support
"""

    lookup: Request
    next: NodeId
    fallback: NodeId

    def enter(self, call: Call) -> None:
        request = self.lookup
        variables = call.variables
        call.await_lookup(
            actions.Lookup(
                request_id=call.new_id("r"),
                method=request.method,
                url=render_url(request.url, variables),
                headers={name: render_header(value, variables) for name, value in request.headers.items()},
                body=render_data(request.body, variables) if request.body is not None else None,
                timeout=request.timeout,
            ),
            guard=request.timeout + LOOKUP_GRACE,
            on_answer=lambda result: self._answered(call, result),
        )

    def _answered(self, call: Call, result: events.LookupAnswered | events.LookupFailed) -> None:
        if isinstance(result, events.LookupFailed):
            self._failed(call, str(result.reason))
            return
        status = result.status
        if not isinstance(status, int) or not 200 <= status < 300:
            self._failed(call, f"HTTP status {status}")
            return
        if not isinstance(result.body, dict):
            self._failed(call, "the answer is not a JSON object")
            return
        found: list[str] = []
        for variable, path in self.lookup.fields.items():
            value = dig(result.body, path)
            if value is not None:
                call.set_variable(variable, value)
                found.append(variable)
        call.record("lookup_done", node=call.node_id, status=status, fields=found)
        call.go(self.next)

    def _failed(self, call: Call, reason: str) -> None:
        call.record("lookup_failed", node=call.node_id, reason=reason)
        call.go(self.fallback)

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")
        yield Exit(("fallback",), self.fallback, "fallback")

    def detail(self) -> tuple[str, str | None]:
        return self.lookup.method, self.lookup.url


def dig(body: Any, path: str) -> str | None:
    """The value at a dotted path (`customer.accounts.0.id`) as a variable holds it; None when missing."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text(value)
