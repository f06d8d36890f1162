"""Schema-aware repair without the model: a column qualified with the wrong table alias.

Small models trained on Spider often write ``T2.name`` when ``name`` belongs to the table aliased ``T1``.
When a qualified column is not in its qualifier's table but is in exactly one other table of the same
SELECT, the qualifier is swapped. Nothing else is touched; anything ambiguous is left to the model.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from agent.db import Schema


def _columns(schema: Schema, table: str) -> set[str] | None:
    found = schema.table(table)
    return {c.name.lower() for c in found.columns} if found else None


def requalify(sql: str, schema: Schema, dialect: str = "sqlite") -> tuple[str, list[str]]:
    """The SQL with misattributed qualifiers fixed, and a note per fix (empty when nothing changed)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except sqlglot.errors.SqlglotError:
        return sql, []
    notes: list[str] = []
    for select in tree.find_all(exp.Select):
        scope = {}  # qualifier (alias or name, lower) -> (qualifier as written, its columns)
        for table in select.find_all(exp.Table):
            if table.find_ancestor(exp.Select) is not select:
                continue
            cols = _columns(schema, table.name)
            if cols is not None:
                name = table.alias or table.name
                scope[name.lower()] = (name, cols)
        for column in select.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is not select or not column.table:
                continue
            qualifier, name = column.table.lower(), column.name.lower()
            if qualifier not in scope or name in scope[qualifier][1]:
                continue
            owners = [written for q, (written, cols) in scope.items() if name in cols]
            if len(owners) == 1:
                notes.append(f"{column.table}.{column.name} -> {owners[0]}.{column.name}")
                column.set("table", exp.to_identifier(owners[0]))
    if not notes:
        return sql, []
    return tree.sql(dialect=dialect or None), notes
