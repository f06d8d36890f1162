"""The agent graph, built by a factory from the switches that are on (never at import time).

    context → [route → react, when the question needs tools] → [hyde → retrieve] → generate → validate →
    [the checks that are on: policy.CHECKS] → execute → answer, with repair on a fixable error (at most N
    times). With self-consistency, one request samples N candidates, and the graph fans out a branch per
    candidate (validate → checks → execute, as a subgraph; → repair too with sc_repair_each) whose results
    are voted on; when none of them ran, the chosen one goes through repair like a single answer. With
    escalation, the first try is one greedy answer (context → [retrieve, with first_try_examples] →
    generate → validate → checks → execute [→ confirm] → answer); a failed, empty or unconfirmed one goes
    to ``escalate`` and from there down the path above,
    its SQL kept as the draft.

``build_graph`` adds only the nodes whose switches are on (``policy.shape_of``): without a retrieval
technique there is no ``retrieve``, with one sample no ``sample``/``vote``, with repair off no ``repair``.
Within that graph the routers (pure functions of the state and the switches) choose the branch.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.answer import answer
from agent.nodes.checks import CheckNode
from agent.nodes.context import gather_context
from agent.nodes.escalate import confirm, escalate
from agent.nodes.execute import execute
from agent.nodes.generate import generate, sample
from agent.nodes.hyde import hyde
from agent.nodes.react import after_route, react, route
from agent.nodes.repair import repair
from agent.nodes.retrieve import retrieve
from agent.nodes.validate import validate
from agent.nodes.vote import collect, fan_out, vote
from agent.policy import GraphShape, after_zero_shot, can_repair, cascading, drafts, shape_of, wants_retrieval
from agent.state import AgentState, Candidate
from agent.trace import Step
from core.config import Techniques

Graph = StateGraph[AgentState, RunContext, Any, Any]
SqlStart = Literal["hyde", "retrieve", "generate", "sample"]


def after_writing(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["validate", "repair", "escalate", "__end__"]:
    """After generate or repair: check the new SQL, or retry when the reply had none (or repeated itself).
    A plan that names unknown things is repaired when repair is on, and otherwise just noted. A failed
    zero-shot try of an escalating run escalates instead."""
    if not state.get("error"):
        return "validate"
    if cascading(state, runtime):
        return "escalate"
    if can_repair(state, runtime):
        return "repair"
    return "validate" if state.get("error_kind") == "plan" else "__end__"


def after_validate(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["execute", "repair", "escalate", "__end__"]:
    if not state.get("error"):
        return "execute"
    if state.get("error_kind") != "unsafe" and cascading(state, runtime):
        return "escalate"
    return "repair" if can_repair(state, runtime) else "__end__"


def after_execute(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["answer", "repair", "confirm", "escalate", "__end__"]:
    if cascading(state, runtime):  # the zero-shot try: answered only when it is good enough
        return after_zero_shot(state, runtime.context.techniques)
    if not state.get("error"):
        return "answer"
    return "repair" if can_repair(state, runtime) else "__end__"


def write_sql(state: AgentState, runtime: Runtime[RunContext]) -> Literal["generate", "sample"]:
    """One greedy answer, or N samples for self-consistency (never for the first try of an escalating run)."""
    if runtime.context.techniques.self_consistency > 1 and not cascading(state, runtime):
        return "sample"
    return "generate"


def to_sql_path(state: AgentState, runtime: Runtime[RunContext]) -> SqlStart:
    """Retrieve context when a retrieval technique is on (and there is a store), after drafting a SQL to
    search with (HyDE) when one is wanted; else start writing SQL. An escalating run tries one greedy
    answer first: zero-shot, or with ``first_try_examples``."""
    if cascading(state, runtime) and not runtime.context.techniques.first_try_examples:
        return "generate"
    if not wants_retrieval(runtime):
        return write_sql(state, runtime)
    return "hyde" if drafts(state, runtime) else "retrieve"


def after_context(state: AgentState, runtime: Runtime[RunContext]) -> Literal["route"] | SqlStart:
    """With tools on (and registered), a question may need them instead of SQL: route it first."""
    t, deps = runtime.context.techniques, runtime.context.deps
    return "route" if t.tools and deps.tools is not None else to_sql_path(state, runtime)


def after_routing(state: AgentState, runtime: Runtime[RunContext]) -> Literal["react"] | SqlStart:
    return "react" if after_route(state) == "react" else to_sql_path(state, runtime)


def after_vote(state: AgentState, runtime: Runtime[RunContext]) -> Literal["answer", "repair", "__end__"]:
    """The chosen candidate is answered; when none ran, the chosen one is repaired (as a single answer is)."""
    if not state.get("error"):
        return "answer"
    return "repair" if can_repair(state, runtime) else "__end__"


def start_candidate(state: AgentState, runtime: Runtime[RunContext]) -> Literal["validate", "repair", "collect"]:
    """A candidate branch starts from its sample: check it, or repair a sample that had no usable SQL."""
    route = after_writing(state, runtime)
    if route == "__end__" or route == "escalate":  # a branch exists only once the run has escalated
        return "collect"
    return route


def after_confirm(state: AgentState, runtime: Runtime[RunContext]) -> Literal["answer", "confirm", "escalate"]:
    return after_zero_shot(state, runtime.context.techniques)


def _present(graph: Graph, ends: dict[Hashable, str]) -> dict[Hashable, str]:
    """A router's branches that lead to a node of this graph (the router never takes the others)."""
    return {route: node for route, node in ends.items() if node == END or node in graph.nodes}


