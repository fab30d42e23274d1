"""One voice for every YAML file: the same mistake made in a flow, in hotline.yaml and in routing.yaml reads
the same way (only the key path differs), at the right line and column, and says what to write instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.agents.routing_file import RoutingConfigError, parse_routing_config
from hotline.config import ConfigError, load_config
from ivr.errors import FlowErrors
from ivr.loader import parse_flow
from ivr.model import Menu, Transfer

#: (line, column, key path, message) of every mistake a file holds
Found = list[tuple[int, int, str, str]]


def flow_problems(text: str, tmp_path: Path) -> Found:
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, "flow.yaml")
    return [(p.line, p.column, p.path, p.message) for p in caught.value.errors]


def config_problems(text: str, tmp_path: Path) -> Found:
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return [(p.line, p.column, p.path, p.message) for p in caught.value.problems]


def routing_problems(text: str, tmp_path: Path) -> Found:
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_config(text, "routing.yaml")
    return [(p.line, p.column, p.path, p.message) for p in caught.value.problems]


READERS = {"flow": flow_problems, "hotline.yaml": config_problems, "routing.yaml": routing_problems}

FLOW = """\
flow: hotline
start: main
nodes:
  main:
    menu: main-menu
    options: {{1: bye}}
{main}
  bye:
    hangup: goodbye
