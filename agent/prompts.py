"""The messages every node sends, built from the run's prompt set (core.prompt_sets: prompt files as
versioned data); the fine-tuning export sends the very same."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from agent.deps import RunContext
from agent.state import AgentState
from core.db import shorten
from core.prompt_sets import PromptSet, prompt_set


def dialect_label(dialect: str) -> str:
    return {"": "ANSI", "postgres": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "tsql": "T-SQL"}.get(
        dialect, dialect.capitalize()
    )


def prompts_of(ctx: RunContext) -> PromptSet:
    """The prompt set this run asks with (``Techniques.prompts``)."""
    return prompt_set(ctx.techniques.prompts)


ROWS_SHOWN = 20
VALUE_CHARS = 200  # characters of one value in the prompt; a longer one is cut and says its full length


def format_rows(columns: list[str], rows: list[list[Any]], limit: int = ROWS_SHOWN) -> str:
    lines = [" | ".join(columns)] + [" | ".join(shorten(v, VALUE_CHARS) for v in r) for r in rows[:limit]]
    return "\n".join(lines)


def system_message(state: AgentState, ctx: RunContext) -> SystemMessage:
    """The stable prefix of every prompt (instructions, then schema), so the server reuses its cache.
    A prompt set may put the schema in the user message instead: both are given it."""
    return SystemMessage(prompts_of(ctx).render("system", dialect=dialect_label(ctx.deps.db.dialect),
                                                schema=state["schema_text"]))


HISTORY_TURNS = 3


def conversation_text(state: AgentState) -> str:
    """Earlier turns of this conversation, for follow-up questions ("and only in 2012?")."""
    turns = [t for t in state.get("history", []) if t.get("sql")][-HISTORY_TURNS:]
    if not turns:
        return ""
    lines = ["Earlier in this conversation (the new question may build on it):"]
    for turn in turns:
        lines += [f"Question: {turn['question']}", f"SQL: {turn['sql']}"]
    return "\n".join(lines) + "\n"


def user_message(name: str, state: AgentState, ctx: RunContext, **values: str) -> HumanMessage:
    values.setdefault("question", state["question"])
    values.setdefault("examples", state.get("examples_text", ""))
    values.setdefault("schema", state.get("schema_text", ""))
    return HumanMessage(prompts_of(ctx).render(
        name, dialect=dialect_label(ctx.deps.db.dialect), history=conversation_text(state), **values))
