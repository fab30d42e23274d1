"""`play`: play prompts, then go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from ivr.fields import Flag, NodeId, Prompts
from ivr.nodes.base import Call, Exit, NodeBase, Path, first_prompt


class Play(NodeBase):
    """Play one or more prompts, then go on."""

    TYPE_KEY: ClassVar[str] = "play"
    SHAPE: ClassVar[str] = "ellipse"
    EXAMPLE: ClassVar[str] = """\
nodes:
  welcome:
    description: The first thing every caller hears.
    play: [hello-world, one-moment-please]
    barge_in: true
    next: main_menu
"""

    play: Prompts
    barge_in: Flag = False
    next: NodeId

    def enter(self, call: Call) -> None:
        call.play(call.media(self.play), barge_in=self.barge_in, then=lambda: call.go(self.next))

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("play",), self.play

    def detail(self) -> tuple[str, str | None]:
        return "", first_prompt(self.play)
