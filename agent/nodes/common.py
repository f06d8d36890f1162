"""Helpers shared by the nodes that ask the model for SQL."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agent.deps import RunContext
from agent.llm import SQL_STOP, call_recorded, extract_sql
from agent.prompts import PromptSet, dialect_label, prompt_set
from agent.state import AgentState
from agent.trace import StepTimer


def prompts_of(ctx: RunContext) -> PromptSet:
    """The prompt set this run asks with (``Techniques.prompts``)."""
    return prompt_set(ctx.techniques.prompts)


def system_message(state: AgentState, ctx: RunContext) -> SystemMessage:
    """The stable prefix of every prompt (instructions, then schema), so the server reuses its cache.
    A prompt set may put the schema in the user message instead: both are given it."""
    return SystemMessage(prompts_of(ctx).render("system", dialect=dialect_label(ctx.deps.db.dialect),
                                                schema=state["schema_text"]))


def ask_for_sql(timer: StepTimer, ctx: RunContext, messages: list[BaseMessage], **kwargs: Any) -> str | None:
    reply = call_recorded(timer, ctx.deps.llm, messages, stop=list(SQL_STOP), **kwargs)
    return extract_sql(reply.text)


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
