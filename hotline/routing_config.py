"""The routing file (`routing.yaml`): agents, their skills and phones, and the queues, read like the flows
and the service config, so a mistake reads ``routing.yaml:12:7: agents.ann.skills.polish: must be at
most 10, not 12``.

The file is read as YAML 1.2 with a position for every key (`ivr.loader.parse_yaml`: `no` is the word no,
`01` stays `01`), checked with the `routing.model.RoutingConfig` models, then checked as a whole:

- two agents may not share a phone (a feature code dialed from it must name one agent);
- a skill a queue asks for (directly or in an escalation step) that no agent has is a warning, not an
  error: the file is usable, but those callers wait for nobody until an agent gets the skill. So is an
  agent's skill no queue asks for when it looks like a typo of one that a queue does.

Every error is collected and raised at once as `RoutingConfigError` (a `ConfigError`); warnings come
back with the config (`read_routing_config`) or go to the log (`load_routing_config`).
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import structlog
from pydantic import BaseModel, ValidationError

from hotline.config import ConfigError
from ivr.checks import did_you_mean
from ivr.errors import FlowErrors
from ivr.loader import Positions, describe, parse_yaml
from routing.model import RoutingConfig

log = structlog.get_logger("hotline.routing_config")

Loc = tuple[str | int, ...]

_EMPTY = "the file is empty; a routing file needs agents: and queues:"


class RoutingConfigError(ConfigError):
    """The routing file cannot be used; `errors` holds one `file:line:column: key.path: message` each."""


@dataclass(frozen=True)
class LoadedRouting:
    """A routing file that passed every check, and what is worth a look in it."""

    config: RoutingConfig
    #: `file:line:column: key.path: warning: ...` lines
    warnings: tuple[str, ...]
    source: str


def load_routing_config(path: Path | str) -> RoutingConfig:
    """The routing file at `path`; its warnings go to the log. Raises RoutingConfigError."""
    loaded = read_routing_config(path)
    for warning in loaded.warnings:
        log.warning(warning)
    return loaded.config


def read_routing_config(path: Path | str) -> LoadedRouting:
    """The routing file at `path` with its warnings. Raises RoutingConfigError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutingConfigError(
            [f"{name}: no such file; copy routing.example.yaml there, or fix routing.file in the config"]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RoutingConfigError([f"{name}: cannot read the routing file: {e}"]) from None
    return parse_routing_config(text, name)


def parse_routing_config(text: str, filename: str) -> LoadedRouting:
    """Check the text of a routing file named `filename` (for messages). Raises RoutingConfigError."""
    try:
        data, positions = parse_yaml(text, filename)
    except FlowErrors as e:
        raise RoutingConfigError(
            [_yaml_error(str(error), error.message, filename) for error in e.errors]
        ) from None
    if data is None:
        raise RoutingConfigError([f"{filename}:1:1: {_EMPTY}"])
    if not isinstance(data, dict):
        raise RoutingConfigError([f"{filename}:1:1: a routing file is a mapping of keys: agents:, queues:"])
    found: list[tuple[tuple[int, int], str]] = []
    config: RoutingConfig | None = None
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as e:
        found += (_describe(filename, positions, error) for error in e.errors())
    found += _shared_phones(filename, positions, data)
    if found or config is None:
        raise RoutingConfigError([message for _, message in sorted(dict.fromkeys(found))])
    warnings = sorted(_skill_warnings(filename, positions, config))
    return LoadedRouting(config, tuple(message for _, message in warnings), filename)


def _yaml_error(line: str, message: str, filename: str) -> str:
    if message.startswith("the file is empty"):
        return f"{filename}:1:1: {_EMPTY}"
    return line


# --- checks of the whole file ------------------------------------------------------------------------


def _placed(
    filename: str, positions: Positions, loc: Loc, message: str, *, value: bool = False
) -> tuple[tuple[int, int], str]:
    line, column = positions.of(loc, value=value)
    path = positions.shown(loc)
    return (
        line,
        column,
    ), f"{filename}:{line}:{column}: {path}: {message}" if path else f"{filename}:{line}:{column}: {message}"


def _entries(data: Any, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The mappings under `data[key]`, skipping what the schema reports as malformed."""
    section = data.get(key) if isinstance(data, dict) else None
    if isinstance(section, dict):
        for name, entry in section.items():
            if isinstance(entry, dict):
                yield str(name), entry


def _shared_phones(filename: str, positions: Positions, data: Any) -> Iterator[tuple[tuple[int, int], str]]:
    owners: dict[str, str] = {}
    for agent_id, agent in _entries(data, "agents"):
        endpoint = agent.get("endpoint")
        if not isinstance(endpoint, str):
            continue
        key = endpoint.strip().lower()
        if key in owners:
            yield _placed(
                filename,
                positions,
                ("agents", agent_id, "endpoint"),
                f"{endpoint.strip()} is also the phone of agent '{owners[key]}'; give each agent a phone "
                "of their own (a feature code dialed from a phone must name one agent)",
                value=True,
            )
        else:
            owners[key] = agent_id


def _skill_warnings(
    filename: str, positions: Positions, config: RoutingConfig
) -> Iterator[tuple[tuple[int, int], str]]:
    held = {skill for agent in config.agents.values() for skill in agent.skills}
    asked: dict[str, Loc] = {}
    for queue_name, queue in config.queues.items():
        wanted: list[tuple[Loc, Mapping[str, int]]] = [(("queues", queue_name, "skills"), queue.skills)]
        wanted += [
            (("queues", queue_name, "escalation", index, "skills"), step.skills)
            for index, step in enumerate(queue.escalation)
        ]
        for loc, skills in wanted:
            for skill in skills:
                asked.setdefault(skill, (*loc, skill))
                if skill not in held:
                    yield _placed(
                        filename,
                        positions,
                        (*loc, skill),
                        f"warning: no agent has skill '{skill}'{did_you_mean(skill, held)}; its callers "
                        "wait for nobody until an agent gets it",
                    )
    for agent_id, agent in config.agents.items():
        for skill in agent.skills:
            if skill in asked:
                continue
            hint = did_you_mean(skill, asked)
            if hint:
                yield _placed(
                    filename,
                    positions,
                    ("agents", agent_id, "skills", skill),
                    f"warning: no queue asks for skill '{skill}'{hint}",
                )


# --- schema errors in the admin's words ----------------------------------------------------------------


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        members = [member for member in get_args(tp) if member is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
    return tp


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model of the mapping at `loc` (None: a plain mapping, such as an agent's skills)."""
    tp: Any = RoutingConfig
    for part in loc:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            if info is None:
                return None
            tp = info.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) in (tuple, list):
            tp = get_args(tp)[0]
        else:
            return None
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _describe(filename: str, positions: Positions, error: Any) -> tuple[tuple[int, int], str]:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    message = str(error["msg"]).removeprefix("Value error, ")
    at_value = True
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        at_value = False
        message = (
            f"'{loc[-1]}' cannot be a name: names hold letters, digits, _ and - (at most 64)"
            if kind == "string_pattern_mismatch"
            else message
        )
    elif kind == "extra_forbidden":
        at_value = False
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model is not None else []
        message = f"unknown key '{loc[-1]}'"
        hint = did_you_mean(str(loc[-1]), known)
        message += hint or (f"; the keys here are {', '.join(known)}" if known else "")
    elif kind == "missing":
        at_value = False
        message = f"the key '{loc[-1]}' is missing; add it"
        loc = loc[:-1]
    elif kind == "string_pattern_mismatch" and loc[-1] == "endpoint":
        message = f"{describe(value)} is not a phone endpoint; write it as TECH/resource, like PJSIP/agent1"
    elif kind == "string_pattern_mismatch":
        message = f"{describe(value)} cannot be a name: names hold letters, digits, _ and - (at most 64)"
    elif kind == "literal_error":
        message = f"{describe(value)} is not one of {ctx.get('expected', '')}"
        if isinstance(value, str):
            expected = [
                part.strip().strip("'")
                for part in str(ctx.get("expected", "")).replace(" or ", ",").split(",")
            ]
            message += did_you_mean(value, [e for e in expected if e])
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {
            "greater_than_equal": ("at least", ctx.get("ge")),
            "less_than_equal": ("at most", ctx.get("le")),
            "greater_than": ("more than", ctx.get("gt")),
            "less_than": ("less than", ctx.get("lt")),
        }[kind]
        message = f"must be {bound[0]} {_number(bound[1])}, not {describe(value)}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        message = f"must be a whole number, not {describe(value)}"
    elif kind in ("float_type", "float_parsing"):
        message = f"must be a number, not {describe(value)}"
    elif kind in ("string_type",):
        message = f"must be text, not {describe(value)}"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = "must be a mapping of keys"
    elif kind in ("tuple_type", "list_type"):
        message = "must be a list"
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind == "string_too_long":
        message = f"is longer than {ctx.get('max_length')} characters"
    return _placed(filename, positions, loc, message, value=at_value)
