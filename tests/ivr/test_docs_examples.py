"""docs/flows.md stays true to the flow language: every YAML example validates (against the models and
the JSON Schema), every node type of the registry has its section showing its own example, every
condition has an example, every key table matches the models' keys and defaults, and the lint example
prints what `hotline lint` prints."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args

import jsonschema
import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ivr.actions import EVENT_TYPES
from ivr.errors import FlowErrors
from ivr.loader import parse_flow
from ivr.model import NODE_TYPES, Branch, Condition, Flow, NodeBase, Schedule, Strict, node_type
from ivr.nodes import REGISTRY
from ivr.schema import flow_schema

#: beside the test, not from support.paths: the node-type test runs a copy of this file in a scratch
#: repository whose docs/flows.md has one more node type
DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
TEXT = DOC.read_text(encoding="utf-8")

STR_TAG = "tag:yaml.org,2002:str"


def load_yaml12(text: str) -> Any:
    """YAML 1.2 as flow files are read: keys stay strings as written, dates stay strings."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    root = yaml.compose(text)

    def as_written(node: Any) -> None:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    key.tag = STR_TAG
                as_written(value)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                as_written(item)
        elif isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
            node.tag = STR_TAG

    as_written(root)
    return yaml.constructor.construct_document(root)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    mark: str | None  # the text of an HTML comment right above the block

    @property
    def id(self) -> str:
        return f"line {self.line}"


_BLOCK = re.compile(r"(?:<!--(?P<mark>[^>]*)-->\n)?^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.S | re.M)


def blocks() -> list[Block]:
    return [
        Block(
            TEXT.count("\n", 0, m.start("body")),
            m.group("lang"),
            m.group("body"),
            m.group("mark").strip() if m.group("mark") else None,
        )
        for m in _BLOCK.finditer(TEXT)
    ]


def _is_lint_example(block: Block) -> bool:
    return block.mark is not None and block.mark.startswith("lint:")


#: Every YAML example but the broken flow shown with its lint output.
YAML_BLOCKS = [b for b in blocks() if b.lang == "yaml" and not _is_lint_example(b)]
FLOW_KEYS = {field.alias or name for name, field in Flow.model_fields.items()}


def flow_data(block: Block) -> dict[str, Any]:
    """A whole flow as it stands; a fragment (top-level keys of a flow, such as `nodes:` or
    `schedules:`) inside a minimal flow around it."""
    data = load_yaml12(block.body)
    assert isinstance(data, dict), f"{block.id}: a flow example is a YAML map"
    if "flow" not in data:
        unknown = set(data) - FLOW_KEYS
        assert not unknown, f"{block.id}: {sorted(unknown)} are not top-level keys of a flow"
        nodes = data.get("nodes") or {"end": {"hangup": None}}
        data = {"flow": "example", **data, "start": next(iter(nodes)), "nodes": nodes}
    return data


def as_flow(block: Block) -> Flow:
    return Flow.model_validate(flow_data(block))


def test_the_doc_has_yaml_examples() -> None:
    assert len(YAML_BLOCKS) >= 15
    assert sum("flow" in load_yaml12(b.body) for b in YAML_BLOCKS) >= 3


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.id)
def test_every_yaml_example_validates(block: Block) -> None:
    as_flow(block)
    jsonschema.validate(flow_data(block), flow_schema(), jsonschema.Draft202012Validator)


WHOLE_FLOWS = [b for b in YAML_BLOCKS if "flow" in load_yaml12(b.body)]


@pytest.mark.parametrize("block", WHOLE_FLOWS, ids=lambda b: b.id)
def test_whole_flow_examples_pass_lint(block: Block) -> None:
    """A whole flow in the docs is one an admin can copy: the loader's graph checks pass too."""
    parsed = parse_flow(block.body, "example.yaml")
    assert parsed.flow == as_flow(block)


def test_the_lint_example_prints_what_lint_prints() -> None:
    found = blocks()
    marked = [i for i, b in enumerate(found) if _is_lint_example(b)]
    assert len(marked) == 1
    example, output = found[marked[0]], found[marked[0] + 1]
    assert output.lang == "text"
    command, *lines, summary = output.body.splitlines()
    filename = command.removeprefix("$ hotline lint ")
    with pytest.raises(FlowErrors) as raised:
        parse_flow(example.body, filename)
    assert [str(e) for e in raised.value.errors] == lines
    assert summary == f"{len(lines)} errors; nothing was loaded."


def test_every_node_type_has_a_section_and_an_example() -> None:
    shown = {node_type(node) for block in YAML_BLOCKS for node in as_flow(block).nodes.values()}
    assert shown == set(NODE_TYPES)
    sections = re.findall(r"^### (\w+)$", TEXT, re.M)
    assert sections == list(NODE_TYPES)


