"""The agent graph, built by factories (never at import time).

    context → [route → react, when the question needs tools] → [retrieve] → generate → validate →
    execute → answer, with repair on a fixable error (at most N times). With self-consistency, one
    request samples N candidates, and the graph fans out a branch per candidate (validate → execute, as
    a subgraph; → repair too with sc_repair_each) whose results are voted on; when none of them ran, the
    chosen one goes through repair like a single answer. With escalation, the first try is one greedy
    answer (context → [retrieve, with first_try_examples] → generate → validate → execute [→ confirm] →
    answer); a failed, empty or unconfirmed one goes to ``escalate`` and from there down the path above,
    its SQL kept as the draft.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.answer import answer
from agent.nodes.context import gather_context
from agent.nodes.escalate import confirm, escalate
from agent.nodes.execute import execute
from agent.nodes.generate import generate, sample
from agent.nodes.react import after_route, react, route
from agent.nodes.repair import repair
from agent.nodes.retrieve import retrieve
from agent.nodes.validate import validate
from agent.nodes.vote import collect, fan_out, vote
from agent.policy import after_zero_shot, can_repair, cascading, wants_retrieval
from agent.state import AgentState, Candidate
from agent.trace import Step


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


def to_sql_path(state: AgentState, runtime: Runtime[RunContext]) -> Literal["retrieve", "generate", "sample"]:
    """Retrieve context when a retrieval technique is on (and there is a store), else start writing SQL.
    An escalating run tries one greedy answer first: zero-shot, or with ``first_try_examples``."""
    if cascading(state, runtime) and not runtime.context.techniques.first_try_examples:
        return "generate"
    return "retrieve" if wants_retrieval(runtime) else write_sql(state, runtime)


def after_context(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["route", "retrieve", "generate", "sample"]:
    """With tools on (and registered), a question may need them instead of SQL: route it first."""
    t, deps = runtime.context.techniques, runtime.context.deps
    return "route" if t.tools and deps.tools is not None else to_sql_path(state, runtime)


def after_routing(
    state: AgentState, runtime: Runtime[RunContext]
) -> Literal["react", "retrieve", "generate", "sample"]:
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


def _add_sql_loop(graph: StateGraph[AgentState, RunContext, Any, Any], done: str, failed: str,
                  escalated: str | None = None, confirm: str | None = None) -> None:
    """validate → execute (→ repair → validate ...), ending at ``done`` or ``failed`` (or at ``escalated``
    when a zero-shot try is not good enough, or ``confirm`` to check it; a graph without escalation has
    neither, and a branch never takes them)."""
    graph.add_node("validate", validate)
    graph.add_node("execute", execute)
    graph.add_node("repair", repair)
    unsure = escalated or failed
    writing: dict[Hashable, str] = {"validate": "validate", "repair": "repair", "escalate": unsure, END: failed}
    graph.add_conditional_edges("repair", after_writing, writing)
    validated: dict[Hashable, str] = {"execute": "execute", "repair": "repair", "escalate": unsure, END: failed}
    executed: dict[Hashable, str] = {"answer": done, "repair": "repair", "escalate": unsure,
                                     "confirm": confirm or failed, END: failed}
    graph.add_conditional_edges("validate", after_validate, validated)
    graph.add_conditional_edges("execute", after_execute, executed)


class CandidateOutput(TypedDict):
    candidates: list[Candidate]
    trace: list[Step]


def build_candidate_graph() -> CompiledStateGraph[AgentState, RunContext, AgentState, CandidateOutput]:
    """One self-consistency branch: its sample through the SQL loop, then ``collect`` packages the outcome."""
    graph = StateGraph(AgentState, context_schema=RunContext, output_schema=CandidateOutput)
    graph.add_node("collect", collect)
    _add_sql_loop(graph, done="collect", failed="collect")
    graph.add_conditional_edges(START, start_candidate, ["validate", "repair", "collect"])
    graph.add_edge("collect", END)
    return graph.compile()


def build_graph(checkpointer: Any = None) -> CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]:
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("context", gather_context)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_node("candidate", build_candidate_graph())
    graph.add_node("vote", vote)
    graph.add_node("generate", generate)
    graph.add_node("sample", sample)
    graph.add_node("escalate", escalate)
    graph.add_node("confirm", confirm)
    _add_sql_loop(graph, done="answer", failed=END, escalated="escalate", confirm="confirm")
    graph.add_conditional_edges("confirm", after_confirm, ["answer", "confirm", "escalate"])
    graph.add_conditional_edges("generate", after_writing,
                                {"validate": "validate", "repair": "repair", "escalate": "escalate", END: END})
    graph.add_conditional_edges("escalate", to_sql_path, ["retrieve", "generate", "sample"])
    graph.add_edge(START, "context")
    graph.add_node("route", route)
    graph.add_node("react", react)
    graph.add_conditional_edges("context", after_context, ["route", "retrieve", "generate", "sample"])
    graph.add_conditional_edges("route", after_routing, ["react", "retrieve", "generate", "sample"])
    graph.add_edge("react", END)
    graph.add_conditional_edges("retrieve", write_sql, ["generate", "sample"])
    graph.add_conditional_edges("sample", fan_out, ["candidate"])
    graph.add_edge("candidate", "vote")
    graph.add_conditional_edges("vote", after_vote, ["answer", "repair", END])
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
