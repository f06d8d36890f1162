"""Diagnoses that a small model can act on."""

from __future__ import annotations

import pytest

from agent.diagnose import diagnose
from core.db import Database, Schema


@pytest.fixture(scope="module")
def schema() -> Schema:
    from core.config import bundled_database_url

    return Database.open(bundled_database_url()).schema()


def test_alias_confusion_names_the_alias_and_the_owner(schema: Schema) -> None:
    sql = "SELECT T2.Name, COUNT(T1.TrackId) FROM MediaType AS T1 JOIN Track AS T2 ON T1.MediaTypeId = T2.MediaTypeId"
    text = diagnose("no such column: T1.TrackId", sql, schema)
    assert "T1 refers to table MediaType, whose columns are: MediaTypeId, Name" in text
    assert "Track (aliased T2 here)" in text


def test_missing_table_suggests_the_closest(schema: Schema) -> None:
    assert "Did you mean: Artist" in diagnose("no such table: Artists", "SELECT * FROM Artists", schema)


def test_misspelt_column_suggests_real_ones(schema: Schema) -> None:
    assert "Artist.Name" in diagnose("no such column: nme", "SELECT nme FROM Artist", schema)


def test_postgres_wording_is_understood(schema: Schema) -> None:
    assert "Did you mean: Artist" in diagnose('relation "artists" does not exist', "SELECT * FROM artists", schema)


def test_ambiguous_column_lists_its_tables(schema: Schema) -> None:
    text = diagnose("ambiguous column name: Name", "SELECT Name FROM Artist JOIN Album USING (ArtistId)", schema)
    assert "qualify it" in text and "Artist" in text


def test_unknown_errors_pass_through(schema: Schema) -> None:
    assert diagnose("misuse of aggregate: COUNT()", "SELECT 1", schema) == "misuse of aggregate: COUNT()"
