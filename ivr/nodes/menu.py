"""`menu`: play a prompt and wait for one of the options."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ivr.fields import Flag, Key, Keys, NodeId, PromptList, Prompts, Seconds
from ivr.nodes.base import Call, Exit, Finding, NodeBase, Path, Retry, Scope, first_prompt


class Menu(NodeBase):
    """Play a prompt and wait for one of the options."""

    TYPE_KEY: ClassVar[str] = "menu"
    TAKES_KEYS: ClassVar[bool] = True
    SHAPE: ClassVar[str] = "box"
    EXAMPLE: ClassVar[str] = """\
nodes:
  main_menu:
    menu: main-menu
    options:
      1: customer_service
      2: sales
      3: support_menu
      0: operator
    repeat: "*"
    timeout: 6
    retries: 2
    invalid: [pm-invalid-option]
    no_input: please-try-again
    failure: operator
"""

    menu: Prompts
    options: dict[Keys, NodeId] = Field(min_length=1)
    barge_in: Flag = True
    timeout: Seconds = 5.0
    inter_digit_timeout: Seconds = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    invalid: PromptList = ("pm-invalid-option",)
    no_input: PromptList = ()
    repeat: Key | None = None
    failure: NodeId | None = None

    def enter(self, call: Call) -> None:
        node_id = call.node_id

        def offer() -> None:
            call.keys = ""
            call.play(
                call.media(self.menu),
                barge_in=self.barge_in,
                then=lambda: call.await_keys(key, self.timeout, timeout),
            )

        def retry(kind: Retry, **data: Any) -> None:
            prompts = self.invalid if kind == "invalid_input" else self.no_input
            call.retry(
                kind,
                {"node": node_id, **data},
                prompts,
                barge_in=self.barge_in,
                retries=self.retries,
                again=offer,
                give_up=lambda: call.fail_node(self.failure),
            )

        def key(pressed: str) -> None:
            call.cancel_timer()
            keys = call.keys + pressed
            if keys in self.options:
                target = self.options[keys]
                call.record("option_chosen", node=node_id, digits=keys, target=target)
                call.go(target)
            elif any(option.startswith(keys) for option in self.options):
                call.keys = keys
                call.start_timer(self.inter_digit_timeout, timeout)
            elif not call.keys and pressed == self.repeat:
                # counted as an attempt, so a caller holding down the repeat key still reaches the end
                call.attempts += 1
                if call.attempts > self.retries:
                    call.fail_node(self.failure)
                else:
                    offer()
            else:
                retry("invalid_input", digits=keys)

        def timeout() -> None:
            if call.keys:
                retry("invalid_input", digits=call.keys)
            else:
                retry("no_input")

        offer()

    def exits(self) -> Iterator[Exit]:
        for keys, target in self.options.items():
            yield Exit(("options", keys), target, keys)
        if self.failure is not None:
            yield Exit(("failure",), self.failure, "timeout/invalid")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("menu",), self.menu
        yield ("invalid",), self.invalid
        yield ("no_input",), self.no_input

    def detail(self) -> tuple[str, str | None]:
        return (f"({self.repeat} repeats)" if self.repeat else ""), first_prompt(self.menu)

    def problems(self, scope: Scope) -> Iterator[Finding]:
        """Options the caller could never reach: one that starts with another, or with the repeat key."""
        keys = list(self.options)
        for key in keys:
            at = ("options", key)
            shorter = [other for other in keys if other != key and key.startswith(other)]
            if shorter:
                yield Finding(
                    at, f"option '{key}' starts with option '{shorter[0]}'; give options keys of one length"
                )
            if self.repeat is not None and key == self.repeat:
                yield Finding(at, f"option '{key}' is also the repeat key; change one of them")
            elif self.repeat is not None and key.startswith(self.repeat):
                yield Finding(
                    at, f"option '{key}' starts with the repeat key '{self.repeat}'; change one of them"
                )

    def may_end(self) -> bool:
        """Without `failure`, a caller who runs out of tries is hung up on: a way out."""
        return self.failure is None
