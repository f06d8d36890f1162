"""Generate SQL for the question: zero-shot or with examples, plain or with a chain-of-thought plan
checked against the schema; one greedy answer (``generate``) or N samples of one prompt (``sample``)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.confidence import sql_confidence
from agent.deps import RunContext
from agent.llm import as_dicts, call_many, call_recorded, extract_sql
from agent.nodes.common import sql_call_kwargs, sql_messages
from agent.plan import check_plan, parse_plan
from agent.policy import cascading
from agent.state import AgentState
from agent.trace import GenerateOutput, SampleOutput, StepTimer
from core.db import Schema

NO_SQL = "The reply contained no SQL query. Reply with one SELECT query in a ```sql fenced block."


def interpret(text: str, cot: bool, schema: Schema) -> dict[str, Any]:
    """A reply as a state update: its SQL (and plan, checked), or the fixable error it amounts to."""
    plan = parse_plan(text) if cot else None
    sql = plan.sql if plan else extract_sql(text)
    if sql is None:
        return {"sql": None, "error": NO_SQL, "error_kind": "no_sql"}
    update: dict[str, Any] = {"sql": sql, "tried_sql": [sql], "error": None, "error_kind": None}
    if plan is not None:
        problems = check_plan(plan, schema)
        update |= {"plan": plan.to_dict(), "plan_ok": not problems}
        if problems:
            update |= {"error": "The plan names things that do not exist. " + " ".join(problems), "error_kind": "plan"}
    return update


def generate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    temperature = state.get("temperature") or 0.0
    timer = StepTimer("generate", question=state["question"], temperature=temperature)
    messages = sql_messages(state, ctx)
    kwargs = sql_call_kwargs(ctx, temperature)
    # The first try of an escalating run with a log-probability floor: how sure was the model?
    scored = cascading(state, runtime) and ctx.techniques.escalate_min_logprob is not None
    if scored:
        kwargs |= {"logprobs": True, "top_logprobs": 1}
    reply = call_recorded(timer, ctx.deps.llm, messages, **kwargs)
    update = interpret(reply.text, ctx.techniques.cot, ctx.deps.db.schema())
    if scored:
        confidence = sql_confidence(reply.text, reply.logprobs, update["sql"])
        update["confidence"] = confidence.to_dict() if confidence else None
    output = GenerateOutput(update["sql"], update.get("plan"), update.get("confidence"))
    return update | {"trace": [timer.finish(output, error=update["error"])]}


def sample(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Self-consistency's candidates: N samples of one prompt in one request (the prompt is read once)."""
    ctx, t = runtime.context, runtime.context.techniques
    timer = StepTimer("sample", question=state["question"], n=t.self_consistency, temperature=t.sc_temperature)
    messages = sql_messages(state, ctx)
    replies = call_many(ctx.deps.llm, messages, t.self_consistency, **sql_call_kwargs(ctx, t.sc_temperature))
    timer.record_call(as_dicts(messages), "\n\n".join(r.text for r in replies), sum(r.prompt_tokens for r in replies),
                      sum(r.completion_tokens for r in replies), sum(r.seconds for r in replies))
    schema = ctx.deps.db.schema()
    samples = [interpret(r.text, t.cot, schema) | {"temperature": t.sc_temperature} for r in replies]
    draft = state.get("draft_sql")
    if draft:  # the greedy zero-shot draft made for retrieval is one more candidate, for free
        samples.insert(0, interpret(f"```sql\n{draft}\n```", False, schema) | {"temperature": 0.0})
    step = timer.finish(SampleOutput([{"sql": s["sql"], "error": s["error"]} for s in samples]))
    return {"samples": samples, "trace": [step]}
