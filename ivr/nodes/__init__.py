"""The node types of the flow language, one module each, and the registry that lists them.

Everything that knows node types reads them from `REGISTRY`: the `Node` union and `NODE_TYPES` of
`ivr.model`, the engine, the checks, the drawing, the JSON Schema, `hotline call` and the docs test. To add
a node type, write its module (see `ivr.nodes.base` for what it holds), add it here, and give it a section
in docs/flows.md.
"""

from __future__ import annotations

from ivr.nodes.base import Call, Exit, Finding, Hold, NodeBase, Scope
from ivr.nodes.branch import Branch
from ivr.nodes.callback import Callback
from ivr.nodes.collect import Collect
from ivr.nodes.goto import Goto
from ivr.nodes.hangup import Hangup
from ivr.nodes.language import Language
from ivr.nodes.lookup import Lookup
from ivr.nodes.menu import Menu
from ivr.nodes.play import Play
from ivr.nodes.queue import Queue
from ivr.nodes.say import Say
from ivr.nodes.set_variables import SetVariables
from ivr.nodes.transfer import Transfer
from ivr.nodes.voicemail import Voicemail

__all__ = ["REGISTRY", "Call", "Exit", "Finding", "Hold", "NodeBase", "Scope"]


def _checked(units: tuple[type[NodeBase], ...]) -> tuple[type[NodeBase], ...]:
    """`units`, once each names a type key that is one of its own keys and no two share one."""
    seen: set[str] = set()
    for unit in units:
        key = unit.TYPE_KEY
        keys = {info.alias or name for name, info in unit.model_fields.items()}
        if key not in keys:
            raise TypeError(
                f"{unit.__name__}.TYPE_KEY is '{key}', not one of its keys ({', '.join(sorted(keys))})"
            )
        if key in seen:
            raise TypeError(f"two node types have the type key '{key}'")
        seen.add(key)
    return units


#: Every node type, in the order the docs describe them.
REGISTRY: tuple[type[NodeBase], ...] = _checked(
    (
        Play,
        Menu,
        Collect,
        Say,
        Branch,
        SetVariables,
        Lookup,
        Language,
        Queue,
        Callback,
        Transfer,
        Voicemail,
        Goto,
        Hangup,
    )
)
