"""Gather schema context: the reflected schema rendered as the prompt's stable prefix."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.common import prompt_tokens
from agent.policy import wants_retrieval
from agent.prompts import prompts_of
from agent.state import AgentState
from agent.trace import ContextOutput, StepTimer


def gather_context(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    timer = StepTimer("context", question=state["question"])
    schema = ctx.deps.db.schema()
    t = ctx.techniques
    style = prompts_of(ctx).style
    text = schema.render(sample_rows=t.sample_rows, style=style)
    skipped, budget = None, None
    if t.retrieves() and ctx.deps.knowledge is None:
        # The defaults turn retrieval on; a user without a store should see why no example came.
        skipped = ("no knowledge store is open: answered without the retrieval techniques "
                            f"({', '.join(t.retrieval_switches())})")
    if t.prompt_budget and t.sample_rows and not wants_retrieval(runtime):
        # Without the knowledge store only the sample rows can go (retrieval cuts tables too).
        if prompt_tokens(state, ctx, text, "") > t.prompt_budget:
            text = schema.render(sample_rows=0, style=style)
            budget = {"limit": t.prompt_budget, "estimated_tokens": prompt_tokens(state, ctx, text, ""),
                               "sample_rows_dropped": True}
    step = timer.finish(ContextOutput(
        tables=[t.name for t in schema.tables],
        columns=[f"{t.name}.{c.name}" for t in schema.tables for c in t.columns],
        schema_chars=len(text), skipped=skipped, budget=budget,
    ))
    return {"schema_text": text, "trace": [step]}
