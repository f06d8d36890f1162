"""The agent graph, built by factories (never at import time).

    context → [retrieve] → generate → validate → execute → answer, with repair on a fixable error (at most
    N times);
    with self-consistency, context fans out N candidate branches (each the same generate → validate →
    execute → repair loop, as a subgraph) whose results are voted on before the answer.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from agent.deps import RunContext
from agent.nodes.answer import answer
from agent.nodes.context import gather_context
from agent.nodes.execute import execute
from agent.nodes.generate import generate
from agent.nodes.repair import repair
from agent.nodes.retrieve import retrieve, wants_retrieval
from agent.nodes.validate import validate
from agent.nodes.vote import after_vote, collect, fan_out, vote
from agent.state import AgentState, Candidate
from agent.trace import Step


def _can_repair(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    t = runtime.context.techniques
    return t.repair and state.get("error_kind") != "unsafe" and state.get("repairs", 0) < t.max_repairs


def after_writing(state: AgentState, runtime: Runtime[RunContext]) -> Literal["validate", "repair", "__end__"]:
    """After generate or repair: check the new SQL, or retry when the reply had none (or repeated itself).
    A plan that names unknown things is repaired when repair is on, and otherwise just noted."""
    if not state.get("error"):
        return "validate"
    if _can_repair(state, runtime):
        return "repair"
    return "validate" if state.get("error_kind") == "plan" else END


def after_validate(state: AgentState, runtime: Runtime[RunContext]) -> Literal["execute", "repair", "__end__"]:
    if not state.get("error"):
        return "execute"
    return "repair" if _can_repair(state, runtime) else END


def after_execute(state: AgentState, runtime: Runtime[RunContext]) -> Literal["answer", "repair", "__end__"]:
    if not state.get("error"):
        return "answer"
    return "repair" if _can_repair(state, runtime) else END


def after_context(state: AgentState, runtime: Runtime[RunContext]) -> str | list[Send]:
    """Retrieve context when a retrieval technique is on (and there is a store), else start writing SQL."""
    return "retrieve" if wants_retrieval(runtime) else fan_out(state, runtime)


def _add_sql_loop(graph: StateGraph, done: str, failed: str) -> None:
    """generate → validate → execute (→ repair → validate ...), ending at ``done`` or ``failed``."""
    graph.add_node("generate", generate)
    graph.add_node("validate", validate)
    graph.add_node("execute", execute)
    graph.add_node("repair", repair)
    writing = {"validate": "validate", "repair": "repair", END: failed}
    graph.add_conditional_edges("generate", after_writing, writing)
    graph.add_conditional_edges("repair", after_writing, writing)
    graph.add_conditional_edges("validate", after_validate, {"execute": "execute", "repair": "repair", END: failed})
    graph.add_conditional_edges("execute", after_execute, {"answer": done, "repair": "repair", END: failed})


class CandidateOutput(TypedDict):
    candidates: list[Candidate]
    trace: list[Step]


def build_candidate_graph() -> CompiledStateGraph:
    """One self-consistency branch: the SQL loop, then ``collect`` packages its outcome."""
    graph = StateGraph(AgentState, context_schema=RunContext, output_schema=CandidateOutput)
    graph.add_node("collect", collect)
    _add_sql_loop(graph, done="collect", failed="collect")
    graph.add_edge(START, "generate")
    graph.add_edge("collect", END)
    return graph.compile()


def build_graph(checkpointer: Any = None) -> CompiledStateGraph:
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("context", gather_context)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_node("candidate", build_candidate_graph())
    graph.add_node("vote", vote)
    _add_sql_loop(graph, done="answer", failed=END)
    graph.add_edge(START, "context")
    graph.add_conditional_edges("context", after_context, ["retrieve", "generate", "candidate"])
    graph.add_conditional_edges("retrieve", fan_out, ["generate", "candidate"])
    graph.add_edge("candidate", "vote")
    graph.add_conditional_edges("vote", after_vote, ["answer", END])
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
