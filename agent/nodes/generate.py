"""Generate SQL for the question: zero-shot, or with a chain-of-thought plan checked against the schema."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import call_recorded, extract_sql
from agent.nodes.common import system_message, user_message
from agent.plan import RESPONSE_FORMAT, check_plan, parse_plan
from agent.state import AgentState
from agent.trace import StepTimer

NO_SQL = "The reply contained no SQL query. Reply with one SELECT query in a ```sql fenced block."


def generate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    temperature = state.get("temperature") or 0.0
    timer = StepTimer("generate", question=state["question"], temperature=temperature,
                      candidate=state.get("candidate_index", 0))
    prompt = "generate_cot" if ctx.techniques.cot else "generate"
    messages = [system_message(state, ctx), user_message(prompt, state, ctx)]
    kwargs: dict[str, Any] = {"temperature": temperature}
    if ctx.techniques.cot:
        kwargs["response_format"] = RESPONSE_FORMAT
    reply = call_recorded(timer, ctx.deps.llm, messages, **kwargs)

    plan = parse_plan(reply.text) if ctx.techniques.cot else None
    sql = plan.sql if plan else extract_sql(reply.text)
    if sql is None:
        return {"sql": None, "error": NO_SQL, "error_kind": "no_sql", "trace": [timer.finish(error=NO_SQL)]}
    update: dict[str, Any] = {"sql": sql, "tried_sql": [sql], "error": None, "error_kind": None}
    if plan is not None:
        problems = check_plan(plan, ctx.deps.db.schema())
        update |= {"plan": plan.to_dict(), "plan_ok": not problems}
        if problems:
            message = "The plan names things that do not exist. " + " ".join(problems)
            update |= {"error": message, "error_kind": "plan"}
            return update | {"trace": [timer.finish(error=message, sql=sql, plan=plan.to_dict())]}
        return update | {"trace": [timer.finish(sql=sql, plan=plan.to_dict())]}
    return update | {"trace": [timer.finish(sql=sql)]}
