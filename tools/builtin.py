"""The built-in tools: a plugin like any other, found through the ``sqlsage`` entry point ``builtin_tools``.

``choose_chart`` (pure) is the one chart chooser: the UI's charts (``ui/charts.py``, which also draws them)
start from it, so the agent's tool and the result view agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from core.db import Table, jsonable, jsonable_rows
from tools.base import ToolContext
from tools.hookspecs import hookimpl

ROW_CAP = 200  # rows run_sql hands back (the observation shows fewer)
SAMPLE_VALUES_CAP = 100
KNOWLEDGE_TEXT_CHARS = 600
NO_KNOWLEDGE = "No knowledge store is configured, so there is nothing to search. Use the schema instead."

ChartKind = Literal["bar", "line", "scatter", "none"]


def run_sql(ctx: ToolContext, sql: str) -> dict[str, Any]:
    """Run one read-only SELECT query on the database and return its columns and rows.

    Args:
        sql: One SELECT query in the database's SQL dialect.
    """
    result = ctx.db.run(sql)
    rows = result.json_rows()[:ROW_CAP]
    truncated = result.truncated or len(result.rows) > ROW_CAP
    return {"sql": sql, "columns": result.columns, "rows": rows, "row_count": len(rows), "truncated": truncated}


def list_tables(ctx: ToolContext) -> list[dict[str, Any]]:
    """List the database's tables with their column names."""
    return [{"table": t.name, "columns": [c.name for c in t.columns]} for t in ctx.db.schema().tables]


def describe_table(ctx: ToolContext, table: str) -> dict[str, Any]:
    """Describe one table: its columns with types and keys, its foreign keys and a few sample rows.

    Args:
        table: The table's name.
    """
    found = _table(ctx, table)
    return {
        "table": found.name,
        "comment": found.comment,
        "columns": [
            {"name": c.name, "type": c.type, "primary_key": c.primary_key, "nullable": c.nullable,
             **({"comment": c.comment} if c.comment else {})}
            for c in found.columns
        ],
        "foreign_keys": [
            {"columns": list(fk.columns), "references": f"{fk.ref_table}({', '.join(fk.ref_columns)})"}
            for fk in found.foreign_keys
        ],
        "sample_rows": jsonable_rows(found.sample_rows),
    }


def sample_values(ctx: ToolContext, table: str, column: str, limit: int = 20) -> dict[str, Any]:
    """The most common distinct values of one column, with how often each occurs.

    Args:
        table: The table's name.
        column: The column's name in that table.
        limit: How many values at most (1 to 100).
    """
    found = _table(ctx, table)
    col = next((c for c in found.columns if c.name.lower() == column.lower()), None)
    if col is None:
        names = ", ".join(c.name for c in found.columns)
        raise ValueError(f"Table {found.name} has no column {column!r}. Its columns: {names}")
    quote = ctx.db.engine.dialect.identifier_preparer.quote  # names checked against the schema, then quoted
    n = max(1, min(int(limit), SAMPLE_VALUES_CAP))
    c, t = quote(col.name), quote(found.name)
    sql = f"SELECT {c}, COUNT(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY 2 DESC, 1 LIMIT {n}"
    result = ctx.db.run(sql)
    return {"table": found.name, "column": col.name,
            "values": [{"value": jsonable(v), "count": count} for v, count in result.rows]}


def search_knowledge(ctx: ToolContext, query: str, k: int = 5) -> list[dict[str, Any]] | str:
    """Search the knowledge store (documentation, business terms, what a column or term means, example
    questions) for text about a topic.

    Args:
        query: What to look for, in plain words.
        k: How many passages at most (1 to 20).
    """
    if ctx.knowledge is None:
        return NO_KNOWLEDGE
    hits = ctx.knowledge.search(query, max(1, min(int(k), 20)))
    found = []
    for hit in hits or []:
        item = getattr(hit, "item", hit)
        text = getattr(item, "text", None)
        text = str(item) if text is None else str(text)
        score = getattr(hit, "score", None)
        found.append({
            "kind": getattr(item, "kind", None),
            "text": text if len(text) <= KNOWLEDGE_TEXT_CHARS else text[: KNOWLEDGE_TEXT_CHARS - 1] + "…",
            "score": round(float(score), 3) if isinstance(score, (int, float)) else None,
        })
    return found or f"Nothing in the knowledge store matches {query!r}."


