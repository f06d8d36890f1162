"""Repair: show the model its failed SQL and the diagnosis, and ask for a corrected query."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.common import ask_for_sql
from agent.nodes.generate import NO_SQL
from agent.prompts import system_message, user_message
from agent.state import AgentState
from agent.trace import RepairOutput, StepTimer

RETRY_TEMPERATURE = 0.7


def repair(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    failed, diagnosis = state.get("sql") or "(no SQL)", state.get("error") or "unknown error"
    attempt = state.get("repairs", 0) + 1
    timer = StepTimer("repair", sql=failed, diagnosis=diagnosis, attempt=attempt)
    messages = [
        system_message(state, ctx),
        user_message("repair", state, ctx, sql=failed, diagnosis=diagnosis),
    ]
    tried = {s.strip() for s in state.get("tried_sql", [])}
    sql = ask_for_sql(timer, ctx, messages)
    if sql is not None and sql.strip() in tried:
        # Asking again the same way gives the same answer: sample once, more freely, before giving up.
        sql = ask_for_sql(timer, ctx, messages, temperature=RETRY_TEMPERATURE)
    if sql is None:
        return {"repairs": attempt, "sql": None, "error": NO_SQL, "error_kind": "no_sql",
                "trace": [timer.finish(error=NO_SQL)]}
    if sql.strip() in tried:
        message = f"The repair returned SQL already tried; the last problem was: {diagnosis}"
        step = timer.finish(RepairOutput(sql), error=message)
        return {"repairs": ctx.techniques.max_repairs, "error": message, "trace": [step]}
    return {"repairs": attempt, "sql": sql, "tried_sql": [*state.get("tried_sql", []), sql],
            "error": None, "error_kind": None, "trace": [timer.finish(RepairOutput(sql))]}
