"""The agent graph, built by a factory (never at import time).

context → generate → validate → execute → answer, with repair on a fixable error (at most N times).
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.answer import answer
from agent.nodes.context import gather_context
from agent.nodes.execute import execute
from agent.nodes.generate import generate
from agent.nodes.repair import repair
from agent.nodes.validate import validate
from agent.state import AgentState


def _can_repair(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    t = runtime.context.techniques
    return t.repair and state.get("error_kind") != "unsafe" and state.get("repairs", 0) < t.max_repairs


def after_writing(state: AgentState, runtime: Runtime[RunContext]) -> Literal["validate", "repair", "__end__"]:
    """After generate or repair: check the new SQL, or retry when the reply had none (or repeated itself)."""
    if not state.get("error"):
        return "validate"
    return "repair" if _can_repair(state, runtime) else END


def after_validate(state: AgentState, runtime: Runtime[RunContext]) -> Literal["execute", "repair", "__end__"]:
    if not state.get("error"):
        return "execute"
    return "repair" if _can_repair(state, runtime) else END


def after_execute(state: AgentState, runtime: Runtime[RunContext]) -> Literal["answer", "repair", "__end__"]:
    if not state.get("error"):
        return "answer"
    return "repair" if _can_repair(state, runtime) else END


def build_graph(checkpointer: Any = None) -> CompiledStateGraph:
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("context", gather_context)
    graph.add_node("generate", generate)
    graph.add_node("validate", validate)
    graph.add_node("execute", execute)
    graph.add_node("repair", repair)
    graph.add_node("answer", answer)
    graph.add_edge(START, "context")
    graph.add_edge("context", "generate")
    graph.add_conditional_edges("generate", after_writing)
    graph.add_conditional_edges("repair", after_writing)
    graph.add_conditional_edges("validate", after_validate)
    graph.add_conditional_edges("execute", after_execute)
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
