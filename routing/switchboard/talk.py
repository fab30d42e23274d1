"""A conversation the service found going on when it started: it restarted while a caller (or a
call-back's customer) and an agent talked in a bridge. The restart must not cut them: the switchboard
adopts both channels and the bridge, and the talk ends like any other.

    talking --either side hangs up--> over (`call_ended` says who; the other side is hung up, the
                                            bridge destroyed)
    talking --found gone (Asterisk restarted)--> over (`call_ended` by "system": the call was lost)

While it lasts the agent's phone counts as busy: an agent who logs in again meanwhile is offered no
one until the talk ends. The router never knew the contact (its state began at the restart), so no
wrap-up follows.
"""

from __future__ import annotations

from typing import Any, Literal

from routing.switchboard import actions as act
from routing.switchboard.desk import Desk
from routing.switchboard.events import TalkFound


class Talk:
    """One adopted conversation, under its contact."""

    def __init__(self, desk: Desk, found: TalkFound) -> None:
        self.desk = desk
        self.found = found
        self.phase: Literal["talking", "over"] = "talking"

    @property
    def contact_id(self) -> str:
        return self.found.contact_id

    @property
    def over(self) -> bool:
        return self.phase == "over"

    @property
    def agent_id(self) -> str | None:
        return self.found.agent_id

    def join(self) -> None:
        found = self.found
        self.desk.hold_channel(self, found.customer_channel)
        self.desk.hold_leg(self, found.agent_leg, found.agent_id)
        self.desk.log(
            "info",
            "a conversation found going on; it goes on",
            contact=self.contact_id,
            agent=found.agent_id,
            bridge=found.bridge_id,
        )

    def on_channel_gone(self, channel_id: str, cause: int | None) -> None:
        found = self.found
        if channel_id == found.agent_leg:
            self._end("agent", "agent hung up", found.customer_channel)
        elif channel_id == found.customer_channel:
            self._end(found.customer, f"{found.customer} hung up", found.agent_leg)

    def on_channel_lost(self, channel_id: str) -> None:
        found = self.found
        other = found.customer_channel if channel_id == found.agent_leg else found.agent_leg
        self._end("system", "call lost", other)

    def _end(self, by: str, cause: str, other: str) -> None:
        if self.phase == "over":
            return
        found = self.found
        self.phase = "over"
        self.desk.emit(
            act.RecordEvent(self.contact_id, "call_ended", {"by": by, "cause": cause}, found.customer_channel)
        )
        self.desk.forget_channel(found.customer_channel)
        self.desk.forget_channel(found.agent_leg)
        self.desk.emit(act.HangUp(other))
        self.desk.emit(act.EndBridge(found.bridge_id))
        self.desk.party_over(self)

    # --- nothing else reaches a conversation ----------------------------------------------------------

    def on_router(self, action: Any) -> None:
        """The router never knew the contact."""

    def on_leg_answered(self, channel_id: str) -> None:
        """Both sides answered long ago."""

    def on_leg_dialed(self, channel_id: str, status: str) -> None:
        """No dial is under way."""

    def on_leg_failed(self, channel_id: str, reason: str) -> None:
        """No leg is placed."""

    def on_playback_ended(self, playback_id: str) -> None:
        """Nothing plays."""

    def on_timer(self, timer_id: str) -> None:
        """No timers run."""

    def on_stopping(self) -> None:
        """The service stops again: the talk goes on; the next start adopts it again."""
