"""Retrieve context for the prompt from the knowledge store: examples, values, the relevant tables."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from langgraph.runtime import Runtime

from agent.budget import Fitted, SchemaView, fit, smaller_schemas
from agent.deps import RunContext
from agent.nodes.common import prompt_tokens
from agent.policy import cascading
from agent.prompts import prompts_of
from agent.state import AgentState
from agent.trace import RetrieveOutput, StepTimer
from core.sqlshape import hardness, sql_elements
from knowledge.retrieval import describe, link_tables, render_examples, render_values


def retrieve(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx, t = runtime.context, runtime.context.techniques
    knowledge, db = ctx.deps.knowledge, ctx.deps.db
    assert knowledge is not None  # routed here only with a store
    question = state["question"]
    timer = StepTimer("retrieve", question=question)
    output: dict[str, Any] = {}
    schema = db.schema()

    @functools.cache
    def ranked() -> list[tuple[str, float]]:  # the tables by relevance, asked for at most once
        return knowledge.tables(question, db.key, k=len(schema.tables))

    def within_budget(first: SchemaView, kept: list[Any], extra: str, must: set[str]) -> Fitted[Any]:
        def schemas() -> Iterator[SchemaView]:  # ever smaller; the tables are ranked only if it comes to that
            yield first
            yield from smaller_schemas(schema, ranked(), must, t.sample_rows, link_tables,
                                       start=None if first.tables is None else set(first.tables),
                                       style=prompts_of(ctx).style)

        return fit(t.prompt_budget, lambda v, ex: prompt_tokens(state, ctx, v.text, render_examples(ex) + extra),
                   kept, schemas())

    values = knowledge.values(question, db.key) if t.values else []
    output["values"] = describe(values)
    must = {v.table for v in values}
    view = SchemaView(state["schema_text"])

    # The hypothetical answer to search with (HyDE) and predict hardness from: the ``hyde`` node's draft
    # (its prompt's schema, when a budget cut it, is where this one starts), or an escalated question's
    # first try. The first try of an escalating run has none (it is the draft).
    first_try = cascading(state, runtime)
    draft = state.get("draft_sql")
    cut = state.get("draft_view")
    if cut is not None:
        view = SchemaView(cut["text"], None if cut["tables"] is None else frozenset(cut["tables"]), cut["sample_rows"])
    if draft:
        must |= set(sql_elements(draft, db.dialect).tables)
    predicted = hardness(draft, db.dialect) if (t.difficulty and draft) else None
    output["predicted_hardness"] = predicted

    examples = []
    k = t.first_try_examples if first_try else t.few_shot
    if k:
        examples = knowledge.examples(
            question, k=k, exclude_db=None if t.same_db_examples else db.key,
            draft_sql=draft if t.hyde else None, prefer_hardness=predicted, db=db.key,
        )
        output["examples"] = describe(examples)

    if t.schema_linking:
        output["table_scores"] = [{"table": n, "score": round(s, 4)} for n, s in ranked()]
        chosen = frozenset(link_tables(schema, ranked(), must, t.link_tables))
        if view.tables is not None:
            chosen &= view.tables
        view = SchemaView(schema.render(sample_rows=view.sample_rows if view.sample_rows is not None
                                        else t.sample_rows, only=set(chosen), style=prompts_of(ctx).style),
                          chosen, view.sample_rows)
    values_text = render_values(values)
    if t.prompt_budget:
        fitted = within_budget(view, examples, values_text, must)
        examples, view = fitted.examples, fitted.schema
        output["budget"] = {"limit": t.prompt_budget, "estimated_tokens": fitted.estimated,
                            "examples_dropped": fitted.examples_dropped,
                            "schema_cut": fitted.schema_cut or view.text != state["schema_text"],
                            "fits": fitted.estimated <= t.prompt_budget}
        if fitted.examples_dropped:
            output["examples"] = describe(examples)

    update: dict[str, Any] = {"examples_text": render_examples(examples) + values_text, "draft_sql": draft}
    if view.tables is not None or view.sample_rows is not None:  # the prompt shows another schema
        update["schema_text"] = view.text
        kept = [tb for tb in schema.tables if view.tables is None or tb.name.lower() in view.tables]
        output["tables"] = sorted(tb.name.lower() for tb in kept)
        output["columns"] = [f"{tb.name}.{c.name}" for tb in kept for c in tb.columns]
    return update | {"trace": [timer.finish(RetrieveOutput(**output))]}
