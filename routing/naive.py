"""The same decisions as `Router`, made by scanning every agent and every waiting contact.

Kept as the reference the tests compare the indexed router with, and as the baseline of
`bench/routing_bench.py`. Not for production: one decision costs O(agents) or O(waiting contacts).
"""

from __future__ import annotations

import copy

from routing.agents import AgentState
from routing.router import Rank, Router, _Agent, _Contact, meets
from routing.strategies import choose


class ScanRouter(Router):
    def _best_agent(self, c: _Contact) -> _Agent | None:
        eligible = [
            a
            for a in self._agents.values()
            if a.state is AgentState.AVAILABLE and a.reachable and not a.retired and meets(a.skills, c.skills)
        ]
        qc = self._config.queues.get(c.queue)
        strategy = qc.strategy if qc is not None else "longest_idle"
        return choose(strategy, eligible, c.skills, self._pointer.get(c.queue))

    def _best_contact(self, agent: _Agent, t: float) -> _Contact | None:
        best: _Contact | None = None
        best_rank: Rank | None = None
        for c in self._contacts.values():
            if c.agent is None and not c.answered and meets(agent.skills, c.skills):
                rank = self._rank(c, t)
                if best_rank is None or rank < best_rank:
                    best, best_rank = c, rank
        return best


def scanning(router: Router) -> ScanRouter:
    """A copy of `router`, in the same state, that decides by scanning."""
    twin = copy.deepcopy(router)
    twin.__class__ = ScanRouter
    return twin  # type: ignore[return-value]
