"""Bounded in memory as well as time: the result budget, resource exhaustion, statements sent as they are.

SQLite through SQLAlchemy, as the agent uses it; the same checks on the real PostgreSQL server are in
tests/integration/test_postgres.py.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from peak_rss import peak_growth, run_bounded  # tests/unit is on sys.path
from sqlalchemy.engine.default import DefaultDialect

from agent.nodes.answer import format_rows
from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Settings, Techniques
from core.db import DEFAULT_MAX_RESULT_BYTES, Database, QueryError, shorten, value_bytes
from tools.base import ToolContext
from tools.registry import ToolRegistry
from ui.controller import ChatController
from ui.history import HistoryStore
from ui.render import markdown_table, table_value
from ui.sessions import AssistantPool

MIB = 2**20
TIMEOUT_S = 2.0
MARGIN_S = 3.0  # two cores shared with other work: the stop comes within the timeout plus this
# Growth allowed for one query, whatever it asks for: the rows kept stay within the budget (32 MiB), and
# SQLite may hold a few working copies of one value (at most a quarter of the budget) while it computes it.
MEMORY_BOUND_MIB = 3 * DEFAULT_MAX_RESULT_BYTES / MIB


@pytest.fixture
def db(chinook_copy: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{chinook_copy}", timeout_s=TIMEOUT_S, row_cap=100)
    yield database
    database.close()


def assert_next_query_is_answered(db: Database) -> None:
    assert db.run("SELECT COUNT(*) FROM Artist").rows == [(275,)]


# --- the budget -------------------------------------------------------------------------------------------


def test_the_budget_is_a_setting_in_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_result_bytes == DEFAULT_MAX_RESULT_BYTES == 32 * MIB
    monkeypatch.setenv("SQLSAGE_MAX_RESULT_MIB", "4")
    assert Settings().max_result_bytes == 4 * MIB
    with pytest.raises(ValueError):
        Settings(max_result_mib=0)


def test_the_assistant_opens_its_database_with_the_budget(settings: Settings) -> None:
    small = settings.model_copy(update={"max_result_mib": 1})
    with Assistant.open(small, llm=ScriptedChatModel()) as assistant:
        assert assistant.deps.db.max_result_bytes == MIB
        with pytest.raises(QueryError, match="the result is too large"):
            assistant.run_sql("SELECT zeroblob(2000000)")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT zeroblob(1000000000)",  # a 1 GB value
        "SELECT randomblob(1000000000)",
        "SELECT replace(hex(zeroblob(100000000)), '0', 'ab')",  # 400 MB of text
        "SELECT length(upper(hex(randomblob(300000000))))",  # a huge intermediate value, a short result
        "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT s FROM r",  # doubling
        "SELECT group_concat(a.Name || b.Name) FROM Track a, Track b",  # one value from a cartesian product
    ],
)
def test_a_huge_value_is_refused_at_the_source(db: Database, sql: str) -> None:
    began = time.monotonic()
    with peak_growth() as growth, pytest.raises(QueryError) as info:
        db.run(sql)
    seconds = time.monotonic() - began
    print(f"{sql}: {info.value.kind} after {seconds:.2f} s, {growth}")
    assert info.value.kind in ("too_large", "timeout"), info.value
    assert seconds < TIMEOUT_S + MARGIN_S
    assert growth.mib < MEMORY_BOUND_MIB
    assert_next_query_is_answered(db)


def test_a_1_gb_value_is_refused_and_the_memory_growth_is_measured(db: Database) -> None:
    with peak_growth() as growth, pytest.raises(QueryError) as info:
        db.run("SELECT zeroblob(1000000000) AS v")
    print(f"SQLite, a 1 GB value: refused ({info.value}); {growth}")
    assert info.value.kind == "too_large"
    assert str(info.value).startswith("the result is too large: select fewer or shorter columns")
    assert growth.mib < 16  # refused before it was made: SQLITE_LIMIT_LENGTH


def test_many_rows_over_the_budget_are_refused_while_fetching(chinook_copy: Path) -> None:
    db = Database.open(f"sqlite:///{chinook_copy}", row_cap=1000, max_result_bytes=MIB)
    try:
        # each value (10,000 characters) is well under the limit; 500 of them are not
        many = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT {n}) "
                "SELECT hex(randomblob(5000)) FROM r")
        with pytest.raises(QueryError) as info:
            db.run(many.format(n=500))
        assert info.value.kind == "too_large"
        assert len(db.run(many.format(n=50)).rows) == 50  # 500 kB: under the budget
    finally:
        db.close()


def test_a_stored_value_over_the_budget_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blobs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE doc (id INTEGER PRIMARY KEY, body BLOB)")
        conn.execute("INSERT INTO doc VALUES (1, zeroblob(3000000)), (2, x'00')")
    db = Database.open(f"sqlite:///{path}", max_result_bytes=MIB)
    try:
        with pytest.raises(QueryError, match="the result is too large") as info:
            db.run("SELECT body FROM doc")
        assert info.value.kind == "too_large"
        assert db.run("SELECT id FROM doc ORDER BY id").rows == [(1,), (2,)]
    finally:
        db.close()


def test_value_bytes() -> None:
    assert value_bytes("abc") == 3 and value_bytes("é") == 2 and value_bytes(b"\x00" * 5) == 5
    assert value_bytes(None) == value_bytes(3) == value_bytes(2.5) == 8


# --- resource exhaustion: each ends within the timeout, memory bounded, the next query answered ----------------


@pytest.mark.parametrize(
    ("sql", "outcome"),
    [
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c", "timeout"),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "capped"),
        ("SELECT COUNT(*) FROM Track a, Track b, Track c", "timeout"),
        ("SELECT * FROM Track a, Track b", "capped"),
        ("SELECT a.Name, b.Name FROM Track a, Track b ORDER BY a.Name || b.Name DESC", "timeout"),
        ("SELECT * FROM Track a, Track b, Track c, InvoiceLine d ORDER BY random()", "timeout"),
    ],
)
def test_resource_exhaustion_ends_in_time_with_bounded_memory(db: Database, sql: str, outcome: str) -> None:
    ended = run_bounded(db, sql)
    print(f"{sql}: {ended.got} after {ended.seconds:.2f} s, {ended.growth}")
    assert ended.got == outcome
    assert ended.seconds < TIMEOUT_S + MARGIN_S
    assert ended.growth.mib < MEMORY_BOUND_MIB
    assert_next_query_is_answered(db)


# --- the statement reaches the driver as it is ------------------------------------------------------------------


class _Cursor:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def execute(self, *args: Any) -> None:
        self.calls.append(args)


@pytest.mark.parametrize("dialect_name", ["postgresql.psycopg", "postgresql.psycopg2", "postgresql.pg8000",
                                          "mysql.mysqldb", "mysql.pymysql", "mysql.mysqlconnector", "sqlite.pysqlite"])
def test_every_percent_driver_gets_the_statement_with_no_parameters(dialect_name: str) -> None:
    """With no parameters a DB-API driver reads no placeholders: ``cursor.execute(sql)`` has one argument."""
    dialect_cls = sa.dialects.registry.load(dialect_name)  # type: ignore[attr-defined]
    cursor = _Cursor()
    dialect_cls().do_execute_no_params(cursor, "SELECT '%m', '%s%%', '?'", None)
    assert cursor.calls == [("SELECT '%m', '%s%%', '?'",)]
    assert dialect_cls.do_execute_no_params is DefaultDialect.do_execute_no_params or dialect_name.startswith("mysql")


def test_run_sends_the_statement_without_parameters(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    dialect = db.engine.dialect

    def with_params(*_: Any) -> None:
        raise AssertionError("the statement went to the driver with a parameter collection")

    def no_params(cursor: Any, statement: str, context: Any = None) -> None:
        sent.append(statement)
        cursor.execute(statement)

    monkeypatch.setattr(dialect, "do_execute", with_params)
    monkeypatch.setattr(dialect, "do_execute_no_params", no_params)
    result = db.run("SELECT Name FROM Artist WHERE Name LIKE '%metal%' AND Name NOT LIKE '%s%%'")
    assert result.rows == [("Metallica",)] and sent == [
        "SELECT Name FROM Artist WHERE Name LIKE '%metal%' AND Name NOT LIKE '%s%%'"]


# --- the agent, the UI and the tool share the limits; long values are shown shortened ------------------------


def test_the_repair_loop_sees_a_too_large_result_as_fixable(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue("```sql\nSELECT zeroblob(1000000000) AS doc\n```",
                                        "```sql\nSELECT 1000000000 AS doc_length\n```")
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How long is the document?", Techniques(answer=False, tools=False))
    assert record.ok, record.error
    assert record.rows == [[1000000000]]
    failed = [s for s in record.trace if s.node == "execute" and s.error]
    assert failed and "the result is too large: select fewer or shorter columns" in (failed[0].error or "")
    assert "too large" in str(model.history[-1])  # the repair prompt showed it to the model


def test_the_run_sql_tool_and_the_ui_editor_refuse_a_too_large_result(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    huge = "SELECT zeroblob(1000000000)"
    result = ToolRegistry.default().call("run_sql", {"sql": huge}, ToolContext(db))
    assert not result.ok and "the result is too large" in (result.error or "")
    with Assistant.open(settings, llm=ScriptedChatModel()) as assistant, \
            HistoryStore(tmp_path / "ui.sqlite") as history:
        pool = AssistantPool(assistant)
        slots = ChatController(pool, history, tmp_path / "traces").run_sql(huge, "session-1")
        assert slots["ok_sql"] is None
        assert slots["sql_msg"].startswith("✗ **The query was stopped:** the result is too large")
        slots = ChatController(pool, history, tmp_path / "traces").run_sql(
            "SELECT Name FROM Artist WHERE Name LIKE '%metal%'", "session-1")
        assert slots["table"] == (["Name"], [["Metallica"]])


def test_long_values_are_shown_shortened_with_their_full_length() -> None:
    long = "x" * 1_000_000
    assert shorten("short") == "short" and shorten(None) == "NULL"
    cut = shorten(long, 100)
    assert len(cut) < 120 and cut.endswith("(1,000,000 characters in all)")
    assert "1,000,000 characters in all" in table_value(["v"], [[long]])["data"][0][0]
    assert len(markdown_table(["v"], [[long]])) < 1000
    prompt_rows = format_rows(["v"], [[long], ["ok"]])
    assert "1,000,000 characters in all" in prompt_rows and len(prompt_rows) < 1000
