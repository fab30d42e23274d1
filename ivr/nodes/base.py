"""A node type as one unit: its model, what it does to a call, and what the tools need to know about it.

Each node type is one module of `ivr.nodes` with one model derived from `NodeBase`. The model carries:

- the keys of the node (pydantic fields), its type key (`TYPE_KEY`, one of its fields) and a YAML
  `EXAMPLE` that the docs section of the type shows;
- flags: `ENDS` (the caller leaves the flow here: an ending), `WAITS` (it waits for the caller or a sound
  before it goes on), `TAKES_KEYS` (it asks the caller for keys; `hotline call` presses them), and its
  `SHAPE` in a drawing;
- `enter(call)`: what entering the node does, through the `Call` it is given. A node that hands the
  caller over (to a queue, another phone, a mailbox) gives the call a `Hold`, which meets the events of
  that hand-off (keys, `QueueExited`, `TransferFailed`, `RecordingFinished` ...);
- `exits()`: where it may lead, each `Exit` with its key path and the label of its edge in a drawing;
- `prompts()`: every prompt it may play, defaults included, with its key path;
- `detail()`: a few words for its label in a drawing;
- `problems(scope)`: checks of the node on its own (colliding keys, a pattern that can never match).

The engine (`ivr.session.Session`), the checks, the drawing, the JSON Schema and the docs test all read
node types through this interface and the registry (`ivr.nodes.REGISTRY`), never by name.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from contacts import EventName
from ivr import actions, events
from ivr.conditions import Facts
from ivr.fields import Strict

#: The contact events of a wrong or missing answer, after which a node asks again.
Retry = Literal["invalid_input", "no_input"]

Path = tuple[str | int, ...]
Then = Callable[[], None]
OnKey = Callable[[str], None]
OnLookup = Callable[[events.LookupAnswered | events.LookupFailed], None]


@dataclass(frozen=True, slots=True)
class Exit:
    """A way out of a node: the key path (under the node) naming where it leads, and what a drawing
    writes on its edge (a key, a condition, `next`, `overflow` ...).

    `node` is a node of this flow, unless `flow` names another flow: then `node` is a node of that flow,
    or None for its start. `accepts_flow`: the key may name another flow instead, as `{flow: NAME}`.
    """

    path: Path
    node: str | None
    label: str = ""
    flow: str | None = None
    accepts_flow: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """A mistake a node's own check found, at a key path under the node. `at_value` when the mistake is
    the value there rather than the key."""

    path: Path
    message: str
    at_value: bool = False


@dataclass(frozen=True, slots=True)
class Scope:
    """What a node's own checks know of its flow: its languages, the schedules it defines (those that
    passed the schema, the ones worth suggesting) and the ones the schema left out (they exist, so
    nothing is reported for naming them)."""

    languages: tuple[str, ...]
    schedules: tuple[str, ...] = ()
    unchecked_schedules: frozenset[str] = frozenset()


def not_a_flow_language(language: str, languages: tuple[str, ...]) -> str:
    """The message for a language code a flow does not offer."""
    return (
        f"language '{language}' is not one of the flow's languages ({', '.join(languages)}); "
        "use one of them or add it to languages:"
    )


def first_prompt(prompts: tuple[str, ...]) -> str | None:
    """The first prompt, in quotes: the third line of a node's label in a drawing."""
    return f'"{prompts[0]}"' if prompts else None


class Hold:
    """A hand-off in progress: the caller is with a queue, another phone or a mailbox, and the node that
    handed them over meets what happens there. One per hand-off, so it may keep state of its own."""

    #: What the call waits for meanwhile (`Session.waiting_for`): `queue`, `transfer`, `recording` ...
    waiting_for: ClassVar[str] = "handoff"

    def on_event(self, event: events.Event) -> None:
        """An event of the hand-off: a key, `QueueExited`, `QueueAnswered`, `TransferFailed`,
        `RecordingFinished`. Events it has no use for are ignored."""

    def late(self, event: events.Event) -> list[actions.Action]:
        """What to record of `event` arriving after the caller hung up during the hand-off (the end of a
        recording that is saved all the same); nothing by default."""
        return []


class FlowView(Protocol):
    """What a node may read of the flow the call is in (an `ivr.model.Flow`)."""

    @property
    def languages(self) -> tuple[str, ...]: ...
    @property
    def default_language(self) -> str: ...


