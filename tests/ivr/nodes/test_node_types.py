"""Node types as units: the registry is the one list everything reads, each unit names real keys, and a
new node type needs its module, its registry line and its docs section, nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, ClassVar, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from hotline.cli.service import INPUT_NODES
from ivr.checks import ENDINGS, NON_WAITING
from ivr.loader import parse_yaml
from ivr.model import NODE_TYPES, Flow, NodeBase, node_type
from ivr.nodes import REGISTRY, Scope
from ivr.nodes import _checked as checked_registry
from support.paths import ROOT


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


# --- adding a node type: three places ---------------------------------------------------------------

TOY = '''\
"""`chime`: ring a chime; the caller presses a key to go on, or waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import Field

from ivr.fields import Key, NodeId, Prompts, Seconds
from ivr.nodes.base import Call, Exit, Finding, NodeBase, Path, Scope, first_prompt


class Chime(NodeBase):
    """Ring a chime `times` times; `key` goes on to `next`, silence to `later`."""

    TYPE_KEY: ClassVar[str] = "chime"
    TAKES_KEYS: ClassVar[bool] = True
    SHAPE: ClassVar[str] = "star"
    EXAMPLE: ClassVar[str] = """\\
nodes:
  doorbell:
    chime: beep
    times: 2
    key: 5
    next: welcome
    later: goodbye
"""

    chime: Prompts
    times: Annotated[int, Field(ge=1, le=5)] = 1
    key: Key = "1"
    timeout: Seconds = 3.0
    next: NodeId
    later: NodeId

    def enter(self, call: Call) -> None:
        def pressed(key: str) -> None:
            call.cancel_timer()
            if key == self.key:
                call.record("option_chosen", node=call.node_id, digits=key, target=self.next)
                call.go(self.next)
            else:
                call.start_timer(self.timeout, lambda: call.go(self.later))

        call.play(
            call.media(self.chime * self.times),
            barge_in=True,
            then=lambda: call.await_keys(pressed, self.timeout, lambda: call.go(self.later)),
        )

    def exits(self) -> Iterator[Exit]:
        yield Exit(("next",), self.next, f"key {self.key}")
        yield Exit(("later",), self.later, "timeout")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        yield ("chime",), self.chime

    def detail(self) -> tuple[str, str | None]:
        return f"x{self.times}", first_prompt(self.chime)

    def problems(self, scope: Scope) -> Iterator[Finding]:
        if self.next == self.later:
            yield Finding(("later",), f"later is '{self.next}' like next; name another node or drop the chime")
'''

TOY_DOCS = """\
### chime

Ring a chime; the caller presses a key to go on, or waits.

| key       | type    | default  | meaning |
|-----------|---------|----------|---------|
| `chime`   | prompts | required | The chime. |
| `times`   | 1-5     | `1`      | How often it rings. |
| `key`     | one key | `"1"`    | The key that goes on to `next`. |
| `timeout` | seconds | `3`      | How long to wait for it. |
| `next`    | node id | required | Where the key leads. |
| `later`   | node id | required | Where the caller goes without it. |

```yaml
{example}```

Records: `node_entered`; `option_chosen`.

"""

#: What the toy node type must do once added: lint, schema, graph, simulate, the engine, `hotline call`.
TOY_CHECKS = '''\
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
from click.testing import CliRunner

import ivr
from hotline.cli import main
from hotline.cli.service import INPUT_NODES
from ivr import actions, events
from ivr.graph import to_dot
from ivr.loader import load_flowset, parse_yaml
from ivr.model import NODE_TYPES
from ivr.session import Session
from ivr.simulate import scripted, simulate

assert Path(ivr.__file__).resolve().is_relative_to(Path.cwd().resolve()), ivr.__file__
assert NODE_TYPES[-1] == "chime" and "chime" in INPUT_NODES

FLOW = """\\
flow: toy
start: doorbell
nodes:
  doorbell:
    chime: beep
    times: 2
    key: 5
    next: welcome
    later: goodbye
  welcome:
    play: hello-world
    next: goodbye
  goodbye:
    hangup: goodbye
"""
folder = Path("flows")
folder.mkdir()
(folder / "toy.yaml").write_text(FLOW)
cli = CliRunner()

