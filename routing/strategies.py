"""How a queue chooses among the free agents who can take a caller. Ties always go to the lowest
agent id, so the same inputs give the same choice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar


class Candidate(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def idle_since(self) -> float: ...
    @property
    def calls_taken(self) -> int: ...
    @property
    def skills(self) -> Mapping[str, int]: ...


A = TypeVar("A", bound=Candidate)


def choose(
    strategy: str, candidates: Iterable[A], required: Mapping[str, int], last: str | None = None
) -> A | None:
    """The agent `strategy` picks; `last` is the queue's round-robin pointer (the agent it last chose)."""
    pool = list(candidates)
    if not pool:
        return None
    if strategy == "longest_idle":
        return min(pool, key=lambda a: (a.idle_since, a.id))
    if strategy == "fewest_calls":
        return min(pool, key=lambda a: (a.calls_taken, a.id))
    if strategy == "best_skill":
        return min(pool, key=lambda a: (-sum(a.skills.get(s, 0) for s in required), a.id))
    if strategy == "round_robin":
        after = [a for a in pool if last is not None and a.id > last]
        return min(after or pool, key=lambda a: a.id)
    raise ValueError(
        f"unknown strategy '{strategy}'; use longest_idle, best_skill, fewest_calls or round_robin"
    )
