"""HyDE: a hypothetical answer, drafted before retrieval to search examples with and predict hardness from.

One greedy zero-shot call on the generation prompt, with no examples (``hyde`` ranks examples by the
draft's SQL skeleton, ``difficulty`` prefers examples of its predicted hardness). Under a prompt budget
the draft's own prompt must fit too: the schema is cut as retrieval would cut it (keeping the tables
the question's values name), and the cut view is handed on, so ``retrieve`` starts from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langgraph.runtime import Runtime

from agent.budget import SchemaView, fit, smaller_schemas
from agent.deps import RunContext
from agent.llm import SQL_STOP, call_recorded, extract_sql
from agent.nodes.common import prompt_tokens
from agent.prompts import prompts_of, system_message, user_message
from agent.state import AgentState
from agent.trace import HydeOutput, StepTimer
from knowledge.retrieval import link_tables


def budget_view(state: AgentState, ctx: RunContext) -> SchemaView:
    """The schema the draft's prompt shows: the whole rendering, or one cut to the prompt budget."""
    knowledge, db, t = ctx.deps.knowledge, ctx.deps.db, ctx.techniques
    view = SchemaView(state["schema_text"])
    if not t.prompt_budget:
        return view
    assert knowledge is not None  # routed here only with a store
    question, schema = state["question"], db.schema()
    must = {v.table for v in knowledge.values(question, db.key)} if t.values else set()

    def schemas() -> Iterator[SchemaView]:  # ever smaller; the tables are ranked only if it comes to that
        yield view
        ranked = knowledge.tables(question, db.key, k=len(schema.tables))
        yield from smaller_schemas(schema, ranked, must, t.sample_rows, link_tables, start=None,
                                   style=prompts_of(ctx).style)

    def measure(v: SchemaView, _examples: list[Any]) -> int:
        return prompt_tokens(state, ctx, v.text, "")

    return fit(t.prompt_budget, measure, [], schemas()).schema


def hyde(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    timer = StepTimer("hyde", question=state["question"])
    view = budget_view(state, ctx)
    messages = [system_message({**state, "schema_text": view.text}, ctx),  # type: ignore[typeddict-item]
                user_message("generate", state, ctx, examples="", schema=view.text)]
    reply = call_recorded(timer, ctx.deps.llm, messages, temperature=0.0, stop=list(SQL_STOP))
    draft = extract_sql(reply.text)
    update: dict[str, Any] = {"draft_sql": draft}
    if view.tables is not None or view.sample_rows is not None:
        update["draft_view"] = {"tables": sorted(view.tables) if view.tables is not None else None,
                                "sample_rows": view.sample_rows, "text": view.text}
    return update | {"trace": [timer.finish(HydeOutput(draft))]}
