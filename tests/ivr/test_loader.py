"""Reading flow files: YAML 1.2 values, positions, schema errors in the admin's words, flow sets."""

from __future__ import annotations

import math
from io import StringIO
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ivr.errors import FlowError, FlowErrors, IvrError
from ivr.loader import (
    Position,
    core_value,
    describe,
    load_flows,
    load_flowset,
    parse_flow,
    parse_yaml,
    position_of,
)
from ivr.model import Branch, Menu

SMALL = """\
flow: small
start: main
nodes:
  main:
    menu: main-menu
    options:
      1: sales
      01: bye
    failure: bye
  sales:
    queue: {name: sales}
    overflow: bye
  bye:
    hangup: goodbye
"""


def errors_of(text: str, filename: str = "f.yaml") -> list[str]:
    """Every error line parse_flow reports for `text`, without the file name."""
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, filename)
    return [str(e).removeprefix(f"{filename}:") for e in caught.value.errors]


def flow_with(node: str, extra: str = "") -> str:
    """A flow whose start node `a` is `node` (YAML under `a:`), with a `bye` node to go to."""
    indented = "".join(f"    {line}\n" for line in node.splitlines())
    return f"flow: t\n{extra}start: a\nnodes:\n  a:\n{indented}  bye:\n    hangup:\n"


# --- YAML 1.2 ------------------------------------------------------------------------------------------


def test_yaml_1_2_values() -> None:
    data, _ = parse_yaml(
        "no: no\nyes: yes\non: off\n01: 01\nday: 2026-12-25\nat: 2026-12-25T10:00:00\ntrue: True\n"
        "null: ~\nempty:\noctal: 0o17\nhex: 0x1F\nunderscore: 1_000\nexp: 1e3\nhalf: .5\ninf: -.inf\n"
        "quoted: '5'\nstr: !!str 5\nfloat: !!float 5\n",
        "f.yaml",
    )
    assert data == {
        "no": "no",
        "yes": "yes",
        "on": "off",
        "01": "01",
        "day": "2026-12-25",
        "at": "2026-12-25T10:00:00",
        "true": True,
        "null": None,
        "empty": None,
        "octal": 15,
        "hex": 31,
        "underscore": "1_000",
        "exp": 1000.0,
        "half": 0.5,
        "inf": -math.inf,
        "quoted": "5",
        "str": "5",
        "float": 5.0,
    }
    assert isinstance(data["float"], float)


def test_keys_stay_as_written() -> None:
    data, _ = parse_yaml("1: a\n01: b\n0x1: c\ntrue: d\n~: e\n1.0: f\n", "f.yaml")
    assert list(data) == ["1", "01", "0x1", "true", "~", "1.0"]


def test_menu_options_one_and_zero_one_are_two_options() -> None:
    parsed = parse_flow(SMALL, "small.yaml")
    main = parsed.flow.nodes["main"]
    assert isinstance(main, Menu)
    assert main.options == {"1": "sales", "01": "bye"}


def test_no_is_a_word_and_a_date_is_text_in_a_flow() -> None:
    text = flow_with(
        "branch:\n  - if: {var: answer, equals: no}\n    goto: bye\nelse: bye",
        extra="schedules:\n  office:\n    timezone: UTC\n    hours: {mon-fri: 08:00-17:00}\n"
        "    holidays: [2026-12-25]\n",
    )
    flow = parse_flow(text, "f.yaml").flow
    branch = flow.nodes["a"]
    assert isinstance(branch, Branch)
    assert branch.branch[0].if_.equals == "no"
    assert flow.schedules["office"].holidays[0].date == "2026-12-25"


#: Plain scalars that YAML 1.1, YAML 1.2 and ruamel read differently.
TRICKY = [
    "no",
    "yes",
    "on",
    "01",
    "1_000",
    "0x1F",
    "0o17",
    "017",
    "1e3",
    ".5",
    "~",
    "null",
    "True",
    "2026-12-25",
]
SCALAR_TEXT = st.sampled_from(TRICKY) | st.text("abnoy019.-_ eExo+", max_size=8)


