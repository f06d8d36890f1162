"""Execute the validated SQL on the read-only connection, with a timeout and a row cap."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.diagnose import diagnose
from agent.state import AgentState
from agent.trace import ExecuteOutput, StepTimer
from core.db import QueryError
from core.guard import UnsafeSQLError


def execute(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    sql = state.get("sql") or ""
    timer = StepTimer("execute", sql=sql)
    try:
        result = runtime.context.deps.db.run(sql)
    except QueryError as err:
        kind = "timeout" if err.kind == "timeout" else "database"
        diagnosis = diagnose(str(err), sql, runtime.context.deps.db.schema())
        return {"error": diagnosis, "error_kind": kind, "trace": [timer.finish(error=diagnosis)]}
    except UnsafeSQLError as err:  # the executor guards again, whatever the graph did before
        message = f"Refused, nothing was run: {err.reason}"
        return {"error": message, "error_kind": "unsafe", "trace": [timer.finish(error=message)]}
    rows = result.json_rows()
    step = timer.finish(ExecuteOutput(result.columns, len(rows), result.truncated, round(result.seconds, 4)))
    return {"columns": result.columns, "rows": rows, "truncated": result.truncated,
            "error": None, "error_kind": None, "trace": [step]}
