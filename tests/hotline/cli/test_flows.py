"""The `hotline` command as an admin uses it: lint, simulate, graph, schema."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from hotline.cli import main
from ivr.loader import parse_yaml
from support.paths import FLOWS

HOTLINE = FLOWS / "hotline.yaml"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
flow: small
start: menu
nodes:
  menu:
    menu: enter-ext
    options:
      1: queue
      01: bye
    failure: bye
  queue:
    queue: {name: support, skills: {internet: 3}}
    overflow: bye
  bye:
    hangup: goodbye
"""


def test_lint_shipped_flows_is_clean() -> None:
    code, output = run("lint", *map(str, sorted(FLOWS.glob("*.yaml"))))
    assert code == 0, output
    assert "hotline.yaml: ok - flow hotline" in output


def test_lint_reports_every_error_with_position_and_exits_1(tmp_path: Path) -> None:
    broken = write(
        tmp_path,
        "broken.yaml",
        GOOD.replace("failure: bye", "failure: by").replace("overflow: bye", "overflow: bye\n    timout: 3"),
    )
    code, output = run("lint", str(broken))
    assert code == 1
    lines = [line for line in output.splitlines() if line.startswith(str(broken))]
    assert len(lines) == 2, output
    assert re.match(
        rf"{re.escape(str(broken))}:9:14: nodes\.menu\.failure: .*'by'.*did you mean 'bye'", lines[0]
    )
    assert re.match(rf"{re.escape(str(broken))}:13:5: nodes\.queue\.timout: .*did you mean", lines[1])


def test_lint_good_flow_summary(tmp_path: Path) -> None:
    code, output = run("lint", str(write(tmp_path, "small.yaml", GOOD)))
    assert code == 0
    assert "small.yaml: ok - flow small, 3 nodes, languages en" in output


