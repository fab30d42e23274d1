"""`callback`: take a number the caller wants to be called back at, and ask for the call-back.

The dialogue (`callback_dialogue`) is shared with a queue's call-back offer (`ivr.nodes.queue`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from ivr import actions
from ivr.fields import Name, NodeId, PromptList, Seconds, Strict, regex
from ivr.nodes.base import Call, Exit, NodeBase, Path, Retry, Then, first_prompt

#: The longest number a caller may key in for a call-back.
CALLBACK_NUMBER_LIMIT = 20


class CallbackDialogue(Strict):
    """Taking a call-back number: confirm the caller's own number or collect another."""

    confirm: PromptList = ("vm-num-i-have",)
    question: PromptList = ("if-correct-press", "digits/1", "vm-calldiffnum")
    enter_number: PromptList = ("vm-enter-num-to-call", "astcc-followed-by-the-pound-key")
    done: PromptList = ("auth-thankyou",)
    pattern: str = r"^\+?[0-9]{6,15}$"
    timeout: Seconds = 6.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2

    @field_validator("pattern")
    @classmethod
    def _readable_pattern(cls, value: str) -> str:
        return regex(value, example="^\\+?[0-9]{6,15}$")

    def dialogue_prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("confirm",), self.confirm
        yield ("question",), self.question
        yield ("enter_number",), self.enter_number
        yield ("done",), self.done


class CallbackOffer(CallbackDialogue):
    """Offer a call-back from a `callback` node: the queue whose agent calls back, and the dialogue."""

    queue: Name
    skills: dict[str, Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0


class Callback(NodeBase):
    """Offer a call-back; `failure` when the caller does not confirm a number."""

    TYPE_KEY: ClassVar[str] = "callback"
    ENDS: ClassVar[bool] = True
    TAKES_KEYS: ClassVar[bool] = True
    EXAMPLE: ClassVar[str] = """\
nodes:
  callback_request:
    callback:
      queue: customer_service
      skills: {customer_service: 1}
      priority: 5
      confirm: vm-num-i-have
      question: [if-correct-press, digits/1, vm-calldiffnum]
      enter_number: [privacy-prompt, astcc-followed-by-the-pound-key]
      done: [auth-thankyou, goodbye]
      pattern: ^\\+?48[0-9]{9}$
      timeout: 8
      retries: 2
    failure: goodbye
"""

    callback: CallbackOffer
    failure: NodeId | None = None

    def enter(self, call: Call) -> None:
        offer = self.callback
        callback_dialogue(
            call,
            call.node_id,
            offer,
            queue=offer.queue,
            skills=offer.skills,
            priority=offer.priority,
            place_since=None,
            give_up=lambda: call.fail_node(self.failure),
        )

    def exits(self) -> Iterator[Exit]:
        if self.failure is not None:
            yield Exit(("failure",), self.failure, "failure")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        for path, names in self.callback.dialogue_prompts():
            yield ("callback", *path), names

    def detail(self) -> tuple[str, str | None]:
        return f"to {self.callback.queue}", first_prompt(self.callback.confirm)


def callback_dialogue(
    call: Call,
    node_id: str,
    offer: CallbackDialogue,
    *,
    queue: str,
    skills: Mapping[str, int],
    priority: int,
    place_since: datetime | None,
    give_up: Then,
) -> None:
    """Take a call-back number: read back the caller's own number or ask for another, then request the
    call-back and, once it is stored, thank the caller and hang up; a refused number is asked for again;
    `give_up` once the caller's retries are used up."""

    def retry(kind: Retry, again: Then, **data: Any) -> None:
        call.retry(
            kind,
            {"node": node_id, **data},
            (),
            barge_in=True,
            retries=offer.retries,
            again=again,
            give_up=give_up,
        )

    def confirm(number: str, entered: bool) -> None:
        def read_back() -> None:
            media = (
                *call.media(offer.confirm),
                f"digits:{number.lstrip('+')}",
                *call.media(offer.question),
            )
            call.play(media, barge_in=True, then=lambda: call.await_keys(answer, offer.timeout, silence))

        def answer(pressed: str) -> None:
            call.cancel_timer()
            if pressed == "1":
                request(number)
            elif pressed == "2":
                if entered:
                    # counted, so a caller who never confirms still reaches the end
                    call.attempts += 1
                    if call.attempts > offer.retries:
                        give_up()
                        return
                enter()
            else:
                retry("invalid_input", read_back, digits=pressed)

        def silence() -> None:
            retry("no_input", read_back)

        read_back()

    def enter() -> None:
        call.keys = ""
        call.play(
            call.media(offer.enter_number),
            barge_in=True,
            then=lambda: call.await_keys(key, offer.timeout, timeout),
        )

    def key(pressed: str) -> None:
        call.cancel_timer()
        if pressed == "#":
            entered(call.keys)
            return
        call.keys += pressed
        if len(call.keys) >= CALLBACK_NUMBER_LIMIT:
            entered(call.keys)
        else:
            call.start_timer(offer.timeout, timeout)

    def timeout() -> None:
        if call.keys:
            entered(call.keys)
        else:
            retry("no_input", enter)

    def entered(number: str) -> None:
        if callback_number(offer, number):
            confirm(number, entered=True)
        else:
            retry("invalid_input", enter, digits=number)

    def request(number: str) -> None:
        call.stop_input()

        def stored() -> None:
            call.record("callback_requested", queue=queue, number=number)
            call.hang_up_after(offer.done, "normal", "callback")

        def refused(reason: str) -> None:
            retry("invalid_input", enter, digits=number, reason=reason)

        call.request_callback(
            actions.RequestCallback(
                queue=queue,
                number=number,
                skills=dict(skills),
                priority=priority,
                language=call.language,
                variables=dict(call.variables),
                place_since=place_since,
            ),
            stored=stored,
            refused=refused,
        )

    if call.caller is not None and callback_number(offer, call.caller):
        confirm(call.caller, entered=False)
    else:
        enter()


def callback_number(offer: CallbackDialogue, number: str) -> bool:
    """A number we may call back: it matches the offer's pattern (a caller's own number too, so an
    internal extension or a SIP name is never read back as a call-back number)."""
    try:
        return re.fullmatch(offer.pattern, number) is not None
    except re.error:
        return False