@given(
    st.dictionaries(
        SCALAR_TEXT.filter(bool),
        st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | SCALAR_TEXT,
        max_size=6,
    )
)
@settings(max_examples=60, deadline=None)
def test_values_written_by_a_yaml_1_2_dumper_read_back_unchanged(data: dict[str, Any]) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    out = StringIO()
    yaml.dump(data, out)
    assert parse_yaml(out.getvalue(), "f.yaml")[0] == data


def test_core_value() -> None:
    assert [core_value(t) for t in ("", "NULL", "FALSE", "-12", "+3.5", "0o8", "0b1", "1:30")] == [
        None,
        None,
        False,
        -12,
        3.5,
        "0o8",
        "0b1",
        "1:30",
    ]
    assert math.isnan(core_value(".NaN"))


# --- positions ---------------------------------------------------------------------------------------


def test_positions_of_keys_and_values() -> None:
    parsed = parse_flow(SMALL, "small.yaml")
    assert parsed.position(("nodes", "main")) == Position(4, 3)
    assert parsed.position("nodes.main.options.01") == Position(8, 7)
    assert parsed.position(("nodes", "sales", "queue", "name")) == Position(11, 13)
    assert parsed.positions.of(("nodes", "main", "failure"), value=True) == Position(9, 14)
    # a key the file does not hold is placed at its closest enclosing key
    assert position_of(parsed, "nodes.main.timeout") == Position(4, 3)
    assert position_of(parsed, ()) == Position(1, 1)


def test_positions_of_list_items() -> None:
    text = flow_with("play: [hello, world]\nnext: bye")
    parsed = parse_flow(text, "f.yaml")
    assert parsed.position("nodes.a.play.1") == Position(5, 19)
    assert parsed.position(("nodes", "a", "play", 1)) == Position(5, 19)


# --- YAML mistakes -----------------------------------------------------------------------------------


def test_yaml_syntax_error_has_the_line_and_column() -> None:
    assert errors_of("flow: t\nnodes:\n  a: b: c\n") == [
        "3:6: a value holding ': ' must be quoted; write it in quotes: 'b: c'"
    ]


def test_yaml_syntax_error_names_what_was_open() -> None:
    assert errors_of("flow: t\nnodes: [a, b\nstart: a\n") == [
        "2:8: the '[' here is not closed; close it with ']', or quote a value holding '['"
    ]


def test_a_tab_indent_is_named() -> None:
    assert errors_of("flow: t\nnodes:\n\ta: 1\n") == ["3:1: a tab cannot indent YAML; indent with spaces"]


def test_two_documents_are_refused() -> None:
    assert errors_of("flow: a\n---\nflow: b\n") == [
        "2:1: a second YAML document begins here (after '---'); keep one document in the file"
    ]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_an_empty_file(text: str) -> None:
    assert errors_of(text) == ["1:1: the file is empty; a flow needs flow:, start: and nodes:"]


def test_every_duplicate_key_is_reported_with_the_first_line() -> None:
    text = flow_with("play: x\nnext: bye\nnext: bye\nplay: y\nbarge_in: true\nnext: a")
    assert errors_of(text) == [
        "7:5: nodes.a.next: duplicate key 'next' (first at line 6); keep one of them",
        "8:5: nodes.a.play: duplicate key 'play' (first at line 5); keep one of them",
        "10:5: nodes.a.next: duplicate key 'next' (first at line 6); keep one of them",
    ]


def test_anchors_aliases_and_merge_keys_are_resolved() -> None:
    text = """\
flow: t
start: a
nodes:
  a: &menu
    menu: main-menu
    options: {1: b}
    timeout: 3
  b:
    <<: *menu
    timeout: 4
    options: {1: bye}
  c:
    <<: [{menu: other, options: {1: a}}, *menu]
    failure: bye
  bye:
    hangup: goodbye
"""
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, "f.yaml")
    # c merges its first source over the second, so it is a menu 'other' that nothing reaches
    assert [str(e) for e in caught.value.errors] == [
        "f.yaml:12:3: nodes.c: no path from start 'a' leads to node 'c'; link it or remove it"
    ]
    data, _ = parse_yaml(text, "f.yaml")
    assert data["nodes"]["b"] == {"menu": "main-menu", "options": {"1": "bye"}, "timeout": 4}
    assert data["nodes"]["c"] == {"menu": "other", "options": {"1": "a"}, "timeout": 3, "failure": "bye"}


