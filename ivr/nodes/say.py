"""`say`: say a value with Asterisk's say sounds: digit by digit, as a number, or letter by letter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ivr.fields import Flag, NodeId, PromptList
from ivr.nodes.base import Call, Exit, NodeBase, Path, first_prompt
from ivr.prompts import say_media
from ivr.templates import render


class Say(NodeBase):
    """Say a value with Asterisk's say sounds: digit by digit, as a number, or letter by letter."""

    TYPE_KEY: ClassVar[str] = "say"
    SHAPE: ClassVar[str] = "ellipse"
    EXAMPLE: ClassVar[str] = """\
nodes:
  read_back:
    say: "{contract}"
    as: digits
    before: [you-entered]
    next: support_queue
  read_balance:
    say: "{balance}"
    as: number
    before: your
    after: digits/dollars
    next: main_menu
"""

    say: Annotated[str, Field(min_length=1)]
    as_: Literal["digits", "number", "characters"] = Field(default="digits", alias="as")
    before: PromptList = ()
    after: PromptList = ()
    barge_in: Flag = False
    next: NodeId

    def enter(self, call: Call) -> None:
        said = say_media(render(self.say, call.variables), self.as_)
        media = (*call.media(self.before), *((said,) if said else ()), *call.media(self.after))
        call.play(media, barge_in=self.barge_in, then=lambda: call.go(self.next))

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("before",), self.before
        yield ("after",), self.after

    def detail(self) -> tuple[str, str | None]:
        return f"{self.say} as {self.as_}", first_prompt(self.before)