class Call(Protocol):
    """What a node's behaviour may do with the call it is running in; `ivr.session.Session` implements
    it. Everything here is pure: actions go out through the session, time comes in as `now`."""

    #: Keys gathered so far in the current node (a multi-key option, digits being collected).
    keys: str
    #: Wrong answers and silences so far in the current node.
    attempts: int

    @property
    def call_id(self) -> str: ...
    @property
    def node_id(self) -> str:
        """The node being run."""
        ...

    @property
    def now(self) -> datetime: ...
    @property
    def caller(self) -> str | None:
        """The caller's number; None when withheld."""
        ...

    @property
    def language(self) -> str: ...
    @property
    def variables(self) -> Mapping[str, str]: ...
    @property
    def current_flow(self) -> FlowView:
        """The flow the call is in: its prompts, languages and schedules."""
        ...

    def take_place(self) -> datetime | None:
        """When a resumed caller's place in their queue dates from (once; None for any other call)."""
        ...

    def facts(self) -> Facts:
        """What a condition may look at, now."""
        ...

    def start_of(self, flow: str) -> str | None:
        """The start node of a loaded flow; None when no flow of that name is loaded."""
        ...

    # --- what the caller hears and presses ---

    def media(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        """Prompt names as media URIs in the caller's language."""
        ...

    def play(self, media: tuple[str, ...], *, barge_in: bool, then: Then) -> None:
        """Play `media`, then go on with `then` (at once when there is nothing to play, or when the caller
        typed ahead of a barge-in prompt)."""
        ...

    def await_keys(self, on_key: OnKey, seconds: float, on_timeout: Then) -> None:
        """Wait for keys: each goes to `on_key` (keys typed ahead first); `on_timeout` after `seconds` of
        silence. Each key handler starts its own next timer."""
        ...

    def start_timer(self, seconds: float, on_timeout: Then) -> None: ...
    def cancel_timer(self) -> None: ...
    def stop_playback(self) -> None: ...
    def stop_input(self) -> None:
        """Keys are no longer wanted (keys typed ahead stay for the next node that takes input)."""
        ...

    def retry(
        self,
        kind: Retry,
        data: dict[str, Any],
        prompts: tuple[str, ...],
        *,
        barge_in: bool,
        retries: int,
        again: Then,
        give_up: Then,
    ) -> None:
        """Record a wrong (`invalid_input`) or missing (`no_input`) answer, play `prompts`, then ask
        `again` or, once more than `retries` attempts are used, `give_up`."""
        ...

    # --- where the call goes ---

    def go(self, node: str, flow: str | None = None) -> None:
        """Leave this node for `node` (of `flow`, or of this flow)."""
        ...

    def fail_node(self, failure: str | None) -> None:
        """Go to `failure`, or hang up when the node has none."""
        ...

    def hang_up(self, cause: str, outcome: str | None = None) -> None:
        """The flow hangs up now; the outcome is `outcome`, else the one kept, else `hangup`."""
        ...

    def hang_up_after(self, prompts: tuple[str, ...], cause: str, outcome: str | None = None) -> None:
        """Play a last prompt, then hang up; a caller who hangs up during it still gets the outcome."""
        ...

    def fail_call(self, reason: str) -> None:
        """The flow cannot go on: record `flow_error` and hang up rather than leave the caller in silence."""
        ...

    # --- what the call records and sets ---

    def record(self, type_: EventName, **data: Any) -> None:
        """A contact event (one of `ivr.actions.EVENT_TYPES`)."""
        ...

    def emit(self, action: actions.Action) -> None: ...
    def new_id(self, prefix: str) -> str:
        """A new id for an action the engine will hear back about (`r1`, `p2`)."""
        ...

    def set_variable(self, name: str, value: str) -> None: ...
    def choose_language(self, language: str, how: str) -> None: ...

    # --- waiting for others ---

    def await_lookup(self, request: actions.Lookup, *, guard: float, on_answer: OnLookup) -> None:
        """Send a CRM request and wait for its answer; after `guard` seconds the answer is a
        `LookupFailed` with reason `timeout`."""
        ...

    def request_callback(
        self, request: actions.RequestCallback, *, stored: Then, refused: Callable[[str], None]
    ) -> None:
        """Ask for a call-back and wait for the store's answer: `stored`, or `refused` with the reason."""
        ...

    def hand_off(self, outcome: str, hold: Hold) -> None:
        """The caller is handed over (the hand-off's action is emitted already): the call's outcome is
        `outcome` unless the hand-off gives the caller back; `hold` meets its events."""
        ...

    def take_back(self) -> None:
        """The hand-off gave the caller back to the flow: no outcome yet, no hold."""
        ...

    def keep_outcome(self, outcome: str) -> None:
        """When the flow ends later, its outcome is `outcome` (a voicemail left before a goodbye)."""
        ...


class NodeBase(Strict):
    """What every node carries besides its type key, and the interface of a node type (see the module)."""

    #: The type key: the one key that tells a node's type (`menu:`), a field of the model.
    TYPE_KEY: ClassVar[str] = ""
    #: The caller leaves the flow here: to an agent, a call-back, another phone, a mailbox or nowhere.
    ENDS: ClassVar[bool] = False
    #: It waits for the caller or for a sound to end before it goes on.
    WAITS: ClassVar[bool] = True
    #: It asks the caller for keys.
    TAKES_KEYS: ClassVar[bool] = False
    #: The Graphviz shape of the node in a drawing (endings are drawn alike, whatever their shape).
    SHAPE: ClassVar[str] = "box"
    #: A YAML example of the node type (a `nodes:` fragment); its section in docs/flows.md shows it.
    EXAMPLE: ClassVar[str] = ""

    description: str | None = None

    @abstractmethod
    def enter(self, call: Call) -> None:
        """What the call does on entering the node."""

    def exits(self) -> Iterator[Exit]:
        """Every way out of the node, in the order of its keys."""
        return iter(())

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        """Every prompt list the node may play (defaults included), with its key path."""
        return iter(())

    def detail(self) -> tuple[str, str | None]:
        """What the node does in a few words (after its type), and a line more (its first prompt
        mostly), for its label in a drawing."""
        return "", None

    def problems(self, scope: Scope) -> Iterator[Finding]:
        """Mistakes of the node on its own, beyond what its keys' types say."""
        return iter(())

    def waits(self) -> bool:
        """Does this node wait for the caller (a key, the end of a sound) before it goes on?"""
        return self.WAITS

    def may_end(self) -> bool:
        """Can the call end here, on this node's own account: an ending, or a node that hangs up when
        the caller runs out of tries?"""
        return self.ENDS
