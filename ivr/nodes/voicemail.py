"""`voicemail`: record a message for a mailbox, then hang up or go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ivr import actions, events
from ivr.fields import Flag, Key, NodeId, PromptList, Strict
from ivr.nodes.base import Call, Exit, Hold, NodeBase, Path, first_prompt


class VoicemailSpec(Strict):
    """Record a message for a mailbox."""

    mailbox: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-@]+$")]
    prompt: PromptList = ("vm-intro",)
    max_duration: Annotated[float, Field(gt=0, le=600)] = 120.0
    beep: Flag = True
    terminator: Key = "#"


class Voicemail(NodeBase):
    """Record a voicemail, then go on (usually to a goodbye and hang-up)."""

    TYPE_KEY: ClassVar[str] = "voicemail"
    ENDS: ClassVar[bool] = True
    EXAMPLE: ClassVar[str] = """\
nodes:
  after_hours_message:
    voicemail:
      mailbox: hotline
      prompt: [vm-nobodyavail, vm-intro]
      max_duration: 180
      beep: true
      terminator: "#"
    next: goodbye
"""

    voicemail: VoicemailSpec
    next: NodeId | None = None

    def enter(self, call: Call) -> None:
        spec = self.voicemail

        def record() -> None:
            recording = f"{call.call_id}-{call.new_id('')}"  # <call id>-1, <call id>-2 ...
            call.emit(
                actions.Voicemail(
                    mailbox=spec.mailbox,
                    max_duration=spec.max_duration,
                    beep=spec.beep,
                    terminator=spec.terminator,
                    recording_name=recording,
                )
            )
            call.hand_off("voicemail", _Recording(self, call, recording))

        call.play(call.media(spec.prompt), barge_in=False, then=record)

    def exits(self) -> Iterator[Exit]:
        if self.next is not None:
            yield Exit(("next",), self.next, "next")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("voicemail", "prompt"), self.voicemail.prompt

    def detail(self) -> tuple[str, str | None]:
        return f"mailbox {self.voicemail.mailbox}", first_prompt(self.voicemail.prompt)


class _Recording(Hold):
    """The caller is leaving a message. Once it is recorded the flow hangs up, or goes on to `next`; a
    caller who hangs up meanwhile still has the message saved."""

    waiting_for: ClassVar[str] = "recording"

    def __init__(self, node: Voicemail, call: Call, recording: str) -> None:
        self.node, self.call, self.recording = node, call, recording

    def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.RecordingFinished):
            return
        node, call = self.node, self.call
        call.record("voicemail_left", **self._data(event))
        call.keep_outcome("voicemail")  # when the flow ends later, the outcome is still "voicemail"
        call.take_back()
        if node.next is None:
            call.hang_up("normal", "voicemail")
        else:
            call.go(node.next)

    def late(self, event: events.Event) -> list[actions.Action]:
        if isinstance(event, events.RecordingFinished):
            return [actions.RecordEvent("voicemail_left", self._data(event))]
        return []

    def _data(self, event: events.RecordingFinished) -> dict[str, Any]:
        duration = event.duration if isinstance(event.duration, int | float) else 0.0
        return {
            "mailbox": self.node.voicemail.mailbox,
            "duration": float(duration),
            "recording": self.recording,
        }
