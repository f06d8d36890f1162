"""Answer in one or two sentences grounded in the rows."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import call_recorded
from agent.prompts import format_rows, prompts_of, system_message
from agent.state import AgentState, Turn
from agent.trace import AnswerOutput, StepTimer


def plain_answer(columns: list[str], rows: list[list[Any]], truncated: bool) -> str:
    """The answer without a model call: a single value said, otherwise the row count."""
    if not rows:
        return "No rows matched."
    if len(rows) == 1 and len(columns) == 1:
        return f"{columns[0]}: {rows[0][0]}"
    more = " (capped)" if truncated else ""
    return f"{len(rows)} row(s){more}."


def answer(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    columns, rows, truncated = state.get("columns", []), state.get("rows", []), state.get("truncated", False)
    timer = StepTimer("answer", row_count=len(rows))
    if not ctx.techniques.answer:
        text = plain_answer(columns, rows, truncated)
        return {"answer": text, "history": [_turn(state, text)], "trace": [timer.finish(AnswerOutput(text))]}
    prompt = prompts_of(ctx).render(
        "answer", question=state["question"], sql=state.get("sql") or "", row_count=len(rows),
        truncated=f", capped at {len(rows)}" if truncated else "", rows=format_rows(columns, rows),
    )
    messages = [system_message(state, ctx), HumanMessage(prompt)]
    reply = call_recorded(timer, ctx.deps.llm, messages)
    text = reply.text.strip() or plain_answer(columns, rows, truncated)
    return {"answer": text, "history": [_turn(state, text)], "trace": [timer.finish(AnswerOutput(text))]}


def _turn(state: AgentState, answer_text: str) -> Turn:
    return {"question": state["question"], "sql": state.get("sql"), "answer": answer_text}
