"""Index a database into the store: one schema item per table, distinct values of its text columns.

Re-indexing is cheap: items carry a content hash, so only what changed is embedded again, and items of
tables that are gone are removed. :class:`DatabaseIndexer` does it in the background on first connection
(the UI, ``sqlsage ask``): a fingerprint of the reflected schema, kept as a note on the schema collection,
spares an unchanged database the work on the next start, and a changed one is indexed again by itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from core.db import Database, QueryError, Schema, Table, db_key, quote_ident
from core.guard import UnsafeSQLError
from knowledge.background import BackgroundJob
from knowledge.store import Item, KnowledgeStore

MAX_VALUES_PER_COLUMN = 200
MAX_VALUE_CHARS = 60
_TEXT_TYPES = ("CHAR", "TEXT", "CLOB", "STRING", "VARCHAR")
_FINGERPRINT = "fingerprint:"  # + the database's key: the note on the schema collection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexReport:
    db: str
    tables: int
    values: int
    changed: int
    removed: int
    complete: bool = True  # False when stopped between batches (what is written stays; the rest comes next time)


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


BATCH = 512  # items embedded and written at a time: where a stop takes effect


def index_database(store: KnowledgeStore, db: Database, key: str | None = None, values: bool = True,
                   stop: threading.Event | None = None) -> IndexReport:
    """Index ``db``'s tables (and the values of its text columns) under ``key`` (default: ``db.key``),
    removing what is gone; with ``stop``, give up between batches once it is set."""
    key = key or db_key(db.url)
    schema = db.schema()
    wanted = schema_items(key, schema) + (value_items(key, db, schema) if values else [])
    removed = 0
    for kind in ("schema", "value"):
        keep = {i.id for i in wanted if i.kind == kind}
        stale = [i.id for i in store.get(kind, where={"db_id": key}) if i.id not in keep]
        if stale:
            removed += store.delete(kind, ids=stale)
    changed = 0
    for start in range(0, len(wanted), BATCH):
        if stop is not None and stop.is_set():
            return IndexReport(key, len(schema.tables), sum(i.kind == "value" for i in wanted), changed, removed,
                               complete=False)
        changed += store.upsert(wanted[start : start + BATCH])
    return IndexReport(key, len(schema.tables), sum(i.kind == "value" for i in wanted), changed, removed)


def schema_fingerprint(schema: Schema) -> str:
    """A digest of the reflected schema: tables, columns, their types and keys (not comments, not rows)."""
    shape = [[t.name, [[c.name, c.type, c.primary_key, c.nullable] for c in t.columns],
              sorted([list(f.columns), f.ref_table, list(f.ref_columns)] for f in t.foreign_keys)]
             for t in sorted(schema.tables, key=lambda t: t.name)]
    return hashlib.sha256(json.dumps([schema.dialect, shape]).encode()).hexdigest()[:16]


def indexed_fingerprint(store: KnowledgeStore, key: str) -> str | None:
    """The fingerprint of the schema last indexed completely for database ``key``, if any."""
    value = store.marks("schema").get(_FINGERPRINT + key)
    return str(value) if value else None


def index_if_changed(store: KnowledgeStore, db: Database, values: bool = True,
                     stop: threading.Event | None = None) -> IndexReport | None:
    """Index ``db`` unless the store holds this very schema already (then None: no work). The fingerprint
    is recorded once the tables and values are all in, so an interrupted run carries on next time."""
    digest = schema_fingerprint(db.schema())
    if indexed_fingerprint(store, db.key) == digest:
        return None
    report = index_database(store, db, values=values, stop=stop)
    if report.complete and values:
        mark_indexed(store, db)
    return report


def mark_indexed(store: KnowledgeStore, db: Database) -> None:
    """Record that ``db``'s schema (its fingerprint), tables and values are all in the store."""
    store.mark("schema", **{_FINGERPRINT + db.key: schema_fingerprint(db.schema())})


class DatabaseIndexer(BackgroundJob):
    """Index the database's tables and text values in a background thread, unless its schema is indexed.

    A store that cannot be written (a read-only data folder, a full disk) is logged once, and the
    assistant answers as before. ``on_done`` runs after a run that wrote something (e.g. to drop a
    cache of values)."""

    thread_name = "sqlsage-db-index"
    logger = log

    def __init__(self, store: KnowledgeStore, db: Database, notify: Callable[[str], None] | None = None,
                 on_done: Callable[[], None] | None = None) -> None:
        super().__init__(notify)
        self.store, self.db, self.on_done = store, db, on_done
        self.report: IndexReport | None = None
        self.failure = (f"The database {db.key} is not indexed (answers go on without its tables and values "
                        "in the store): %s")

    def work(self) -> None:
        digest = schema_fingerprint(self.db.schema())
        if indexed_fingerprint(self.store, self.db.key) != digest:
            self.state = "indexing"
            self._tell()
            self.report = index_if_changed(self.store, self.db, stop=self._stop)
            if self.on_done is not None:
                self.on_done()
        self.state = "stopped" if self.report is not None and not self.report.complete else "ready"

    def line(self) -> str:
        name = self.db.key
        if self.state == "ready":
            if self.report is None:
                return f"Database {name}: indexed (schema unchanged)."
            return f"Database {name}: {self.report.tables:,} tables and {self.report.values:,} values indexed."
        if self.state == "indexing":
            return f"Database {name}: indexing its tables and values in the background…"
        if self.state == "stopped":
            return f"Database {name}: partly indexed; the rest next time."
        if self.state == "failed":
            return f"Database {name}: not indexed ({self.error})."
        return f"Database {name}: checking the index…"
