"""Chain-of-thought as data: the model names columns, then tables, then joins, then writes the SQL.

The plan comes back as JSON (a schema-constrained reply), is kept in the trace, and is checked
against the real schema: a name that does not exist goes back to the model with the closest real ones.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from core.db import Schema

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}, "description": "Table.column needed"},
        "tables": {"type": "array", "items": {"type": "string"}},
        "joins": {"type": "array", "items": {"type": "string"}, "description": "Table.key = Table.key"},
        "sql": {"type": "string"},
    },
    "required": ["columns", "tables", "joins", "sql"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "sql_plan", "schema": PLAN_SCHEMA, "strict": True},
}

_QUALIFIED = re.compile(r"\b([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\b")


@dataclass(frozen=True)
class Plan:
    columns: tuple[str, ...]
    tables: tuple[str, ...]
    joins: tuple[str, ...]
    sql: str

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "tables": list(self.tables), "joins": list(self.joins), "sql": self.sql}


def parse_plan(text: str) -> Plan | None:
    """The plan in a reply: the JSON object (possibly fenced or with text around it), or None."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sql"), str) or not data["sql"].strip():
        return None

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    return Plan(strings("columns"), strings("tables"), strings("joins"), data["sql"].strip())


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
