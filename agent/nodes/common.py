"""Helpers shared by the nodes that ask the model for SQL."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from agent.budget import estimate_tokens
from agent.deps import RunContext
from agent.llm import SQL_STOP, call_recorded, extract_sql
from agent.plan import RESPONSE_FORMAT
from agent.prompts import system_message, user_message
from agent.state import AgentState
from agent.trace import StepTimer


def ask_for_sql(timer: StepTimer, ctx: RunContext, messages: list[BaseMessage], **kwargs: Any) -> str | None:
    reply = call_recorded(timer, ctx.deps.llm, messages, stop=list(SQL_STOP), **kwargs)
    return extract_sql(reply.text)


def sql_messages(state: AgentState, ctx: RunContext) -> list[BaseMessage]:
    prompt = "generate_cot" if ctx.techniques.cot else "generate"
    return [system_message(state, ctx), user_message(prompt, state, ctx)]


def sql_call_kwargs(ctx: RunContext, temperature: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"temperature": temperature}
    if ctx.techniques.cot:
        kwargs["response_format"] = RESPONSE_FORMAT
    else:
        kwargs["stop"] = list(SQL_STOP)
    return kwargs


def prompt_tokens(state: AgentState, ctx: RunContext, schema_text: str, examples_text: str) -> int:
    """The estimated tokens of the prompt that generation will send with this schema and these examples."""
    name = "generate_cot" if ctx.techniques.cot else "generate"
    messages = [system_message({**state, "schema_text": schema_text}, ctx),  # type: ignore[typeddict-item]
                user_message(name, state, ctx, examples=examples_text, schema=schema_text)]
    return sum(estimate_tokens(str(m.content)) for m in messages)
