"""`collect`: collect digits into a variable (an account, a contract, a PIN), optionally read back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from ivr.fields import (
    CALLER_KEYS,
    Flag,
    Key,
    NodeId,
    PromptList,
    Seconds,
    Strict,
    VariableName,
    flag_or_mapping,
    regex,
)
from ivr.nodes.base import Call, Exit, Finding, NodeBase, Path, Retry, Scope, Then, first_prompt
from ivr.patterns import CAP, describe, lengths


class Confirm(Strict):
    """Read collected digits back and ask the caller to confirm (1) or enter them again (2)."""

    prompt: PromptList = ("you-entered",)
    question: PromptList = ("if-correct-press", "digits/1")
    yes: Key = "1"
    no: Key = "2"


class Collect(NodeBase):
    """Collect digits into a variable."""

    TYPE_KEY: ClassVar[str] = "collect"
    TAKES_KEYS: ClassVar[bool] = True
    SHAPE: ClassVar[str] = "parallelogram"
    EXAMPLE: ClassVar[str] = """\
nodes:
  contract_number:
    collect: contract
    prompt: [contract-number, astcc-followed-by-the-pound-key]
    min_length: 8
    max_length: 8
    pattern: ^[12]0[0-9]{6}$
    invalid: pm-invalid-option
    confirm:
      question: [if-correct-press, digits/1, vm-calldiffnum]
      yes: "1"
      no: "2"
    next: read_back
    failure: support_queue
  pin:
    collect: pin
    prompt: agent-pass
    max_length: 4
    terminator: null
    confirm: true
    next: check_pin
