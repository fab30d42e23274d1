"""The routing configuration: agents, queues and how waits are estimated, as pydantic models.

A routing file reads like the contact center's staffing sheet::

    agents:
      ann: {name: Ann Nowak, endpoint: PJSIP/ann, skills: {support: 7, polish: 10}, wrapup: 15}
    queues:
      support:
        skills: {support: 5}
        strategy: best_skill
        escalation:
          - {after: 60, skills: {support: 2}}

Queue and agent names are the keys. These models check one file's shape; `routing.router.Router`
uses them as they are.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=64)]
Level = Annotated[int, Field(ge=1, le=10)]
Skills = dict[Name, Level]
Strategy = Literal["longest_idle", "best_skill", "fewest_calls", "round_robin"]

STRATEGIES: tuple[str, ...] = ("longest_idle", "best_skill", "fewest_calls", "round_robin")


class Strict(BaseModel):
    """Every model refuses keys it does not know, so a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AgentConfig(Strict):
    """One agent: who they are, which phone rings, what they can handle and how long they wrap up."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z]+/.+$")]
    skills: Skills = Field(default_factory=dict)
    wrapup: Annotated[float, Field(ge=0, le=3600)] = 10.0


class ServiceLevel(Strict):
    """The target: `percent` of callers answered within `seconds` (80 % in 20 s)."""

    percent: Annotated[float, Field(gt=0, le=100)] = 80.0
    seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0


class EscalationStep(Strict):
    """After `after` seconds of waiting the caller's required skills become `skills` (usually wider)."""

    after: Annotated[float, Field(gt=0, le=86400)]
    skills: Skills = Field(default_factory=dict)


class QueueConfig(Strict):
    """A queue: who may take its callers, in which order, and what the caller hears while waiting."""

    skills: Skills = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    strategy: Strategy = "longest_idle"
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    music: Annotated[str, Field(min_length=1, max_length=80)] = "default"
    announce_every: Annotated[float, Field(ge=0, le=3600)] = 30.0
    max_wait: Annotated[float, Field(gt=0, le=86400)] = 600.0
    ring_timeout: Annotated[float, Field(gt=0, le=300)] = 15.0
    escalation: tuple[EscalationStep, ...] = ()
    priority_aging: Annotated[float, Field(ge=0, le=100)] = 0.0

    @model_validator(mode="after")
    def _steps_in_order(self) -> QueueConfig:
        for earlier, later in zip(self.escalation, self.escalation[1:], strict=False):
            if later.after <= earlier.after:
                raise ValueError(
                    f"escalation steps must come in order of `after`: {later.after:g} s follows "
                    f"{earlier.after:g} s; sort the steps by their waiting time"
                )
        return self


class EstimateConfig(Strict):
    """Wait estimates: the handle time assumed for an agent before their first call, and how strongly
    each new call moves an agent's smoothed handle time (exponential weight of the newest call)."""

    default_handle_time: Annotated[float, Field(gt=0, le=7200)] = 180.0
    smoothing: Annotated[float, Field(gt=0, le=1)] = 0.2


class RoutingConfig(Strict):
    agents: dict[Name, AgentConfig] = Field(default_factory=dict)
    queues: dict[Name, QueueConfig] = Field(default_factory=dict)
    estimates: EstimateConfig = Field(default_factory=EstimateConfig)
