"""Golden tests: each broken flow in tests/ivr/flows_broken gives exactly these
`file:line:column: path: message` lines; and flow files on disk (sounds folders, unreadable files)
through hotline.flowfiles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hotline.flowfiles import flows_in, load_flow_files, read_flow_files, sound_names
from ivr.errors import FlowErrors
from ivr.model import NODE_TYPES as TYPE_KEYS

BROKEN = Path(__file__).resolve().parent / "flows_broken"

NODE_TYPES = ", ".join(TYPE_KEYS)

#: file -> the lines after `file:` that loading it must print, in order
GOLDEN: dict[str, list[str]] = {
    "yaml_syntax.yaml": [
        "5:11: a value holding ': ' must be quoted; write it in quotes: 'welcome: to the hotline'"
    ],
    "not_a_flow.yaml": ["1:1: the file holds a list; a flow file is a mapping with flow:, start: and nodes:"],
    "duplicate_key.yaml": [
        "9:7: nodes.main.options.1: duplicate key '1' (first at line 7); keep one of them",
        "11:5: nodes.main.timeout: duplicate key 'timeout' (first at line 10); keep one of them",
    ],
    "unknown_key.yaml": [
        "7:5: nodes.main.timout: unknown key 'timout'; did you mean 'timeout'?",
        "10:26: nodes.sales.queue.max_wiat: unknown key 'max_wiat'; did you mean 'max_wait'?",
    ],
    "missing_key.yaml": [
        "4:3: nodes.welcome.next: required key 'next' is missing; add 'next:' with a node name"
    ],
    "wrong_type.yaml": [
        "7:14: nodes.main.timeout: expected a number, got 'five'; write a number such as 30 or 2.5",
        "8:5: nodes.main.retries: expected a whole number, got a list; write a whole number such as 30",
    ],
    "bad_names.yaml": [
        "1:7: flow: 'hot line' is not a name; use letters, digits, _ and -",
        "6:15: nodes.main.options.1a: '1a' is not a key sequence; use 1 to 8 of the keys 0-9, * and # "
        "('#' and '*' in quotes)",
        "9:18: nodes.bye.description: expected text, got 42; write it in quotes: '42'",
    ],
    "no_type_key.yaml": [
        f"4:3: nodes.welcome: a node needs exactly one type key: {NODE_TYPES}; did you mean 'play' for 'plya'?"
    ],
    "two_type_keys.yaml": [
        "4:3: nodes.welcome: a node needs exactly one type key, not 'play' and 'menu'; split it into 2 nodes"
    ],
    "unknown_target.yaml": [
        "7:10: nodes.main.options.1: unknown node 'sails'; did you mean 'sales'?",
        "9:14: nodes.main.failure: unknown node 'by'; did you mean 'bye'?",
    ],
    "unknown_start.yaml": ["2:8: start: unknown node 'mian'; did you mean 'main'?"],
    "unreachable.yaml": [
        "7:3: nodes.survey: no path from start 'welcome' leads to node 'survey'; link it or remove it"
    ],
    "loop_no_exit.yaml": [
        "4:3: nodes.main: the caller can never leave nodes 'main', 'opening_hours', 'address': add a way on to a "
        "queue, callback, transfer, voicemail or hangup"
    ],
    "spinning_loop.yaml": [
        "4:3: nodes.count: 'count' -> 'check' -> 'count' loop without waiting for the caller, so the call would "
        "spin forever; put a play, menu or collect in the loop"
    ],
    "colliding_options.yaml": [
        "8:7: nodes.main.options.12: option '12' starts with option '1'; give options keys of one length",
        "9:7: nodes.main.options.9: option '9' is also the repeat key; change one of them",
    ],
    "bad_regex.yaml": [
        "7:14: nodes.contract.pattern: '^[12]0[0-9{6}$' is not a regular expression: unterminated character set "
        "at position 6"
    ],
    "lookup_timeout.yaml": [
        "7:16: nodes.find_customer.lookup.timeout: a lookup may wait at most 5 s; callers are waiting"
    ],
    "bad_schedule.yaml": [
        "4:15: schedules.office.timezone: 'Europe/Warsav' is not a time zone; use an IANA name such as "
        "Europe/Warsaw",
        "10:12: schedules.weekend.hours.sat: '13:00-09:00' ends before it starts; ranges cannot cross midnight, "
        "split them",
        "15:7: schedules.holidays.hours.satu: 'satu' is not a day; use mon, tue, wed, thu, fri, sat, sun or a "
        "range mon-fri",
    ],
    "unknown_schedule.yaml": [
        "10:24: nodes.open.branch.0.if.schedule: unknown schedule 'ofice'; did you mean 'office'?"
    ],
    "unknown_goto_flow.yaml": [
        "5:18: nodes.busy.goto.flow: unknown flow 'shraed'; load the file that has flow: shraed, or name a loaded "
        "flow (hotline)"
    ],
    "unknown_language.yaml": [
        "5:3: prompts.language-menu: prompt 'language-menu' has no file for pl; add pl: FILE",
        "8:33: nodes.choose.language.3: language 'de' is not one of the flow's languages (en, pl); use one of them or add it to languages:",
        "13:24: nodes.route.branch.0.if.language: language 'fr' is not one of the flow's languages (en, pl)"
        "; use one of them or add it to languages:",
    ],
    "strict_booleans.yaml": [
        "7:15: nodes.main.barge_in: expected true or false, got 'yes'; write true",
        "10:14: nodes.pin.confirm: expected true, false or a mapping, got 'on'; write true",
        "13:38: nodes.bye.voicemail.beep: expected true or false, got 0; write false",
    ],
    "impossible_pattern.yaml": [
        "8:14: nodes.pin.pattern: '^[0-9]{4}$' can never match 6 to 8 keys (min_length..max_length); it matches "
        "4 keys: write min_length: 4 and max_length: 4, or change the pattern",
        "12:14: nodes.account.pattern: '^[0-9]{6}#$' can never match 1 to 20 keys (min_length..max_length): the "
        "terminator '#' ends the input and is never part of it; leave it out of the pattern or write "
        "terminator: null",
        "17:14: nodes.contract.pattern: '^[A-Z]{2}[0-9]{6}$' can never match 1 to 8 keys (min_length..max_length); "
        "it matches no keys a caller can press (0-9, * and #): write it with those keys, e.g. ^[0-9]{1,8}$",
    ],
    "goto_a_flow.yaml": [
        "12:11: nodes.again.goto: unknown node 'hotline'; 'hotline' is a flow: write goto: {flow: hotline}"
    ],
    "suggest_valid_only.yaml": [
        "6:18: nodes.main.options.1: unknown node 'sails'; add it under nodes: or name one of main, support, bye",
        "9:36: nodes.sales.queue.priority: expected a whole number, got 'high'; write a whole number such as 30",
    ],
    "comment_as_value.yaml": [
        "7:13: nodes.main.repeat: '#' begins a YAML comment here; write '#' in quotes",
        "12:17: nodes.account.terminator: '#' begins a YAML comment here; write '#' in quotes",
    ],
    "comment_entry.yaml": ["8:7: nodes.main.options.#: '#' begins a YAML comment here; write '#' in quotes"],
    "alias_as_value.yaml": ["7:13: '*' begins an alias (*name) here; write '*' in quotes"],
    "indented_key.yaml": [
        "6:7: this line is indented more than the key above it, which already has a value; line it up with "
        "'play:'"
    ],
    "many_errors.yaml": [
        "7:10: nodes.main.options.1: unknown node 'sails'; did you mean 'sales'?",
        "9:5: nodes.main.timout: unknown key 'timout'; did you mean 'timeout'?",
        "14:38: nodes.support.queue.priority: expected a whole number, got 'high'; write a whole number such as 30",
        "17:13: nodes.bye.hangup.prompt: prompt 'goodbye.wav' ends in '.wav'; name a sound without its extension, "
        "Asterisk picks the format",
    ],
}


def error_lines(paths: list[Path]) -> list[str]:
    with pytest.raises(FlowErrors) as caught:
        load_flow_files(paths)
    return [str(error) for error in caught.value.errors]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_broken_flow(name: str) -> None:
    path = BROKEN / name
    assert error_lines([path]) == [f"{path}:{line}" for line in GOLDEN[name]]


def test_every_broken_flow_has_its_golden_lines() -> None:
    """A file added to flows_broken without expected lines would never be checked."""
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted([*GOLDEN, "missing_sound.yaml"])


def test_missing_sound_in_the_sounds_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing_sound.yaml"
    shutil.copy(BROKEN / "missing_sound.yaml", path)
    for name in ("en/welcome.wav", "en/goodbye.wav", "pl/goodbye.gsm", "pl/notes.txt"):
        (tmp_path / "sounds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sounds" / name).write_bytes(b"")
    assert error_lines([path]) == [
        f"{path}:5:3: prompts.greeting: prompt 'greeting' is missing from sounds folder 'sounds': pl/welcome"
    ]
    (tmp_path / "sounds" / "pl" / "welcome.sln16").write_bytes(b"")
    assert load_flow_files([path])["hotline"].sounds == "sounds"


def test_sounds_folder_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "missing_sound.yaml"
    shutil.copy(BROKEN / "missing_sound.yaml", path)
    assert error_lines([path]) == [
        f"{path}:3:9: sounds: sounds folder 'sounds' does not exist (looked for {tmp_path / 'sounds'})"
    ]


# --- flow files on disk ------------------------------------------------------------------------------

MAIN = """\
flow: main
languages: [en, pl]
sounds: ../sounds
start: welcome
nodes:
  welcome:
    play: welcome
    next: busy
  busy:
    goto: {flow: shared, node: sorry}
