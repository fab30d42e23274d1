"""Small builders for the routing tests: a config from plain dicts, times as seconds after 09:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from routing.actions import Action
from routing.model import RoutingConfig

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def config(
    agents: dict[str, dict[str, Any]], queues: dict[str, dict[str, Any]], **extra: Any
) -> RoutingConfig:
    return RoutingConfig.model_validate(
        {
            "agents": {
                aid: {"name": aid.title(), "endpoint": f"PJSIP/{aid}", **spec} for aid, spec in agents.items()
            },
            "queues": queues,
            **extra,
        }
    )


def of(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]
