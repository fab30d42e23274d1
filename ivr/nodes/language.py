"""`language`: choose the caller's language, by a key they press or from a value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ivr.fields import Key, LanguageCode, NodeId, PromptList, Seconds
from ivr.nodes.base import (
    Call,
    Exit,
    Finding,
    NodeBase,
    Path,
    Retry,
    Scope,
    first_prompt,
    not_a_flow_language,
)
from ivr.templates import render


class Language(NodeBase):
    """Choose the caller's language: by key (`{1: en, 2: pl}`) or set one (`pl`, `{lang_var}`)."""

    TYPE_KEY: ClassVar[str] = "language"
    TAKES_KEYS: ClassVar[bool] = True
    SHAPE: ClassVar[str] = "parallelogram"
    EXAMPLE: ClassVar[str] = """\
nodes:
  choose_language:
    language: {1: en, 2: pl}
    prompt: language-menu
    timeout: 4
    retries: 1
    default: en
    next: office_hours
  crm_language:
    language: "{preferred_language}"
    next: main_menu
"""

    language: dict[Key, LanguageCode] | str
    prompt: PromptList = ()
    timeout: Seconds = 5.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    default: LanguageCode | None = None
    next: NodeId

    def enter(self, call: Call) -> None:
        flow = call.current_flow
        if isinstance(self.language, str):
            chosen = render(self.language, call.variables).strip()
            if chosen in flow.languages:
                call.choose_language(chosen, "set")
            call.go(self.next)
            return
        choices = self.language
        node_id = call.node_id

        def fall_back() -> None:
            """The language node has no failure node: after its retries the caller gets the default."""
            call.choose_language(self.default or flow.default_language, "default")
            call.go(self.next)

        def ask() -> None:
            call.play(
                call.media(self.prompt),
                barge_in=True,
                then=lambda: call.await_keys(key, self.timeout, timeout),
            )

        def retry(kind: Retry, **data: Any) -> None:
            call.retry(
                kind,
                {"node": node_id, **data},
                (),
                barge_in=True,
                retries=self.retries,
                again=ask,
                give_up=fall_back,
            )

        def key(pressed: str) -> None:
            call.cancel_timer()
            if pressed in choices:
                call.choose_language(choices[pressed], "key")
                call.go(self.next)
            else:
                retry("invalid_input", digits=pressed)

        def timeout() -> None:
            retry("no_input")

        ask()

    def waits(self) -> bool:
        """A language set from a value goes on at once; only a choice by key waits."""
        return not isinstance(self.language, str)

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("prompt",), self.prompt

    def detail(self) -> tuple[str, str | None]:
        if isinstance(self.language, dict):
            choice = ", ".join(f"{k}: {v}" for k, v in self.language.items())
        else:
            choice = self.language
        return choice, first_prompt(self.prompt)

    def problems(self, scope: Scope) -> Iterator[Finding]:
        """Every language named must be one of the flow's (a template is only known during the call)."""
        if isinstance(self.language, str):
            if "{" not in self.language and self.language not in scope.languages:
                yield Finding(("language",), not_a_flow_language(self.language, scope.languages), True)
        else:
            for key, language in self.language.items():
                if language not in scope.languages:
                    yield Finding(("language", key), not_a_flow_language(language, scope.languages), True)
        if self.default is not None and self.default not in scope.languages:
            yield Finding(("default",), not_a_flow_language(self.default, scope.languages), True)
