"""`hangup`: say goodbye (optionally) and hang up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from ivr.fields import PromptList, Strict
from ivr.nodes.base import Call, NodeBase, Path, first_prompt


class HangupSpec(Strict):
    prompt: PromptList = ()
    cause: Literal["normal", "busy", "congestion"] = "normal"


class Hangup(NodeBase):
    """Say goodbye (optionally) and hang up."""

    TYPE_KEY: ClassVar[str] = "hangup"
    ENDS: ClassVar[bool] = True
    EXAMPLE: ClassVar[str] = """\
nodes:
  goodbye:
    hangup: [auth-thankyou, goodbye]
  quietly:
    hangup:
  busy_signal:
    hangup: {prompt: all-circuits-busy-now, cause: congestion}
"""

    hangup: HangupSpec = Field(default_factory=HangupSpec)

    @field_validator("hangup", mode="before", json_schema_input_type=HangupSpec | str | list[str] | None)
    @classmethod
    def _empty(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, str | list):
            return {"prompt": v}
        return v

    def enter(self, call: Call) -> None:
        spec = self.hangup
        call.hang_up_after(spec.prompt, spec.cause)

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("hangup", "prompt"), self.hangup.prompt

    def detail(self) -> tuple[str, str | None]:
        return "", first_prompt(self.hangup.prompt)
