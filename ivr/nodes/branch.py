"""`branch`: take the first arm whose condition holds, else `else`; the caller hears nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from ivr.conditions import Condition, condition_text, each_condition, holds
from ivr.fields import NodeId, Strict
from ivr.hints import did_you_mean, listed
from ivr.nodes.base import Call, Exit, Finding, NodeBase, Scope, not_a_flow_language


class Case(Strict):
    """One arm of a branch: when `if` holds, go to `goto`."""

    KEY_TABLE: ClassVar[bool] = False

    if_: Condition = Field(alias="if")
    goto: NodeId


class Branch(NodeBase):
    """Take the first arm whose condition holds, else `else`."""

    TYPE_KEY: ClassVar[str] = "branch"
    WAITS: ClassVar[bool] = False
    SHAPE: ClassVar[str] = "diamond"
    EXAMPLE: ClassVar[str] = """\
nodes:
  route:
    branch:
      - if: {schedule: office, open: false}
        goto: after_hours
      - if: {caller: anonymous}
        goto: main_menu
      - if: {caller: ["+4822*", "+4812[0-4]*"]}
        goto: local_desk
      - if: {dialed: "800?????"}
        goto: free_line
      - if: {language: pl, var: tier, equals: gold}
        goto: vip_polish
      - if: {var: tier, in: [gold, platinum]}
        goto: vip
      - if: {var: tier, not_equals: standard}
        goto: known_customer
      - if: {var: contract, matches: "20[0-9]{6}"}
        goto: business_support
      - if: {var: customer_id, exists: false}
        goto: new_caller
      - if: {var: debt, gt: 0, le: 500}
        goto: small_debt
      - if: {var: debt, ge: 500.01}
        goto: collections
      - if: {var: open_tickets, lt: 1}
        goto: main_menu
      - if:
          any:
            - {var: segment, equals: business}
            - all:
                - {schedule: office}
                - not: {language: en}
        goto: business_desk
    else: main_menu
"""

    branch: tuple[Case, ...] = Field(min_length=1)
    else_: NodeId = Field(alias="else")

    def enter(self, call: Call) -> None:
        facts = call.facts()
        for index, case in enumerate(self.branch):
            if holds(case.if_, facts):
                call.record("branch_taken", node=call.node_id, case=index, target=case.goto)
                call.go(case.goto)
                return
        call.record("branch_taken", node=call.node_id, case="else", target=self.else_)
        call.go(self.else_)

    def exits(self) -> Iterator[Exit]:
        for i, case in enumerate(self.branch):
            yield Exit(("branch", i, "goto"), case.goto, condition_text(case.if_))
        yield Exit(("else",), self.else_, "else")

    def problems(self, scope: Scope) -> Iterator[Finding]:
        """Conditions on a schedule the flow does not define, or on a language it does not offer."""
        known = {*scope.schedules, *scope.unchecked_schedules}
        for i, case in enumerate(self.branch):
            for path, cond in each_condition(case.if_, ("branch", i, "if")):
                if cond.schedule is not None and cond.schedule not in known:
                    hint = did_you_mean(cond.schedule, scope.schedules) or "; define it under schedules:" + (
                        f" or name one defined there ({listed(scope.schedules)})" if scope.schedules else ""
                    )
                    yield Finding(
                        (*path, "schedule"), f"unknown schedule '{cond.schedule}'{hint}", at_value=True
                    )
                if cond.language is not None and cond.language not in scope.languages:
                    yield Finding(
                        (*path, "language"),
                        not_a_flow_language(cond.language, scope.languages),
                        at_value=True,
                    )
