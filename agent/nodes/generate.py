"""Generate SQL for the question, zero-shot, from the schema."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.common import ask_for_sql, system_message, user_message
from agent.state import AgentState
from agent.trace import StepTimer

NO_SQL = "The reply contained no SQL query. Reply with one SELECT query in a ```sql fenced block."


def generate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    timer = StepTimer("generate", question=state["question"])
    messages = [system_message(state, ctx), user_message("generate", ctx, question=state["question"])]
    sql = ask_for_sql(timer, ctx, messages)
    if sql is None:
        return {"sql": None, "error": NO_SQL, "error_kind": "no_sql", "trace": [timer.finish(error=NO_SQL)]}
    return {"sql": sql, "tried_sql": [sql], "error": None, "error_kind": None, "trace": [timer.finish(sql=sql)]}
