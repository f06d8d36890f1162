"""Turn a database error into a diagnosis a small model can act on: what each alias refers to, where a
missing column really lives, the closest real names."""

from __future__ import annotations

import difflib
import re

from core.aliases import table_aliases
from core.db import Schema

# SQLite, PostgreSQL and MySQL wordings of the same three mistakes.
_NO_COLUMN = re.compile(
    r'no such column: ([\w."]+)|column "?([\w.]+)"? does not exist|Unknown column \'([\w.]+)\'', re.I
)
_NO_TABLE = re.compile(r'no such table: ([\w."]+)|relation "?([\w.]+)"? does not exist|Table \'([\w.]+)\' doesn', re.I)
_AMBIGUOUS = re.compile(r'ambiguous column name: ([\w."]+)|column reference "?([\w.]+)"? is ambiguous', re.I)


def _group(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g).replace('"', "")


def _closest(word: str, options: list[str], n: int = 3) -> list[str]:
    lowered = {o.lower(): o for o in options}
    return [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)]


def _columns_of(schema: Schema, table: str) -> list[str]:
    t = schema.table(table)
    return [c.name for c in t.columns] if t else []


def _tables_with_column(schema: Schema, column: str) -> list[str]:
    return [t.name for t in schema.tables if any(c.name.lower() == column.lower() for c in t.columns)]


def diagnose(error: str, sql: str, schema: Schema) -> str:
    """The error, followed by what the schema says about the names it mentions."""
    notes: list[str] = []
    alias_map = table_aliases(sql, schema.dialect)
    if m := _NO_COLUMN.search(error):
        notes += _missing_column(_group(m), schema, alias_map)
    elif m := _NO_TABLE.search(error):
        name = _group(m).split(".")[-1]
        close = _closest(name, [t.name for t in schema.tables])
        notes.append(f"There is no table {name}." + (f" Did you mean: {', '.join(close)}?" if close else ""))
    elif m := _AMBIGUOUS.search(error):
        column = _group(m).split(".")[-1]
        owners = ", ".join(_tables_with_column(schema, column))
        notes.append(f"Several tables have a column {column} ({owners}): qualify it with its table or alias.")
    if alias_map:
        notes.append("In this query: " + ", ".join(f"{a} = {t}" for a, t in alias_map.items()) + ".")
    return " ".join([error.rstrip(".") + ".", *notes]) if notes else error


def _missing_column(name: str, schema: Schema, alias_map: dict[str, str]) -> list[str]:
    qualifier, _, column = name.rpartition(".")
    notes = []
    if qualifier:
        by_alias = {a.lower(): t for a, t in alias_map.items()}
        table = by_alias.get(qualifier.lower(), qualifier)
        cols = _columns_of(schema, table)
        if cols:
            ref = f"{qualifier} refers to table {table}" if qualifier.lower() in by_alias else f"Table {table}"
            notes.append(f"{ref}, whose columns are: {', '.join(cols)}.")
    owners = _tables_with_column(schema, column)
    if owners:
        where = []
        for owner in owners:
            used_as = [a for a, t in alias_map.items() if t.lower() == owner.lower()]
            where.append(f"{owner} (aliased {used_as[0]} here)" if used_as else owner)
        notes.append(f"A column {column} exists in: {', '.join(where)}.")
    else:
        every = [f"{t.name}.{c.name}" for t in schema.tables for c in t.columns]
        close = _closest(column, [c.split(".")[1] for c in every])
        hits = [c for c in every if c.split(".")[1] in close][:5]
        notes.append(f"No table has a column {column}." + (f" Closest: {', '.join(hits)}." if hits else ""))
    return notes
