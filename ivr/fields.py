"""The value types of the flow language: names, keys, seconds, prompts and flags, shared by every node type.

Each is an annotated type, so a model states a key's rules in its annotation (`timeout: Seconds = 5.0`) and
the JSON Schema, the loader's messages and the docs all read the same rule.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from yamlfile.schema import boolean_fix

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
PromptName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-./]+$")]


def _key_text(value: Any) -> Any:
    """`repeat: 0` and `extension: 100` mean the keys as written, not numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


_AS_KEYS = BeforeValidator(_key_text, json_schema_input_type=str | int)
Keys = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#]{1,8}$")]
Key = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#]$")]
Extension = Annotated[str, _AS_KEYS, Field(pattern=r"^[0-9*#+A-Za-z_\-]+$")]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=64)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")]

#: What a caller keys in: the keys a node that collects digits may receive.
CALLER_KEYS = "0123456789*#"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def flag_error(value: Any, expected: str = "true or false") -> ValueError:
    """`expected true or false, got 'yes'; write true`: one message for every boolean key of a flow."""
    return ValueError(f"expected {expected}, got {_shown(value)}; {boolean_fix(value)}")


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise flag_error(value)


#: A boolean key: only YAML's `true` and `false`; `yes`, `on` and `1` are refused with the word to write.
Flag = Annotated[bool, pydantic.Strict(), BeforeValidator(_flag)]


def flag_or_mapping(value: Any) -> Any:
    """For `confirm: true` / `callback: true`: true takes every default ({}), false none (None), a mapping
    its own keys; anything else is refused as a flag would be."""
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        return value
    raise flag_error(value, "true, false or a mapping")


def regex(value: str, example: str | None = None) -> str:
    """`value` when it compiles as a regular expression; else a ValueError saying why."""
    try:
        re.compile(value)
    except re.error as e:
        if example is None:
            raise ValueError(f"'{value}' is not a regular expression: {e}") from None
        raise ValueError(f"'{value}' is not a regular expression ({e}); write one like {example}") from None
    return value


class Strict(BaseModel):
    """Every model refuses keys it does not know, so a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    #: The docs describe this model's keys in a key table (`key | type | default | meaning`); False for
    #: the few parts written about in prose (a branch's arms, a goto's target, conditions).
    KEY_TABLE: ClassVar[bool] = True


def as_list(value: Any) -> Any:
    """`play: welcome` and `play: [welcome, thanks]` are both fine."""
    if isinstance(value, str):
        return [value]
    return value


#: One prompt name or a list of them.
PromptList = Annotated[
    tuple[PromptName, ...],
    BeforeValidator(as_list, json_schema_input_type=PromptName | list[PromptName]),
]
Prompts = Annotated[PromptList, Field(min_length=1)]