def test_an_alias_inside_itself_is_refused() -> None:
    assert errors_of("flow: t\nstart: a\nnodes: &n\n  a: {hangup: *n}\n") == [
        "3:8: nodes.a.hangup: an alias (*name) stands for a mapping or list that holds it; remove the alias"
    ]


def test_aliases_cannot_blow_a_file_up() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 10) + "]")
    messages = errors_of("\n".join(lines) + "\n")
    assert len(messages) == 1
    assert messages[0].endswith(
        "aliases (*name) repeat more than 100000 values; write the repeated part fewer times, or give it a "
        "name of its own"
    )


def test_nesting_is_bounded() -> None:
    assert errors_of("a: " + "[" * 150 + "]" * 150 + "\n") == [
        "1:103: the file nests more than 100 levels deep; flatten it, or give the inner parts names of their own"
    ]


def test_tags() -> None:
    assert errors_of(flow_with("play: !!int x\nnext: bye") + "extra: !custom 1\n") == [
        "5:11: nodes.a.play: 'x' is not a whole number; write one, or drop !!int",
        "9:1: extra: unknown key 'extra'; the keys here are flow, description, languages, sounds, prompts, "
        "schedules, variables, start, nodes",
        "9:8: extra: unknown tag '!custom'; write the value without it",
    ]


def test_a_non_text_key_is_refused() -> None:
    assert errors_of("? [a, b]\n: c\nflow: t\n") == [
        "1:1: nodes: required key 'nodes' is missing; add 'nodes:' with a mapping",
        "1:1: start: required key 'start' is missing; add 'start:' with a node name",
        "1:3: a key must be plain text, not a list or mapping; write it as text",
    ]


def test_a_flow_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == [
        "1:1: the file holds a list; a flow file is a mapping with flow:, start: and nodes:"
    ]


# --- schema errors in the admin's words -------------------------------------------------------------


def test_unknown_key_with_did_you_mean() -> None:
    assert errors_of(flow_with("menu: m\noptions: {1: bye}\ntimout: 3")) == [
        "7:5: nodes.a.timout: unknown key 'timout'; did you mean 'timeout'?"
    ]


def test_unknown_key_of_a_node_that_another_type_has() -> None:
    assert errors_of(flow_with("queue: {name: q}\noverflow: bye\ntimeout: 3\nmax_wait: 9\nnext: bye")) == [
        "7:5: nodes.a.timeout: unknown key 'timeout'; only menu, collect and language nodes have it, remove it here",
        "8:5: nodes.a.max_wait: unknown key 'max_wait'; put it under 'queue:'",
        "9:5: nodes.a.next: unknown key 'next'; only play, collect, say, set, lookup, language and voicemail "
        "nodes have it, remove it here",
    ]


def test_unknown_top_level_key() -> None:
    assert errors_of("flow: t\nstrat: a\nstart: a\nnodes: {a: {hangup: }}\n") == [
        "2:1: strat: unknown key 'strat'; did you mean 'start'?"
    ]


def test_missing_keys_are_placed_at_their_parent() -> None:
    assert errors_of("flow: t\nnodes:\n  a:\n    play: x\n") == [
        "1:1: start: required key 'start' is missing; add 'start:' with a node name",
        "3:3: nodes.a.next: required key 'next' is missing; add 'next:' with a node name",
    ]


def test_wrong_types() -> None:
    assert errors_of(
        flow_with("menu: m\noptions: {1: bye}\ntimeout: five\nretries: 2.5\nbarge_in: maybe")
    ) == [
        "7:14: nodes.a.timeout: expected a number, got 'five'; write a number such as 30 or 2.5",
        "8:14: nodes.a.retries: expected a whole number, got 2.5; write a whole number such as 30",
        "9:15: nodes.a.barge_in: expected true or false, got 'maybe'; write true or false",
    ]


def test_text_expected_where_a_number_is_written() -> None:
    assert errors_of(flow_with("play: x\nnext: 12")) == [
        "6:11: nodes.a.next: expected a node name, got 12; use letters, digits, _ and -, starting with a letter or _"
    ]