# lint: a good flow, and the loader's and the checks' messages for a bad one
done = cli.invoke(main, ["lint", "flows/toy.yaml"])
assert done.exit_code == 0, done.output
(folder / "toy.yaml").write_text(FLOW.replace("times:", "tims:").replace("later: goodbye", "later: welcom"))
done = cli.invoke(main, ["lint", "flows/toy.yaml"])
assert done.exit_code == 1
assert "nodes.doorbell.tims: unknown key 'tims'; did you mean 'times'?" in done.output, done.output
(folder / "toy.yaml").write_text(FLOW.replace("later: goodbye", "later: welcom"))
done = cli.invoke(main, ["lint", "flows/toy.yaml"])
assert "nodes.doorbell.later: unknown node 'welcom'; did you mean 'welcome'?" in done.output, done.output
(folder / "toy.yaml").write_text(FLOW.replace("later: goodbye", "later: welcome"))
done = cli.invoke(main, ["lint", "flows/toy.yaml"])
assert "nodes.doorbell.later: later is 'welcome' like next" in done.output, done.output
(folder / "toy.yaml").write_text(FLOW)

# the JSON Schema: the toy's keys, and a typo named
done = cli.invoke(main, ["schema"])
schema = json.loads(done.output)
data, _ = parse_yaml(FLOW, "toy.yaml")
jsonschema.validate(data, schema)
data["nodes"]["doorbell"]["tims"] = 2
(error,) = jsonschema.Draft202012Validator(schema).iter_errors(data)
assert "'tims' was unexpected" in error.message, error.message

# the drawing
flows = load_flowset({"toy.yaml": FLOW})
dot = to_dot(flows, "toy")
assert '"doorbell" [label="doorbell\\\\nchime x2\\\\n\\\\"beep\\\\"", shape="star"' in dot, dot
assert '"doorbell" -> "welcome" [label="key 5"];' in dot and '"doorbell" -> "goodbye" [label="timeout"];' in dot

# simulate: a caller who presses 5, and one who waits
start = datetime(2026, 1, 5, 10, tzinfo=UTC)
keys, _ = scripted(["5"])
journey = simulate(flows, "toy", keys=keys, start=start)
assert [s.text for s in journey.steps if s.kind == "action"][0] == "hear sound:beep sound:beep", journey.steps
assert journey.outcome == "hangup" and any(s.text.startswith("option_chosen") for s in journey.steps)
keys, _ = scripted(["wait"])
journey = simulate(flows, "toy", keys=keys, start=start)
assert journey.outcome == "hangup" and not any(s.text.startswith("option_chosen") for s in journey.steps)

# the engine, event by event
session = Session(flows, "toy")
out = session.handle(events.CallStarted(caller="+48221234567", dialed="100"), start)
assert actions.RecordEvent("node_entered", {"node": "doorbell", "flow": "toy", "type": "chime"}) in out
(play,) = [a for a in out if isinstance(a, actions.Play)]
session.handle(events.PlaybackFinished(play.playback_id), start)
assert session.waiting_for == "input"
session.handle(events.Digit("5"), start)
assert session.node == "welcome"
print("ok")
'''


def test_a_new_node_type_is_its_module_its_registry_line_and_its_docs_section(tmp_path: Path) -> None:
    """Copy the flow language, add a node type in three places only, and lint, schema, graph, simulate,
    the engine, `hotline call` and the docs test all take it."""
    shutil.copytree(ROOT / "ivr", tmp_path / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests" / "ivr").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "ivr" / "test_docs_examples.py", tmp_path / "tests" / "ivr")

    # 1. its module
    (tmp_path / "ivr" / "nodes" / "chime.py").write_text(TOY, encoding="utf-8")
    # 2. its registry line
    registry = tmp_path / "ivr" / "nodes" / "__init__.py"
    text = registry.read_text(encoding="utf-8")
    text = text.replace(
        "from ivr.nodes.callback import", "from ivr.nodes.chime import Chime\nfrom ivr.nodes.callback import"
    )
    assert "        Hangup,\n    )" in text
    registry.write_text(
        text.replace("        Hangup,\n    )", "        Hangup,\n        Chime,\n    )"), encoding="utf-8"
    )
    # 3. its docs section, after the last node type's
    docs = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    example = textwrap.dedent(TOY.split('EXAMPLE: ClassVar[str] = """\\\n', 1)[1].split('"""', 1)[0])
    assert "\n## Contact events" in docs
    docs = docs.replace(
        "\n## Contact events", "\n" + TOY_DOCS.format(example=example) + "## Contact events", 1
    )
    (tmp_path / "docs" / "flows.md").write_text(docs, encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    checks = subprocess.run(
        [sys.executable, "-W", "error", "-c", TOY_CHECKS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert checks.stdout.strip().endswith("ok")
    docs_test = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "-W",
            "error",
            "tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert docs_test.returncode == 0, docs_test.stdout + docs_test.stderr
    assert "test_each_node_types_section_shows_its_example[chime] PASSED" in docs_test.stdout