def make_chart(
    ctx: ToolContext,
    columns: list[str] | None = None,
    rows: list[list[Any]] | None = None,
    kind: Literal["auto", "bar", "line", "scatter", "none"] = "auto",
    x: str | None = None,
    y: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Make a chart (plot, graph, visualize) for the user from query results; without columns and rows it
    charts the last run_sql result.

    Args:
        columns: Column names of the data (leave out to use the last run_sql result).
        rows: The data rows (leave out to use the last run_sql result).
        kind: bar, line, scatter, none, or auto to choose from the data.
        x: The column on the x axis (auto when left out).
        y: The numeric column on the y axis (auto when left out).
        title: The chart's title.
    """
    if not columns or not rows:  # small models pass "rows": [] when told to leave them out
        if ctx.last_table is None:
            raise ValueError("There are no rows to chart: call run_sql first, or pass columns and rows.")
        columns, rows = ctx.last_table
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"Every row must have {len(columns)} values, one per column.")
    auto = choose_chart(columns, rows)
    if kind == "auto" and x is None and y is None:
        spec = auto
    else:
        chosen_x = _column(columns, x) if x else auto["x"] or columns[0]
        chosen_y = _column(columns, y) if y else auto["y"] or columns[-1]
        chosen_kind = auto["kind"] if kind == "auto" else kind
        spec = {**auto, "kind": chosen_kind, "x": chosen_x, "y": chosen_y}
        if chosen_kind == "none":
            spec.update(x=None, y=None)
    spec["title"] = title or (f"{spec['y']} by {spec['x']}" if spec["kind"] != "none" else None)
    return spec


@hookimpl
def register_tools(register: Callable[..., Any]) -> None:
    """The built-in tools."""
    for func in (run_sql, list_tables, describe_table, sample_values, search_knowledge, make_chart):
        register(func)


# -- helpers ----------------------------------------------------------------------------------------------


def _table(ctx: ToolContext, name: str) -> Table:
    schema = ctx.db.schema()
    found = schema.table(name.strip().strip('"`[]'))
    if found is None:
        raise ValueError(f"There is no table {name!r}. The tables: {', '.join(t.name for t in schema.tables)}")
    return found


def _column(columns: Sequence[str], name: str) -> str:
    """The column meant by ``name``: matched without case, and without a table prefix ("Genre.Name")."""
    wanted = name.strip().strip('"`[]').lower()
    for candidate in (wanted, wanted.rsplit(".", 1)[-1].strip('"`[]')):
        for column in columns:
            if column.lower() == candidate:
                return column
    raise ValueError(f"There is no column {name!r} in the data. Its columns: {', '.join(columns)}")


DATE_TEXT = re.compile(  # a date or time written as text (ISO 8601): also how the UI's line chart reads one
    r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_ID_NAME = re.compile(r"(^id$|_id$|Id$|ID$)")
_TIME_NAME = re.compile(r"(year|month|quarter|week|day|date)s?$", re.IGNORECASE)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_temporal(name: str, values: list[Any]) -> bool:
    if not values:
        return False
    if all(isinstance(v, (dt.date, dt.datetime)) or (isinstance(v, str) and DATE_TEXT.match(v)) for v in values):
        return True
    # a year or month number (2009, 2010, ...) in a column named like one
    return bool(_TIME_NAME.search(name)) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def choose_chart(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A chart spec chosen from the data alone: a date/time-like x -> line; a categorical x (or an id) with a
    numeric y -> bar; two numeric columns -> scatter; a single value, a single row or a single column -> none.
    An id column is a label, never the measure on y."""
    spec: dict[str, Any] = {"kind": "none", "x": None, "y": None, "title": None,
                            "columns": list(columns), "rows": [list(r) for r in rows]}
    if len(rows) < 2 or len(columns) < 2:
        return spec
    values = {c: [r[i] for r in rows if i < len(r) and r[i] is not None] for i, c in enumerate(columns)}
    temporal = [c for c in columns if _is_temporal(c, values[c])]
    numeric = [c for c in columns if c not in temporal and values[c] and all(_is_number(v) for v in values[c])]
    categorical = [c for c in columns if c not in temporal and c not in numeric]
    ids = [c for c in numeric if _ID_NAME.search(c)]
    measures = [c for c in numeric if c not in ids]
    if temporal and numeric:
        kind, x, y = "line", temporal[0], (measures or numeric)[0]
    elif (categorical or ids) and measures:
        kind, x, y = "bar", (categorical or ids)[0], measures[0]
    elif categorical and numeric:
        kind, x, y = "bar", categorical[0], numeric[0]
    elif len(numeric) >= 2:
        kind, x, y = "scatter", numeric[0], numeric[1]
    else:
        return spec
    spec.update(kind=kind, x=x, y=y, title=f"{y} by {x}")
    return spec
