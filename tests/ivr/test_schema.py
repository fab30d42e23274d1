"""The flow format's JSON Schema chooses a node's type by its type key, so a validator names the key that
is wrong, not the whole node; and every shipped flow passes it (docs examples: test_docs_examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ivr.loader import parse_yaml
from ivr.model import NODE_TYPES
from ivr.schema import flow_schema
from support.paths import FLOWS

VALIDATOR = jsonschema.Draft202012Validator(flow_schema())


def errors(node: Any) -> list[tuple[str, str]]:
    """(dotted path, message) of every error for a flow with the one node `a`."""
    flow = {"flow": "x", "start": "a", "nodes": {"a": node}}
    return sorted((".".join(map(str, e.absolute_path)), e.message) for e in VALIDATOR.iter_errors(flow))


def test_the_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(flow_schema())


@pytest.mark.parametrize("path", sorted(FLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flows_validate(path: Path) -> None:
    data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert list(VALIDATOR.iter_errors(data)) == []


def test_a_typo_key_is_named() -> None:
    assert errors({"play": "hi", "next": "a", "timout": 3}) == [
        ("nodes.a", "Additional properties are not allowed ('timout' was unexpected)")
    ]
    assert errors({"queue": {"name": "q", "max_wiat": 3}, "overflow": "a"}) == [
        ("nodes.a.queue", "Additional properties are not allowed ('max_wiat' was unexpected)")
    ]


def test_a_wrong_value_is_named_at_its_key() -> None:
    assert errors({"menu": "m", "options": {"1": "a"}, "timeout": "five"}) == [
        ("nodes.a.timeout", "'five' is not of type 'number'")
    ]
    assert errors({"collect": "pin", "next": "a", "max_length": 99}) == [
        ("nodes.a.max_length", "99 is greater than the maximum of 64")
    ]


def test_booleans_are_only_true_and_false() -> None:
    """The schema agrees with the loader: `yes` is no boolean."""
    assert errors({"play": "hi", "next": "a", "barge_in": "yes"}) == [
        ("nodes.a.barge_in", "'yes' is not of type 'boolean'")
    ]
    assert errors({"play": "hi", "next": "a", "barge_in": True}) == []


def test_a_node_without_a_type_key_or_with_two() -> None:
    assert errors({"next": "a"}) == [("nodes.a", "{'next': 'a'} is not valid under any of the given schemas")]
    found = errors({"play": "hi", "menu": "m", "next": "a", "options": {"1": "a"}})
    assert ("nodes.a", "Additional properties are not allowed ('menu', 'options' were unexpected)") in found
    assert any("is valid under each of" in message for _, message in found)
    assert errors("hello") == [("nodes.a", "'hello' is not of type 'object'")]


def test_every_node_type_is_chosen_by_its_key() -> None:
    node_schema = flow_schema()["properties"]["nodes"]["patternProperties"]
    (clauses,) = [value["then"]["allOf"] for value in node_schema.values()]
    assert [clause["if"]["required"] for clause in clauses[:-1]] == [[key] for key in NODE_TYPES]
