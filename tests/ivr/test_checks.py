"""The graph checks on flows built from plain values: targets, reachability, loops, collisions, prompts,
schedules and languages."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.checks import (
    Unchecked,
    check_flows,
    did_you_mean,
    node_prompts,
    node_targets,
    sound_name_problem,
    waits,
)
from ivr.model import Flow

BYE = {"hangup": "goodbye"}


def make(nodes: dict[str, Any], *, name: str = "main", start: str | None = None, **extra: Any) -> Flow:
    return Flow.model_validate({"flow": name, "start": start or next(iter(nodes)), "nodes": nodes, **extra})


def found(*flows: Flow, **options: Any) -> list[tuple[str, str, str]]:
    """(flow, dotted path, message) of every problem, in a stable order."""
    problems = check_flows({f.flow: f for f in flows}, **options)
    return sorted((p.flow, ".".join(map(str, p.path)), p.message) for p in problems)


def messages(*flows: Flow, **options: Any) -> list[str]:
    return [f"{path}: {message}" for _, path, message in found(*flows, **options)]


# --- targets -----------------------------------------------------------------------------------------


def test_a_clean_flow_has_no_problems() -> None:
    flow = make(
        {
            "welcome": {"play": "welcome", "next": "main"},
            "main": {"menu": "main-menu", "options": {"1": "sales", "2": "bye"}, "failure": "bye"},
            "sales": {"queue": {"name": "sales"}, "overflow": "bye"},
            "bye": BYE,
        }
    )
    assert found(flow) == []


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"play": "x", "next": "sails"}, "nodes.a.next"),
        ({"menu": "m", "options": {"1": "sails"}}, "nodes.a.options.1"),
        ({"menu": "m", "options": {"1": "sales"}, "failure": "sails"}, "nodes.a.failure"),
        ({"collect": "v", "next": "sales", "failure": "sails"}, "nodes.a.failure"),
        ({"lookup": {"url": "http://crm"}, "next": "sales", "fallback": "sails"}, "nodes.a.fallback"),
        ({"queue": {"name": "q"}, "overflow": "sails"}, "nodes.a.overflow"),
        (
            {"branch": [{"if": {"var": "x", "exists": True}, "goto": "sails"}], "else": "sales"},
            "nodes.a.branch.0.goto",
        ),
        (
            {"branch": [{"if": {"var": "x", "exists": True}, "goto": "sales"}], "else": "sails"},
            "nodes.a.else",
        ),
        ({"goto": "sails"}, "nodes.a.goto"),
        ({"transfer": {"number": "+48221234567"}, "failure": "sails"}, "nodes.a.failure"),
        ({"callback": {"queue": "q"}, "failure": "sails"}, "nodes.a.failure"),
        ({"voicemail": {"mailbox": "box"}, "next": "sails"}, "nodes.a.next"),
        ({"say": "{x}", "next": "sails"}, "nodes.a.next"),
        ({"set": {"x": 1}, "next": "sails"}, "nodes.a.next"),
        ({"language": "en", "next": "sails"}, "nodes.a.next"),
    ],
)
def test_every_field_naming_a_node_is_checked(node: dict[str, Any], path: str) -> None:
    flow = make({"a": node, "sales": BYE})
    assert messages(flow) == [f"{path}: unknown node 'sails'; did you mean 'sales'?"]


def test_unknown_target_without_a_close_name_lists_the_nodes() -> None:
    flow = make({"a": {"play": "x", "next": "zzz"}, "bye": BYE})
    assert messages(flow) == ["nodes.a.next: unknown node 'zzz'; add it under nodes: or name one of a, bye"]


def test_suggestions_name_only_nodes_that_passed_the_schema() -> None:
    """A node the schema left out exists (naming it is no mistake) but is never suggested."""
    flow = make({"a": {"play": "x", "next": "sails"}, "bye": BYE})
    skipped = {"main": Unchecked(nodes=frozenset({"sales"}))}
    assert messages(flow, unchecked=skipped) == [
        "nodes.a.next: unknown node 'sails'; add it under nodes: or name one of a, bye"
    ]
    start = make({"a": {"play": "x", "next": "bye"}, "bye": BYE}, start="sales_")
    assert messages(start, unchecked=skipped) == [
        "start: unknown node 'sales_'; add it under nodes: or name one of a, bye"
    ]


def test_a_goto_naming_a_flow_says_how_to_write_it() -> None:
    main = make({"a": {"goto": "shared"}})
    shared = make({"entry": BYE}, name="shared")
    assert messages(main, shared) == [
        "nodes.a.goto: unknown node 'shared'; 'shared' is a flow: write goto: {flow: shared}"
    ]
    # a flow that failed to load is a flow all the same
    assert messages(main, failed_flows=frozenset({"shared"})) == [
        "nodes.a.goto: unknown node 'shared'; 'shared' is a flow: write goto: {flow: shared}"
    ]
    elsewhere = make({"a": {"play": "x", "next": "shared"}})
    assert messages(elsewhere, shared) == [
        "nodes.a.next: unknown node 'shared'; 'shared' is a flow: lead to a node with goto: {flow: shared}"
    ]


def test_unknown_target_problems_point_at_the_value() -> None:
    problems = check_flows({"main": make({"a": {"play": "x", "next": "zzz"}})})
    assert [p.at_value for p in problems] == [True]


def test_start_must_be_a_node() -> None:
    flow = make({"main": {"play": "x", "next": "bye"}, "bye": BYE}, start="mian")
    assert messages(flow) == ["start: unknown node 'mian'; did you mean 'main'?"]


def test_goto_into_another_flow() -> None:
    main = make({"a": {"goto": {"flow": "shared", "node": "busy"}}})
    shared = make({"start": {"play": "x", "next": "busy"}, "busy": BYE}, name="shared")
    assert found(main, shared) == []


def test_goto_without_node_enters_the_other_flows_start() -> None:
    main = make({"a": {"goto": {"flow": "shared"}}})
    shared = make({"entry": BYE}, name="shared")
    assert found(main, shared) == []


def test_goto_to_an_unknown_flow() -> None:
    main = make({"a": {"goto": {"flow": "shraed"}}})
    shared = make({"entry": BYE}, name="shared")
    assert messages(main, shared) == ["nodes.a.goto.flow: unknown flow 'shraed'; did you mean 'shared'?"]
    assert messages(main) == [
        "nodes.a.goto.flow: unknown flow 'shraed'; load the file that has flow: shraed, or name a loaded flow (main)"
    ]


def test_goto_to_an_unknown_node_of_another_flow() -> None:
    main = make({"a": {"goto": {"flow": "shared", "node": "bussy"}}})
    shared = make({"start": {"play": "x", "next": "busy"}, "busy": BYE}, name="shared")
    assert messages(main, shared) == [
        "nodes.a.goto.node: flow 'shared' has no node 'bussy'; did you mean 'busy'?"
    ]


def test_goto_into_a_flow_that_failed_to_load_is_not_reported() -> None:
    main = make({"a": {"goto": {"flow": "shared"}}})
    assert found(main, failed_flows=frozenset({"shared"})) == []
    assert found(main, failed_flows=None) == []


def test_targets_left_out_by_the_schema_count_as_known() -> None:
    flow = make({"a": {"play": "x", "next": "broken"}, "bye": BYE})
    assert found(flow, unchecked={"main": Unchecked(nodes=frozenset({"broken"}))}) == []


# --- reachability and loops --------------------------------------------------------------------------


def test_unreachable_node() -> None:
    flow = make({"welcome": {"play": "x", "next": "bye"}, "survey": {"play": "q", "next": "bye"}, "bye": BYE})
    assert messages(flow) == [
        "nodes.survey: no path from start 'welcome' leads to node 'survey'; link it or remove it"
    ]


def test_a_node_reached_by_a_goto_from_another_flow_is_reachable() -> None:
    main = make({"a": {"goto": {"flow": "shared", "node": "apology"}}})
    shared = make({"bye": BYE, "apology": {"play": "sorry", "next": "bye"}}, name="shared")
    assert found(main, shared) == []
    assert messages(shared) == [
        "nodes.apology: no path from start 'bye' leads to node 'apology'; link it or remove it"
    ]


def test_no_unreachable_reports_while_a_target_is_unknown() -> None:
    flow = make({"a": {"play": "x", "next": "sails"}, "sales": BYE})
    assert messages(flow) == ["nodes.a.next: unknown node 'sails'; did you mean 'sales'?"]


def test_a_loop_the_caller_cannot_leave() -> None:
    flow = make(
        {
            "main": {"menu": "m", "options": {"1": "hours"}, "failure": "main"},
            "hours": {"play": "opening-hours", "next": "main"},
        }
    )
    assert messages(flow) == [
        "nodes.main: the caller can never leave nodes 'main', 'hours': add a way on to a queue, callback, "
        "transfer, voicemail or hangup"
    ]


def test_a_menu_without_failure_hangs_up_so_it_is_a_way_out() -> None:
    flow = make(
        {
            "main": {"menu": "m", "options": {"1": "hours"}},
            "hours": {"play": "opening-hours", "next": "main"},
        }
    )
    assert found(flow) == []


def test_only_the_loop_itself_is_reported_not_the_way_into_it() -> None:
    flow = make(
        {
            "welcome": {"play": "welcome", "next": "main"},
            "main": {"menu": "m", "options": {"1": "main"}, "failure": "main"},
        }
    )
    assert [path for _, path, _ in found(flow)] == ["nodes.main"]


def test_a_loop_with_a_way_out_is_fine() -> None:
    flow = make(
        {
            "main": {"menu": "m", "options": {"1": "hours", "2": "bye"}, "failure": "main"},
            "hours": {"play": "opening-hours", "next": "main"},
            "bye": BYE,
        }
    )
    assert found(flow) == []


def test_a_loop_that_never_waits_spins() -> None:
    flow = make(
        {
            "count": {"set": {"n": "{n}1"}, "next": "check"},
            "check": {"branch": [{"if": {"var": "vip", "exists": True}, "goto": "agent"}], "else": "count"},
            "agent": {"transfer": {"extension": "100"}},
        }
    )
    assert messages(flow) == [
        "nodes.count: 'count' -> 'check' -> 'count' loop without waiting for the caller, so the call would "
        "spin forever; put a play, menu or collect in the loop"
    ]


def test_a_goto_to_itself_spins_and_is_not_also_reported_as_a_trap() -> None:
    flow = make({"a": {"goto": "a"}})
    assert messages(flow) == [
        "nodes.a: 'a' -> 'a' loop without waiting for the caller, so the call would spin forever; "
        "put a play, menu or collect in the loop"
    ]


def test_a_spinning_loop_across_flows() -> None:
    main = make({"a": {"goto": {"flow": "other"}}})
    other = make({"b": {"goto": {"flow": "main"}}}, name="other")
    assert found(main, other) == [
        (
            "main",
            "nodes.a",
            "'a' -> 'b' (flow other) -> 'a' loop without waiting for the caller, so the call would spin "
            "forever; put a play, menu or collect in the loop",
        )
    ]


def test_a_language_node_waits_only_when_it_offers_keys() -> None:
    setting = make({"a": {"language": "pl", "next": "b"}, "b": {"goto": "a"}}, languages=["en", "pl"])
    asking = make({"a": {"language": {"1": "pl"}, "next": "b"}, "b": {"goto": "a"}}, languages=["en", "pl"])
    assert [path for _, path, message in found(setting) if "spin" in message] == ["nodes.a"]
    assert [message for _, _, message in found(asking) if "spin" in message] == []


# --- collisions --------------------------------------------------------------------------------------


def test_an_option_that_starts_another() -> None:
    flow = make({"m": {"menu": "m", "options": {"1": "bye", "12": "bye", "2": "bye"}}, "bye": BYE})
    assert messages(flow) == [
        "nodes.m.options.12: option '12' starts with option '1'; give options keys of one length"
    ]


def test_an_option_equal_to_or_starting_with_the_repeat_key() -> None:
    flow = make({"m": {"menu": "m", "options": {"9": "bye", "*1": "bye"}, "repeat": "*"}, "bye": BYE})
    flow2 = make({"m": {"menu": "m", "options": {"9": "bye"}, "repeat": "9"}, "bye": BYE})
    assert messages(flow) == [
        "nodes.m.options.*1: option '*1' starts with the repeat key '*'; change one of them"
    ]
    assert messages(flow2) == ["nodes.m.options.9: option '9' is also the repeat key; change one of them"]


def test_zero_one_and_one_are_different_options() -> None:
    flow = make({"m": {"menu": "m", "options": {"1": "bye", "01": "bye"}}, "bye": BYE})
    assert found(flow) == []


def test_confirm_keys_must_differ() -> None:
    flow = make({"c": {"collect": "v", "confirm": {"yes": "1", "no": "1"}, "next": "bye"}, "bye": BYE})
    assert messages(flow) == ["nodes.c.confirm.no: confirm keys yes and no are both '1'; make them differ"]


# --- prompts -----------------------------------------------------------------------------------------


def test_sound_names() -> None:
    assert sound_name_problem("digits/1") is None
    assert sound_name_problem("custom/hotline/welcome-2") is None
    assert sound_name_problem("welcome.WAV") == (
        "ends in '.wav'; name a sound without its extension, Asterisk picks the format"
    )
    assert sound_name_problem("/var/lib/x") == sound_name_problem("a//b") == sound_name_problem("../x")
    assert (
        sound_name_problem("../x")
        == "is not a sound name; write one like 'digits/1', without empty, '.' or '..' parts"
    )


def test_a_prompt_must_be_defined_or_a_sound_name() -> None:
    flow = make({"a": {"play": ["welcome", "welcome.wav", "a//b"], "next": "bye"}, "bye": BYE})
    assert messages(flow) == [
        "nodes.a.play.1: prompt 'welcome.wav' ends in '.wav'; name a sound without its extension, Asterisk "
        "picks the format",
        "nodes.a.play.2: prompt 'a//b' is not a sound name; write one like 'digits/1', without empty, '.' or "
        "'..' parts",
    ]


def test_a_defined_prompt_is_checked_by_its_file() -> None:
    flow = make(
        {"a": {"play": "welcome.wav", "next": "bye"}, "bye": BYE},
        prompts={"welcome.wav": "welcome", "bad": "bad.mp3"},
    )
    assert messages(flow) == [
        "prompts.bad: file 'bad.mp3' ends in '.mp3'; name a sound without its extension, Asterisk picks the format"
    ]


def test_prompts_per_language_cover_every_language() -> None:
    flow = make(
        {"a": {"play": "welcome", "next": "bye"}, "bye": BYE},
        languages=["en", "pl", "de"],
        prompts={"welcome": {"en": "hello", "fr": "bonjour"}},
    )
    assert messages(flow) == [
        "prompts.welcome: prompt 'welcome' has no file for pl, de; add pl: FILE, de: FILE",
        "prompts.welcome.fr: language 'fr' is not one of the flow's languages (en, pl, de); use one of them or add it to languages:",
    ]


def test_a_sounds_folder_must_hold_every_prompt_in_every_language() -> None:
    flow = make(
        {
            "a": {"play": ["greeting", "thanks"], "next": "m"},
            "m": {"menu": "options", "options": {"1": "bye"}},
            "bye": BYE,
        },
        languages=["en", "pl"],
        sounds="sounds",
        prompts={"greeting": {"en": "hello", "pl": "czesc"}},
    )
    available = frozenset({"en/hello", "en/thanks", "pl/thanks", "en/options", "pl/options", "en/goodbye"})
    assert messages(flow, sounds={"main": available}) == [
        "nodes.bye.hangup.prompt.0: prompt 'goodbye' is missing from sounds folder 'sounds': pl/goodbye",
        "nodes.m.invalid.0: prompt 'pm-invalid-option' is missing from sounds folder 'sounds': "
        "en/pm-invalid-option, pl/pm-invalid-option",
        "prompts.greeting: prompt 'greeting' is missing from sounds folder 'sounds': pl/czesc",
    ]


def test_a_missing_sound_is_reported_once_at_its_first_use() -> None:
    flow = make(
        {"a": {"play": "thanks", "next": "b"}, "b": {"play": "thanks", "next": "bye"}, "bye": BYE},
        sounds="sounds",
    )
    assert messages(flow, sounds={"main": frozenset({"en/goodbye"})}) == [
        "nodes.a.play.0: prompt 'thanks' is missing from sounds folder 'sounds': en/thanks"
    ]


def test_without_a_listing_the_sounds_folder_is_not_checked() -> None:
    flow = make({"a": {"play": "thanks", "next": "bye"}, "bye": BYE}, sounds="sounds")
    assert found(flow) == []
    assert found(flow, sounds={"other": frozenset()}) == []


def test_node_prompts_include_defaults() -> None:
    flow = make({"c": {"collect": "v", "confirm": True, "next": "c"}})
    assert list(node_prompts(flow.nodes["c"])) == [
        (("invalid", 0), "pm-invalid-option"),
        (("confirm", "prompt", 0), "you-entered"),
        (("confirm", "question", 0), "if-correct-press"),
        (("confirm", "question", 1), "digits/1"),
    ]


# --- schedules and languages -------------------------------------------------------------------------

OFFICE = {"timezone": "Europe/Warsaw", "hours": {"mon-fri": "08:00-17:00"}}


def test_branch_on_an_unknown_schedule() -> None:
    flow = make(
        {
            "b": {
                "branch": [
                    {"if": {"schedule": "ofice"}, "goto": "bye"},
                    {"if": {"any": [{"caller": "+48*"}, {"not": {"schedule": "weekend"}}]}, "goto": "bye"},
                ],
                "else": "bye",
            },
            "bye": BYE,
        },
        schedules={"office": OFFICE},
    )
    assert messages(flow) == [
        "nodes.b.branch.0.if.schedule: unknown schedule 'ofice'; did you mean 'office'?",
        "nodes.b.branch.1.if.any.1.not.schedule: unknown schedule 'weekend'; define it under schedules: or name "
        "one defined there (office)",
    ]


def test_branch_on_a_schedule_when_none_is_defined() -> None:
    flow = make({"b": {"branch": [{"if": {"schedule": "office"}, "goto": "bye"}], "else": "bye"}, "bye": BYE})
    assert messages(flow) == [
        "nodes.b.branch.0.if.schedule: unknown schedule 'office'; define it under schedules:"
    ]
    skipped = {"main": Unchecked(schedules=frozenset({"office"}))}
    assert found(flow, unchecked=skipped) == []


def test_language_codes_must_be_the_flows() -> None:
    flow = make(
        {
            "l": {"language": {"1": "en", "2": "de"}, "default": "fr", "next": "s"},
            "s": {"language": "es", "next": "t"},
            "t": {"language": "{lang}", "next": "b"},
            "b": {"branch": [{"if": {"all": [{"language": "it"}]}, "goto": "bye"}], "else": "bye"},
            "bye": BYE,
        },
        languages=["en", "pl"],
    )
    assert messages(flow) == [
        "nodes.b.branch.0.if.all.0.language: language 'it' is not one of the flow's languages (en, pl); use one of them or add it to languages:",
        "nodes.l.default: language 'fr' is not one of the flow's languages (en, pl); use one of them or add it to languages:",
        "nodes.l.language.2: language 'de' is not one of the flow's languages (en, pl); use one of them or add it to languages:",
        "nodes.s.language: language 'es' is not one of the flow's languages (en, pl); use one of them or add it to languages:",
    ]


# --- helpers -----------------------------------------------------------------------------------------


def test_node_targets_name_their_paths() -> None:
    flow = make(
        {
            "m": {"menu": "m", "options": {"1": "a", "2": "b"}, "failure": "c"},
            "b": {"branch": [{"if": {"var": "x", "exists": True}, "goto": "a"}], "else": "c"},
            "a": BYE,
            "c": {"goto": {"flow": "other"}},
        }
    )
    assert node_targets(flow.nodes["m"]) == [
        (("options", "1"), "a"),
        (("options", "2"), "b"),
        (("failure",), "c"),
    ]
    assert node_targets(flow.nodes["b"]) == [(("branch", 0, "goto"), "a"), (("else",), "c")]
    assert node_targets(flow.nodes["a"]) == node_targets(flow.nodes["c"]) == []


def test_waits() -> None:
    flow = make({"p": {"play": "x", "next": "s"}, "s": {"set": {"x": 1}, "next": "p"}})
    assert waits(flow.nodes["p"]) is True
    assert waits(flow.nodes["s"]) is False


def test_did_you_mean() -> None:
    assert did_you_mean("sails", ["sales", "support"]) == "; did you mean 'sales'?"
    assert did_you_mean("zzz", ["sales"]) == ""
