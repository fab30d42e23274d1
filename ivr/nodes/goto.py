"""`goto`: jump to a node of this flow, or into another flow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from ivr.fields import Name, NodeId, Strict
from ivr.nodes.base import Call, Exit, NodeBase


class GotoTarget(Strict):
    """A node of another flow file (a shared sub-flow)."""

    KEY_TABLE: ClassVar[bool] = False

    flow: Name
    node: NodeId | None = None


class Goto(NodeBase):
    """Jump to a node of this flow (`goto: node`) or of another flow (`goto: {flow: shared, node: x}`)."""

    TYPE_KEY: ClassVar[str] = "goto"
    WAITS: ClassVar[bool] = False
    SHAPE: ClassVar[str] = "cds"
    EXAMPLE: ClassVar[str] = """\
nodes:
  all_busy:
    goto: {flow: shared, node: all_busy}
  back_to_menu:
    goto: main_menu
  shared_start:
    goto: {flow: shared}
"""

    goto: NodeId | GotoTarget

    def enter(self, call: Call) -> None:
        target = self.goto
        if isinstance(target, str):
            call.go(target)
            return
        start = call.start_of(target.flow)
        if start is None:
            call.fail_call(f"goto names flow '{target.flow}', which is not loaded; load its file too")
            return
        call.go(target.node or start, target.flow)

    def exits(self) -> Iterator[Exit]:
        if isinstance(self.goto, str):
            yield Exit(("goto",), self.goto, accepts_flow=True)
        else:
            yield Exit(("goto",), self.goto.node, flow=self.goto.flow)

    def detail(self) -> tuple[str, str | None]:
        if isinstance(self.goto, GotoTarget):
            return f"flow {self.goto.flow}", None
        return "", None
