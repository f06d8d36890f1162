"""Requalifying columns written with the wrong table alias."""

from __future__ import annotations

import pytest

from agent.config import bundled_database_url
from agent.db import Database, Schema
from agent.requalify import requalify


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Database.open(bundled_database_url()).schema()


def test_a_column_of_the_other_table_gets_its_alias(schema: Schema) -> None:
    sql = "SELECT T2.Name, COUNT(T1.TrackId) FROM MediaType AS T1 JOIN Track AS T2 ON T1.MediaTypeId = T2.MediaTypeId"
    fixed, notes = requalify(sql, schema)
    assert notes == ["T1.TrackId -> T2.TrackId"]
    assert "COUNT(T2.TrackId)" in fixed and "T2.Name" in fixed  # Name exists in T2: left alone


def test_correct_and_ambiguous_sql_is_left_alone(schema: Schema) -> None:
    ok = "SELECT T1.Name FROM Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId"
    assert requalify(ok, schema) == (ok, [])
    # Nope exists nowhere: the model must fix it
    assert requalify("SELECT T1.Nope FROM Artist AS T1", schema)[1] == []


def test_subqueries_are_scoped(schema: Schema) -> None:
    sql = ("SELECT T1.Title FROM Album AS T1 WHERE T1.ArtistId IN "
           "(SELECT T2.ArtistId FROM Artist AS T2 JOIN Album AS T3 ON T3.ArtistId = T2.ArtistId WHERE T2.Title = 'x')")
    fixed, notes = requalify(sql, schema)
    assert notes == ["T2.Title -> T3.Title"] and "T3.Title = 'x'" in fixed


def test_unparseable_sql_is_returned_unchanged(schema: Schema) -> None:
    assert requalify("SELEC nonsense (", schema) == ("SELEC nonsense (", [])
