"""`ivr.graph.to_dot`: every node drawn by type, every way out labelled, and Graphviz accepts the text."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from ivr.flowset import FlowSet
from ivr.graph import condition_text, to_dot
from ivr.loader import load_flowset, parse_yaml
from ivr.model import Condition, Flow
from support.paths import FLOWS


def flow(text: str) -> Flow:
    """A flow checked by its models only, so a drawing of a broken flow can be tested too."""
    data, _ = parse_yaml(text, "test.yaml")
    return Flow.model_validate(data)


SMALL = """\
flow: small
description: Two departments and an operator.
start: hours
schedules:
  office: {timezone: Europe/Warsaw, hours: {mon-fri: 08:00-16:00}}
nodes:
  hours:
    branch:
      - if: {schedule: office}
        goto: who
    else: closed
  who:
    lookup: {url: "http://crm.example/c?n={caller}", fields: {tier: tier}}
    next: menu
    fallback: menu
  menu:
    menu: main-menu
    options: {1: vip, 2: support, 3: vip, 0: other_flow}
    repeat: "*"
    failure: closed
  vip:
    description: Gold "key account" callers
    branch:
      - if: {var: tier, equals: gold}
        goto: sales
    else: support
  sales:
    queue: {name: sales, skills: {sales: 2}, priority: 10}
    overflow: closed
  support:
    queue: {name: support}
    overflow: closed
  other_flow:
    goto: {flow: shared, node: all_busy}
  closed:
    hangup: goodbye
"""

SHARED = """\
flow: shared
start: all_busy
nodes:
  all_busy:
    hangup: [im-sorry, goodbye]