def section(type_key: str) -> str:
    """The text of a node type's section, `### type_key` up to the next section of its level or above."""
    return TEXT.split(f"\n### {type_key}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


@pytest.mark.parametrize("unit", REGISTRY, ids=lambda unit: unit.TYPE_KEY)
def test_each_node_types_section_shows_its_example(unit: type[NodeBase]) -> None:
    """A node type's module and its docs section show the same example, so neither goes stale."""
    assert unit.EXAMPLE, f"{unit.__name__} has no EXAMPLE"
    assert f"```yaml\n{unit.EXAMPLE}```" in section(unit.TYPE_KEY)
    nodes = Flow.model_validate(
        {"flow": "example", "start": "x", "nodes": load_yaml12(unit.EXAMPLE)["nodes"]}
    )
    assert {node_type(node) for node in nodes.nodes.values()} == {unit.TYPE_KEY}


def _condition_keys(cond: Condition) -> set[str]:
    keys = {
        (field.alias or name)
        for name, field in Condition.model_fields.items()
        if name in cond.model_fields_set
    }
    for part in (*(cond.any or ()), *(cond.all or ()), *((cond.not_,) if cond.not_ else ())):
        keys |= _condition_keys(part)
    return keys


def test_every_condition_kind_has_an_example() -> None:
    used: set[str] = set()
    for block in YAML_BLOCKS:
        for node in as_flow(block).nodes.values():
            if isinstance(node, Branch):
                for case in node.branch:
                    used |= _condition_keys(case.if_)
    assert used == {field.alias or name for name, field in Condition.model_fields.items()}


def test_the_events_table_lists_every_contact_event() -> None:
    section = TEXT.split("## Contact events", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(\w+)`", section, re.M)
    assert listed == list(EVENT_TYPES)


# --- key tables -----------------------------------------------------------------------------------


def _parts(model: type[BaseModel]) -> Iterator[type[Strict]]:
    """The models `model`'s keys hold (a queue's `queue:`, its `callback:` ...) that have key tables of
    their own, and theirs."""
    todo: list[Any] = [info.annotation for info in model.model_fields.values()]
    while todo:
        tp = todo.pop(0)
        if isinstance(tp, type) and issubclass(tp, Strict):
            if tp.KEY_TABLE:
                yield tp
                todo += [info.annotation for info in tp.model_fields.values()]
        elif isinstance(tp, types.GenericAlias | types.UnionType) or getattr(tp, "__origin__", None) in (
            Union,
        ):
            todo += list(get_args(tp))
        elif hasattr(tp, "__metadata__"):  # Annotated
            todo.append(tp.__origin__)


#: Models whose keys a table documents: the flow, schedules, each node type of the registry and its
#: parts. Node tables leave out `description`, which every node has.
DOCUMENTED: list[type[BaseModel]] = list(
    dict.fromkeys([Flow, Schedule, *(part for unit in REGISTRY for part in (unit, *_parts(unit)))])
)


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    if issubclass(model, NodeBase):
        fields.pop("description")
    return fields


@dataclass(frozen=True)
class Row:
    key: str
    default: str


def key_tables() -> list[list[Row]]:
    """Tables headed `key | type | default | meaning` (or `queue key | ...`)."""
    tables: list[list[Row]] = []
    for match in re.finditer(r"^\|([^\n]*)\|\n\|[-| ]+\|\n((?:\|[^\n]*\|\n)+)", TEXT, re.M):
        header = [cell.strip() for cell in match.group(1).split("|")]
        if len(header) != 4 or not header[0].endswith("key") or header[1:] != ["type", "default", "meaning"]:
            continue
        rows = []
        for line in match.group(2).splitlines():
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            key = re.fullmatch(r"`(\w+)`", cells[0])
            assert key, f"a key table row starts with a key in backticks: {line}"
            rows.append(Row(key.group(1), cells[2]))
        tables.append(rows)
    return tables


def _model_of(rows: list[Row]) -> type[BaseModel]:
    keys = {row.key for row in rows}
    matching = [model for model in DOCUMENTED if set(_keys(model)) == keys]
    assert len(matching) == 1, f"no model has exactly the keys {sorted(keys)}"
    return matching[0]


def test_key_tables_document_every_model_with_its_keys() -> None:
    documented = [_model_of(rows) for rows in key_tables()]
    assert sorted(m.__name__ for m in documented) == sorted(m.__name__ for m in DOCUMENTED)


def _documents(cell: str, default: Any) -> bool:
    """Does the default column `cell` state `default`?"""
    literals: list[str] = re.findall(r"`([^`]*)`", cell)
    if default is None:
        return not literals or cell.startswith("none")
    if isinstance(default, tuple):
        if len(literals) == 1 and literals[0].startswith("["):
            literals = [part.strip() for part in literals[0].strip("[]").split(",") if part.strip()]
        return literals == list(default)
    if not literals:
        return False
    shown = literals[0]
    if isinstance(default, bool):
        return shown == ("true" if default else "false")
    if isinstance(default, int | float):
        return float(shown) == default
    if isinstance(default, dict):
        return shown == "{}" and default == {}
    if isinstance(default, str):
        return shown.strip('"') == default
    return False


@pytest.mark.parametrize("rows", key_tables(), ids=lambda rows: rows[0].key)
def test_key_tables_give_the_models_defaults(rows: list[Row]) -> None:
    fields = _keys(_model_of(rows))
    for row in rows:
        field = fields[row.key]
        if field.is_required():
            assert row.default.startswith("required"), f"{row.key} is required"
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            assert not re.search(r"`", row.default), f"{row.key}: describe the default in words"
            continue
        assert _documents(row.default, default), f"{row.key}: the default is {default!r}, not {row.default!r}"
