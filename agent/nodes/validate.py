"""Validate: exactly one read-only statement, parsed in the database's dialect."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.state import AgentState
from agent.trace import StepTimer, ValidateOutput
from core.guard import SQLSyntaxError, UnsafeSQLError, check_sql


def validate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    sql = state.get("sql") or ""
    timer = StepTimer("validate", sql=sql)
    try:
        statement = check_sql(sql, runtime.context.deps.db.dialect)
    except SQLSyntaxError as err:
        where = f" (line {err.line}, column {err.col})" if err.line else ""
        message = f"The SQL does not parse{where}: {err.reason}"
        return {"error": message, "error_kind": "syntax", "trace": [timer.finish(error=message)]}
    except UnsafeSQLError as err:
        message = f"Refused, nothing was run: {err.reason}"
        return {"error": message, "error_kind": "unsafe", "trace": [timer.finish(error=message)]}
    step = timer.finish(ValidateOutput(statement))
    return {"sql": statement, "error": None, "error_kind": None, "trace": [step]}