"""


@pytest.fixture
def small_dot() -> str:
    return to_dot(FlowSet({"small": flow(SMALL), "shared": flow(SHARED)}), "small")


def node_line(dot: str, node_id: str) -> str:
    lines = [line for line in dot.splitlines() if line.strip().startswith(f'"{node_id}" [')]
    assert len(lines) == 1, f"{node_id} is drawn {len(lines)} times"
    return lines[0]


def test_every_node_is_drawn_with_its_id_type_and_first_prompt(small_dot: str) -> None:
    assert small_dot.startswith('digraph "small" {')
    assert 'label="menu\\nmenu (* repeats)\\n\\"main-menu\\""' in node_line(small_dot, "menu")
    assert 'label="closed\\nhangup\\n\\"goodbye\\""' in node_line(small_dot, "closed")
    assert 'label="sales\\nqueue sales\\nsales 2, priority 10"' in node_line(small_dot, "sales")
    assert 'label="who\\nlookup GET\\nhttp://crm.example/c?n={caller}"' in node_line(small_dot, "who")


def test_shapes_follow_the_node_type(small_dot: str) -> None:
    assert 'shape="box"' in node_line(small_dot, "menu")
    assert 'shape="diamond"' in node_line(small_dot, "hours")
    assert 'shape="diamond"' in node_line(small_dot, "vip")
    for ending in ("sales", "support", "closed"):
        assert 'shape="doubleoctagon"' in node_line(small_dot, ending)
    assert 'shape="cylinder"' in node_line(small_dot, "who")


def test_the_start_node_is_marked(small_dot: str) -> None:
    assert '"@start" -> "hours";' in small_dot
    assert "penwidth" in node_line(small_dot, "hours")
    assert "penwidth" not in node_line(small_dot, "menu")


def test_edges_are_labelled_by_key_condition_and_path(small_dot: str) -> None:
    edges = set(re.findall(r'^  ("[^"]+" -> "[^"]+"(?: \[label="[^"]*"\])?);$', small_dot, re.MULTILINE))
    assert small_dot.count(" -> ") == len(edges)
    assert edges == {
        '"@start" -> "hours"',
        '"hours" -> "who" [label="office open"]',
        '"hours" -> "closed" [label="else"]',
        '"who" -> "menu" [label="next, fallback"]',
        '"menu" -> "vip" [label="1, 3"]',
        '"menu" -> "support" [label="2"]',
        '"menu" -> "other_flow" [label="0"]',
        '"menu" -> "closed" [label="timeout/invalid"]',
        '"vip" -> "sales" [label="tier = gold"]',
        '"vip" -> "support" [label="else"]',
        '"sales" -> "closed" [label="overflow"]',
        '"support" -> "closed" [label="overflow"]',
        '"other_flow" -> "@shared/all_busy"',
    }


def test_a_goto_into_another_flow_ends_at_a_node_for_that_flow(small_dot: str) -> None:
    line = node_line(small_dot, "@shared/all_busy")
    assert 'label="flow shared\\nall_busy"' in line
    assert 'shape="folder"' in line


def test_quotes_in_descriptions_and_values_are_escaped(small_dot: str) -> None:
    assert 'tooltip="Gold \\"key account\\" callers"' in node_line(small_dot, "vip")
    text = to_dot(
        FlowSet(
            {
                "q": flow(
                    "flow: q\nstart: s\nnodes:\n  s:\n    say: 'a \"b\" \\ c'\n    next: t\n"
                    "  t:\n    hangup:\n"
                )
            }
        ),
        "q",
    )
    assert 'label="s\\nsay a \\"b\\" \\\\ c as digits"' in node_line(text, "s")


def test_unknown_targets_and_flows_are_drawn_as_such() -> None:
    broken = flow(
        "flow: b\nstart: m\nnodes:\n  m:\n    menu: x\n    options: {1: sails, 2: away}\n"
        "  away:\n    goto: {flow: nowhere}\n"
    )
    text = to_dot(FlowSet({"b": broken}), "b")
    assert '"m" -> "sails" [label="1"];' in text
    assert 'label="sails\\n(unknown node)"' in node_line(text, "sails")
    assert 'label="flow nowhere\\n(unknown flow)"' in node_line(text, "@nowhere/")
    assert 'color="red"' in node_line(text, "sails")


def test_a_goto_to_another_flow_without_a_node_leads_to_its_start() -> None:
    caller = flow("flow: a\nstart: g\nnodes:\n  g:\n    goto: {flow: shared}\n")
    text = to_dot(FlowSet({"a": caller, "shared": flow(SHARED)}), "a")
    assert '"g" -> "@shared/all_busy";' in text


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"schedule": "office"}, "office open"),
        ({"schedule": "office", "open": False}, "office closed"),
        ({"caller": ["+4822*", "anonymous"]}, "caller +4822* | anonymous"),
        ({"dialed": "800"}, "dialed 800"),
        ({"language": "pl"}, "language pl"),
        ({"var": "tier", "not_equals": "gold"}, "tier != gold"),
        ({"var": "tier", "in": ["gold", "silver"]}, "tier in (gold, silver)"),
        ({"var": "contract", "matches": "^10"}, "contract ~ /^10/"),
        ({"var": "contract", "exists": False}, "contract is not set"),
        ({"var": "debt", "gt": 100, "le": 500.5}, "debt > 100 and debt <= 500.5"),
        ({"var": "vip", "equals": True}, "vip = true"),
        (
            {"any": [{"language": "pl"}, {"caller": "+48*"}], "not": {"schedule": "office"}},
            "(language pl or caller +48*) and not (office open)",
        ),
        ({"all": [{"var": "a", "ge": 1}, {"var": "a", "lt": 3}]}, "(a >= 1 and a < 3)"),
    ],
)
def test_condition_text(condition: dict[str, Any], text: str) -> None:
    assert condition_text(Condition.model_validate(condition)) == text


def test_graphviz_draws_the_shipped_flow() -> None:
    tool = shutil.which("dot")
    assert tool, "Graphviz's dot must be installed: apt-get install graphviz"
    flows = load_flowset({str(path): path.read_text(encoding="utf-8") for path in FLOWS.glob("*.yaml")})
    text = to_dot(flows, "hotline")
    for node_id in flows["hotline"].nodes:
        node_line(text, node_id)
    assert 'label="flow shared\\nall_busy"' in node_line(text, "@shared/all_busy")
    done = subprocess.run([tool, "-Tsvg"], input=text.encode(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    svg = done.stdout.decode()
    assert "<svg" in svg
    assert "<title>main_menu</title>" in svg
    assert ">support_route<" in svg
