"""Escalation: answer cheaply when the first try is good enough, spend the costly techniques otherwise.

With ``Techniques.escalate`` on, the first SQL is one greedy call on the cached prompt (instructions,
schema, question): the baseline's, or with ``first_try_examples`` examples. It is answered as it is
when it ran and returned rows and, with ``escalate_check``, when every sample of the same prompt
returned the same rows (``confirm``: the prompt is cached, so a sample costs only its decoding); with
``escalate_min_logprob`` set, the model must also have been sure of every token of it. Otherwise the
``escalate`` node records why and the question goes on to the techniques that are on (examples, values,
self-consistency, repair), with the first try's SQL as the draft: it is the HyDE draft, and it joins the
vote.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import as_dicts, call_many, extract_sql
from agent.nodes.checks import apply_checks
from agent.nodes.common import sql_call_kwargs, sql_messages
from agent.policy import reason_to_escalate, shape_of
from agent.results import result_key
from agent.state import AgentState
from agent.trace import ConfirmOutput, EscalateOutput, StepTimer
from core.db import QueryError
from core.guard import UnsafeSQLError

# Errors after which the first try's SQL is no draft worth keeping (nothing to vote with or search by).
_NO_DRAFT = ("no_sql", "syntax", "unsafe")


def confirm(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Draw ``escalate_check`` samples of the first try's prompt (one request) and run each: the answer
    is confirmed when every one returns its rows. A sample that fails or is refused does not confirm."""
    ctx, t = runtime.context, runtime.context.techniques
    db = ctx.deps.db
    timer = StepTimer("confirm", sql=state.get("sql"), n=t.escalate_check, temperature=t.sc_temperature)
    messages = sql_messages(state, ctx)
    replies = call_many(ctx.deps.llm, messages, t.escalate_check, **sql_call_kwargs(ctx, t.sc_temperature))
    timer.record_call(as_dicts(messages), "\n\n".join(r.text for r in replies), sum(r.prompt_tokens for r in replies),
                      sum(r.completion_tokens for r in replies), sum(r.seconds for r in replies))
    wanted = result_key(state.get("columns", []), state.get("rows", []))
    checks = shape_of(t).checks
    samples = []
    for reply in replies:
        sql, problem, agrees = extract_sql(reply.text), None, False
        if sql is None:
            problem = "no SQL"
        else:
            try:
                sql, problem = apply_checks(sql, ctx, checks)
                if problem is None:
                    result = db.run(sql)
                    agrees = result_key(result.columns, result.json_rows()) == wanted
            except (QueryError, UnsafeSQLError) as err:
                problem = str(err)
        samples.append({"sql": sql, "agrees": agrees, "error": problem})
    confirmed = all(s["agrees"] for s in samples)
    return {"confirmed": confirmed, "trace": [timer.finish(ConfirmOutput(confirmed, samples))]}


def escalate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    sql, kind = state.get("sql"), state.get("error_kind")
    reason = reason_to_escalate(state, runtime.context.techniques) or "asked to"
    timer = StepTimer("escalate", sql=sql, confidence=state.get("confidence"))
    draft = sql if sql and kind not in _NO_DRAFT else None
    step = timer.finish(EscalateOutput(reason, draft))
    return {"escalated": True, "draft_sql": draft, "sql": None, "error": None, "error_kind": None, "repairs": 0,
            "columns": [], "rows": [], "truncated": False, "trace": [step]}
