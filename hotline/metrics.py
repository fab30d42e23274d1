"""The service's figures for Prometheus, at `GET /metrics`.

Nothing is counted twice: at each scrape `ServiceCollector` reads the live state the service keeps
anyway (the calls it runs, the router's queues and agents, the writer's backlog and the events it took,
the flow library's reloads, the call-backs the worker holds), so the figures can never drift from what
`/api/health` and `/api/queues` say. The process's own CPU, memory and file descriptors come from
prometheus-client's process collector.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.router import AgentView, QueueView

#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Every agent state, so a state with no agent in it reads 0 instead of vanishing from the graphs.
AGENT_STATES = ("logged_out", "available", "ringing", "on_call", "wrap_up", "paused")


@dataclass
class Readings:
    """What the collector reads at a scrape; each is None where the service runs without that part."""

    ari_connected: Callable[[], bool] | None = None
    calls: Callable[[], int] | None = None
    writer_backlog: Callable[[], int] | None = None
    events: Callable[[], Counter[str]] | None = None
    flow_reloads: Callable[[], tuple[int, int]] | None = None
    queues: Callable[[], list[QueueView]] | None = None
    agents: Callable[[], list[AgentView]] | None = None
    callbacks_held: Callable[[], int] | None = None
    clock: Callable[[], datetime] | None = None


class ServiceCollector(Collector):
    """The service's figures, read live at each scrape."""

    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        r = self.readings
        yield GaugeMetricFamily("hotline_up", "1 while the service answers", value=1)
        if r.ari_connected is not None:
            yield GaugeMetricFamily(
                "hotline_asterisk_connected",
                "1 while the ARI event socket to Asterisk is up",
                value=int(r.ari_connected()),
            )
        if r.calls is not None:
            yield GaugeMetricFamily("hotline_calls_in_progress", "calls the IVR runs now", value=r.calls())
        if r.writer_backlog is not None:
            yield GaugeMetricFamily(
                "hotline_store_backlog_events",
                "contact events not yet in the database (in memory or in the spool)",
                value=r.writer_backlog(),
            )
        if r.events is not None:
            events = CounterMetricFamily(
                "hotline_contact_events", "contact events recorded, by type", labels=["type"]
            )
            for kind, count in sorted(r.events().items()):
                events.add_metric([kind], count)
            yield events
        if r.flow_reloads is not None:
            reloads, rejected = r.flow_reloads()
            yield CounterMetricFamily(
                "hotline_flow_reloads", "flow sets reloaded after an edit", value=reloads
            )
            yield CounterMetricFamily(
                "hotline_flow_reloads_rejected",
                "flow edits refused for a mistake (the old set stays live)",
                value=rejected,
            )
        if r.queues is not None:
            yield from _queue_metrics(r.queues())
        if r.agents is not None:
            states = Counter(a.state for a in r.agents())
            agents = GaugeMetricFamily("hotline_agents", "agents by state", labels=["state"])
            for state in AGENT_STATES:
                agents.add_metric([state], states.get(state, 0))
            yield agents
        if r.callbacks_held is not None:
            yield GaugeMetricFamily(
                "hotline_callbacks_held",
                "call-backs this service holds now: waiting in a queue as placeholders or being dialed",
                value=r.callbacks_held(),
            )


#: The per-queue gauges: name and help text.
QUEUE_GAUGES = {
    "hotline_queue_callers": "callers waiting in the queue (not being rung)",
    "hotline_queue_callbacks": "call-back placeholders waiting in the queue, keeping callers' places",
    "hotline_queue_ringing": "contacts of the queue whose agent is being rung",
    "hotline_queue_oldest_wait_seconds": "how long the longest-waiting contact has waited",
    "hotline_queue_agents_eligible": "logged-in agents with the queue's skills",
    "hotline_queue_answered": "callers answered over the queue's service-level window",
    "hotline_queue_abandoned": "callers who hung up waiting, over the window",
    "hotline_queue_service_level_percent": "percent answered within the target's seconds over the window "
    "(absent before the first caller)",
}


def _queue_metrics(views: list[QueueView]) -> Iterator[GaugeMetricFamily]:
    gauges = {name: GaugeMetricFamily(name, text, labels=["queue"]) for name, text in QUEUE_GAUGES.items()}

    def put(name: str, view: QueueView, value: float) -> None:
        gauges[f"hotline_queue_{name}"].add_metric([view.name], value)

    for view in views:
        waiting = [w for w in view.waiting if w.agent is None]
        put("callers", view, sum(1 for w in waiting if not w.callback))
        put("callbacks", view, sum(1 for w in waiting if w.callback))
        put("ringing", view, sum(1 for w in view.waiting if w.agent is not None))
        put("oldest_wait_seconds", view, max((w.waited for w in view.waiting), default=0.0))
        put("agents_eligible", view, view.agents_eligible)
        if view.figures is not None:
            put("answered", view, view.figures.answered)
            put("abandoned", view, view.figures.abandoned)
            if view.figures.service_level is not None:
                put("service_level_percent", view, view.figures.service_level)
    yield from gauges.values()


def registry(readings: Readings) -> CollectorRegistry:
    """A registry of the service's figures and the process's own (CPU, memory, open files)."""
    made = CollectorRegistry(auto_describe=False)
    made.register(ServiceCollector(readings))
    ProcessCollector(registry=made)
    PlatformCollector(registry=made)
    return made
