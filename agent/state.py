"""The graph's state. Nodes return partial dicts; ``trace`` and ``history`` grow through reducers.

With a checkpointer, the state of a conversation (a thread) persists between questions: ``history``
keeps the earlier turns for follow-up questions, while every per-question field is reset by the input
of the next turn (``new_turn``), the trace included.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from agent.trace import Step

ErrorKind = Literal["no_sql", "plan", "syntax", "check", "database", "timeout", "unsafe"]


def extend_or_reset(current: list[Any] | None, update: list[Any] | None) -> list[Any]:
    """Reducer for lists that grow within a turn (steps, candidates from parallel branches);
    ``None`` starts a new turn with an empty list."""
    if update is None:
        return []
    return [*(current or []), *update]


class Turn(TypedDict):
    question: str
    sql: str | None
    answer: str | None


class Candidate(TypedDict):
    """One self-consistency attempt, after its own validation, execution and repairs."""

    index: int
    temperature: float
    sql: str | None
    plan_ok: bool | None
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    error: str | None
    error_kind: ErrorKind | None


class AgentState(TypedDict, total=False):
    question: str
    history: Annotated[list[Turn], operator.add]
    schema_text: str
    examples_text: str
    sql: str | None
    tried_sql: list[str]
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    error: str | None
    error_kind: ErrorKind | None
    repairs: int
    may_repair: bool  # False in a self-consistency branch unless sc_repair_each: failed candidates just lose
    answer: str | None
    plan: dict[str, Any] | None
    plan_ok: bool | None
    temperature: float
    candidate_index: int
    draft_sql: str | None
    draft_view: dict[str, Any] | None  # the schema the HyDE draft's prompt showed, when a budget cut it
    confidence: dict[str, Any] | None  # how sure the model was of its first try's SQL (agent.confidence)
    escalated: bool  # the first try was not good enough: the costly techniques are at work
    confirmed: bool | None  # zero-shot samples returned the first try's rows (escalate_check)
    samples: list[dict[str, Any]]
    candidates: Annotated[list[Candidate], extend_or_reset]
    route: Literal["sql", "tools"] | None
    chart: dict[str, Any] | None
    trace: Annotated[list[Step], extend_or_reset]


def new_turn(question: str) -> dict[str, Any]:
    """The input of one question: every per-question field reset, the conversation's history kept."""
    return {
        "question": question, "sql": None, "tried_sql": [], "columns": [], "rows": [], "truncated": False,
        "error": None, "error_kind": None, "repairs": 0, "may_repair": True, "answer": None, "route": None,
        "chart": None,
        "plan": None, "plan_ok": None, "temperature": 0.0, "candidate_index": 0, "draft_sql": None, "draft_view": None,
        "samples": [],
        "confidence": None, "escalated": False, "confirmed": None,
        "candidates": None, "trace": None,
    }