"""
SHARED = """\
flow: shared
start: bye
nodes:
  sorry:
    play: im-sorry
    next: bye
  bye:
    hangup: goodbye
"""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_good_flows_load(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "main.yaml", MAIN)
    write(tmp_path / "flows" / "shared.yml", SHARED)
    write(tmp_path / "flows" / "notes.txt", "not a flow")
    for language in ("en", "pl"):
        write(tmp_path / "sounds" / language / "welcome.ulaw", b"")
    flows = load_flow_files(flows_in(tmp_path / "flows"))
    assert sorted(flows) == ["main", "shared"]
    assert flows.sources["shared"] == str(tmp_path / "flows" / "shared.yml")
    parsed = read_flow_files(flows_in(tmp_path / "flows"))
    assert parsed["main"].position("nodes.busy.goto.node") == (10, 26)


def test_flows_in_lists_yaml_files_by_name(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.txt", "d.yaml.bak"):
        write(tmp_path / name, "")
    (tmp_path / "e.yaml").mkdir()
    assert [p.name for p in flows_in(tmp_path)] == ["a.yml", "b.yaml"]


def test_flows_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FlowErrors) as caught:
        flows_in(tmp_path / "nope")
    assert [str(e) for e in caught.value.errors] == [
        f"{tmp_path / 'nope'}:1:1: cannot read the folder: No such file or directory"
    ]


def test_sound_names(tmp_path: Path) -> None:
    for name in ("en/welcome.wav", "en/digits/1.GSM", "pl/welcome.g722", "pl/readme.md", "pl/x.sln16"):
        write(tmp_path / name, b"")
    assert sound_names(tmp_path) == frozenset({"en/welcome", "en/digits/1", "pl/welcome", "pl/x"})


def test_unreadable_files_are_errors_with_the_reason(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", "flow: good\nstart: bye\nnodes:\n  bye:\n    hangup:\n")
    latin = write(tmp_path / "latin.yaml", "flow: a\nstart: b\ndescription: caf\xe9\n".encode("latin-1"))
    assert error_lines([tmp_path / "nope.yaml", tmp_path, latin, good]) == [
        f"{tmp_path}:1:1: cannot read the file: Is a directory",
        f"{latin}:3:1: not UTF-8 text; save the file as UTF-8",
        f"{tmp_path / 'nope.yaml'}:1:1: cannot read the file: No such file or directory",
    ]
