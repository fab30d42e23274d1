"""The figures at /metrics: read from plain values by the collector, and served by the API with its
token."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hotline.metrics import AGENT_STATES, Readings, registry
from routing.router import AgentView, QueueFigures, QueueView, WaitingView
from support.api_helpers import TOKEN, Api

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def agent(agent_id: str, state: str) -> AgentView:
    return AgentView(agent_id, agent_id, state, None, NOW, {"support": 5}, 0, True, None)


def test_the_service_figures_are_read_live_at_each_scrape() -> None:
    backlog = [3]
    support = QueueView(
        "support",
        [
            WaitingView("c1", 0, 40.0, 0.0, 0.0, False, agent="ann"),
            WaitingView("c2", 1, 75.5, 90.0, 0.0, True),
            WaitingView("c3", 2, 12.0, 180.0, 0.0, False),
        ],
        agents_eligible=2,
        figures=QueueFigures(3600.0, 10, 8, 2, 12.5, 66.5),
    )
    figures = registry(
        Readings(
            ari_connected=lambda: True,
            calls=lambda: 4,
            writer_backlog=lambda: backlog[0],
            events=lambda: Counter({"call_started": 4, "queued": 3}),
            flow_reloads=lambda: (2, 1),
            queues=lambda: [support, QueueView("sales", [], 0)],
            agents=lambda: [agent("ann", "ringing"), agent("bob", "available"), agent("cy", "available")],
            callbacks_held=lambda: 1,
        )
    )
    read = samples(generate_latest(figures).decode())
    assert read[("hotline_up", ())] == 1
    assert read[("hotline_asterisk_connected", ())] == 1
    assert read[("hotline_calls_in_progress", ())] == 4
    assert read[("hotline_store_backlog_events", ())] == 3
    assert read[("hotline_contact_events_total", (("type", "call_started"),))] == 4
    assert read[("hotline_contact_events_total", (("type", "queued"),))] == 3
    assert (read[("hotline_flow_reloads_total", ())], read[("hotline_flow_reloads_rejected_total", ())]) == (
        2,
        1,
    )
    queue = (("queue", "support"),)
    assert read[("hotline_queue_callers", queue)] == 1  # c3; c1 is being rung, c2 is a call-back
    assert read[("hotline_queue_callbacks", queue)] == 1
    assert read[("hotline_queue_ringing", queue)] == 1
    assert read[("hotline_queue_oldest_wait_seconds", queue)] == 75.5
    assert read[("hotline_queue_agents_eligible", queue)] == 2
    assert read[("hotline_queue_oldest_wait_seconds", (("queue", "sales"),))] == 0
    assert (read[("hotline_queue_answered", queue)], read[("hotline_queue_abandoned", queue)]) == (10, 2)
    assert read[("hotline_queue_service_level_percent", queue)] == 66.5
    # a queue without figures yet has no service level rather than a made-up 0 or 100
    assert ("hotline_queue_service_level_percent", (("queue", "sales"),)) not in read
    states = {state: read[("hotline_agents", (("state", state),))] for state in AGENT_STATES}
    assert states == {
        "logged_out": 0,
        "available": 2,
        "ringing": 1,
        "on_call": 0,
        "wrap_up": 0,
        "paused": 0,
    }
    assert read[("hotline_callbacks_held", ())] == 1
    assert read[("process_resident_memory_bytes", ())] > 0

    backlog[0] = 0  # nothing is cached between scrapes
    assert samples(generate_latest(figures).decode())[("hotline_store_backlog_events", ())] == 0


def test_parts_the_service_runs_without_are_left_out() -> None:
    read = samples(generate_latest(registry(Readings())).decode())
    assert read[("hotline_up", ())] == 1
    assert not [name for name, _ in read if name.startswith("hotline_") and name != "hotline_up"]


async def test_the_api_serves_the_figures_to_a_token_holder_only(api: Api) -> None:
    async with api.client.get("/metrics") as response:
        assert response.status == 401
    async with api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        read = samples(await response.text())
    assert read[("hotline_up", ())] == 1 and read[("process_cpu_seconds_total", ())] >= 0
    status, document = await api.get("/api/openapi.json")
    assert (
        status == 200 and "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    )
