"""docs/routing.md stays true: its configuration example validates and its state table is the code's."""

from __future__ import annotations

import re

from ruamel.yaml import YAML

from routing.agents import TRANSITIONS, AgentEvent
from routing.model import RoutingConfig
from support.paths import DOCS

TEXT = (DOCS / "routing.md").read_text(encoding="utf-8")


def test_the_configuration_example_validates() -> None:
    block = re.search(r"```yaml\n(.*?)```", TEXT, re.S)
    assert block is not None
    config = RoutingConfig.model_validate(YAML(typ="safe").load(block.group(1)))
    assert config.queues["support"].escalation[1].after == 180
    assert config.agents["bob"].wrapup == 10


def test_the_state_table_lists_every_transition() -> None:
    rows = re.findall(r"^\| (\w+) \| ([^|]+?) \| (\w+)", TEXT, re.M)
    documented = {(state, event.split(" (")[0], new) for state, event, new in rows if state != "state"}
    actual = {(s.value, e.value, n.value) for s, row in TRANSITIONS.items() for e, n in row.items()}
    documented = {(s, e, n) for s, e, n in documented if e in {x.value for x in AgentEvent}}
    assert documented == actual