def test_names_that_break_their_pattern() -> None:
    assert errors_of(
        "flow: t\nstart: a\nnodes:\n  a b: {hangup: }\n  a:\n    menu: m\n    options: {1a: a}\n"
    ) == [
        "4:3: nodes.a b: 'a b' is not a node name; use letters, digits, _ and -, starting with a letter or _",
        "7:15: nodes.a.options.1a: '1a' is not a key sequence; use 1 to 8 of the keys 0-9, * and # "
        "('#' and '*' in quotes)",
    ]


def test_bounds_and_choices() -> None:
    assert errors_of(flow_with("say: x\nas: word\nnext: bye\n", extra="")) == [
        "6:9: nodes.a.as: expected one of 'digits', 'number', 'characters', got 'word'; write one of them"
    ]
    assert errors_of(flow_with("menu: m\noptions: {1: bye}\ntimeout: 0\nretries: 11")) == [
        "7:14: nodes.a.timeout: must be more than 0, got 0; write a number more than 0 and at most 3600",
        "8:14: nodes.a.retries: must be at most 10, got 11; write a whole number from 0 to 10",
    ]


def test_unions_report_the_member_that_fits_the_value() -> None:
    assert errors_of(flow_with("goto: {flow: 5, nod: x}")) == [
        "5:18: nodes.a.goto.flow: expected a name, got 5; write it in quotes: '5'",
        "5:21: nodes.a.goto.nod: unknown key 'nod'; did you mean 'node'?",
    ]
    assert errors_of(flow_with("goto: bad name")) == [
        "5:11: nodes.a.goto: 'bad name' is not a node name; use letters, digits, _ and -, starting with a letter or _"
    ]


def test_unions_that_fit_nothing() -> None:
    assert errors_of(flow_with("set: {x: , y: [1]}\nnext: bye")) == [
        "5:11: nodes.a.set.x: expected text, a number or true/false, got nothing; write text, a number or true/false",
        "5:16: nodes.a.set.y: expected text, a number or true/false, got a list; write text, a number or true/false",
    ]
    assert errors_of(flow_with("language: 5\nnext: bye")) == [
        "5:15: nodes.a.language: expected a mapping or text, got 5; write a mapping or text"
    ]


def test_aliased_keys_are_shown_as_written() -> None:
    text = flow_with(
        "branch:\n  - goto: bye\n  - if: {var: x, in: 5, not: {bogus: 1}}\n    goto: bye\nelse_: bye",
        extra="schedules:\n  o:\n    timezone: UTC\n    hours: {mon: 08:00-09:00}\n"
        "    closures: [{from: soon, to: 2026-01-01 10:00}]\n",
    )
    assert errors_of(text) == [
        "6:23: schedules.o.closures.0.from: expected a date and time such as 2026-12-24 12:00, got 'soon'; "
        "write it like 2026-12-24 12:00",
        "9:3: nodes.a.else: required key 'else' is missing; add 'else:' with a node name",
        "11:9: nodes.a.branch.0.if: required key 'if' is missing; add 'if:' with a mapping",
        "12:26: nodes.a.branch.1.if.in: expected a list, got 5; write a list such as [a, b]",
        "12:35: nodes.a.branch.1.if.not.bogus: unknown key 'bogus'; the keys here are schedule, open, caller, "
        "dialed, language, var, equals, not_equals, in, matches, exists, gt, ge, lt, le, any, all, not",
        "14:5: nodes.a.else_: unknown key 'else_'; did you mean 'else'?",
    ]


def test_a_node_without_a_type_key() -> None:
    expected = (
        "a node needs exactly one type key: play, menu, collect, say, branch, set, lookup, language, queue, "
        "callback, transfer, voicemail, goto, hangup"
    )
    assert errors_of(flow_with("plya: x\nnext: bye")) == [
        f"4:3: nodes.a: {expected}; did you mean 'play' for 'plya'?"
    ]
    types = expected.split(": ", 1)[1]
    assert errors_of(flow_with("next: bye")) == [
        f"4:3: nodes.a: a node needs exactly one type key; add one of {types}"
    ]
    assert errors_of("flow: t\nstart: a\nnodes:\n  a: hello\n") == [
        f"4:6: nodes.a: expected a node (a mapping with one type key), got 'hello'; write one of {types}"
    ]


