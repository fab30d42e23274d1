"""The routing file: the shipped example fits the shipped flow, and every mistake is reported at once
with its place, like the flows and the service config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.agents.routing_file import (
    LoadedRouting,
    RoutingConfigError,
    load_routing_config,
    parse_routing_config,
    read_routing_config,
)
from hotline.config import ConfigError
from hotline.flowfiles import flows_in, load_flow_files
from ivr.model import Callback, Queue
from routing.model import QueueConfig
from support.paths import ROOT, ROUTING_EXAMPLE


def errors_of(text: str) -> list[str]:
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_config(text, "routing.yaml")
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_the_example_loads_without_warnings_and_shows_every_queue_key() -> None:
    loaded = read_routing_config(ROUTING_EXAMPLE)
    assert loaded.warnings == ()
    config = loaded.config
    assert config == load_routing_config(str(ROUTING_EXAMPLE))
    assert {agent_id: agent.endpoint for agent_id, agent in config.agents.items()} == {
        f"agent{n}": f"PJSIP/agent{n}" for n in range(1, 5)
    }
    assert list(config.queues) == ["customer_service", "sales", "support", "dispatch"]
    text = ROUTING_EXAMPLE.read_text(encoding="utf-8")
    missing = [key for key in QueueConfig.model_fields if f"    {key}:" not in text]
    assert missing == []


def test_the_example_staffs_every_queue_node_of_the_shipped_flows() -> None:
    """Each queue node (and call-back) of flows/ names a queue of the example, and some agent has
    every skill it asks for at the level it asks: no caller of the shipped flow waits for nobody."""
    config = load_routing_config(ROUTING_EXAMPLE)
    flows = load_flow_files(flows_in(ROOT / "flows"))
    asked: list[tuple[str, str, dict[str, int]]] = []
    for flow_name in flows:
        for node_id, node in flows[flow_name].nodes.items():
            if isinstance(node, Queue):
                spec = node.queue
                asked.append((node_id, spec.name, dict(spec.skills or config.queues[spec.name].skills)))
            elif isinstance(node, Callback):
                offer = node.callback
                asked.append((node_id, offer.queue, dict(offer.skills)))
    assert len(asked) >= 10
    unstaffed = [
        (node_id, queue, skills)
        for node_id, queue, skills in asked
        if queue not in config.queues
        or not any(
            all(agent.skills.get(skill, 0) >= level for skill, level in skills.items())
            for agent in config.agents.values()
        )
    ]
    assert unstaffed == []
    assert {queue for _, queue, _ in asked} == set(config.queues)


def test_every_mistake_is_reported_with_its_place() -> None:
    text = """\
agents:
  ann: {name: Ann, endpoint: PJSIP/ann, skills: {support: 12}}
  bob:
    name: Bob
    endpoint: pjsip ann
    skils: {}
  cid: {endpoint: PJSIP/ann, wrapup: -1}
  "bad name": {name: x, endpoint: PJSIP/x}
queues:
  support:
    skills: {support: 5}
    strategy: longest_idel
    priorty: 3
  sales:
    max_wait: 0
    escalation:
      - {after: 60}
      - {after: 30}
estimates: 4
"""
    assert errors_of(text) == [
        "routing.yaml:2:59: agents.ann.skills.support: must be at most 10, got 12; write a whole number from 1 "
        "to 10",
        "routing.yaml:5:15: agents.bob.endpoint: 'pjsip ann' is not an endpoint; write it as TECHNOLOGY/NAME, "
        "e.g. PJSIP/agent1",
        "routing.yaml:6:5: agents.bob.skils: unknown key 'skils'; did you mean 'skills'?",
        "routing.yaml:7:3: agents.cid.name: required key 'name' is missing; add 'name:' with text",
        "routing.yaml:7:19: agents.cid.endpoint: PJSIP/ann is also the phone of agent 'ann'; give each "
        "agent a phone of their own (a feature code dialed from a phone must name one agent)",
        "routing.yaml:7:38: agents.cid.wrapup: must be at least 0, got -1; write a number from 0 to 3600",
        "routing.yaml:8:3: agents.bad name: 'bad name' is not a name; use letters, digits, _ and -",
        "routing.yaml:12:15: queues.support.strategy: expected one of 'longest_idle', 'best_skill', "
        "'fewest_calls', 'round_robin', got 'longest_idel'; did you mean 'longest_idle'?",
        "routing.yaml:13:5: queues.support.priorty: unknown key 'priorty'; did you mean 'priority'?",
        "routing.yaml:15:15: queues.sales.max_wait: must be more than 0, got 0; write a number more than 0 and "
        "at most 86400",
        "routing.yaml:19:12: estimates: expected a mapping, got 4; write key: value entries under it",
    ]


def test_escalation_steps_in_the_wrong_order() -> None:
    text = "queues:\n  sales:\n    escalation:\n      - {after: 60}\n      - {after: 30}\n"
    assert errors_of(text) == [
        "routing.yaml:2:3: queues.sales: escalation steps must come in order of `after`: 30 s follows 60 s; "
        "sort the steps by their waiting time"
    ]


def test_a_skill_nobody_has_is_a_warning_not_an_error() -> None:
    text = """\