def test_lint_of_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    code, output = run("lint", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "nope.yaml:1:1" in output


def test_simulate_keeps_keys_as_written(tmp_path: Path) -> None:
    """`01` is an option of its own (YAML 1.2, keys as written): pressing 0 then 1 takes it."""
    path = write(tmp_path, "small.yaml", GOOD)
    code, output = run("simulate", str(path), "--digits", "0,1")
    assert code == 0, output
    assert "option_chosen" in output and "target=bye" in output
    assert "hang up" in output


def test_simulate_shipped_flow_reaches_a_queue() -> None:
    code, output = run(
        "simulate",
        str(HOTLINE),
        "--digits",
        "1,1",
        "--caller",
        "+48221234567",
        "--at",
        "2026-12-01T10:00+01:00",
    )
    assert code == 0, output
    assert re.search(r"queue \w+ \(", output), output
    assert "call ends: queue" in output


def test_simulate_after_hours_goes_to_voicemail() -> None:
    code, output = run("simulate", str(HOTLINE), "--digits", "1", "--at", "2026-12-25T10:00+01:00")
    assert code == 0, output
    assert "record voicemail" in output
    assert "call ends: voicemail" in output


def test_simulate_with_lookup_answers(tmp_path: Path) -> None:
    answers = write(
        tmp_path, "crm.json", json.dumps({"customer_id": "C-7", "customer_name": "Ada", "tier": "gold"})
    )
    code, output = run(
        "simulate",
        str(HOTLINE),
        "--digits",
        "1,1",
        "--at",
        "2026-12-01T10:00+01:00",
        "--lookup",
        str(answers),
    )
    assert code == 0, output
    assert "CRM answered 200" in output
    assert "lookup_done" in output


def test_simulate_interactive_reads_keys_from_the_terminal(tmp_path: Path) -> None:
    path = write(tmp_path, "small.yaml", GOOD)
    code, output = run("simulate", str(path), stdin="1\n")
    assert code == 0, output
    assert "caller presses 1" in output
    assert "queue support" in output


def test_simulate_caller_hangs_up(tmp_path: Path) -> None:
    code, output = run("simulate", str(write(tmp_path, "small.yaml", GOOD)), "--digits", "hangup")
    assert code == 0, output
    assert "abandoned" in output


def test_simulate_bad_time_is_a_clear_error(tmp_path: Path) -> None:
    code, output = run("simulate", str(write(tmp_path, "small.yaml", GOOD)), "--at", "tomorrow")
    assert code == 2
    assert "not a date and time" in output


def test_graph_writes_svg(tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz's dot must be installed (make test installs it)"
    target = tmp_path / "flow.svg"
    code, output = run("graph", str(HOTLINE), "-o", str(target))
    assert code == 0, output
    svg = target.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg[:500]
    assert "<svg" in svg


def test_graph_dot_output(tmp_path: Path) -> None:
    target = tmp_path / "flow.dot"
    code, _ = run("graph", str(write(tmp_path, "small.yaml", GOOD)), "-o", str(target))
    assert code == 0
    assert "digraph" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(FLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_validates_shipped_flows(path: Path) -> None:
    code, output = run("schema")
    assert code == 0
    schema = json.loads(output)
    data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    jsonschema.validate(data, schema)


def test_schema_rejects_a_broken_flow() -> None:
    _, output = run("schema")
    schema = json.loads(output)
    validator = jsonschema.Draft202012Validator(schema)
    bad = {"flow": "x", "start": "a", "nodes": {"a": {"play": "hi", "next": "a", "timout": 3}}}
    assert list(validator.iter_errors(bad))
    no_type = {"flow": "x", "start": "a", "nodes": {"a": {"next": "a"}}}
    assert list(validator.iter_errors(no_type))


LOOKUP_FLOW = """\
flow: lk
start: find
nodes:
  find:
    lookup:
      url: https://crm.example.com/customers?phone={caller}
      fields: {tier: customer.tier}
    next: bye
    fallback: bye
  bye:
    hangup: goodbye
"""

HOW = (
    'write {"status": 200, "body": {...}}, {"fail": "timeout"}, a JSON object as the body, or such answers by '
    'part of the URL: {"/customers": {...}}'
)

#: the JSON of a --lookup file -> the line simulate prints for the CRM's answer, or its error
LOOKUP_SHAPES: dict[str, str] = {
    '{"status": 200, "body": {"customer": {"tier": "gold"}}}': "CRM answered 200",
    '{"customer": {"tier": "gold"}}': "CRM answered 200",
    "{}": "CRM answered 200 {}",
    '{"status": 200, "body": [1]}': "lookup_failed node=find reason=the answer is not a JSON object",
    '{"status": 404}': "lookup_failed node=find reason=HTTP status 404",
    '{"fail": "timeout"}': "CRM lookup failed: timeout",
    '{"fail": null}': "CRM lookup failed: the CRM failed (no reason given)",
    '{"https://crm.example.com": {"fail": "timeout"}}': "CRM lookup failed: timeout",
    '{"/orders": {"status": 200}}': "CRM lookup failed: no answer given for https://crm.example.com/",
    '{"status": "x"}': """'status' is "x", not an HTTP status; write a whole number such as 200 or 404""",
    '{"status": null}': "'status' is null, not an HTTP status; write a whole number such as 200 or 404",
    '{"status": 200.5}': "'status' is 200.5, not an HTTP status; write a whole number such as 200 or 404",
    '{"status": true}': "'status' is true, not an HTTP status; write a whole number such as 200 or 404",
    '{"status": 42}': "'status' is 42, not an HTTP status; write a whole number such as 200 or 404",
    '{"status": 200, "bdy": {}}': """unknown key 'bdy' beside status and body; write {"status": 200, "body": {...}}""",
    '{"fail": {"a": 1}}': """'fail' holds {"a": 1}; give the reason as text, e.g. {"fail": "timeout"}""",
    '{"fail": "x", "status": 500}': "'fail' comes alone, not with status; keep one of them",
    "[1, 2]": f"the answer is a list, not a JSON object; {HOW}",
    '"text"': f'the answer is "text", not a JSON object; {HOW}',
    "5": f"the answer is 5, not a JSON object; {HOW}",
    "null": "the file holds null; write the CRM's answers as a JSON object",
    '{"https://crm": {"status": "x"}}': """the answer for 'https://crm': 'status' is "x", not an HTTP status""",
    '{"https://crm": [1]}': "the answer for 'https://crm': the answer is a list, not a JSON object",
    "{": "not a JSON file",
}


@pytest.mark.parametrize("shape", sorted(LOOKUP_SHAPES))
def test_simulate_lookup_answers_of_every_shape(tmp_path: Path, shape: str) -> None:
    flow = write(tmp_path, "lk.yaml", LOOKUP_FLOW)
    answers = write(tmp_path, "crm.json", shape)
    result = CliRunner().invoke(main, ["simulate", str(flow), "--digits", "", "--lookup", str(answers)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    expected = LOOKUP_SHAPES[shape]
    if result.exit_code == 0:
        assert expected in result.output
        assert "call ends: hangup" in result.output
    else:
        assert result.exit_code == 2
        assert "Invalid value for --lookup" in result.output
        assert expected in " ".join(result.output.split())
