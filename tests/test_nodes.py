"""Node types as units: the registry is the one list everything reads, and each unit names real keys."""

from __future__ import annotations

import types
from typing import Any, ClassVar, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from hotline.cli_service import INPUT_NODES
from ivr.checks import ENDINGS, NON_WAITING
from ivr.loader import parse_yaml
from ivr.model import NODE_TYPES, Flow, NodeBase, node_type
from ivr.nodes import REGISTRY, Scope
from ivr.nodes import _checked as checked_registry


def test_the_registry_is_the_list_of_node_types() -> None:
    assert tuple(unit.TYPE_KEY for unit in REGISTRY) == NODE_TYPES
    assert {"queue", "callback", "transfer", "voicemail", "hangup"} == ENDINGS
    assert {"branch", "set", "goto"} == NON_WAITING
    assert frozenset({"menu", "collect", "language", "callback"}) == INPUT_NODES


def test_a_node_type_must_name_one_of_its_own_keys_once() -> None:
    class Nameless(NodeBase):
        TYPE_KEY: ClassVar[str] = "chime"
        next: str

        def enter(self, call: Any) -> None:
            raise NotImplementedError

    with pytest.raises(TypeError, match="TYPE_KEY is 'chime', not one of its keys"):
        checked_registry((Nameless,))
    with pytest.raises(TypeError, match="two node types have the type key 'play'"):
        checked_registry((REGISTRY[0], REGISTRY[0]))


@pytest.mark.parametrize("unit", REGISTRY, ids=lambda unit: unit.TYPE_KEY)
def test_each_unit_names_real_keys(unit: type[NodeBase]) -> None:
    """The key paths a unit gives for its exits are written in its example; those of its prompts and own
    checks are keys of its model."""
    data, positions = parse_yaml(unit.EXAMPLE, "example.yaml")
    flow = Flow.model_validate(
        {"flow": "example", "start": next(iter(data["nodes"])), "nodes": data["nodes"]}
    )
    for node_id, node in flow.nodes.items():
        assert node_type(node) == unit.TYPE_KEY
        for exit in node.exits():
            assert ("nodes", node_id, *exit.path) in positions.keys, exit
        for path, _ in node.prompts():
            assert _is_key_path(unit, path), path
        assert list(node.problems(Scope(("en", "pl"), ("office",)))) == []
        assert isinstance(node.waits(), bool)
        assert isinstance(node.detail()[0], str)


def _is_key_path(model: type[BaseModel], path: tuple[str | int, ...]) -> bool:
    tp: Any = model
    for part in path:
        models = [m for m in _inner(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
        fields = {info.alias or name: info for m in models for name, info in m.model_fields.items()}
        if part not in fields:
            return False
        tp = fields[str(part)].annotation
    return True


def _inner(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _inner(arg)]
    if hasattr(tp, "__metadata__"):
        return _inner(tp.__origin__)
    return [tp]
