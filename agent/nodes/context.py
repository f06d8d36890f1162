"""Gather schema context: the reflected schema rendered as the prompt's stable prefix."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.state import AgentState
from agent.trace import StepTimer


def gather_context(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    timer = StepTimer("context", question=state["question"])
    schema = ctx.deps.db.schema()
    text = schema.render(sample_rows=ctx.techniques.sample_rows)
    step = timer.finish(
        tables=[t.name for t in schema.tables],
        columns=[f"{t.name}.{c.name}" for t in schema.tables for c in t.columns],
        schema_chars=len(text),
    )
    return {"schema_text": text, "trace": [step]}
