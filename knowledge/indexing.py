"""Index a database into the store: one schema item per table, distinct values of its text columns.

Re-indexing is cheap: items carry a content hash, so only what changed is embedded again, and items of
tables that are gone are removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from core.db import Database, QueryError, Schema, Table, db_key, quote_ident
from core.guard import UnsafeSQLError
from knowledge.store import Item, KnowledgeStore

MAX_VALUES_PER_COLUMN = 200
MAX_VALUE_CHARS = 60
_TEXT_TYPES = ("CHAR", "TEXT", "CLOB", "STRING", "VARCHAR")


@dataclass(frozen=True)
class IndexReport:
    db: str
    tables: int
    values: int
    changed: int
    removed: int


def table_text(table: Table) -> str:
    """What gets embedded for a table: its name, columns and comments, words split for the embedder."""
    cols = ", ".join(c.name.replace("_", " ") + (f" ({c.comment})" if c.comment else "") for c in table.columns)
    head = table.name.replace("_", " ") + (f": {table.comment}" if table.comment else "")
    return f"{head}. Columns: {cols}"


def schema_items(key: str, schema: Schema) -> list[Item]:
    return [
        Item(id=f"schema:{key}:{t.name}", kind="schema", text=table_text(t), metadata={"db_id": key, "table": t.name})
        for t in schema.tables
    ]


def value_items(key: str, db: Database, schema: Schema) -> list[Item]:
    items = []
    for table in schema.tables:
        for column in table.columns:
            if not any(word in column.type.upper() for word in _TEXT_TYPES):
                continue
            sql = (f"SELECT DISTINCT {quote_ident(column.name)} FROM {quote_ident(table.name)} "
                   f"WHERE {quote_ident(column.name)} IS NOT NULL LIMIT {MAX_VALUES_PER_COLUMN}")
            try:
                rows = db.run(sql).rows
            except (QueryError, UnsafeSQLError, SQLAlchemyError):
                continue  # a column we cannot read is left out of the value index, not fatal
            for (value,) in rows:
                text = str(value).strip()
                if text and len(text) <= MAX_VALUE_CHARS:
                    items.append(Item(
                        id=f"value:{key}:{table.name}:{column.name}:{text}", kind="value", text=text,
                        metadata={"db_id": key, "table": table.name, "column": column.name},
                    ))
    return items


def index_database(store: KnowledgeStore, db: Database, key: str | None = None, values: bool = True) -> IndexReport:
    key = key or db_key(db.url)
    schema = db.schema()
    wanted = schema_items(key, schema) + (value_items(key, db, schema) if values else [])
    removed = 0
    for kind in ("schema", "value"):
        keep = {i.id for i in wanted if i.kind == kind}
        stale = [i.id for i in store.get(kind, where={"db_id": key}) if i.id not in keep]
        if stale:
            removed += store.delete(kind, ids=stale)
    changed = store.upsert(wanted)
    return IndexReport(key, len(schema.tables), sum(i.kind == "value" for i in wanted), changed, removed)
