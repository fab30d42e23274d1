"""`transfer`: transfer the caller to an extension, a device or an outside number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, model_validator

from ivr import actions, events
from ivr.fields import Extension, NodeId, Seconds, Strict
from ivr.nodes.base import Call, Exit, Hold, NodeBase
from ivr.templates import render


class TransferTarget(Strict):
    """Exactly one of extension (in `context`), endpoint (PJSIP/agent1) or external number."""

    extension: Extension | None = None
    context: str = "hotline-transfer"
    endpoint: str | None = Field(default=None, pattern=r"^[A-Za-z]+/.+$")
    number: str | None = Field(default=None, pattern=r"^\+?[0-9]{2,20}$")
    timeout: Seconds = 30.0

    @model_validator(mode="after")
    def _one(self) -> TransferTarget:
        given = [k for k in ("extension", "endpoint", "number") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of extension, endpoint or number")
        return self

    def kind(self) -> tuple[str, str]:
        """Which of extension, endpoint or number is given, and its value."""
        return next(
            (kind, value)
            for kind, value in (
                ("extension", self.extension),
                ("endpoint", self.endpoint),
                ("number", self.number),
            )
            if value is not None
        )


class Transfer(NodeBase):
    """Transfer the caller; `failure` when nobody answers or the line is busy."""

    TYPE_KEY: ClassVar[str] = "transfer"
    ENDS: ClassVar[bool] = True
    EXAMPLE: ClassVar[str] = """\
nodes:
  operator:
    transfer:
      extension: "100"
      context: hotline-transfer
      timeout: 25
    failure: all_busy
  reception:
    transfer: {endpoint: PJSIP/reception}
    failure: all_busy
  night_service:
    transfer: {number: "+48221234500", timeout: 40}
"""

    transfer: TransferTarget
    failure: NodeId | None = None

    def enter(self, call: Call) -> None:
        target = self.transfer
        kind, raw = target.kind()
        destination = render(raw, call.variables)
        call.record("transferred", kind=kind, target=destination)
        call.emit(
            actions.Transfer(
                kind=kind,
                target=destination,
                context=target.context if kind == "extension" else None,
                timeout=target.timeout,
            )
        )
        call.hand_off("transfer", _Ringing(self, call, kind, destination))

    def exits(self) -> Iterator[Exit]:
        if self.failure is not None:
            yield Exit(("failure",), self.failure, "failure")

    def detail(self) -> tuple[str, str | None]:
        kind, value = self.transfer.kind()
        return f"to {kind}", value


class _Ringing(Hold):
    """The caller is being put through; a failed transfer gives them back to the flow."""

    waiting_for: ClassVar[str] = "transfer"

    def __init__(self, node: Transfer, call: Call, kind: str, target: str) -> None:
        self.node, self.call, self.kind, self.target = node, call, kind, target

    def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.TransferFailed):
            call = self.call
            call.record(
                "transfer_failed",
                node=call.node_id,
                kind=self.kind,
                target=self.target,
                reason=str(event.reason),
            )
            call.take_back()
            call.fail_node(self.node.failure)
