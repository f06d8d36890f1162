"""Retrieve context for the prompt from the knowledge store: examples, values, the relevant tables."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import call_recorded, extract_sql
from agent.nodes.common import system_message, user_message
from agent.state import AgentState
from agent.trace import StepTimer


def wants_retrieval(runtime: Runtime[RunContext]) -> bool:
    t = runtime.context.techniques
    return runtime.context.deps.knowledge is not None and bool(
        t.few_shot or t.values or t.schema_linking or t.hyde or t.difficulty
    )


def retrieve(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    from evals.sqlshape import hardness, sql_elements
    from knowledge.retrieval import describe, link_tables, render_examples, render_values

    ctx, t = runtime.context, runtime.context.techniques
    knowledge, db = ctx.deps.knowledge, ctx.deps.db
    assert knowledge is not None  # routed here only with a store
    question = state["question"]
    timer = StepTimer("retrieve", question=question)
    output: dict[str, Any] = {}

    draft = None
    if t.hyde or t.difficulty:  # a hypothetical answer to search with (HyDE), and to predict hardness from
        messages = [system_message(state, ctx), user_message("generate", state, ctx, examples="")]
        reply = call_recorded(timer, ctx.deps.llm, messages, temperature=0.0)
        draft = extract_sql(reply.text)
        output["draft_sql"] = draft
    predicted = hardness(draft, db.dialect) if (t.difficulty and draft) else None
    output["predicted_hardness"] = predicted

    examples = []
    if t.few_shot:
        examples = knowledge.examples(
            question, k=t.few_shot, exclude_db=None if t.same_db_examples else db.key,
            draft_sql=draft if t.hyde else None, prefer_hardness=predicted,
        )
        output["examples"] = describe(examples)
    values = knowledge.values(question, db.key) if t.values else []
    output["values"] = describe(values)

    update: dict[str, Any] = {"examples_text": render_examples(examples) + render_values(values), "draft_sql": draft}
    if t.schema_linking:
        schema = db.schema()
        ranked = knowledge.tables(question, db.key, k=len(schema.tables))
        must = {v.table for v in values}
        if draft:
            must |= set(sql_elements(draft, db.dialect).tables)
        chosen = link_tables(schema, ranked, must, t.link_tables)
        output["table_scores"] = [{"table": n, "score": round(s, 4)} for n, s in ranked]
        output["tables"] = sorted(chosen)
        output["columns"] = [f"{tb.name}.{c.name}" for tb in schema.tables if tb.name.lower() in chosen
                             for c in tb.columns]
        update["schema_text"] = schema.render(sample_rows=t.sample_rows, only=chosen)
    return update | {"trace": [timer.finish(**output)]}
