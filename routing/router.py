"""The routing engine: `Router.handle(event, now) -> actions`, pure like the IVR engine.

The router keeps every agent's state (the table in `routing.agents`), every waiting contact in order, and
decides who rings whom. It never reads a clock: time comes in with each event, timers go out as
`StartTimer` actions and come back as `TimerFired`.

Waiting contacts are kept in groups, one per queue and required skills, each sorted once by a key that
does not change while they wait (priority aging is the same for everyone in a queue, so their order holds).
Free agents are indexed by skill. An agent who becomes free looks only at the heads of the groups whose
skills they have; a caller who arrives looks only at the free agents with the rarest of their skills.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from routing.actions import (
    Action,
    AgentStateChanged,
    AnnouncePosition,
    CancelOffer,
    CancelTimer,
    OfferCallback,
    OfferContact,
    Overflow,
    RecordEvent,
    StartTimer,
)
from routing.agents import STAFFED, AgentEvent, AgentState, next_state
from routing.errors import InvalidSkills, UnknownAgent
from routing.estimates import smoothed, wait_estimate
from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentNoAnswer,
    AgentPaused,
    AgentResumed,
    CallbackOffering,
    CallEnded,
    ContactLeft,
    ContactQueued,
    DeviceChanged,
    Event,
    SkillsChanged,
    TimerFired,
    WrapUpEnded,
)
from routing.model import EscalationStep, RoutingConfig
from routing.strategies import choose

S = AgentState
E = AgentEvent

Signature = tuple[str, tuple[tuple[str, int], ...]]
Entry = tuple[float, float, str]
Rank = tuple[float, float, str]


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    name: str
    state: str
    reason: str | None
    since: datetime | None
    skills: dict[str, int]
    calls_taken: int
    reachable: bool
    contact_id: str | None


@dataclass(frozen=True, slots=True)
class WaitingView:
    """A caller in a queue. `position` 1 is next; a caller being rung has position 0 and `agent` set."""

    contact_id: str
    position: int
    waited: float
    estimated_wait: float | None
    priority: float
    callback: bool
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """What the queue did in the last `window` seconds, call-back placeholders left out.

    `service_level` is the percent of callers answered within the target's seconds among all who were
    answered or hung up waiting (an abandon counts against it); None before the first such caller.
    """

    window: float
    answered: int
    answered_within: int
    abandoned: int
    average_answer: float | None
    service_level: float | None


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    waiting: list[WaitingView]
    agents_eligible: int
    figures: QueueFigures | None = None


@dataclass(slots=True, eq=False)
class _Agent:
    id: str
    name: str
    endpoint: str
    skills: dict[str, int]
    wrapup: float
    state: AgentState = S.LOGGED_OUT
    reason: str | None = None
    since: datetime | None = None
    reachable: bool = True
    idle_since: float = 0.0
    calls_taken: int = 0
    contact: str | None = None
    answered_at: float = 0.0
    wrap_started: float = 0.0
    talk: float = 0.0
    aht: float | None = None
    retired: bool = False
    indexed: tuple[str, ...] = ()
    free: bool = False
    staffed: bool = False


@dataclass(slots=True, eq=False)
class _Contact:
    id: str
    queue: str
    skills: dict[str, int]
    priority: int
    enqueued: float
    callback: bool
    max_wait: float | None
    steps: tuple[EscalationStep, ...]
    offering: CallbackOffering | None = None
    agent: str | None = None
    answered: bool = False
    offered_at: float = 0.0
    group: _Group | None = None
    entry: Entry = (0.0, 0.0, "")


@dataclass(slots=True, eq=False)
class _Group:
    """Waiting (not ringing) contacts of one queue needing the same skills, best first."""

    sig: Signature
    queue: str
    skills: dict[str, int]
    entries: list[Entry] = field(default_factory=list)


def meets(skills: dict[str, int], required: dict[str, int]) -> bool:
    """The agent has every required skill at the required level or above."""
    return all(skills.get(s, 0) >= level for s, level in required.items())


def _signature(queue: str, skills: dict[str, int]) -> Signature:
    return (queue, tuple(sorted(skills.items())))


class Router:
    """Agents, waiting contacts and the decisions between them. Feed events, execute the actions."""

    def __init__(self, config: RoutingConfig) -> None:
        self._config = config
        self._origin: datetime | None = None
        self._agents: dict[str, _Agent] = {}
        self._contacts: dict[str, _Contact] = {}
        self._groups: dict[Signature, _Group] = {}
        self._groups_by_skill: dict[str, set[Signature]] = {}
        self._open_groups: set[Signature] = set()
        self._free: set[str] = set()
        self._free_by_skill: dict[str, set[str]] = {}
        self._staffed: set[str] = set()
        self._staffed_by_skill: dict[str, set[str]] = {}
        self._timers: dict[str, tuple[str, str, int]] = {}
        self._pointer: dict[str, str] = {}
        self._dirty_agents: set[str] = set()
        self._dirty_contacts: set[str] = set()
        self._compete: dict[tuple[Signature, Signature], bool] = {}
        self._new_offerings: list[str] = []
        #: per queue, the callers who left it, oldest first: (when, answered, seconds waited)
        self._history: dict[str, deque[tuple[float, bool, float]]] = {}
        for agent_id, ac in config.agents.items():
            self._agents[agent_id] = _Agent(agent_id, ac.name, ac.endpoint, dict(ac.skills), ac.wrapup)

    @property
    def config(self) -> RoutingConfig:
        return self._config

    # --- the one entry point ------------------------------------------------------------------------

    def handle(self, event: Event, now: datetime) -> list[Action]:
        """Apply one event at `now`; returns what the service must do, in order. Raises
        `IllegalTransition` or `UnknownAgent` (for agent requests) before changing anything."""
        t = self._t(now)
        out: list[Action] = []
        match event:
            case ContactQueued():
                self._queued(event, t, out)
            case ContactLeft():
                self._left(event.contact_id, event.reason, now, t, out)
            case AgentLoggedIn():
                self._login(self._agent(event.agent_id), now, t, out)
            case AgentLoggedOut():
                self._logout(self._agent(event.agent_id), now, t, out)
            case AgentPaused():
                self._pause(self._agent(event.agent_id), event.reason, now, t, out)
            case AgentResumed():
                agent = self._agent(event.agent_id)
                self._set(agent, E.RESUME, now, out)
            case AgentAnswered():
                self._answered(event, now, t, out)
            case AgentNoAnswer():
                self._no_answer(event, now, t, out)
            case CallEnded():
                self._call_ended(event.contact_id, now, t, out)
            case WrapUpEnded():
                agent = self._agent(event.agent_id)
                next_state(agent.id, agent.state, E.WRAPUP_END)
                self._end_wrapup(agent, now, t, out)
            case DeviceChanged():
                self._device(event, out)
            case SkillsChanged():
                self._skills(self._agent(event.agent_id), event.skills)
            case TimerFired():
                self._timer(event.timer_id, now, t, out)
        self._assign(t, now, out)
        self._plan_offers(t, out)
        return out

    # --- read-only views ---------------------------------------------------------------------------

    def agents(self) -> list[AgentView]:
        return [
            AgentView(
                a.id,
                a.name,
                a.state.value,
                a.reason,
                a.since,
                dict(a.skills),
                a.calls_taken,
                a.reachable,
                a.contact,
            )
            for a in sorted(self._agents.values(), key=lambda a: a.id)
        ]

    def queues(self, now: datetime) -> list[QueueView]:
        t = self._t(now)
        by_queue: dict[str, list[_Contact]] = {name: [] for name in self._config.queues}
        for c in self._contacts.values():
            if not c.answered and c.queue in by_queue:
                by_queue[c.queue].append(c)
        views = []
        for name, contacts in by_queue.items():
            contacts.sort(key=lambda c: self._rank(c, t))
            waiting = []
            for c in contacts:
                estimate: float | None = 0.0
                if c.agent is not None:
                    position = 0
                else:
                    position = self._position(c, t)
                    estimate = self._estimate(c, position)
                waiting.append(
                    WaitingView(
                        c.id,
                        position,
                        t - c.enqueued,
                        estimate,
                        self._effective(c, t),
                        c.callback,
                        c.agent,
                    )
                )
            staffed = len(self._staffed_meeting(dict(self._config.queues[name].skills)))
            views.append(QueueView(name, waiting, staffed, self._figures(name, t)))
        return views

    def _figures(self, queue: str, t: float) -> QueueFigures:
        target = self._config.queues[queue].service_level
        since = t - target.window
        left = [h for h in self._history.get(queue, ()) if h[0] >= since]
        waits = [wait for _, answered, wait in left if answered]
        within = sum(1 for wait in waits if wait <= target.seconds)
        return QueueFigures(
            window=target.window,
            answered=len(waits),
            answered_within=within,
            abandoned=len(left) - len(waits),
            average_answer=sum(waits) / len(waits) if waits else None,
            service_level=100.0 * within / len(left) if left else None,
        )

    def _remember(self, c: _Contact, t: float, answered: bool) -> None:
        """A caller left the queue, answered or not: kept for the queue's figures while in the window."""
        if c.callback:
            return
        qc = self._config.queues.get(c.queue)
        history = self._history.setdefault(c.queue, deque())
        history.append((t, answered, t - c.enqueued))
        window = qc.service_level.window if qc is not None else 0.0
        while history and history[0][0] < t - window:
            history.popleft()

    def estimate(self, contact_id: str, now: datetime) -> float | None:
        """Seconds the caller is expected to wait still; 0 while their agent rings; None when unknown
        or when no logged-in agent can take them."""
        c = self._contacts.get(contact_id)
        if c is None or c.answered:
            return None
        if c.agent is not None:
            return 0.0
        t = self._t(now)
        return self._estimate(c, self._position(c, t))

    def position(self, contact_id: str, now: datetime) -> int | None:
        """The caller's place among the callers who compete for the same agents (1 is next)."""
        c = self._contacts.get(contact_id)
        if c is None or c.answered:
            return None
        return 0 if c.agent is not None else self._position(c, self._t(now))

    # --- reload ------------------------------------------------------------------------------------

    def reload(self, config: RoutingConfig, now: datetime) -> list[Action]:
        """Take a new configuration. Agents keep their state; removed agents are logged out (after their
        call and wrap-up if they are on one); callers of a removed queue overflow; everyone else keeps
        their place."""
        t = self._t(now)
        out: list[Action] = []
        self._config = config
        for agent_id in sorted(self._agents):
            agent = self._agents[agent_id]
            ac = config.agents.get(agent_id)
            if ac is not None:
                agent.name, agent.endpoint, agent.wrapup = ac.name, ac.endpoint, ac.wrapup
                agent.skills = dict(ac.skills)
                agent.retired = False
                continue
            agent.retired = True
            if agent.state is S.RINGING:
                self._unring(agent, t, out)
            if agent.state in (S.AVAILABLE, S.PAUSED, S.RINGING):
                self._set(agent, E.LOGOUT, now, out)
            if agent.state is S.LOGGED_OUT:
                self._drop(agent)
        for agent_id, ac in config.agents.items():
            if agent_id not in self._agents:
                self._agents[agent_id] = _Agent(agent_id, ac.name, ac.endpoint, dict(ac.skills), ac.wrapup)
        for c in sorted(self._contacts.values(), key=lambda c: self._rank(c, t)):
            if c.queue not in config.queues and not c.answered:
                if c.agent is not None:
                    agent = self._agents[c.agent]
                    out.append(CancelOffer(c.id, agent.id))
                    agent.contact = None
                    self._set(agent, E.CALLER_LEFT, now, out)
                    c.agent = None
                self._finish(c, out)
                out.append(Overflow(c.id, "queue_removed"))
        self._rebuild()
        self._assign(t, now, out)
        return out

    # --- events ------------------------------------------------------------------------------------

    def _queued(self, event: ContactQueued, t: float, out: list[Action]) -> None:
        """The contact joins, or comes back with `since`: then it waits as if it had never left, its
        passed escalation steps applied and its other timers running for what is left."""
        cid = event.contact_id
        if cid in self._contacts:
            return
        qc = self._config.queues.get(event.queue)
        if qc is None:
            out.append(Overflow(cid, "unknown_queue"))
            return
        enqueued = t if event.since is None else min(t, self._t(event.since))
        waited = t - enqueued
        skills = dict(qc.skills if event.skills is None else event.skills)
        passed = sum(1 for step in qc.escalation if step.after <= waited)
        if passed:
            skills = dict(qc.escalation[passed - 1].skills)
        if not self._anyone_could(skills, qc.escalation[passed:]):
            out.append(Overflow(cid, "no_agent"))
            return
        max_wait = event.max_wait if event.max_wait is not None else (None if event.callback else qc.max_wait)
        priority = qc.priority if event.priority is None else event.priority
        c = _Contact(cid, event.queue, skills, priority, enqueued, event.callback, max_wait, qc.escalation)
        if not event.callback:
            c.offering = event.offer_callback
        self._contacts[cid] = c
        self._wait(c)
        data: dict[str, object] = {"queue": c.queue, "skills": dict(skills), "priority": priority}
        if event.since is not None:
            data["waited"] = waited
        out.append(RecordEvent(cid, "queued", data))
        if max_wait is not None:
            self._start(f"queue:{cid}:max_wait", ("max_wait", cid, 0), max(0.0, max_wait - waited), out)
        if qc.announce_every > 0 and not event.callback:
            self._start(f"queue:{cid}:announce", ("announce", cid, 0), qc.announce_every, out)
        for i, step in enumerate(qc.escalation[passed:], start=passed):
            self._start(f"queue:{cid}:escalate:{i}", ("escalate", cid, i), step.after - waited, out)
        if c.offering is not None:
            self._new_offerings.append(cid)
        self._dirty_contacts.add(cid)

    def _left(self, cid: str, reason: str, now: datetime, t: float, out: list[Action]) -> None:
        c = self._contacts.get(cid)
        if c is None:
            return
        if c.answered:
            self._call_ended(cid, now, t, out)
            return
        if c.agent is not None:
            agent = self._agents[c.agent]
            out.append(CancelOffer(cid, agent.id))
            agent.contact = None
            c.agent = None
            self._set(agent, E.CALLER_LEFT, now, out)
        self._finish(c, out)
        if reason == "abandoned" and not c.callback:
            self._remember(c, t, answered=False)
            out.append(
                RecordEvent(cid, "abandoned", {"where": "queue", "queue": c.queue, "wait": t - c.enqueued})
            )

    def _login(self, agent: _Agent, now: datetime, t: float, out: list[Action]) -> None:
        next_state(agent.id, agent.state, E.LOGIN)
        agent.idle_since = t
        self._set(agent, E.LOGIN, now, out)

    def _logout(self, agent: _Agent, now: datetime, t: float, out: list[Action]) -> None:
        next_state(agent.id, agent.state, E.LOGOUT)
        if agent.state is S.RINGING:
            self._unring(agent, t, out)
        elif agent.state is S.WRAP_UP:
            self._close_wrapup(agent, t, out)
        self._set(agent, E.LOGOUT, now, out)
        if agent.retired:
            self._drop(agent)

    def _pause(self, agent: _Agent, reason: str, now: datetime, t: float, out: list[Action]) -> None:
        next_state(agent.id, agent.state, E.PAUSE)
        if agent.state is S.WRAP_UP:
            self._close_wrapup(agent, t, out)
        self._set(agent, E.PAUSE, now, out, reason)

    def _answered(self, event: AgentAnswered, now: datetime, t: float, out: list[Action]) -> None:
        agent = self._agents.get(event.agent_id)
        c = self._contacts.get(event.contact_id)
        if agent is None or c is None or agent.state is not S.RINGING or agent.contact != c.id:
            return  # the offer was already withdrawn: the service's event crossed ours
        self._set(agent, E.ANSWER, now, out)
        agent.calls_taken += 1
        agent.answered_at = t
        c.answered = True
        self._remember(c, t, answered=True)
        self._cancel_contact_timers(c, out)
        out.append(
            RecordEvent(c.id, "answered", {"queue": c.queue, "agent": agent.id, "wait": t - c.enqueued})
        )

    def _no_answer(self, event: AgentNoAnswer, now: datetime, t: float, out: list[Action]) -> None:
        agent = self._agents.get(event.agent_id)
        c = self._contacts.get(event.contact_id)
        if agent is None or c is None or agent.state is not S.RINGING or agent.contact != c.id:
            return
        agent.contact = None
        self._set(agent, E.NO_ANSWER, now, out, event.reason)
        out.append(
            RecordEvent(
                c.id,
                "agent_no_answer",
                {"queue": c.queue, "agent": agent.id, "ring_seconds": t - c.offered_at},
            )
        )
        c.agent = None
        self._back_to_waiting(c, t, out)

    def _call_ended(self, cid: str, now: datetime, t: float, out: list[Action]) -> None:
        c = self._contacts.get(cid)
        if c is None:
            return
        if not c.answered:
            self._left(cid, "abandoned", now, t, out)
            return
        del self._contacts[cid]
        agent = self._agents.get(c.agent or "")
        if agent is None or agent.state is not S.ON_CALL or agent.contact != cid:
            return
        agent.talk = t - agent.answered_at
        agent.idle_since = t
        agent.wrap_started = t
        self._set(agent, E.CALL_END, now, out)
        if agent.wrapup > 0:
            self._start(f"agent:{agent.id}:wrapup", ("wrapup", agent.id, 0), agent.wrapup, out)
        else:
            self._end_wrapup(agent, now, t, out)

    def _end_wrapup(self, agent: _Agent, now: datetime, t: float, out: list[Action]) -> None:
        self._close_wrapup(agent, t, out)
        self._set(agent, E.WRAPUP_END, now, out)
        if agent.retired:
            self._set(agent, E.LOGOUT, now, out)
            self._drop(agent)

    def _close_wrapup(self, agent: _Agent, t: float, out: list[Action]) -> None:
        """Wrap-up is over (ended, timed out, or cut short by a pause or log-out): learn the handle time."""
        self._cancel(f"agent:{agent.id}:wrapup", out)
        seconds = t - agent.wrap_started
        agent.aht = smoothed(agent.aht, agent.talk + seconds, self._config.estimates.smoothing)
        if agent.contact is not None:
            out.append(RecordEvent(agent.contact, "wrapup_ended", {"agent": agent.id, "seconds": seconds}))
        agent.contact = None

    def _device(self, event: DeviceChanged, out: list[Action]) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is None or agent.reachable == event.reachable:
            return
        agent.reachable = event.reachable
        self._index(agent)

    def _skills(self, agent: _Agent, skills: dict[str, int]) -> None:
        for skill, level in skills.items():
            if not 1 <= level <= 10:
                raise InvalidSkills(agent.id, skill, level)
        agent.skills = dict(skills)
        self._compete.clear()
        self._index(agent)

    def _timer(self, timer_id: str, now: datetime, t: float, out: list[Action]) -> None:
        what = self._timers.pop(timer_id, None)
        if what is None:
            return  # cancelled, or already fired
        kind, ref, step = what
        if kind == "wrapup":
            agent = self._agents.get(ref)
            if agent is not None and agent.state is S.WRAP_UP:
                self._end_wrapup(agent, now, t, out)
            return
        c = self._contacts.get(ref)
        if c is None or c.answered:
            return
        if kind == "max_wait":
            if c.agent is None:  # a caller being rung keeps the ring; overflow if it fails
                self._finish(c, out)
                out.append(Overflow(c.id, "max_wait"))
        elif kind == "announce":
            qc = self._config.queues.get(c.queue)
            if c.agent is None:
                position = self._position(c, t)
                estimate = self._estimate(c, position)
                if estimate is not None:  # with nobody logged in who could take them, say nothing
                    out.append(AnnouncePosition(c.id, position, estimate))
                    out.append(
                        RecordEvent(
                            c.id,
                            "position_announced",
                            {"queue": c.queue, "position": position, "estimated_wait": estimate},
                        )
                    )
            if qc is not None and qc.announce_every > 0:
                self._start(timer_id, what, qc.announce_every, out)
        elif kind == "offer":
            if c.agent is None:  # while an agent rings for the caller the offer waits for the next turn
                self._offer_callback(c, t, out)
            if c.offering is not None and c.offering.every > 0:
                self._start(timer_id, what, c.offering.every, out)
        elif kind == "escalate":
            if c.agent is None:
                self._unwait(c)
                c.skills = dict(c.steps[step].skills)
                self._wait(c)
                self._dirty_contacts.add(c.id)
            else:
                c.skills = dict(c.steps[step].skills)

    # --- call-back offers --------------------------------------------------------------------------

    def _plan_offers(self, t: float, out: list[Action]) -> None:
        """After the assignment round: offer the call-back at once to a newly queued caller who still
        waits with a long estimate, and time the next offer."""
        new, self._new_offerings = self._new_offerings, []
        for cid in new:
            c = self._contacts.get(cid)
            if c is None or c.answered or c.offering is None:
                continue
            offering = c.offering
            timer_id, what = f"queue:{cid}:offer", ("offer", cid, 0)
            if c.agent is None and offering.estimate_over is not None:
                estimate = self._estimate(c, self._position(c, t))
                if estimate is not None and estimate > offering.estimate_over:
                    self._offer_callback(c, t, out)
                    if offering.every > 0:
                        self._start(timer_id, what, offering.every, out)
                    continue
            self._start(timer_id, what, max(0.0, offering.after - (t - c.enqueued)), out)

    def _offer_callback(self, c: _Contact, t: float, out: list[Action]) -> None:
        position = self._position(c, t)
        estimate = self._estimate(c, position)
        out.append(OfferCallback(c.id, position, estimate))
        out.append(
            RecordEvent(
                c.id, "callback_offered", {"queue": c.queue, "position": position, "estimated_wait": estimate}
            )
        )

    # --- agent state -------------------------------------------------------------------------------

    def _set(
        self, agent: _Agent, event: AgentEvent, now: datetime, out: list[Action], reason: str | None = None
    ) -> None:
        new = next_state(agent.id, agent.state, event)
        agent.state = new
        agent.reason = reason if new is S.PAUSED else None
        agent.since = now
        self._index(agent)
        out.append(AgentStateChanged(agent.id, new.value, agent.reason))
        if new is S.AVAILABLE:
            self._dirty_agents.add(agent.id)

    def _unring(self, agent: _Agent, t: float, out: list[Action]) -> None:
        """The agent stops ringing without answering (logging out): the caller keeps their place."""
        c = self._contacts[agent.contact or ""]
        out.append(CancelOffer(c.id, agent.id))
        agent.contact = None
        c.agent = None
        self._back_to_waiting(c, t, out)

    def _drop(self, agent: _Agent) -> None:
        agent.state = S.LOGGED_OUT
        self._index(agent)
        del self._agents[agent.id]

    def _index(self, agent: _Agent) -> None:
        """Keep the free and staffed indexes by skill in step with the agent."""
        free = agent.state is S.AVAILABLE and agent.reachable and not agent.retired
        staffed = agent.state in STAFFED and agent.reachable and not agent.retired
        for skill in agent.indexed:
            self._free_by_skill[skill].discard(agent.id)
            self._staffed_by_skill[skill].discard(agent.id)
        self._free.discard(agent.id)
        self._staffed.discard(agent.id)
        agent.indexed = tuple(agent.skills)
        agent.free, agent.staffed = free, staffed
        if free:
            self._free.add(agent.id)
        if staffed:
            self._staffed.add(agent.id)
        for skill in agent.indexed:
            if free:
                self._free_by_skill.setdefault(skill, set()).add(agent.id)
            else:
                self._free_by_skill.setdefault(skill, set())
            if staffed:
                self._staffed_by_skill.setdefault(skill, set()).add(agent.id)
            else:
                self._staffed_by_skill.setdefault(skill, set())
        if free and agent.state is S.AVAILABLE:
            self._dirty_agents.add(agent.id)

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        return agent

    # --- waiting contacts --------------------------------------------------------------------------

    def _aging(self, queue: str) -> float:
        qc = self._config.queues.get(queue)
        return qc.priority_aging if qc is not None else 0.0

    def _effective(self, c: _Contact, t: float) -> float:
        """Priority plus aging points per minute waited."""
        return c.priority + self._aging(c.queue) * (t - c.enqueued) / 60.0

    def _rank(self, c: _Contact, t: float) -> Rank:
        """Smaller is served first: higher effective priority, then longer waited, then contact id."""
        return (-self._effective(c, t), c.enqueued, c.id)

    def _wait(self, c: _Contact) -> None:
        """Put the contact in its group; its key depends only on when it came, never on now."""
        sig = _signature(c.queue, c.skills)
        group = self._groups.get(sig)
        if group is None:
            group = _Group(sig, c.queue, dict(c.skills))
            self._groups[sig] = group
            if c.skills:
                for skill in c.skills:
                    self._groups_by_skill.setdefault(skill, set()).add(sig)
            else:
                self._open_groups.add(sig)
        c.entry = (-(c.priority - self._aging(c.queue) * c.enqueued / 60.0), c.enqueued, c.id)
        bisect.insort(group.entries, c.entry)
        c.group = group

    def _unwait(self, c: _Contact) -> None:
        group = c.group
        if group is None:
            return
        i = bisect.bisect_left(group.entries, c.entry)
        if i < len(group.entries) and group.entries[i] == c.entry:
            del group.entries[i]
        c.group = None
        if not group.entries:
            del self._groups[group.sig]
            for skill in group.skills:
                self._groups_by_skill[skill].discard(group.sig)
            self._open_groups.discard(group.sig)

    def _back_to_waiting(self, c: _Contact, t: float, out: list[Action]) -> None:
        """After a failed ring: the caller keeps their place, unless their wait ran out meanwhile."""
        if c.max_wait is not None and t - c.enqueued >= c.max_wait:
            self._finish(c, out)
            out.append(Overflow(c.id, "max_wait"))
            return
        self._wait(c)
        self._dirty_contacts.add(c.id)

    def _finish(self, c: _Contact, out: list[Action]) -> None:
        """The contact leaves the queue for good (left, overflowed or its queue removed)."""
        self._unwait(c)
        self._cancel_contact_timers(c, out)
        self._contacts.pop(c.id, None)
        self._dirty_contacts.discard(c.id)

    def _anyone_could(self, skills: dict[str, int], steps: tuple[EscalationStep, ...]) -> bool:
        """Some agent in the configuration could take the caller now or after an escalation step."""
        needs = [skills, *(dict(s.skills) for s in steps)]
        return any(meets(a.skills, n) for n in needs for a in self._agents.values() if not a.retired)

    # --- timers ------------------------------------------------------------------------------------

    def _start(self, timer_id: str, what: tuple[str, str, int], seconds: float, out: list[Action]) -> None:
        self._timers[timer_id] = what
        out.append(StartTimer(timer_id, seconds))

    def _cancel(self, timer_id: str, out: list[Action]) -> None:
        if self._timers.pop(timer_id, None) is not None:
            out.append(CancelTimer(timer_id))

    def _cancel_contact_timers(self, c: _Contact, out: list[Action]) -> None:
        self._cancel(f"queue:{c.id}:max_wait", out)
        self._cancel(f"queue:{c.id}:announce", out)
        self._cancel(f"queue:{c.id}:offer", out)
        for i in range(len(c.steps)):
            self._cancel(f"queue:{c.id}:escalate:{i}", out)

    # --- decisions ---------------------------------------------------------------------------------

    def _assign(self, t: float, now: datetime, out: list[Action]) -> None:
        """Offer calls until no free agent can take any waiting contact.

        Agents who just became free go first: each takes the best contact they can, so a waiting
        contact is never passed over for a lower one. That contact then picks among all free agents
        by its queue's strategy. Contacts that just arrived (or widened) then pick, best first.
        """
        while self._dirty_agents:
            best: _Contact | None = None
            best_rank: Rank | None = None
            for agent_id in sorted(self._dirty_agents):
                agent = self._agents.get(agent_id)
                c = self._best_contact(agent, t) if agent is not None and agent.free else None
                if c is None:
                    self._dirty_agents.discard(agent_id)
                    continue
                rank = self._rank(c, t)
                if best_rank is None or rank < best_rank:
                    best, best_rank = c, rank
            if best is None:
                break
            chosen = self._best_agent(best)
            if chosen is None:  # cannot happen: a dirty agent can take `best`
                break
            self._offer(best, chosen, t, now, out)
        contacts = [self._contacts[cid] for cid in self._dirty_contacts if cid in self._contacts]
        self._dirty_contacts.clear()
        for c in sorted(contacts, key=lambda c: self._rank(c, t)):
            if c.agent is None and not c.answered and c.group is not None:
                chosen = self._best_agent(c)
                if chosen is not None:
                    self._offer(c, chosen, t, now, out)

    def _offer(self, c: _Contact, agent: _Agent, t: float, now: datetime, out: list[Action]) -> None:
        self._unwait(c)
        c.agent = agent.id
        c.offered_at = t
        agent.contact = c.id
        self._pointer[c.queue] = agent.id
        self._dirty_agents.discard(agent.id)
        qc = self._config.queues.get(c.queue)
        out.append(OfferContact(c.id, agent.id, qc.ring_timeout if qc is not None else 15.0))
        out.append(RecordEvent(c.id, "agent_offered", {"queue": c.queue, "agent": agent.id}))
        self._set(agent, E.OFFER, now, out)

    def _best_agent(self, c: _Contact) -> _Agent | None:
        """Among the free agents who have the rarest of the contact's skills, the queue's choice."""
        pool = self._free
        for skill in c.skills:
            candidates = self._free_by_skill.get(skill)
            if not candidates:
                return None
            if len(candidates) < len(pool):
                pool = candidates
        eligible = [a for a in map(self._agents.__getitem__, pool) if meets(a.skills, c.skills)]
        qc = self._config.queues.get(c.queue)
        strategy = qc.strategy if qc is not None else "longest_idle"
        return choose(strategy, eligible, c.skills, self._pointer.get(c.queue))

    def _best_contact(self, agent: _Agent, t: float) -> _Contact | None:
        """The best-ranked waiting contact the agent can take: the heads of the groups in their skills."""
        sigs = set(self._open_groups)
        for skill in agent.skills:
            sigs.update(self._groups_by_skill.get(skill, ()))
        best: _Contact | None = None
        best_rank: Rank | None = None
        for sig in sigs:
            group = self._groups[sig]
            if not meets(agent.skills, group.skills):
                continue
            c = self._contacts[group.entries[0][2]]
            rank = self._rank(c, t)
            if best_rank is None or rank < best_rank:
                best, best_rank = c, rank
        return best

    # --- positions and estimates -------------------------------------------------------------------

    def _competes(self, a: Signature, b: Signature) -> bool:
        """Some agent in the configuration could take callers of both groups."""
        key = (a, b) if a <= b else (b, a)
        known = self._compete.get(key)
        if known is None:
            need = dict(a[1])
            for skill, level in b[1]:
                need[skill] = max(need.get(skill, 0), level)
            known = any(meets(x.skills, need) for x in self._agents.values() if not x.retired)
            self._compete[key] = known
        return known

    def _position(self, c: _Contact, t: float) -> int:
        """1 + the waiting callers ranked before `c` who compete for an agent who could take `c`."""
        sig = _signature(c.queue, c.skills)
        rank = self._rank(c, t)
        ahead = 0
        for group in self._groups.values():
            if group.sig != sig and not self._competes(sig, group.sig):
                continue
            if group.queue == c.queue:
                ahead += bisect.bisect_left(group.entries, c.entry)
            else:
                ahead += bisect.bisect_left(
                    group.entries, rank, key=lambda e: self._rank(self._contacts[e[2]], t)
                )
        return ahead + 1

    def _staffed_meeting(self, skills: dict[str, int]) -> list[_Agent]:
        pool = self._staffed
        for skill in skills:
            candidates = self._staffed_by_skill.get(skill, set())
            if len(candidates) < len(pool):
                pool = candidates
        return [a for a in map(self._agents.__getitem__, pool) if meets(a.skills, skills)]

    def _estimate(self, c: _Contact, position: int) -> float | None:
        default = self._config.estimates.default_handle_time
        agents = self._staffed_meeting(c.skills)
        return wait_estimate(position, (a.aht if a.aht is not None else default for a in agents))

    # --- time --------------------------------------------------------------------------------------

    def _t(self, now: datetime) -> float:
        """Seconds since the first event: small numbers keep the priority keys exact enough."""
        if self._origin is None:
            self._origin = now
        return (now - self._origin).total_seconds()

    def _rebuild(self) -> None:
        """Recompute every index from the agents and contacts (after a reload)."""
        self._groups.clear()
        self._groups_by_skill.clear()
        self._open_groups.clear()
        self._free.clear()
        self._free_by_skill.clear()
        self._staffed.clear()
        self._staffed_by_skill.clear()
        self._compete.clear()
        for agent in self._agents.values():
            agent.indexed = ()
            self._index(agent)
        for c in sorted(self._contacts.values(), key=lambda c: c.id):
            c.group = None
            if c.agent is None and not c.answered:
                self._wait(c)
                self._dirty_contacts.add(c.id)
