"""Opening databases read-only, reflecting schemas, running SQL with a timeout and a row cap."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.db import Database, QueryError, mask_url
from core.errors import DatabaseUnavailable
from core.guard import UnsafeSQLError


@pytest.fixture
def db(chinook_copy: Path) -> Database:
    return Database.open(f"sqlite:///{chinook_copy}", timeout_s=2.0, row_cap=10)


def test_schema_reflection_has_keys_and_samples(db: Database) -> None:
    schema = db.schema()
    track = schema.table("track")
    assert track is not None
    assert any(c.name == "TrackId" and c.primary_key for c in track.columns)
    assert {fk.ref_table for fk in track.foreign_keys} == {"Album", "Genre", "MediaType"}
    text = schema.render(sample_rows=2)
    assert "CREATE TABLE Track" in text and "FOREIGN KEY (AlbumId) REFERENCES Album(AlbumId)" in text
    assert "2 example rows from Track" in text


def test_row_cap_truncates(db: Database) -> None:
    result = db.run("SELECT * FROM Track")
    assert len(result.rows) == 10 and result.truncated


def test_timeout_stops_a_runaway_query(db: Database) -> None:
    with pytest.raises(QueryError) as err:
        db.run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
    assert err.value.kind == "timeout"


def test_connection_is_read_only_even_past_the_guard(db: Database, chinook_copy: Path) -> None:
    with db.engine.connect() as conn, pytest.raises(Exception, match="readonly|not authorized"):
        conn.exec_driver_sql("DELETE FROM Artist")
    with pytest.raises(UnsafeSQLError):
        db.run("DELETE FROM Artist")
    with sqlite3.connect(chinook_copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM Artist").fetchone() == (275,)


def test_locked_database_is_a_clear_error(db: Database, chinook_copy: Path) -> None:
    locker = sqlite3.connect(chinook_copy)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailable, match="locked"):
            db.run("SELECT COUNT(*) FROM Artist")
    finally:
        locker.rollback()
        locker.close()
    assert db.run("SELECT COUNT(*) FROM Artist").rows == [(275,)]  # usable again once the lock is gone


def test_missing_file_and_bad_urls() -> None:
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        Database.open("sqlite:////nope/missing.sqlite")
    with pytest.raises(DatabaseUnavailable, match="Unknown database driver"):
        Database.open("madeup+driver://h/db")


def test_passwords_are_masked() -> None:
    assert "s3cret" not in mask_url("postgresql://bob:s3cret@db.example/x")
    assert "bob" in mask_url("postgresql://bob:s3cret@db.example/x")
