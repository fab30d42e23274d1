"""Assignment decisions per second: the indexed router beside a naive scan, in the same run.

A center of A agents with 100 skills (three each, levels 1-10) and 100 queues (one skill each, minimum
level 1-3) is filled until every agent is on a call and W callers wait. Then, for both routers from the
same state and with the same events:

- an agent's call ends (no wrap-up): the agent becomes free and the router picks the best waiting caller
  they can take (the indexed router looks at the heads of the groups in the agent's skills; the scan
  looks at every waiting caller), the agent answers, and a new caller arrives so W stays put;
- that new caller arriving is a decision too: the router looks for a free agent (the index looks at the
  free agents with the caller's skill; the scan looks at every agent).

Both routers must return the same actions for every event. Run:

    .venv/bin/python bench/routing_bench.py                 # 500/1000/2000 agents x 5k/10k/20k callers
    .venv/bin/python bench/routing_bench.py --agents 2000 --callers 20000 --decisions 5000
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from routing.actions import Action, OfferContact
from routing.events import AgentAnswered, AgentLoggedIn, CallEnded, ContactQueued
from routing.model import RoutingConfig
from routing.naive import scanning
from routing.router import Router

SKILLS = [f"s{i:02d}" for i in range(100)]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def center(agents: int, callers: int, seed: int) -> tuple[Router, dict[str, str], int]:
    """A router with every agent on a call and `callers` waiting; returns it, agent -> contact, and
    the number of contacts made."""
    rng = random.Random(seed)
    config = RoutingConfig.model_validate(
        {
            "agents": {
                f"a{i:05d}": {
                    "name": f"Agent {i}",
                    "endpoint": f"PJSIP/a{i}",
                    "skills": {s: rng.randint(1, 10) for s in rng.sample(SKILLS, 3)},
                    "wrapup": 0,
                }
                for i in range(agents)
            },
            "queues": {
                f"q{s}": {
                    "skills": {s: rng.randint(1, 3)},
                    "priority": rng.randint(0, 2),
                    "announce_every": 0,
                }
                for s in SKILLS
            },
        }
    )
    router = Router(config)
    for agent in config.agents:
        router.handle(AgentLoggedIn(agent), T0)
    talking: dict[str, str] = {}
    made = 0
    queues = list(config.queues)
    while made - len(talking) < callers:
        made += 1
        at = T0 + timedelta(seconds=made * 0.01)
        for action in router.handle(ContactQueued(f"c{made}", rng.choice(queues)), at):
            if isinstance(action, OfferContact):
                router.handle(AgentAnswered(action.agent_id, action.contact_id), at)
                talking[action.agent_id] = action.contact_id
    return router, talking, made


def run(
    router: Router, talking: dict[str, str], made: int, decisions: int, seed: int
) -> tuple[float, float, list[list[Action]]]:
    """Seconds spent in agent-frees decisions and in caller-arrives decisions, and every action."""
    rng = random.Random(seed)
    talking = dict(talking)
    queues = list(router.config.queues)
    freed = arrived = 0.0
    log: list[list[Action]] = []
    clock = time.perf_counter
    for n in range(decisions):
        at = T0 + timedelta(seconds=1000 + n)
        agent = rng.choice(sorted(talking))
        contact = talking.pop(agent)
        start = clock()
        actions = router.handle(CallEnded(contact), at)
        freed += clock() - start
        log.append(actions)
        for action in actions:
            if isinstance(action, OfferContact):
                router.handle(AgentAnswered(action.agent_id, action.contact_id), at)
                talking[action.agent_id] = action.contact_id
        made += 1
        start = clock()
        actions = router.handle(ContactQueued(f"c{made}", rng.choice(queues)), at)
        arrived += clock() - start
        log.append(actions)
        for action in actions:
            if isinstance(action, OfferContact):
                router.handle(AgentAnswered(action.agent_id, action.contact_id), at)
                talking[action.agent_id] = action.contact_id
    return freed, arrived, log


def measure(agents: int, callers: int, fast: int, slow: int, seed: int = 1) -> dict[str, float]:
    router, talking, made = center(agents, callers, seed)
    naive = scanning(router)
    waiting = sum(len(q.waiting) for q in router.queues(T0 + timedelta(seconds=999)))
    f_fast, a_fast, log_fast = run(router, talking, made, fast, seed)
    f_slow, a_slow, log_slow = run(naive, talking, made, slow, seed)
    assert log_fast[: len(log_slow)] == log_slow, "the two routers decided differently"
    return {
        "agents": agents,
        "waiting": waiting,
        "free_us": f_fast / fast * 1e6,
        "arrive_us": a_fast / fast * 1e6,
        "naive_free_us": f_slow / slow * 1e6,
        "naive_arrive_us": a_slow / slow * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, help="one center of this size instead of the grid")
    parser.add_argument("--callers", type=int, default=20000, help="waiting callers, with --agents")
    parser.add_argument("--decisions", type=int, default=2000, help="decisions of each kind, indexed")
    parser.add_argument("--naive", type=int, default=50, help="decisions of each kind, naive scan")
    args = parser.parse_args()
    print(
        f"# {datetime.now():%Y-%m-%d}, Python {platform.python_version()}, {platform.machine()}",
        file=sys.stderr,
    )
    cases = [(a, c) for a in (500, 1000, 2000) for c in (5000, 10000, 20000)]
    if args.agents:
        cases = [(args.agents, args.callers)]
    print(
        "| agents | waiting | agent frees: indexed | naive | ratio | caller arrives: indexed | naive | ratio |"
    )
    print("|-------:|--------:|------:|------:|------:|------:|------:|------:|")
    for agents, callers in cases:
        started = time.perf_counter()
        r = measure(agents, callers, args.decisions, args.naive)
        print(
            f"| {agents} | {r['waiting']:.0f} "
            f"| {r['free_us']:.0f} µs ({1e6 / r['free_us']:,.0f}/s) | {r['naive_free_us']:,.0f} µs "
            f"| {r['naive_free_us'] / r['free_us']:,.0f}× "
            f"| {r['arrive_us']:.0f} µs ({1e6 / r['arrive_us']:,.0f}/s) | {r['naive_arrive_us']:,.0f} µs "
            f"| {r['naive_arrive_us'] / r['arrive_us']:,.0f}× |",
            flush=True,
        )
        print(f"#   {agents} x {callers}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
