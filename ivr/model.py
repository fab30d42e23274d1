"""The flow language: what an admin writes in a flow file, as pydantic models.

A flow file has a name, its languages, prompts, schedules, a start node and nodes. A node's type is the
one type key it carries (``play:``, ``menu:``, ``collect:`` ...), in the manner of Home Assistant's script
actions, so a flow reads like what the caller hears::

    nodes:
      main:
        menu: main-menu
        options: {1: sales, 2: support}

Each node type is one unit of `ivr.nodes` (its model and behaviour); the `Node` union and `NODE_TYPES`
here are built from its registry. The value types live in `ivr.fields`, schedules in `ivr.schedules`,
conditions in `ivr.conditions`; this module names them all, so `from ivr.model import Menu` keeps working.

These models only check the shape of one file; ``ivr.checks`` checks the graph (targets, reachability,
loops, collisions) and ``ivr.loader`` turns errors into ``file:line:column`` messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

from pydantic import Discriminator, Field, Tag, field_validator

from ivr.conditions import Condition
from ivr.fields import (
    Extension,
    Flag,
    Key,
    Keys,
    LanguageCode,
    Name,
    NodeId,
    PromptList,
    PromptName,
    Prompts,
    Seconds,
    Strict,
    VariableName,
    as_list,
)
from ivr.nodes import REGISTRY
from ivr.nodes.base import NodeBase
from ivr.nodes.branch import Branch, Case
from ivr.nodes.callback import Callback, CallbackDialogue, CallbackOffer
from ivr.nodes.collect import Collect, Confirm
from ivr.nodes.goto import Goto, GotoTarget
from ivr.nodes.hangup import Hangup, HangupSpec
from ivr.nodes.language import Language
from ivr.nodes.lookup import LOOKUP_TIMEOUT_CAP, Lookup, Request
from ivr.nodes.menu import Menu
from ivr.nodes.play import Play
from ivr.nodes.queue import Queue, QueueCallback, QueueSpec
from ivr.nodes.say import Say
from ivr.nodes.set_variables import SetVariables
from ivr.nodes.transfer import Transfer, TransferTarget
from ivr.nodes.voicemail import Voicemail, VoicemailSpec
from ivr.schedules import DAY_NAMES, Closure, Holiday, Schedule, parse_days, parse_ranges

__all__ = [
    "DAY_NAMES",
    "LOOKUP_TIMEOUT_CAP",
    "NODE_TYPES",
    "Branch",
    "Callback",
    "CallbackDialogue",
    "CallbackOffer",
    "Case",
    "Closure",
    "Collect",
    "Condition",
    "Confirm",
    "Extension",
    "Flag",
    "Flow",
    "Goto",
    "GotoTarget",
    "Hangup",
    "HangupSpec",
    "Holiday",
    "Key",
    "Keys",
    "Language",
    "LanguageCode",
    "Lookup",
    "Menu",
    "Name",
    "Node",
    "NodeBase",
    "NodeId",
    "Play",
    "PromptList",
    "PromptName",
    "PromptSpec",
    "Prompts",
    "Queue",
    "QueueCallback",
    "QueueSpec",
    "Request",
    "Say",
    "Schedule",
    "Seconds",
    "SetVariables",
    "Strict",
    "Transfer",
    "TransferTarget",
    "VariableName",
    "Voicemail",
    "VoicemailSpec",
    "node_type",
    "parse_days",
    "parse_ranges",
]

#: The type keys, in the registry's order.
NODE_TYPES: tuple[str, ...] = tuple(unit.TYPE_KEY for unit in REGISTRY)


def node_type(value: Any) -> str | None:
    """The type of a node: the one type key it carries."""
    if isinstance(value, dict):
        found = [k for k in NODE_TYPES if k in value]
        if len(found) == 1:
            return found[0]
    elif isinstance(value, NodeBase):
        return value.TYPE_KEY
    return None


if TYPE_CHECKING:
    Node: TypeAlias = NodeBase
else:
    #: One node: the registry's models, told apart by their type key.
    Node = Annotated[
        Union[tuple(Annotated[unit, Tag(unit.TYPE_KEY)] for unit in REGISTRY)],  # noqa: UP007 - from a tuple
        Discriminator(
            node_type,
            custom_error_type="node_type",
            custom_error_message="a node needs exactly one type key: " + ", ".join(NODE_TYPES),
        ),
    ]

PromptSpec = PromptName | dict[LanguageCode, PromptName]


class Flow(Strict):
    """One flow file."""

    flow: Name
    description: str | None = None
    languages: tuple[LanguageCode, ...] = Field(default=("en",), min_length=1)
    sounds: str | None = Field(
        default=None, description="A folder with one sub-folder per language holding this flow's prompts"
    )
    prompts: dict[PromptName, PromptSpec] = Field(default_factory=dict)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    variables: dict[VariableName, str | int | float | bool] = Field(default_factory=dict)
    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1)

    @field_validator("languages", mode="before", json_schema_input_type=LanguageCode | list[LanguageCode])
    @classmethod
    def _langs(cls, v: Any) -> Any:
        return as_list(v)

    @field_validator("languages")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a language is listed twice")
        return v

    @property
    def default_language(self) -> str:
        return self.languages[0]
