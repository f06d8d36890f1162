"""Answer in one or two sentences grounded in the rows.

The answer needs the question, the SQL and its rows, not the schema: its prompt is short (its own
system message, ``answer_system``), so the sentence costs a fraction of the SQL step and comes after
the result, which the caller can show as soon as the query has run."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.llm import call_recorded
from agent.prompts import dialect_label, format_rows, prompts_of
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
                               state.get("sql") or "", columns, rows, truncated)
    reply = call_recorded(timer, ctx.deps.llm, messages, max_tokens=ANSWER_MAX_TOKENS)
    text = reply.text.strip() or plain_answer(columns, rows, truncated)
    return {"answer": text, "history": [_turn(state, text)], "trace": [timer.finish(AnswerOutput(text))]}


def answer_messages(prompts: PromptSet, dialect: str, question: str, sql: str, columns: list[str],
                    rows: list[list[Any]], truncated: bool) -> list[BaseMessage]:
    """The answer step's messages: a short system message, then the question, the SQL and its rows."""
    prompt = prompts.render(
        "answer", question=question, sql=sql, row_count=len(rows),
        truncated=f", capped at {len(rows)}" if truncated else "", rows=format_rows(columns, rows),
    )
    return [SystemMessage(prompts.render("answer_system", dialect=dialect)), HumanMessage(prompt)]


def _turn(state: AgentState, answer_text: str) -> Turn:
    return {"question": state["question"], "sql": state.get("sql"), "answer": answer_text}