agents:
  ann: {name: Ann, endpoint: PJSIP/ann, skills: {polsih: 5, support: 3, tv: 2}}
  bob: {name: Bob, endpoint: PJSIP/bob, skills: {support: 7}}
queues:
  support:
    skills: {support: 1, polish: 3}
    escalation:
      - {after: 60, skills: {french: 1}}
"""
    loaded = parse_routing_config(text, "routing.yaml")
    assert isinstance(loaded, LoadedRouting)
    assert loaded.config.queues["support"].skills == {"support": 1, "polish": 3}
    assert loaded.warnings == (
        "routing.yaml:2:50: agents.ann.skills.polsih: warning: no queue asks for skill 'polsih'"
        "; did you mean 'polish'?",
        "routing.yaml:6:26: queues.support.skills.polish: warning: no agent has skill 'polish', so its "
        "callers wait for nobody until an agent gets it; did you mean 'polsih'?",
        "routing.yaml:8:30: queues.support.escalation.0.skills.french: warning: no agent has skill "
        "'french', so its callers wait for nobody until an agent gets it; give an agent the skill or drop "
        "it here",
    )


def test_names_are_read_as_written_under_yaml_1_2() -> None:
    text = "agents:\n  '007': {name: Bond, endpoint: SIP/007, skills: {no: 3, on: 2}}\nqueues:\n  no: {skills: {no: 1}}\n"
    loaded = parse_routing_config(text, "routing.yaml")
    assert loaded.config.agents["007"].skills == {"no": 3, "on": 2}
    assert list(loaded.config.queues) == ["no"]
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "routing.yaml:1:1: the file is empty; a routing file needs agents: and queues:"),
        ("# nothing yet\n", "routing.yaml:1:1: the file is empty; a routing file needs agents: and queues:"),
        (
            "- ann\n",
            "routing.yaml:1:1: the file holds a list; a routing file is a mapping of keys: agents:, queues:",
        ),
        (
            "agents: {}\nagents: {}\n",
            "routing.yaml:2:1: agents: duplicate key 'agents' (first at line 1); keep one of them",
        ),
        (
            "agents: [\n",
            "routing.yaml:1:9: the '[' here is not closed; close it with ']', or quote a value holding '['",
        ),
        (
            "agents: 5\n",
            "routing.yaml:1:9: agents: expected a mapping, got 5; write key: value entries under it",
        ),
    ],
)
def test_a_file_that_is_not_a_routing_file(text: str, expected: str) -> None:
    assert errors_of(text) == [expected]


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError) as caught:
        read_routing_config(tmp_path / "routing.yaml")
    assert caught.value.errors == [
        f"{tmp_path / 'routing.yaml'}: no such file; copy routing.example.yaml there, or fix routing.file "
        "in the config"
    ]
    (tmp_path / "latin1.yaml").write_bytes(b"agents: {}\n# Wojcik \xf3\n")
    with pytest.raises(RoutingConfigError) as caught:
        read_routing_config(tmp_path / "latin1.yaml")
    [error] = caught.value.errors
    assert error.startswith(f"{tmp_path / 'latin1.yaml'}: cannot read the routing file: 'utf-8' codec")


def test_an_empty_routing_is_valid() -> None:
    loaded = parse_routing_config("agents: {}\nqueues: {}\n", "routing.yaml")
    assert (loaded.config.agents, loaded.config.queues, loaded.warnings) == ({}, {}, ())