"""


def flow(main: str) -> str:
    """A flow whose node `main` has the lines `main` from line 7 on (indented under it)."""
    return FLOW.format(main="\n".join(f"    {line}" for line in main.splitlines()))


@dataclass(frozen=True)
class Made:
    """A mistake made in one kind of file: the text, and where it is reported with which key path."""

    text: str
    line: int
    column: int
    path: str
    #: the names the message template takes in this file
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mistake:
    #: the message, the same in every file but for the names filled in from `Made.names`
    message: str
    made: dict[str, Made]


MISTAKES: dict[str, Mistake] = {
    "unknown key with a typo": Mistake(
        "unknown key '{0}'; did you mean '{1}'?",
        {
            "flow": Made(flow("timout: 8"), 7, 5, "nodes.main.timout", ("timout", "timeout")),
            "hotline.yaml": Made("log:\n  levle: info\n", 2, 3, "log.levle", ("levle", "level")),
            "routing.yaml": Made(
                "queues:\n  sales:\n    priorty: 3\n", 3, 5, "queues.sales.priorty", ("priorty", "priority")
            ),
        },
    ),
    # hotline.yaml has no required key: everything has a default
    "missing required key": Mistake(
        "required key '{0}' is missing; add '{0}:' with {1}",
        {
            "flow": Made(
                FLOW.format(main="").replace("hangup: goodbye", "play: goodbye"),
                8,
                3,
                "nodes.bye.next",
                ("next", "a node name"),
            ),
            "routing.yaml": Made(
                "agents:\n  ann:\n    name: Ann\n", 2, 3, "agents.ann.endpoint", ("endpoint", "an endpoint")
            ),
        },
    ),
    "text where a number belongs": Mistake(
        "expected a number, got 'five'; write a number such as 30 or 2.5",
        {
            "flow": Made(flow("timeout: five"), 7, 14, "nodes.main.timeout"),
            "hotline.yaml": Made("callbacks:\n  dial_timeout: five\n", 2, 17, "callbacks.dial_timeout"),
            "routing.yaml": Made("queues:\n  sales:\n    max_wait: five\n", 3, 15, "queues.sales.max_wait"),
        },
    ),
    "a number where text belongs": Mistake(
        "expected text, got 42; write it in quotes: '42'",
        {
            "flow": Made(flow("description: 42"), 7, 18, "nodes.main.description"),
            "hotline.yaml": Made("asterisk:\n  app: 42\n", 2, 8, "asterisk.app"),
            "routing.yaml": Made(
                "agents:\n  ann:\n    name: 42\n    endpoint: PJSIP/ann\n", 3, 11, "agents.ann.name"
            ),
        },
    ),
    "a number out of range": Mistake(
        "must be at most {0}, got {1}; write a whole number from {2} to {0}",
        {
            "flow": Made(
                FLOW.format(main="").replace(
                    "hangup: goodbye", "queue: {name: sales, priority: 101}\n    overflow: bye"
                ),
                9,
                36,
                "nodes.bye.queue.priority",
                ("100", "101", "0"),
            ),
            "hotline.yaml": Made(
                "asterisk:\n  ami:\n    port: 70000\n", 3, 11, "asterisk.ami.port", ("65535", "70000", "1")
            ),
            "routing.yaml": Made(
                "queues:\n  sales:\n    priority: 101\n", 3, 15, "queues.sales.priority", ("100", "101", "0")
            ),
        },
    ),
    # routing.yaml has no true/false key
    "a boolean that is not true or false": Mistake(
        "expected true or false, got 'maybe'; write true or false",
        {
            "flow": Made(flow("barge_in: maybe"), 7, 15, "nodes.main.barge_in"),
            "hotline.yaml": Made("asterisk:\n  agi:\n    enabled: maybe\n", 3, 14, "asterisk.agi.enabled"),
        },
    ),
    "a duplicate key": Mistake(
        "duplicate key '{0}' (first at line {1}); keep one of them",
        {
            "flow": Made(flow("timeout: 3\ntimeout: 4"), 8, 5, "nodes.main.timeout", ("timeout", "7")),
            "hotline.yaml": Made("log:\n  level: info\n  level: debug\n", 3, 3, "log.level", ("level", "2")),
            "routing.yaml": Made("agents: {}\nqueues: {}\nagents: {}\n", 3, 1, "agents", ("agents", "1")),
        },
    ),
    "a value holding ': ' unquoted": Mistake(
        "a value holding ': ' must be quoted; write it in quotes: 'Note: this'",
        {
            "flow": Made(flow("description: Note: this"), 7, 18, ""),
            "hotline.yaml": Made("data_dir: Note: this\n", 1, 11, ""),
            "routing.yaml": Made("agents:\n  ann:\n    name: Note: this\n", 3, 11, ""),
        },
    ),
    "a tab in the indentation": Mistake(
        "a tab cannot indent YAML; indent with spaces",
        {
            "flow": Made(flow("timeout: 3").replace("    timeout", "\ttimeout"), 7, 1, ""),
            "hotline.yaml": Made("log:\n\tlevel: info\n", 2, 1, ""),
            "routing.yaml": Made("queues:\n  sales:\n\t  priority: 3\n", 3, 1, ""),
        },
    ),
    "a name that breaks the name pattern": Mistake(
        "'hot line' is not a name; use letters, digits, _ and -",
        {
            "flow": Made(flow("").replace("flow: hotline", "flow: hot line"), 1, 7, "flow"),
            "hotline.yaml": Made("callbacks:\n  app: hot line\n", 2, 8, "callbacks.app"),
            "routing.yaml": Made("queues:\n  hot line: {}\n", 2, 3, "queues.hot line"),
        },
    ),
    "an unquoted '#' as a value": Mistake(
        "'#' begins a YAML comment here; write '#' in quotes",
        {
            "flow": Made(flow("repeat: #"), 7, 13, "nodes.main.repeat"),
            "hotline.yaml": Made("flows:\n  numbers:\n    100: #\n", 3, 10, "flows.numbers.100"),
            "routing.yaml": Made("queues:\n  sales:\n    music: #\n", 3, 12, "queues.sales.music"),
        },
    ),
    "an unquoted '*' as a value": Mistake(
        "'*' begins an alias (*name) here; write '*' in quotes",
        {
            "flow": Made(flow("repeat: *"), 7, 13, ""),
            "hotline.yaml": Made("flows:\n  default: *\n", 2, 12, ""),
            "routing.yaml": Made("queues:\n  sales:\n    music: *\n", 3, 12, ""),
        },
    ),
    "an unquoted '&' as a value": Mistake(
        "'&' begins an anchor (&name) here; write '&' in quotes",
        {
            "flow": Made(flow("repeat: &"), 7, 13, ""),
            "hotline.yaml": Made("flows:\n  default: &\n", 2, 12, ""),
            "routing.yaml": Made("queues:\n  sales:\n    music: &\n", 3, 12, ""),
        },
    ),
    "a line indented under a key that has a value": Mistake(
        "this line is indented more than the key above it, which already has a value; line it up with '{0}:'",
        {
            "flow": Made(flow("timeout: 3\n  retries: 2"), 8, 7, "", ("timeout",)),
            "hotline.yaml": Made("log:\n  level: info\n    format: json\n", 3, 5, "", ("level",)),
            "routing.yaml": Made(
                "queues:\n  sales:\n    priority: 3\n      music: x\n", 4, 7, "", ("priority",)
            ),
        },
    ),
    "a line without ':'": Mistake(
        "this line has no ':' after its key; write key: value (a value continued on the next line is "
        "indented more than its key)",
        {
            "flow": Made(flow("timeout 3\nretries: 2"), 7, 5, ""),
            "hotline.yaml": Made("log:\n  level info\n  format: json\n", 2, 3, ""),
            "routing.yaml": Made("queues:\n  sales:\n    priority 3\n    music: x\n", 3, 5, ""),
        },
    ),
}

CASES = [(name, kind) for name, mistake in MISTAKES.items() for kind in mistake.made]


@pytest.mark.parametrize(("mistake", "kind"), CASES)
def test_the_same_mistake_reads_the_same_in_every_file(mistake: str, kind: str, tmp_path: Path) -> None:
    made = MISTAKES[mistake].made[kind]
    message = MISTAKES[mistake].message.format(*made.names)
    assert READERS[kind](made.text, tmp_path) == [(made.line, made.column, made.path, message)]


def test_every_message_says_what_to_write_instead() -> None:
    for mistake in MISTAKES.values():
        assert "; " in mistake.message


def test_config_booleans_are_only_true_and_false(tmp_path: Path) -> None:
    for word, shown, fix in (
        ("yes", "'yes'", "true"),
        ("no", "'no'", "false"),
        ("on", "'on'", "true"),
        ("1", "1", "true"),
        ("'true'", "'true'", "true or false"),
    ):
        assert config_problems(f"asterisk:\n  agi:\n    enabled: {word}\n", tmp_path) == [
            (3, 14, "asterisk.agi.enabled", f"expected true or false, got {shown}; write {fix}")
        ]


def test_flow_booleans_are_only_true_and_false(tmp_path: Path) -> None:
    assert flow_problems(flow("barge_in: yes"), tmp_path) == [
        (7, 15, "nodes.main.barge_in", "expected true or false, got 'yes'; write true")
    ]
    assert flow_problems(flow("barge_in: 'off'"), tmp_path) == [
        (7, 15, "nodes.main.barge_in", "expected true or false, got 'off'; write false")
    ]


def test_true_and_false_are_read_as_booleans(tmp_path: Path) -> None:
    menu = parse_flow(flow("barge_in: false"), "flow.yaml").flow.nodes["main"]
    assert isinstance(menu, Menu) and menu.barge_in is False
    path = tmp_path / "hotline.yaml"
    path.write_text("asterisk:\n  agi: {enabled: false}\n", encoding="utf-8")
    assert load_config(path, environ={}).asterisk.agi.enabled is False


# --- digits with a leading zero or plus stay as written, in every file -------------------------------


def test_a_flow_keeps_leading_zeros_and_plus_signs() -> None:
    text = """\
