"""What a party on the switchboard (a waiting caller, a call-back being made, a conversation adopted
after a restart) may ask of it.

`Switchboard` implements `Desk`: it keeps the indexes (which channel, prompt and timer belongs to which
party), tells the router, and collects the actions of one `handle` call in order. A party decides; the
desk only files and forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from routing import actions as routing_actions
from routing import events as routing_events
from routing.model import RoutingConfig
from routing.switchboard.actions import Action, App
from routing.switchboard.events import Customer


@dataclass(frozen=True, slots=True)
class Settings:
    """How call-backs are dialed: `dial` is the customer's dial string (`{number}` in E.164 form),
    rung at most `dial_timeout` seconds; `caller_id` is shown to customers when the queue has none of its
    own; before the customer is dialed the agent hears `whisper` (then the number's digits, with
    `whisper_number`), for at most `whisper_timeout` seconds; a customer who answered (customer first)
    waits at most `hold_limit` seconds for an agent. `seed` makes the ids of legs, bridges and
    placeholders differ from one run of the service to the next."""

    dial: str = "PJSIP/{number}@hotline-trunk"
    dial_timeout: float = 30.0
    caller_id: str | None = None
    whisper: tuple[str, ...] = ("sound:to-call-this-number",)
    whisper_number: bool = True
    whisper_timeout: float = 30.0
    hold_limit: float = 60.0
    seed: str = "hotline"


class Party(Protocol):
    """One contact the switchboard serves: a waiting caller (`WaitingCaller`) or a call-back
    (`CallbackCall`). Each handles what happens to its own channels, prompts and timers."""

    @property
    def contact_id(self) -> str: ...

    @property
    def over(self) -> bool: ...

    def on_router(self, action: Any) -> None: ...
    def on_leg_answered(self, channel_id: str) -> None: ...
    def on_leg_dialed(self, channel_id: str, status: str) -> None: ...
    def on_leg_failed(self, channel_id: str, reason: str) -> None: ...
    def on_channel_gone(self, channel_id: str, cause: int | None) -> None: ...
    def on_channel_lost(self, channel_id: str) -> None:
        """The channel was found gone after Asterisk could not be seen (nobody known hung up)."""
        ...

    def on_playback_ended(self, playback_id: str) -> None: ...
    def on_timer(self, timer_id: str) -> None: ...
    def on_stopping(self) -> None: ...


class Desk(Protocol):
    @property
    def now(self) -> datetime: ...

    @property
    def config(self) -> RoutingConfig: ...

    @property
    def settings(self) -> Settings: ...

    def emit(self, action: Action) -> None: ...

    def route(self, event: routing_events.Event) -> bool:
        """Tell the router; False when it refused (the refusal is logged, nothing changed)."""
        ...

    def new_id(self) -> str:
        """A fresh id of one fixed length, for a leg, a bridge or a contact."""
        ...

    def place_leg(self, party: Party, agent_id: str | None) -> str:
        """A new leg's channel id, filed under `party` (and under the agent whose phone it rings)."""
        ...

    def ring_agent(
        self, party: Party, offer: routing_actions.OfferContact, *, app: App, kind: str, caller_id: str | None
    ) -> tuple[str, str]:
        """Ring the offered agent's phone for `party`, for at most the offer's ring timeout: the leg
        (entering `app` with arguments `kind,<contact>` when answered) and its ring timer."""
        ...

    def hold_channel(self, party: Party, channel_id: str) -> None:
        """File a channel the party did not place (the waiting caller's own)."""
        ...

    def hold_leg(self, party: Party, channel_id: str, agent_id: str | None) -> None:
        """File an agent's leg found talking at start-up: the agent's phone counts as busy until it is
        forgotten."""
        ...

    def forget_channel(self, channel_id: str) -> None:
        """The channel is hung up or gone: its late events mean nothing more."""
        ...

    def play(
        self, party: Party, channel_id: str, media: tuple[str, ...], language: str | None, tag: str
    ) -> str:
        """Play `media` on the channel; returns the playback id `PlaybackEnded` will name."""
        ...

    def start_timer(self, party: Party, name: str, seconds: float) -> str:
        """A timer of the party; returns its id (`name`, made unique)."""
        ...

    def cancel_timer(self, timer_id: str | None) -> None: ...

    def party_over(self, party: Party) -> None:
        """The party is done: its channels, prompts and timers are filed away once this step is over."""
        ...

    def requeue(self, callback: Any, customer: Customer | None) -> None:
        """Queue the call-back again as a new placeholder, once this step is over."""
        ...

    def log(self, level: Literal["info", "warning", "error"], message: str, **fields: Any) -> None: ...