"""

    collect: VariableName
    prompt: PromptList = ()
    min_length: Annotated[int, Field(ge=1, le=64)] = 1
    max_length: Annotated[int, Field(ge=1, le=64)] = 20
    terminator: Key | None = "#"
    timeout: Seconds = 6.0
    inter_digit_timeout: Seconds = 3.0
    pattern: str | None = None
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    invalid: PromptList = ("pm-invalid-option",)
    no_input: PromptList = ()
    barge_in: Flag = True
    confirm: Confirm | None = None
    next: NodeId
    failure: NodeId | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return None if v is None else regex(v)

    @field_validator("confirm", mode="before", json_schema_input_type=Flag | Confirm | None)
    @classmethod
    def _confirm(cls, v: Any) -> Any:
        """`confirm: true` reads back with every default; `false` does not read back."""
        return flag_or_mapping(v)

    @model_validator(mode="after")
    def _lengths(self) -> Collect:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is above max_length {self.max_length}")
        return self

    def enter(self, call: Call) -> None:
        node_id = call.node_id

        def ask() -> None:
            call.keys = ""
            call.play(
                call.media(self.prompt),
                barge_in=self.barge_in,
                then=lambda: call.await_keys(key, self.timeout, timeout),
            )

        def retry(kind: Retry, again: Then, **data: Any) -> None:
            prompts = self.invalid if kind == "invalid_input" else self.no_input
            call.retry(
                kind,
                {"node": node_id, **data},
                prompts,
                barge_in=self.barge_in,
                retries=self.retries,
                again=again,
                give_up=lambda: call.fail_node(self.failure),
            )

        def key(pressed: str) -> None:
            call.cancel_timer()
            if pressed == self.terminator:
                finish(call.keys)
                return
            call.keys += pressed
            if len(call.keys) >= self.max_length:
                finish(call.keys)
            else:
                call.start_timer(self.inter_digit_timeout, timeout)

        def timeout() -> None:
            if not call.keys:
                retry("no_input", ask)
            elif len(call.keys) >= self.min_length:
                finish(call.keys)
            else:
                retry("invalid_input", ask, digits=call.keys)

        def finish(value: str) -> None:
            valid = self.min_length <= len(value) <= self.max_length and (
                self.pattern is None or re.fullmatch(self.pattern, value) is not None
            )
            if not valid:
                retry("invalid_input", ask, digits=value)
            elif self.confirm is None:
                accept(value)
            else:
                confirm(self.confirm, value)

        def confirm(spec: Confirm, value: str) -> None:
            def read_back() -> None:
                media = (*call.media(spec.prompt), f"digits:{value}", *call.media(spec.question))
                call.play(media, barge_in=True, then=lambda: call.await_keys(answer, self.timeout, silence))

            def answer(pressed: str) -> None:
                call.cancel_timer()
                if pressed == spec.yes:
                    accept(value)
                elif pressed == spec.no:
                    # counted as an attempt, so a caller who never confirms still reaches the end
                    call.attempts += 1
                    if call.attempts > self.retries:
                        call.fail_node(self.failure)
                    else:
                        ask()
                else:
                    retry("invalid_input", read_back, digits=pressed)

            def silence() -> None:
                retry("no_input", read_back)

            read_back()

        def accept(value: str) -> None:
            call.set_variable(self.collect, value)
            call.record(
                "input_collected", node=node_id, variable=self.collect, length=len(value), value=value
            )
            call.go(self.next)

        ask()

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, "next")
        if self.failure is not None:
            yield Exit(("failure",), self.failure, "timeout/invalid")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("prompt",), self.prompt
        yield ("invalid",), self.invalid
        yield ("no_input",), self.no_input
        if self.confirm is not None:
            yield ("confirm", "prompt"), self.confirm.prompt
            yield ("confirm", "question"), self.confirm.question

    def detail(self) -> tuple[str, str | None]:
        return f"-> {self.collect}", first_prompt(self.prompt)

    def problems(self, scope: Scope) -> Iterator[Finding]:
        if self.confirm is not None and self.confirm.yes == self.confirm.no:
            yield Finding(
                ("confirm", "no"), f"confirm keys yes and no are both '{self.confirm.no}'; make them differ"
            )
        if self.pattern is not None:
            problem = self._pattern_problem(self.pattern)
            if problem is not None:
                yield Finding(("pattern",), problem, at_value=True)

    def _pattern_problem(self, pattern: str) -> str | None:
        """Why `pattern` can match nothing a caller keys in here, or None when it can match something
        (or when that cannot be told)."""
        keys = CALLER_KEYS.replace(self.terminator or "", "")
        matched = lengths(pattern, keys)
        if matched is None:
            return None
        wanted = range(self.min_length, self.max_length + 1)
        if any(n in matched for n in wanted):
            return None
        count = f"{self.min_length}" if self.min_length == self.max_length else f"{wanted[0]} to {wanted[-1]}"
        never = f"'{pattern}' can never match {count} keys (min_length..max_length)"
        with_terminator = lengths(pattern, CALLER_KEYS) or frozenset()
        if self.terminator is not None and any(n in with_terminator for n in wanted):
            return (
                f"{never}: the terminator '{self.terminator}' ends the input and is never part of it; "
                "leave it out of the pattern or write terminator: null"
            )
        possible = sorted(n for n in matched if 1 <= n < CAP)
        if not possible and any(n >= CAP for n in matched):
            return f"{never}; it needs more than {CAP - 1} keys: write a pattern for at most 64"
        if not possible:
            example = "{" + count.replace(" to ", ",") + "}"
            return (
                f"{never}; it matches no keys a caller can press ({_key_names(CALLER_KEYS)}): "
                f"write it with those keys, e.g. ^[0-9]{example}$"
            )
        fix = (
            f"write min_length: {possible[0]} and max_length: {possible[-1]}"
            if possible == list(range(possible[0], possible[-1] + 1))
            else "change min_length and max_length"
        )
        return f"{never}; it matches {describe(possible)} keys: {fix}, or change the pattern"


def _key_names(keys: str) -> str:
    others = [k for k in keys if not k.isdigit()]
    return ", ".join(["0-9", *others[:-1]]) + (f" and {others[-1]}" if others else "")
