"""Requalifying columns written with the wrong table alias."""

from __future__ import annotations

import pytest

from agent.requalify import requalify
from core.config import bundled_database_url
from core.db import Database, Schema


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Database.open(bundled_database_url()).schema()


def test_a_column_of_the_other_table_gets_its_alias(schema: Schema) -> None:
    sql = "SELECT T2.Title, T2.Name FROM Album AS T1 JOIN Artist AS T2 ON T1.ArtistId = T2.ArtistId"
    fixed, notes = requalify(sql, schema)
    assert notes == ["T2.Title -> T1.Title"]  # Name is not in Album: swapping the aliases would not fit
    assert fixed == "SELECT T1.Title, T2.Name FROM Album AS T1 JOIN Artist AS T2 ON T1.ArtistId = T2.ArtistId"


def test_aliases_given_the_other_way_round_are_swapped_back(schema: Schema) -> None:
    # The SELECT list was written for T1 = Track, T2 = MediaType; the FROM clause then said the opposite.
    # Fixing only COUNT(T1.TrackId) would leave T2.Name as the *track's* name.
    sql = ("SELECT T2.Name, COUNT(T1.TrackId) FROM MediaType AS T1 JOIN Track AS T2 ON T1.MediaTypeId = "
           "T2.MediaTypeId GROUP BY T2.Name")
    fixed, notes = requalify(sql, schema)
    assert notes == ["T1 <-> T2: the query reads as if the two aliases were swapped"]
    assert fixed == ("SELECT T1.Name, COUNT(T2.TrackId) FROM MediaType AS T1 JOIN Track AS T2 ON T2.MediaTypeId = "
                     "T1.MediaTypeId GROUP BY T1.Name")


def test_correct_and_ambiguous_sql_is_left_alone(schema: Schema) -> None:
    ok = "SELECT T1.Name FROM Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId"
    assert requalify(ok, schema) == (ok, [])
    # Nope exists nowhere: the model must fix it
    assert requalify("SELECT T1.Nope FROM Artist AS T1", schema)[1] == []


def test_subqueries_are_scoped(schema: Schema) -> None:
    sql = ("SELECT T1.Title FROM Album AS T1 WHERE T1.ArtistId IN "
           "(SELECT T2.ArtistId FROM Artist AS T2 JOIN Album AS T3 ON T3.ArtistId = T2.ArtistId WHERE T2.Title = 'x')")
    fixed, notes = requalify(sql, schema)
    # only the inner SELECT (Artist T2, Album T3) is touched; its aliases swap, and the title is Album's
    assert notes == ["T2 <-> T3: the query reads as if the two aliases were swapped"]
    assert fixed.startswith("SELECT T1.Title FROM Album AS T1 WHERE T1.ArtistId IN") and "T3.Title = 'x'" in fixed


def test_unparseable_sql_is_returned_unchanged(schema: Schema) -> None:
    assert requalify("SELEC nonsense (", schema) == ("SELEC nonsense (", [])
