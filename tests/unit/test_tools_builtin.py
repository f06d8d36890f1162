"""The built-in tools on the bundled Chinook database, and the chart chooser the UI shares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.config import bundled_database_url
from core.db import Database
from tools.base import ToolContext
from tools.builtin import NO_KNOWLEDGE, choose_chart
from tools.registry import ToolRegistry


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    database = Database.open(bundled_database_url())
    yield database
    database.close()


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry.default()


def run(registry: ToolRegistry, ctx: ToolContext, name: str, **arguments: Any) -> Any:
    result = registry.call(name, arguments, ctx)
    assert result.ok, result.error
    return result.value


def test_run_sql_returns_columns_and_rows(registry: ToolRegistry, db: Database) -> None:
    value = run(registry, ToolContext(db), "run_sql", sql="SELECT COUNT(*) AS n FROM Artist")
    assert value == {"sql": "SELECT COUNT(*) AS n FROM Artist", "columns": ["n"], "rows": [[275]], "row_count": 1,
                     "truncated": False}


def test_run_sql_caps_rows(registry: ToolRegistry, db: Database) -> None:
    value = run(registry, ToolContext(db), "run_sql", sql="SELECT TrackId FROM Track")
    assert value["row_count"] == 200 and value["truncated"] is True


@pytest.mark.parametrize(
    "sql, message",
    [
        ("DELETE FROM Artist", "UnsafeSQLError"),
        ("SELECT 1; DROP TABLE Artist", "UnsafeSQLError"),
        ("SELECT nope FROM Artist", "no such column: nope"),
    ],
)
def test_run_sql_refusals_and_errors_go_back_to_the_model(
    registry: ToolRegistry, db: Database, sql: str, message: str
) -> None:
    result = registry.call("run_sql", {"sql": sql}, ToolContext(db))
    assert not result.ok and message in (result.error or "")


def test_list_tables(registry: ToolRegistry, db: Database) -> None:
    tables = run(registry, ToolContext(db), "list_tables")
    assert {"table": "Genre", "columns": ["GenreId", "Name"]} in tables
    assert len(tables) == 11


def test_describe_table(registry: ToolRegistry, db: Database) -> None:
    table = run(registry, ToolContext(db), "describe_table", table="track")
    assert table["table"] == "Track"
    assert {"name": "TrackId", "type": "INTEGER", "primary_key": True, "nullable": False} in table["columns"]
    assert {"columns": ["GenreId"], "references": "Genre(GenreId)"} in table["foreign_keys"]
    assert len(table["sample_rows"]) == 3
    failed = registry.call("describe_table", {"table": "Tracks"}, ToolContext(db))
    assert not failed.ok and "There is no table 'Tracks'" in (failed.error or "") and "Track" in (failed.error or "")


def test_sample_values_counts_distinct_values(registry: ToolRegistry, db: Database) -> None:
    value = run(registry, ToolContext(db), "sample_values", table="customer", column="country", limit=2)
    assert value == {"table": "Customer", "column": "Country",
                     "values": [{"value": "USA", "count": 13}, {"value": "Canada", "count": 8}]}


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"table": "Customer", "column": "Country; DROP TABLE Customer"}, "has no column"),
        ({"table": "Customer\"; --", "column": "Country"}, "There is no table"),
    ],
)
def test_sample_values_checks_names_against_the_schema(
    registry: ToolRegistry, db: Database, arguments: dict[str, str], message: str
) -> None:
    result = registry.call("sample_values", arguments, ToolContext(db))
    assert not result.ok and message in (result.error or "")


def test_sample_values_clamps_the_limit(registry: ToolRegistry, db: Database) -> None:
    value = run(registry, ToolContext(db), "sample_values", table="Track", column="Name", limit=100000)
    assert len(value["values"]) == 100


def test_search_knowledge_without_a_store_says_so(registry: ToolRegistry, db: Database) -> None:
    assert run(registry, ToolContext(db), "search_knowledge", query="revenue") == NO_KNOWLEDGE


@dataclass(frozen=True)
class FakeItem:
    text: str
    kind: str


@dataclass(frozen=True)
class FakeHit:
    item: FakeItem
    score: float


class FakeRetriever:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, k: int) -> list[Any]:
        self.calls.append((query, k))
        text = "Revenue is the sum of InvoiceLine.UnitPrice * Quantity." + "x" * 900
        return [FakeHit(FakeItem(text, "doc"), 0.91234), "a bare string hit"]


def test_search_knowledge_reads_hits_defensively(registry: ToolRegistry, db: Database) -> None:
    store = FakeRetriever()
    hits = run(registry, ToolContext(db, knowledge=store), "search_knowledge", query="revenue", k=50)  # type: ignore[arg-type]
    assert store.calls == [("revenue", 20)]
    assert hits[0]["kind"] == "doc" and hits[0]["score"] == 0.912 and hits[0]["text"].startswith("Revenue is")
    assert len(hits[0]["text"]) == 600
    assert hits[1] == {"kind": None, "text": "a bare string hit", "score": None}


@pytest.mark.parametrize(
    "columns, rows, kind, x, y",
    [
        (["n"], [[275]], "none", None, None),
        (["Name", "Total"], [["a", 1]], "none", None, None),
        (["Name"], [["AC/DC"], ["Accept"]], "none", None, None),
        (["Genre", "Tracks"], [["Rock", 1297], ["Latin", 579]], "bar", "Genre", "Tracks"),
        (["InvoiceDate", "Total"], [["2009-01-01 00:00:00", 1.98], ["2009-01-02", 3.96]], "line", "InvoiceDate",
         "Total"),
        (["Year", "Sales"], [[2009, 449.46], [2010, 481.45]], "line", "Year", "Sales"),
        (["GenreId", "TrackCount"], [[1, 1297], [7, 579]], "bar", "GenreId", "TrackCount"),
        (["ArtistId", "Name", "Albums"], [[1, "AC/DC", 2], [2, "Accept", 2]], "bar", "Name", "Albums"),
        (["Milliseconds", "Bytes"], [[343719, 11170334], [342562, 5510424]], "scatter", "Milliseconds", "Bytes"),
        (["a", "b"], [["x", "y"], ["z", "w"]], "none", None, None),
    ],
)
def test_choose_chart(columns: list[str], rows: list[list[Any]], kind: str, x: str | None, y: str | None) -> None:
    spec = choose_chart(columns, rows)
    assert (spec["kind"], spec["x"], spec["y"]) == (kind, x, y)
    assert spec["columns"] == columns and spec["rows"] == rows


def test_make_chart_charts_the_last_run_sql_result(registry: ToolRegistry, db: Database) -> None:
    ctx = ToolContext(db, last_table=(["Genre", "Tracks"], [["Rock", 1297], ["Latin", 579]]))
    spec = run(registry, ctx, "make_chart")
    assert spec["kind"] == "bar" and spec["title"] == "Tracks by Genre"
    assert spec["rows"] == [["Rock", 1297], ["Latin", 579]]
    # small models pass empty rows when told to leave them out
    assert run(registry, ctx, "make_chart", columns=["Genre", "Tracks"], rows=[], kind="line")["kind"] == "line"


def test_make_chart_with_explicit_data_and_columns(registry: ToolRegistry, db: Database) -> None:
    spec = run(registry, ToolContext(db), "make_chart", columns=["m", "v", "w"], rows=[["a", 1, 2], ["b", 3, 4]],
               kind="scatter", x="V", y="w", title="T")
    assert (spec["kind"], spec["x"], spec["y"], spec["title"]) == ("scatter", "v", "w", "T")
    qualified = run(registry, ToolContext(db), "make_chart", columns=["Name", "n"], rows=[["a", 1], ["b", 2]],
                    x="Genre.Name", y='"N"')
    assert (qualified["x"], qualified["y"]) == ("Name", "n")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "call run_sql first"),
        ({"columns": ["a", "b"], "rows": [["x"]]}, "Every row must have 2 values"),
        ({"columns": ["a", "b"], "rows": [["x", 1], ["y", 2]], "x": "c"}, "no column 'c'"),
        ({"kind": "pie"}, "kind: Input should be"),
    ],
)
def test_make_chart_errors(registry: ToolRegistry, db: Database, arguments: dict[str, Any], message: str) -> None:
    result = registry.call("make_chart", arguments, ToolContext(db))
    assert not result.ok and message in (result.error or "")
