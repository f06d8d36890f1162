"""Each router of the graph and each predicate of agent/policy.py on its own, as a table: state and switches
in, the branch out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime

from agent import graph
from agent.deps import Deps, RunContext
from agent.nodes.react import after_route
from agent.nodes.vote import fan_out
from agent.policy import (
    GraphShape,
    after_zero_shot,
    can_repair,
    cascading,
    drafts,
    reason_to_escalate,
    shape_of,
    wants_retrieval,
)
from agent.state import AgentState
from core.config import Techniques
from core.db import Database

STORE, TOOLS = "store", "tools"  # which dependencies are present


def runtime(*present: str, **switches: Any) -> Runtime[RunContext]:
    """A runtime with placeholder dependencies: the routers only look at whether they are there."""
    deps = Deps(
        llm=cast(BaseChatModel, None), db=cast(Database, None),
        knowledge=cast(Any, object()) if STORE in present else None,
        tools=cast(Any, object()) if TOOLS in present else None,
    )
    return Runtime(context=RunContext(deps, Techniques(**switches)))


def state(**values: Any) -> AgentState:
    return cast(AgentState, values)


ESCALATING = {"escalate": True, "self_consistency": 3}  # something to escalate to: samples
FLOOR = ESCALATING | {"escalate_min_logprob": -1.0}  # (Techniques refuses a floor without escalate)
FAILED = {"error": "no such column: x", "error_kind": "error"}


@pytest.mark.parametrize(
    "present, switches, expected",
    [
        ((), {}, False),
        ((STORE,), {}, False),  # a store, but no retrieval technique on
        ((), {"few_shot": 2}, False),  # examples wanted, but no store to draw them from
        ((STORE,), {"few_shot": 2}, True),
        ((STORE,), {"prompt_budget": 500}, True),  # the budget ranks tables and examples through the store
        ((STORE,), {"escalate": True, "self_consistency": 3, "first_try_examples": 2}, True),
    ],
)
def test_wants_retrieval(present: tuple[str, ...], switches: dict[str, Any], expected: bool) -> None:
    assert wants_retrieval(runtime(*present, **switches)) is expected


MINIMAL_SHAPE = GraphShape(tools=True, retrieves=False, drafts=False, samples=False, repairs=True,
                           repairs_each=False, escalates=False, confirms=False, checks=("fix_qualifiers",))


@pytest.mark.parametrize(
    "switches, changed",
    [
        ({}, {}),  # the unit tests' minimal techniques: tools and repair
        ({"tools": False}, {"tools": False}),
        ({"fix_qualifiers": False}, {"checks": ()}),
        ({"max_repairs": 0}, {"repairs": False}),  # repair on, but none left to make
        ({"repair": False}, {"repairs": False}),
        ({"values": True}, {"retrieves": True}),
        ({"hyde": True}, {"retrieves": True, "drafts": True}),
        ({"difficulty": True}, {"retrieves": True, "drafts": True}),  # predicts hardness from the draft
        ({"self_consistency": 3}, {"samples": True}),
        ({"self_consistency": 3, "sc_repair_each": True}, {"samples": True, "repairs_each": True}),
        ({"self_consistency": 3, "sc_repair_each": True, "repair": False}, {"samples": True, "repairs": False}),
        (ESCALATING, {"samples": True, "escalates": True}),
        (ESCALATING | {"escalate_check": 2}, {"samples": True, "escalates": True, "confirms": True}),
    ],
)
def test_shape_of(switches: dict[str, Any], changed: dict[str, bool]) -> None:
    assert shape_of(Techniques(**switches)) == replace(MINIMAL_SHAPE, **changed)


@pytest.mark.parametrize(
    "samples, switches, may_repair",
    [
        ([], {"self_consistency": 3}, False),  # nothing sampled: no branch
        ([{"sql": "SELECT 1"}, {"sql": None, "error": "no SQL"}], {"self_consistency": 3}, False),
        ([{"sql": "SELECT 1", "tried_sql": ["SELECT 1"]}], {"self_consistency": 3, "sc_repair_each": True}, True),
    ],
)
def test_fan_out(samples: list[dict[str, Any]], switches: dict[str, Any], may_repair: bool) -> None:
    shared = {"question": "q", "schema_text": "CREATE TABLE t (x)", "examples_text": "", "escalated": True}
    sends = fan_out(state(**shared, samples=samples, sql="not shared", repairs=2), runtime(**switches))
    assert [send.node for send in sends] == ["candidate"] * len(samples)
    assert [send.arg for send in sends] == [
        {**shared, **sample, "candidate_index": i, "repairs": 0, "may_repair": may_repair,
         "tried_sql": sample.get("tried_sql", [])}
        for i, sample in enumerate(samples)
    ]


@pytest.mark.parametrize(
    "values, present, switches, expected",
    [
        ({}, (), {"self_consistency": 3}, False),  # escalate off
        ({}, (), {"escalate": True, "few_shot": 2}, False),  # examples, but no store to draw them from
        ({}, (STORE,), {"escalate": True, "few_shot": 2}, True),
        ({}, (), ESCALATING, True),
        ({"escalated": True}, (), ESCALATING, False),  # the escalated run is not the first try
    ],
)
def test_cascading(values: dict[str, Any], present: tuple[str, ...], switches: dict[str, Any], expected: bool) -> None:
    assert cascading(state(**values), runtime(*present, **switches)) is expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        (FAILED, {}, True),
        (FAILED, {"repair": False}, False),
        (FAILED | {"repairs": 1}, {"max_repairs": 2}, True),
        (FAILED | {"repairs": 2}, {"max_repairs": 2}, False),  # none left
        (FAILED, {"max_repairs": 0}, False),
        ({"error": "refused", "error_kind": "unsafe"}, {}, False),  # refused SQL is never retried
        (FAILED | {"may_repair": False}, {}, False),  # a repeated SQL, given up on
    ],
)
def test_can_repair(values: dict[str, Any], switches: dict[str, Any], expected: bool) -> None:
    assert can_repair(state(**values), runtime(**switches)) is expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"error": "boom", "error_kind": "syntax"}, {}, "it failed (syntax)"),
        ({"error": "boom"}, {}, "it failed (error)"),
        ({"rows": []}, {}, "it returned no rows"),
        ({}, {}, "it returned no rows"),
        ({"rows": [[1]], "confirmed": False}, {}, "a zero-shot sample returned other rows"),
        ({"rows": [[1]]}, {}, None),
        ({"rows": [[1]], "confirmed": True}, {}, None),
        ({"rows": [[1]], "confidence": {"min_logprob": -2.0, "weakest": "x"}}, {}, None),  # no floor asked for
        ({"rows": [[1]]}, FLOOR, None),  # the endpoint sent no log-probabilities
        ({"rows": [[1]], "confidence": {"min_logprob": -2.0, "weakest": "x"}}, FLOOR,
         "the model was unsure of 'x' (log-probability -2.00 < -1.00)"),
        ({"rows": [[1]], "confidence": {"min_logprob": -0.5, "weakest": "x"}}, FLOOR, None),
    ],
)
def test_reason_to_escalate(values: dict[str, Any], switches: dict[str, Any], expected: str | None) -> None:
    assert reason_to_escalate(state(**values), Techniques(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        (FAILED, {}, "escalate"),
        ({"rows": []}, ESCALATING | {"escalate_check": 2}, "escalate"),
        ({"rows": [[1]]}, {}, "answer"),
        ({"rows": [[1]]}, ESCALATING | {"escalate_check": 2}, "confirm"),
        ({"rows": [[1]], "confirmed": True}, ESCALATING | {"escalate_check": 2}, "answer"),
        ({"rows": [[1]], "confirmed": False}, ESCALATING | {"escalate_check": 2}, "escalate"),
    ],
)
def test_after_zero_shot(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert after_zero_shot(state(**values), Techniques(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"sql": "SELECT 1"}, {}, "validate"),
        (FAILED, ESCALATING, "escalate"),  # a failed first try escalates
        (FAILED | {"escalated": True}, ESCALATING, "repair"),
        (FAILED, {}, "repair"),
        (FAILED | {"repairs": 2}, {"max_repairs": 2}, "__end__"),
        (FAILED | {"may_repair": False}, {}, "__end__"),
        ({"error": "plan", "error_kind": "plan"}, {"repair": False}, "validate"),  # a bad plan is only noted
        ({"error": "no sql", "error_kind": "no_sql"}, {"repair": False}, "__end__"),
    ],
)
def test_after_writing(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_writing(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"sql": "SELECT 1"}, {}, "execute"),
        ({"error": "bad", "error_kind": "syntax"}, ESCALATING, "escalate"),
        ({"error": "refused", "error_kind": "unsafe"}, ESCALATING, "__end__"),  # refused SQL is never retried
        ({"error": "refused", "error_kind": "unsafe"}, {}, "__end__"),
        ({"error": "bad", "error_kind": "syntax"}, {}, "repair"),
        ({"error": "bad", "error_kind": "syntax"}, {"repair": False}, "__end__"),
    ],
)
def test_after_validate(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_validate(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"rows": [[1]]}, ESCALATING, "answer"),  # a good first try is answered
        ({"rows": []}, ESCALATING, "escalate"),
        ({"rows": [[1]]}, ESCALATING | {"escalate_check": 2}, "confirm"),
        ({"rows": [[1]]}, {}, "answer"),
        ({"rows": []}, {}, "answer"),  # without escalation, no rows is an answer
        (FAILED, {}, "repair"),
        (FAILED, {"repair": False}, "__end__"),
    ],
)
def test_after_execute(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_execute(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({}, {}, "generate"),
        ({}, {"self_consistency": 3}, "sample"),
        ({}, ESCALATING, "generate"),  # the first try is one greedy answer
        ({"escalated": True}, ESCALATING, "sample"),
    ],
)
def test_write_sql(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.write_sql(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, present, switches, expected",
    [
        ({}, (), {}, "generate"),
        ({}, (), {"self_consistency": 3}, "sample"),
        ({}, (STORE,), {"few_shot": 2}, "retrieve"),
        ({}, (), {"few_shot": 2}, "generate"),  # no store: the retrieval techniques are skipped
        ({}, (STORE,), {"escalate": True, "few_shot": 2}, "generate"),  # a zero-shot first try
        ({}, (STORE,), {"escalate": True, "first_try_examples": 2}, "retrieve"),  # a first try with examples
        ({"escalated": True}, (STORE,), {"escalate": True, "few_shot": 2}, "retrieve"),
        ({}, (STORE,), {"few_shot": 2, "hyde": True}, "hyde"),  # a draft to search with, first
        ({}, (STORE,), {"difficulty": True}, "hyde"),  # a draft to predict hardness from
        ({}, (), {"hyde": True}, "generate"),  # no store: no draft either
        ({"escalated": True}, (STORE,), {"escalate": True, "hyde": True}, "retrieve"),  # the first try is the draft
        ({}, (STORE,), {"escalate": True, "hyde": True, "first_try_examples": 2}, "retrieve"),  # no draft yet
    ],
)
def test_to_sql_path(values: dict[str, Any], present: tuple[str, ...], switches: dict[str, Any], expected: str) -> None:
    assert graph.to_sql_path(state(**values), runtime(*present, **switches)) == expected


@pytest.mark.parametrize(
    "present, switches, expected",
    [
        ((TOOLS,), {}, "route"),
        ((), {}, "generate"),  # no tools registered
        ((TOOLS,), {"tools": False}, "generate"),
        ((TOOLS, STORE), {"tools": False, "few_shot": 2}, "retrieve"),
    ],
)
def test_after_context(present: tuple[str, ...], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_context(state(), runtime(*present, **switches)) == expected


@pytest.mark.parametrize(
    "values, present, switches, expected",
    [
        ({"route": "tools"}, (TOOLS,), {}, "react"),
        ({"route": "sql"}, (TOOLS,), {}, "generate"),
        ({"route": "sql"}, (TOOLS, STORE), {"few_shot": 2}, "retrieve"),
        ({"route": "sql"}, (TOOLS,), {"self_consistency": 3}, "sample"),
    ],
)
def test_after_routing(
    values: dict[str, Any], present: tuple[str, ...], switches: dict[str, Any], expected: str
) -> None:
    assert graph.after_routing(state(**values), runtime(*present, **switches)) == expected


@pytest.mark.parametrize("route, expected", [("tools", "react"), ("sql", "generate"), (None, "generate")])
def test_after_route(route: str | None, expected: str) -> None:
    assert after_route(state(route=route)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"rows": [[1]]}, {}, "answer"),
        (FAILED, {}, "repair"),
        (FAILED, {"repair": False}, "__end__"),
        ({"error": "refused", "error_kind": "unsafe"}, {}, "__end__"),
    ],
)
def test_after_vote(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_vote(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"sql": "SELECT 1"}, {}, "validate"),
        ({"error": "no sql", "error_kind": "no_sql"}, {}, "repair"),
        ({"error": "no sql", "error_kind": "no_sql"}, {"repair": False}, "collect"),
        ({"error": "plan", "error_kind": "plan"}, {"repair": False}, "validate"),
        ({"error": "no sql", "error_kind": "no_sql"}, ESCALATING, "collect"),  # a branch never escalates
    ],
)
def test_start_candidate(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.start_candidate(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, switches, expected",
    [
        ({"rows": [[1]], "confirmed": True}, ESCALATING | {"escalate_check": 2}, "answer"),
        ({"rows": [[1]], "confirmed": False}, ESCALATING | {"escalate_check": 2}, "escalate"),
        ({"rows": [[1]]}, ESCALATING | {"escalate_check": 2}, "confirm"),
    ],
)
def test_after_confirm(values: dict[str, Any], switches: dict[str, Any], expected: str) -> None:
    assert graph.after_confirm(state(**values), runtime(**switches)) == expected


@pytest.mark.parametrize(
    "values, present, switches, expected",
    [
        ({}, (STORE,), {"hyde": True}, True),
        ({}, (STORE,), {"difficulty": True}, True),
        ({}, (STORE,), {"few_shot": 2}, False),
        ({"escalated": True}, (STORE,), {"escalate": True, "hyde": True}, False),
        ({}, (STORE,), {"escalate": True, "hyde": True, "first_try_examples": 2}, False),  # the first try
    ],
)
def test_drafts(values: dict[str, Any], present: tuple[str, ...], switches: dict[str, Any], expected: bool) -> None:
    assert drafts(state(**values), runtime(*present, **switches)) is expected


BARE = {"tools": False, "fix_qualifiers": False}  # no tools, no check
SQL_LOOP = {"context", "generate", "validate", "execute", "answer"}
LINE = {("__start__", "context"), ("context", "generate"), ("generate", "validate"), ("generate", "__end__"),
        ("validate", "execute"), ("validate", "__end__"), ("execute", "answer"), ("execute", "__end__"),
        ("answer", "__end__")}
REPAIR = {("generate", "repair"), ("validate", "repair"), ("execute", "repair"), ("repair", "validate"),
          ("repair", "repair"), ("repair", "__end__")}


@pytest.mark.parametrize(
    "switches, nodes, edges",
    [
        (BARE | {"repair": False}, SQL_LOOP, LINE),  # the baseline: one straight line
        (BARE | {"max_repairs": 0}, SQL_LOOP, LINE),  # no repair left to make: no repair node
        (BARE, SQL_LOOP | {"repair"}, LINE | REPAIR),
        ({"repair": False, "fix_qualifiers": False}, SQL_LOOP | {"route", "react"},
         LINE | {("context", "route"), ("route", "generate"), ("route", "react"), ("react", "__end__")}),
        (BARE | {"repair": False, "few_shot": 2}, SQL_LOOP | {"retrieve"},
         LINE | {("context", "retrieve"), ("retrieve", "generate")}),
        (BARE | {"repair": False, "hyde": True}, SQL_LOOP | {"hyde", "retrieve"},
         LINE | {("context", "hyde"), ("context", "retrieve"), ("hyde", "retrieve"), ("retrieve", "generate")}),
        (BARE | {"repair": False, "self_consistency": 3}, SQL_LOOP | {"sample", "candidate", "vote"},
         LINE | {("context", "sample"), ("sample", "candidate"), ("candidate", "vote"), ("vote", "answer"),
                 ("vote", "__end__")}),
        (BARE | {"repair": False, "self_consistency": 3, "escalate": True, "escalate_check": 2},
         SQL_LOOP | {"sample", "candidate", "vote", "escalate", "confirm"},
         LINE | {("context", "sample"), ("sample", "candidate"), ("candidate", "vote"), ("vote", "answer"),
                 ("vote", "__end__"), ("generate", "escalate"), ("validate", "escalate"), ("execute", "escalate"),
                 ("execute", "confirm"), ("escalate", "generate"), ("escalate", "sample"), ("confirm", "answer"),
                 ("confirm", "confirm"), ("confirm", "escalate")}),
        # a check (policy.CHECKS) sits between validate and execute, and routes as validate does
        ({"tools": False}, SQL_LOOP | {"repair", "fix_qualifiers"},
         (LINE - {("validate", "execute")}) | REPAIR | {("validate", "fix_qualifiers"), ("fix_qualifiers", "execute"),
                                                      ("fix_qualifiers", "repair"), ("fix_qualifiers", "__end__")}),
    ],
)
def test_the_graph_has_only_the_nodes_of_the_switches_that_are_on(
    switches: dict[str, Any], nodes: set[str], edges: set[tuple[str, str]]
) -> None:
    drawn = graph.build_graph(Techniques(**switches)).get_graph()
    assert set(drawn.nodes) - {"__start__", "__end__"} == nodes
    assert {(e.source, e.target) for e in drawn.edges} == edges


@pytest.mark.parametrize(
    "switches, repairs",
    [({"self_consistency": 3}, False), ({"self_consistency": 3, "sc_repair_each": True}, True),
     ({"self_consistency": 3, "sc_repair_each": True, "repair": False}, False)],
)
def test_a_candidate_branch_repairs_only_with_sc_repair_each(switches: dict[str, Any], repairs: bool) -> None:
    candidate = graph.build_graph(Techniques(**switches)).get_graph(xray=True)
    assert ("candidate:repair" in candidate.nodes) is repairs


def test_the_compiled_graph_is_cached_per_shape() -> None:
    assert graph.build_graph(Techniques(few_shot=2)) is graph.build_graph(Techniques(few_shot=5, values=True))
    assert graph.build_graph(Techniques(few_shot=2)) is not graph.build_graph(Techniques(few_shot=2, hyde=True))
