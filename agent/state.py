"""The graph's state. Nodes return partial dicts; ``trace`` is appended to through its reducer."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from agent.trace import Step

ErrorKind = Literal["no_sql", "syntax", "database", "timeout", "unsafe"]


class AgentState(TypedDict, total=False):
    question: str
    schema_text: str
    sql: str | None
    tried_sql: list[str]
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    error: str | None
    error_kind: ErrorKind | None
    repairs: int
    answer: str | None
    trace: Annotated[list[Step], operator.add]