def test_a_node_with_two_type_keys() -> None:
    assert errors_of(flow_with("play: x\nmenu: y\ngoto: bye\nnext: bye")) == [
        "4:3: nodes.a: a node needs exactly one type key, not 'play', 'menu' and 'goto'; split it into 3 nodes"
    ]


def test_validator_messages_point_at_the_entry_they_name() -> None:
    text = "flow: t\nschedules:\n  o:\n    timezone: Mars/Base\n    hours:\n      mon-fri: 08:00-17:00\n"
    text += "      sat: 09:00-24:30\nstart: a\nnodes: {a: {hangup: }}\n"
    assert errors_of(text) == [
        "4:15: schedules.o.timezone: 'Mars/Base' is not a time zone; use an IANA name such as Europe/Warsaw",
        "7:12: schedules.o.hours.sat: '09:00-24:30' has an impossible time of day",
    ]


def test_a_regex_and_a_lookup_timeout() -> None:
    assert errors_of(flow_with("collect: v\npattern: '[0-9'\nnext: bye")) == [
        "6:14: nodes.a.pattern: '[0-9' is not a regular expression: unterminated character set at position 0"
    ]
    assert errors_of(flow_with("lookup: {url: 'http://crm/x', timeout: 5.5}\nnext: bye\nfallback: bye")) == [
        "5:44: nodes.a.lookup.timeout: a lookup may wait at most 5 s; callers are waiting"
    ]


def test_an_empty_list_error_is_not_repeated_for_its_bad_item() -> None:
    assert errors_of(flow_with("branch: [{if: {}, goto: bye}]\nelse: bye")) == [
        "5:15: nodes.a.branch.0.if: an empty condition; test a schedule, caller, dialed, language or var"
    ]


# --- everything in one run ---------------------------------------------------------------------------


def test_schema_and_graph_errors_come_in_one_run_sorted_by_line() -> None:
    text = SMALL.replace("failure: bye", "failure: by").replace(
        "overflow: bye", "overflow: bye\n    timout: 3"
    )
    text = text.replace("hangup: goodbye", "hangup: goodbye\n  survey: {play: q, next: bye}")
    assert errors_of(text) == [
        "9:14: nodes.main.failure: unknown node 'by'; did you mean 'bye'?",
        "13:5: nodes.sales.timout: unknown key 'timout'; did you mean 'timeout'? only menu, collect and language "
        "nodes have it",
    ]


def test_graph_checks_leave_out_nodes_the_schema_rejected() -> None:
    text = flow_with("play: x\nnext: b") + "  b:\n    play: [1]\n    next: bye\n  c: {goto: bye}\n"
    # b is left out of the graph, so nothing is reported as naming an unknown node b; nodes only b leads
    # to cannot be told from unreachable ones, so no node is reported unreachable
    assert errors_of(text) == [
        "10:12: nodes.b.play.0: expected a prompt name, got 1; write it in quotes: '1'"
    ]


def test_graph_checks_still_run_beside_schema_errors() -> None:
    text = flow_with("play: x\nnext: c\ntimout: 1") + "  c: {goto: c}\n"
    assert errors_of(text) == [
        "7:5: nodes.a.timout: unknown key 'timout'; did you mean 'timeout'? only menu, collect and language nodes "
        "have it",
        "8:3: nodes.bye: no path from start 'a' leads to node 'bye'; link it or remove it",
        "10:3: nodes.c: 'c' -> 'c' loop without waiting for the caller, so the call would spin forever; "
        "put a play, menu or collect in the loop",
    ]


# --- flow sets ---------------------------------------------------------------------------------------

SHARED = """\
flow: shared
start: busy
nodes:
  busy:
    play: all-busy
    next: bye
  bye:
    hangup: goodbye
"""
MAIN = """\
flow: main
start: a
nodes:
  a:
    goto: {flow: shared, node: busy}
"""


