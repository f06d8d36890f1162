"""Schema-aware repair without the model: a column qualified with the wrong table alias.

Small models trained on Spider often write ``T2.name`` when ``name`` belongs to the table aliased ``T1``.
When a qualified column is not in its qualifier's table but is in exactly one other table of the same
SELECT, the qualifier is swapped. When a SELECT joins two tables and swapping the two aliases
everywhere makes every column fit, that swap is made instead (see ``_swapped``). Nothing else is
touched; anything ambiguous is left to the model.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from core import aliases
from core.db import Schema


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
    scopes = aliases.scopes(tree)
    for select in tree.find_all(exp.Select):
        scope = {}  # qualifier (alias or name, lower) -> (qualifier as written, its columns)
        for source in aliases.sources(scopes[id(select)]) if id(select) in scopes else []:
            cols = _columns(schema, source.name) if source.name else None
            if cols is not None:
                scope[source.qualifier.lower()] = (source.qualifier, cols)
        qualified = [c for c in select.find_all(exp.Column) if c.find_ancestor(exp.Select) is select and c.table]
        if _swapped(qualified, scope):
            first, second = (written for written, _ in scope.values())
            notes.append(f"{first} <-> {second}: the query reads as if the two aliases were swapped")
            for column in qualified:
                column.set("table", exp.to_identifier(second if column.table.lower() == first.lower() else first))
            continue
        for column in qualified:
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


def _swapped(columns: list[exp.Column], scope: dict[str, tuple[str, set[str]]]) -> bool:
    """Two tables, some column not in its qualifier's table, and every column in the *other* table.

    A model writes the SELECT list before the FROM clause, so when it then gives the two aliases the other
    way round (``SELECT T2.name, count(T1.id) FROM b AS T1 JOIN a AS T2``), swapping them back explains
    every column at once; fixing only the columns that fail would keep the ones that happen to exist in
    both tables (a ``name``) pointing at the wrong one.
    """
    if len(scope) != 2 or not columns or any(c.table.lower() not in scope for c in columns):
        return False
    (q1, (_, cols1)), (q2, (_, cols2)) = scope.items()
    other = {q1: cols2, q2: cols1}
    wrong = any(c.name.lower() not in scope[c.table.lower()][1] for c in columns)
    return wrong and all(c.name.lower() in other[c.table.lower()] for c in columns)
