"""Branches and their conditions: schedules, caller and dialed patterns, language, variable tests and
their combinations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.conditions import Facts, as_number, holds, number_matches
from ivr.flowset import FlowSet
from ivr.model import Condition, Flow, Schedule
from ivr.session import Session

# Wednesday 4 March 2026, 10:00 in Warsaw
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)

OFFICE = Schedule.model_validate(
    {
        "timezone": "Europe/Warsaw",
        "hours": {"mon-fri": "08:00-18:00"},
        "holidays": ["12-25"],
    }
)


def facts(
    *,
    now: datetime = NOW,
    caller: str | None = "+48221234567",
    dialed: str = "800100200",
    language: str = "en",
    **variables: str,
) -> Facts:
    return Facts(
        now=now,
        caller=caller,
        dialed=dialed,
        language=language,
        variables=variables,
        schedules={"office": OFFICE},
    )


def check(condition: dict[str, Any], **kw: Any) -> bool:
    return holds(Condition.model_validate(condition), facts(**kw))


# --- schedules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        (datetime(2026, 3, 4, 9, 0, tzinfo=UTC), True),  # 10:00 local on a Wednesday
        (datetime(2026, 3, 4, 17, 30, tzinfo=UTC), False),  # 18:30 local
        (datetime(2026, 3, 7, 9, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 12, 25, 9, 0, tzinfo=UTC), False),  # a holiday
    ],
)
def test_schedule_open_and_closed(when: datetime, is_open: bool) -> None:
    assert check({"schedule": "office"}, now=when) is is_open
    assert check({"schedule": "office", "open": False}, now=when) is not is_open


def test_an_unknown_schedule_never_holds() -> None:
    assert check({"schedule": "warehouse"}) is False
    assert check({"schedule": "warehouse", "open": False}) is False


# --- numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [
        ("+4822*", "+48221234567", True),
        ("+4822*", "+48611234567", False),
        ("+48??1234567", "+48221234567", True),
        ("+48[0-1]*", "+48221234567", False),
        ("+48[0-4]*", "+48221234567", True),
        ("*", "+48221234567", True),
        ("*", None, False),
        ("anonymous", None, True),
        ("Anonymous", None, True),
        ("anonymous", "+48221234567", False),
        ("+4822", "+48221234567", False),  # a pattern matches the whole number
        ("[", "[", True),  # a broken class is a literal, never an error
    ],
)
def test_number_patterns(pattern: str, number: str | None, matches: bool) -> None:
    assert number_matches([pattern], number) is matches


def test_caller_and_dialed_conditions() -> None:
    assert check({"caller": ["+4861*", "+4822*"]}) is True
    assert check({"caller": "anonymous"}, caller=None) is True
    assert check({"caller": "+48*"}, caller=None) is False
    assert check({"dialed": "800*"}) is True
    assert check({"dialed": "anonymous"}) is False


def test_language_condition() -> None:
    assert check({"language": "pl"}, language="pl") is True
    assert check({"language": "pl"}) is False


# --- variables --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "value", "result"),
    [
        ({"equals": "gold"}, "gold", True),
        ({"equals": "gold"}, "Gold", False),
        ({"equals": 5}, "5", True),
        ({"equals": 5}, "5.0", False),  # compared as text
        ({"equals": True}, "true", True),
        ({"equals": ""}, None, True),
        ({"not_equals": "gold"}, "silver", True),
        ({"not_equals": "gold"}, "gold", False),
        ({"in": ["gold", 7]}, "7", True),
        ({"in": ["gold", 7]}, "silver", False),
        ({"matches": "[0-9]{3}"}, "123", True),
        ({"matches": "[0-9]{3}"}, "1234", False),  # the whole value must match
        ({"exists": True}, "x", True),
        ({"exists": True}, "", False),  # empty reads as missing
        ({"exists": True}, None, False),
        ({"exists": False}, None, True),
        ({"gt": 10}, "10.5", True),
        ({"gt": 10}, "10", False),
        ({"ge": 10}, "10", True),
        ({"lt": 0}, "-1", True),
        ({"le": 0}, "0.1", False),
        ({"gt": 1, "lt": 5}, "3", True),
        ({"gt": 1, "lt": 5}, "7", False),
        ({"gt": 0}, "abc", False),
        ({"lt": 0}, "abc", False),
        ({"gt": 0}, "inf", False),
        ({"lt": 0}, "nan", False),
        ({"gt": 0}, "1_000", False),
        ({"gt": 0}, None, False),
    ],
)
def test_variable_tests(test: dict[str, Any], value: str | None, result: bool) -> None:
    variables = {} if value is None else {"tier": value}
    assert check({"var": "tier", **test}, **variables) is result


def test_as_number() -> None:
    assert [as_number(v) for v in ("3", " -2.5 ", ".5", "1e3", "", "+")] == [3.0, -2.5, 0.5, None, None, None]


def test_combinations() -> None:
    assert check({"any": [{"language": "pl"}, {"caller": "+4822*"}]}) is True
    assert check({"any": [{"language": "pl"}, {"caller": "+4861*"}]}) is False
    assert check({"all": [{"language": "en"}, {"caller": "+4822*"}]}) is True
    assert check({"all": [{"language": "en"}, {"caller": "+4861*"}]}) is False
    assert check({"not": {"language": "pl"}}) is True
    assert check({"not": {"any": [{"language": "en"}]}}) is False


def test_every_test_in_one_condition_must_hold() -> None:
    condition = {"var": "product", "equals": "internet", "language": "pl"}
    assert check(condition, language="pl", product="internet") is True
    assert check(condition, language="en", product="internet") is False
    assert check(condition, language="pl", product="tv") is False


# --- the branch node --------------------------------------------------------------------------------


def branch_session() -> Session:
    spec = {
        "flow": "main",
        "schedules": {"office": OFFICE.model_dump(by_alias=True)},
        "start": "route",
        "nodes": {
            "route": {
                "branch": [
                    {"if": {"schedule": "office", "open": False}, "goto": "closed"},
                    {"if": {"var": "tier", "equals": "gold"}, "goto": "vip"},
                    {"if": {"caller": "+4822*"}, "goto": "local"},
                ],
                "else": "other",
            },
            **{name: {"hangup": None} for name in ("closed", "vip", "local", "other")},
        },
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main")


@pytest.mark.parametrize(
    ("now", "caller", "tier", "case", "target"),
    [
        (datetime(2026, 3, 4, 20, 0, tzinfo=UTC), "+48221234567", "gold", 0, "closed"),
        (NOW, "+48221234567", "gold", 1, "vip"),
        (NOW, "+48221234567", "standard", 2, "local"),
        (NOW, None, "standard", "else", "other"),
    ],
)
def test_branch_takes_the_first_arm_that_holds(
    now: datetime, caller: str | None, tier: str, case: int | str, target: str
) -> None:
    s = branch_session()
    out = s.handle(ev.CallStarted(caller=caller, dialed="100", variables={"tier": tier}), now)
    branch = [a.data for a in out if isinstance(a, act.RecordEvent) and a.type == "branch_taken"]
    assert branch == [{"node": "route", "case": case, "target": target}]
    assert s.path == ("route", target)
    assert out[-1] == act.Hangup("normal")