flow: hotline
start: main
variables: {area: 030}
nodes:
  main:
    menu: main-menu
    options: {00: desk, 01: line}
    timeout: 05
    failure: desk
  desk:
    transfer: {extension: 0100}
  line:
    transfer: {number: +48221234567}
"""
    flow_ = parse_flow(text, "flow.yaml").flow
    assert flow_.variables == {"area": "030"}
    main = flow_.nodes["main"]
    assert isinstance(main, Menu)
    assert main.options == {"00": "desk", "01": "line"}
    assert main.timeout == 5.0  # a number field still takes 05
    desk, line = flow_.nodes["desk"], flow_.nodes["line"]
    assert isinstance(desk, Transfer) and isinstance(line, Transfer)
    assert desk.transfer.extension == "0100"
    assert line.transfer.number == "+48221234567"


def test_hotline_yaml_keeps_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text(
        "flows:\n  numbers: {0800123456: hotline, 100: sales}\nasterisk:\n  ami: {port: 05038}\n"
        "callbacks:\n  country_code: 048\n",
        encoding="utf-8",
    )
    assert config_problems(path.read_text(encoding="utf-8"), tmp_path) == [
        (
            6,
            17,
            "callbacks.country_code",
            "'048' is not a country code; use 1 to 3 digits without + or a leading 0, e.g. 48",
        )
    ]
    path.write_text(path.read_text(encoding="utf-8").replace("048", "'48'"), encoding="utf-8")
    config = load_config(path, environ={})
    assert config.flows.numbers == {"0800123456": "hotline", "100": "sales"}
    assert config.asterisk.ami.port == 5038


def test_routing_yaml_keeps_leading_zeros_and_plus_signs() -> None:
    loaded = parse_routing_config(
        "queues:\n  sales: {caller_id: 0221234567, priority: 05}\n  support: {caller_id: +48221234567}\n",
        "routing.yaml",
    )
    queues = loaded.config.queues
    assert (queues["sales"].caller_id, queues["sales"].priority) == ("0221234567", 5)
    assert queues["support"].caller_id == "+48221234567"
