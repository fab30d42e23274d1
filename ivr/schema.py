"""The flow format as JSON Schema, for editors that check and complete YAML as it is typed (`hotline schema`).

Pydantic writes a node as `oneOf` all node types, so for one typo a validator can only say that a node
is "not valid under any of the given schemas". Here a node's type is chosen by its type key instead, the
way the loader chooses it: one `if: {required: [menu]}, then: {$ref: Menu}` per node type of the
registry, and one clause for a node with no type key (or two). A validator then names the bad key
itself: `'timout' was unexpected`, `'five' is not of type 'number'`.
"""

from __future__ import annotations

from typing import Any

from ivr.model import NODE_TYPES, Flow
from ivr.nodes import REGISTRY

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def flow_schema() -> dict[str, Any]:
    """The JSON Schema of one flow file."""
    document = Flow.model_json_schema(by_alias=True)
    nodes = document["properties"]["nodes"]
    # a node is the value of a node id: under the pattern of node ids (`patternProperties`)
    found = [
        (place, key)
        for place in (nodes, nodes.get("patternProperties", {}))
        for key, value in place.items()
        if isinstance(value, dict) and "oneOf" in value
    ]
    assert len(found) == 1, "the schema of nodes has changed shape"
    place, key = found[0]
    place[key] = _node_schema(place[key])
    return {"$schema": SCHEMA_DIALECT, "title": "hotline flow", **document}


def _node_schema(generated: dict[str, Any]) -> dict[str, Any]:
    """A node chosen by its type key, from pydantic's `oneOf` of the node models (in registry order)."""
    refs = [member["$ref"] for member in generated["oneOf"]]
    names = [ref.rsplit("/", 1)[-1] for ref in refs]
    assert names == [unit.__name__ for unit in REGISTRY], f"the node schemas are {names}"
    clauses = [
        {"if": {"required": [unit.TYPE_KEY]}, "then": {"$ref": ref}}
        for unit, ref in zip(REGISTRY, refs, strict=True)
    ]
    one_type_key = {
        "description": "A node needs exactly one type key: " + ", ".join(NODE_TYPES) + ".",
        "oneOf": [{"required": [key]} for key in NODE_TYPES],
    }
    return {
        "type": "object",
        "description": "A node: exactly one type key ("
        + ", ".join(NODE_TYPES)
        + ") and the keys of its type.",
        # `required` holds for anything but a mapping: the clauses are for mappings only
        "if": {"type": "object"},
        "then": {"allOf": [*clauses, one_type_key]},
    }
