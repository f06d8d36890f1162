"""Chain-of-thought as data: the model names columns, then tables, then joins, then writes the SQL.

The plan comes back as JSON (a schema-constrained reply), is kept in the trace, and is checked
against the real schema: a name that does not exist goes back to the model with the closest real ones.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.llm import parse_json_object
from core.db import Schema
from tools.base import clean_schema


class Plan(BaseModel):
    """A plan as the model writes it (its JSON schema is the reply's format) and as the trace keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[str, ...] = Field(description="Table.column needed")
    tables: tuple[str, ...]
    joins: tuple[str, ...] = Field(description="Table.key = Table.key")
    sql: str

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# pydantic's schema without its titles (tools.base.clean_schema, as for a tool's arguments) nor the class's
# docstring: noise in the reply format.
PLAN_SCHEMA: dict[str, Any] = {k: v for k, v in clean_schema(Plan.model_json_schema()).items() if k != "description"}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "sql_plan", "schema": PLAN_SCHEMA, "strict": True},
}

_QUALIFIED = re.compile(r"\b([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\b")


def parse_plan(text: str) -> Plan | None:
    """The plan in a reply: the JSON object (possibly fenced or with text around it), or None."""
    data = parse_json_object(text)
    if data is None or not isinstance(data.get("sql"), str) or not data["sql"].strip():
        return None

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    return Plan(columns=strings("columns"), tables=strings("tables"), joins=strings("joins"), sql=data["sql"].strip())


def check_plan(plan: Plan, schema: Schema) -> list[str]:
    """Problems with the plan's names, each with the closest real names. Empty when it is sound."""
    problems: list[str] = []
    table_names = [t.name for t in schema.tables]
    for table in plan.tables:
        if schema.table(table) is None:
            problems.append(_unknown("table", table, table_names))
    mentioned = [m for text in (*plan.columns, *plan.joins) for m in _QUALIFIED.findall(text)]
    for table, column in dict.fromkeys(mentioned):
        found = schema.table(table)
        if found is None:
            if table not in plan.tables:
                problems.append(_unknown("table", table, table_names))
            continue
        names = [c.name for c in found.columns]
        if column.lower() not in (n.lower() for n in names):
            owners = [t.name for t in schema.tables if any(c.name.lower() == column.lower() for c in t.columns)]
            hint = f" {column} is a column of {', '.join(owners)}." if owners else ""
            problems.append(f"{table} has no column {column}; its columns are {', '.join(names)}.{hint}")
    return problems


def _unknown(kind: str, name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    return f"There is no {kind} {name}." + (f" Closest: {', '.join(close)}." if close else "")