def _add_sql_loop(graph: Graph, done: str, failed: str, repairs: bool, checks: tuple[str, ...] = (),
                  escalated: str | None = None, confirm: str | None = None) -> None:
    """validate → the checks that are on → execute (→ repair → validate ...), ending at ``done`` or
    ``failed`` (or at ``escalated`` when a zero-shot try is not good enough, or ``confirm`` to check it; a
    graph without escalation has neither, and a branch never takes them). A check routes as validate
    does: on to the next (``"execute"`` in the router's words), or to repair on a problem."""
    graph.add_node("validate", validate)
    for name in checks:
        graph.add_node(name, CheckNode(name))
    graph.add_node("execute", execute)
    if repairs:
        graph.add_node("repair", repair)
    ends: dict[Hashable, str] = {"repair": "repair", "escalate": escalated or "", END: failed}
    if repairs:
        graph.add_conditional_edges("repair", after_writing, _present(graph, {"validate": "validate", **ends}))
    chain = ["validate", *checks, "execute"]
    for node, following in zip(chain, chain[1:], strict=False):
        graph.add_conditional_edges(node, after_validate, _present(graph, {"execute": following, **ends}))
    graph.add_conditional_edges("execute", after_execute, _present(graph, {"answer": done, **ends,
                                                                           "confirm": confirm or ""}))


class CandidateOutput(TypedDict):
    candidates: list[Candidate]
    trace: list[Step]


def build_candidate_graph(
    repairs: bool, checks: tuple[str, ...] = ()
) -> CompiledStateGraph[AgentState, RunContext, AgentState, CandidateOutput]:
    """One self-consistency branch: its sample through the SQL loop (repaired in the branch only with
    ``sc_repair_each``), then ``collect`` packages the outcome."""
    graph = StateGraph(AgentState, context_schema=RunContext, output_schema=CandidateOutput)
    graph.add_node("collect", collect)
    _add_sql_loop(graph, done="collect", failed="collect", repairs=repairs, checks=checks)
    graph.add_conditional_edges(START, start_candidate, _present(graph, {"validate": "validate", "repair": "repair",
                                                                         "collect": "collect"}))
    graph.add_edge("collect", END)
    return graph.compile()


def build_graph(
    techniques: Techniques, checkpointer: Any = None
) -> CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]:
    """The graph for these switches (compiled once per shape and checkpointer)."""
    return compiled_graph(shape_of(techniques), checkpointer)


@functools.lru_cache(maxsize=64)
def compiled_graph(
    shape: GraphShape, checkpointer: Any = None
) -> CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]:
    graph = StateGraph(AgentState, context_schema=RunContext)
    writers = ["generate", *(["sample"] if shape.samples else [])]
    retrieving = ["retrieve"] if shape.retrieves else []
    sql_start = [*(["hyde"] if shape.drafts else []), *retrieving, *writers]

    graph.add_node("context", gather_context)
    graph.add_edge(START, "context")
    if shape.tools:  # a question may need the tools instead of SQL: route it first
        graph.add_node("route", route)
        graph.add_node("react", react)
        graph.add_conditional_edges("context", after_context, ["route", *sql_start])
        graph.add_conditional_edges("route", after_routing, ["react", *sql_start])
        graph.add_edge("react", END)
    else:
        graph.add_conditional_edges("context", after_context, sql_start)
    if shape.drafts:  # the HyDE draft, searched with
        graph.add_node("hyde", hyde)
        graph.add_edge("hyde", "retrieve")
    if shape.retrieves:
        graph.add_node("retrieve", retrieve)
        graph.add_conditional_edges("retrieve", write_sql, writers)

    graph.add_node("generate", generate)
    graph.add_node("answer", answer)
    if shape.escalates:
        graph.add_node("escalate", escalate)
    if shape.confirms:
        graph.add_node("confirm", confirm)
    _add_sql_loop(graph, done="answer", failed=END, repairs=shape.repairs, checks=shape.checks,
                  escalated="escalate" if shape.escalates else None, confirm="confirm" if shape.confirms else None)
    graph.add_conditional_edges("generate", after_writing, _present(graph, {
        "validate": "validate", "repair": "repair", "escalate": "escalate", END: END}))
    if shape.samples:  # N candidates, each checked and run in its own branch, voted on
        graph.add_node("sample", sample)
        graph.add_node("candidate", build_candidate_graph(shape.repairs_each, shape.checks))
        graph.add_node("vote", vote)
        graph.add_conditional_edges("sample", fan_out, ["candidate"])
        graph.add_edge("candidate", "vote")
        graph.add_conditional_edges("vote", after_vote, _present(graph, {"answer": "answer", "repair": "repair",
                                                                         END: END}))
    if shape.escalates:
        graph.add_conditional_edges("escalate", to_sql_path, [*retrieving, *writers])
    if shape.confirms:
        graph.add_conditional_edges("confirm", after_confirm, ["answer", "confirm", "escalate"])
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
