"""The routing file (`routing.yaml`): agents, their skills and phones, and the queues, read like the flows
and the service config, so a mistake reads ``routing.yaml:12:7: agents.ann.skills.polish: must be at
most 10, not 12``.

The file is read like the flows and the service config (`yamlfile.read_yaml`: `no` is the word no, `01`
stays `01`, a position for every key), checked with the `routing.model.RoutingConfig` models (errors
worded by `yamlfile.Schema`, as in the other files), then checked as a whole:

- two agents may not share a phone (a feature code dialed from it must name one agent);
- a skill a queue asks for (directly or in an escalation step) that no agent has is a warning, not an
  error: the file is usable, but those callers wait for nobody until an agent gets the skill. So is an
  agent's skill no queue asks for when it looks like a typo of one that a queue does.

Every error is collected and raised at once as `RoutingConfigError` (a `ConfigError`); warnings come
back with the config (`read_routing_config`) or go to the log (`load_routing_config`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from hotline.agents.service import RoutingService
from hotline.config import ConfigError
from routing.model import RoutingConfig
from yamlfile import Limits, Positions, Problem, Schema, describe, read_yaml
from yamlfile.schema import did_you_mean

log = structlog.get_logger("hotline.agents.routing_file")

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
            [
                Problem(
                    name,
                    0,
                    0,
                    "",
                    "no such file; copy routing.example.yaml there, or fix routing.file in the config",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RoutingConfigError(
            [Problem(name, 0, 0, "", f"cannot read the routing file: {e}; check the file")]
        ) from None
    return parse_routing_config(text, name)


#: What a routing file may hold.
LIMITS = Limits(split="keep the agents and queues the contact center has")
#: Schema errors in the words every YAML file of the service uses.
SCHEMA = Schema(RoutingConfig, document="a routing file is a mapping of keys: agents:, queues:")


def parse_routing_config(text: str, filename: str) -> LoadedRouting:
    """Check the text of a routing file named `filename` (for messages). Raises RoutingConfigError."""
    document = read_yaml(text, filename, limits=LIMITS)
    if document.empty:
        raise RoutingConfigError([Problem(filename, 1, 1, "", _EMPTY)])
    if not document.readable:
        raise RoutingConfigError(document.problems)
    data, positions = document.data, document.positions
    if not isinstance(data, dict):
        raise RoutingConfigError(
            [Problem(filename, 1, 1, "", f"the file holds {describe(data)}; {SCHEMA.document}")]
        )
    found: list[Problem] = list(document.problems)
    config: RoutingConfig | None = None
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as e:
        found += SCHEMA.problems(e, data, filename, positions)
    found += _shared_phones(filename, positions, data)
    if found or config is None:
        raise RoutingConfigError(found)
    warnings = sorted(_skill_warnings(filename, positions, config))
    return LoadedRouting(config, tuple(str(warning) for warning in warnings), filename)


# --- checks of the whole file ------------------------------------------------------------------------


def _placed(filename: str, positions: Positions, loc: Loc, message: str, *, value: bool = False) -> Problem:
    line, column = positions.of(loc, value=value)
    return Problem(filename, line, column, positions.shown(loc), message)


def _entries(data: Any, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The mappings under `data[key]`, skipping what the schema reports as malformed."""
    section = data.get(key) if isinstance(data, dict) else None
    if isinstance(section, dict):
        for name, entry in section.items():
            if isinstance(entry, dict):
                yield str(name), entry


def _shared_phones(filename: str, positions: Positions, data: Any) -> Iterator[Problem]:
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


def _skill_warnings(filename: str, positions: Positions, config: RoutingConfig) -> Iterator[Problem]:
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
                        f"warning: no agent has skill '{skill}', so its callers wait for nobody until an "
                        "agent gets it"
                        + (did_you_mean(skill, held) or "; give an agent the skill or drop it here"),
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


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


async def watch_routing_file(routing: RoutingService, path: Path, interval: float) -> None:
    """Reload the routing file when it changes; a file with a mistake is logged and the old config
    stays live."""
    seen = _file_stamp(path)
    while True:
        await asyncio.sleep(interval)
        stamp = _file_stamp(path)
        if stamp == seen:
            continue
        seen = stamp
        try:
            config = load_routing_config(path)
        except RoutingConfigError as e:
            for error in e.errors:
                log.error(f"routing not reloaded: {error}")
            log.error("routing not reloaded; the old agents and queues stay live until the file is fixed")
            continue
        except Exception:
            log.exception("routing reload failed; the old agents and queues stay live")
            continue
        await routing.reload(config)
        log.info("routing reloaded", agents=sorted(config.agents), queues=sorted(config.queues))
