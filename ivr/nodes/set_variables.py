"""`set`: set variables (templates such as `{caller}` are filled in), then go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from ivr.fields import NodeId, VariableName
from ivr.nodes.base import Call, Exit, NodeBase
from ivr.templates import render, shown, text


class SetVariables(NodeBase):
    """Set variables (templates such as `{caller}` are filled in)."""

    TYPE_KEY: ClassVar[str] = "set"
    WAITS: ClassVar[bool] = False
    SHAPE: ClassVar[str] = "note"
    EXAMPLE: ClassVar[str] = """\
nodes:
  support_internet:
    set:
      product: internet
      summary: "internet fault, contract {contract}"
      urgent: true
    next: contract_number
"""

    set: dict[VariableName, str | int | float | bool] = Field(min_length=1)
    next: NodeId

    def enter(self, call: Call) -> None:
        for name, value in self.set.items():
            call.set_variable(name, render(text(value), call.variables))
        call.go(self.next)

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")

    def detail(self) -> tuple[str, str | None]:
        return ", ".join(f"{k} = {shown(v)}" for k, v in self.set.items()), None
