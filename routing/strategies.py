"""How a queue chooses among the free agents who can take a caller: one function per strategy, named in
`Strategy` and filed in `STRATEGIES`. Ties always go to the lowest agent id, so the same inputs give the
same choice."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal, Protocol, TypeVar, get_args

Strategy = Literal["longest_idle", "best_skill", "fewest_calls", "round_robin"]


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


#: What a strategy ranks an agent by (the lowest rank is chosen; ties go to the lowest id).
Rank = tuple[float | bool | str, ...]


def longest_idle(agent: Candidate, required: Mapping[str, int], last: str | None) -> Rank:
    """The agent free for the longest time."""
    return (agent.idle_since, agent.id)


def fewest_calls(agent: Candidate, required: Mapping[str, int], last: str | None) -> Rank:
    """The agent who took the fewest calls since logging in."""
    return (agent.calls_taken, agent.id)


def best_skill(agent: Candidate, required: Mapping[str, int], last: str | None) -> Rank:
    """The agent with the highest levels in the skills the caller needs."""
    return (-sum(agent.skills.get(s, 0) for s in required), agent.id)


def round_robin(agent: Candidate, required: Mapping[str, int], last: str | None) -> Rank:
    """The next agent after the one the queue chose last, in id order (then from the start again)."""
    return (last is None or agent.id <= last, agent.id)


Ranking = Callable[[Candidate, Mapping[str, int], str | None], Rank]

#: Every strategy by its name in the routing file.
STRATEGIES: Mapping[Strategy, Ranking] = {
    "longest_idle": longest_idle,
    "best_skill": best_skill,
    "fewest_calls": fewest_calls,
    "round_robin": round_robin,
}

if set(STRATEGIES) != set(get_args(Strategy)):  # pragma: no cover - a registry that disagrees with itself
    raise ImportError("routing.strategies: STRATEGIES and Strategy name different strategies")


def choose(
    strategy: str, candidates: Iterable[A], required: Mapping[str, int], last: str | None = None
) -> A | None:
    """The agent `strategy` picks; `last` is the queue's round-robin pointer (the agent it last chose)."""
    rank = next((ranking for name, ranking in STRATEGIES.items() if name == strategy), None)
    if rank is None:
        raise ValueError(f"unknown strategy '{strategy}'; use {', '.join(STRATEGIES)}")
    return min(candidates, key=lambda agent: rank(agent, required, last), default=None)