def test_load_flowset() -> None:
    flows = load_flowset({"flows/main.yaml": MAIN, "flows/shared.yaml": SHARED})
    assert sorted(flows) == ["main", "shared"]
    assert dict(flows.sources) == {"main": "flows/main.yaml", "shared": "flows/shared.yaml"}
    assert flows["shared"].start == "busy"


def test_load_flows_keeps_positions() -> None:
    parsed = load_flows({"flows/main.yaml": MAIN, "flows/shared.yaml": SHARED})
    assert parsed["shared"].filename == "flows/shared.yaml"
    assert parsed["shared"].position("nodes.bye") == Position(7, 3)


def test_errors_of_every_file_together() -> None:
    with pytest.raises(FlowErrors) as caught:
        load_flowset(
            {
                "main.yaml": MAIN.replace("node: busy", "node: bussy"),
                "shared.yaml": SHARED.replace("next: bye", "next: by"),
            }
        )
    assert [str(e) for e in caught.value.errors] == [
        "main.yaml:5:32: nodes.a.goto.node: flow 'shared' has no node 'bussy'; did you mean 'busy'?",
        "shared.yaml:6:11: nodes.busy.next: unknown node 'by'; did you mean 'bye'?",
    ]


def test_two_files_with_one_flow_name() -> None:
    with pytest.raises(FlowErrors) as caught:
        load_flowset({"a.yaml": SHARED, "b.yaml": SHARED})
    assert [str(e) for e in caught.value.errors] == [
        "b.yaml:1:7: flow: flow 'shared' is also in a.yaml; give each flow its own name"
    ]


def test_a_goto_into_a_broken_file_is_not_reported_twice() -> None:
    with pytest.raises(FlowErrors) as caught:
        load_flowset(
            {"main.yaml": MAIN, "shared.yaml": SHARED.replace("start: busy", "start: busy\nstart: x")}
        )
    assert [str(e) for e in caught.value.errors] == [
        "shared.yaml:3:1: start: duplicate key 'start' (first at line 2); keep one of them"
    ]
    with pytest.raises(FlowErrors) as caught:
        load_flowset({"main.yaml": MAIN, "shared.yaml": "flow: [\n"})
    assert [str(e) for e in caught.value.errors] == [
        "shared.yaml:1:7: the '[' here is not closed; close it with ']', or quote a value holding '['"
    ]


def test_a_single_file_does_not_check_gotos_into_other_flows() -> None:
    assert parse_flow(MAIN, "main.yaml").flow.flow == "main"


def test_parse_flow_checks_its_sounds() -> None:
    text = flow_with("play: welcome\nnext: bye", extra="sounds: sounds\n")
    parse_flow(text, "f.yaml", sounds=frozenset({"en/welcome"}))
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, "f.yaml", sounds=frozenset())
    assert [str(e) for e in caught.value.errors] == [
        "f.yaml:6:11: nodes.a.play: prompt 'welcome' is missing from sounds folder 'sounds': en/welcome"
    ]


# --- errors ------------------------------------------------------------------------------------------


def test_flow_error_text() -> None:
    assert str(FlowError("flows/main.yaml", 12, 5, "nodes.sales.options.1", "unknown node 'sails'")) == (
        "flows/main.yaml:12:5: nodes.sales.options.1: unknown node 'sails'"
    )
    assert str(FlowError("flows/main.yaml", 1, 1, "", "cannot read the file")) == (
        "flows/main.yaml:1:1: cannot read the file"
    )


def test_flow_errors_sorts_and_joins() -> None:
    late = FlowError("a.yaml", 9, 1, "x", "late")
    early = FlowError("a.yaml", 2, 3, "y", "early")
    other = FlowError("b.yaml", 1, 1, "z", "other file")
    error = FlowErrors([other, late, early])
    assert isinstance(error, IvrError)
    assert error.errors == (early, late, other)
    assert str(error) == "a.yaml:2:3: y: early\na.yaml:9:1: x: late\nb.yaml:1:1: z: other file"


def test_describe() -> None:
    assert [describe(v) for v in (None, True, 5, 2.5, "five", [1], {"a": 1})] == [
        "nothing",
        "true",
        "5",
        "2.5",
        "'five'",
        "a list",
        "a mapping",
    ]
    assert describe("x" * 50) == "'" + "x" * 37 + "...'"
