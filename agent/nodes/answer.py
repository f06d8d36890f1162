"""Answer in one or two sentences grounded in the rows.

The answer needs the question, the SQL and its rows. It is sent after the SQL step's own system
message (instructions and schema), which the local server has cached by then, so only the question,
the SQL and the rows are read. A short system message of its own (``answer_system``, no schema) was
measured against it (benchmarks/answer_prompt.py, 2026-12-03: as grounded, 4.5x fewer prompt tokens,
but slower with the schema prefix cached: median 9.8 s against 7.4 s, on a busy machine); it is kept
for that benchmark and for an endpoint that charges by the token."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import call_recorded
from agent.prompts import dialect_label, format_rows, prompts_of, system_message
from agent.state import AgentState, Turn
from agent.trace import AnswerOutput, StepTimer
from core.prompt_sets import PromptSet

ANSWER_MAX_TOKENS = 120  # two sentences; a model that rambles is cut, not waited for


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
    messages = answer_messages(prompts_of(ctx), dialect_label(ctx.deps.db.dialect), state["question"],
                               state.get("sql") or "", columns, rows, truncated, system_message(state, ctx))
    reply = call_recorded(timer, ctx.deps.llm, messages, max_tokens=ANSWER_MAX_TOKENS)
    text = reply.text.strip() or plain_answer(columns, rows, truncated)
    return {"answer": text, "history": [_turn(state, text)], "trace": [timer.finish(AnswerOutput(text))]}


def answer_messages(prompts: PromptSet, dialect: str, question: str, sql: str, columns: list[str],
                    rows: list[list[Any]], truncated: bool, system: SystemMessage | None = None) -> list[BaseMessage]:
    """The answer step's messages: ``system`` (the SQL step's, with the schema) or else the short one
    without the schema, then the question, the SQL and its rows."""
    prompt = prompts.render(
        "answer", question=question, sql=sql, row_count=len(rows),
        truncated=f", capped at {len(rows)}" if truncated else "", rows=format_rows(columns, rows),
    )
    return [system or SystemMessage(prompts.render("answer_system", dialect=dialect)), HumanMessage(prompt)]


def _turn(state: AgentState, answer_text: str) -> Turn:
    return {"question": state["question"], "sql": state.get("sql"), "answer": answer_text}
