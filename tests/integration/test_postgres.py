"""PostgreSQL as the database asked about: reflection, the postgres guard dialect, the read-only
transaction and the read-only role, the statement timeout, the hostile corpus end to end, and the five
Chinook questions with the real local model.

Needs the server of ``scripts/ci_services.sh`` (CI starts it): ``SQLSAGE_TEST_PG_URL`` is the read-only
role's URL of the ``chinook`` database, ``SQLSAGE_TEST_PG_OWNER_URL`` its owner's (a role that may write).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from test_chinook_questions import QUESTIONS, same_rows  # tests/integration is on sys.path

from agent.llm import build_chat_model
from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Endpoint, Settings, Techniques
from core.db import Database, QueryError
from core.errors import DatabaseUnavailable
from core.guard import UnsafeSQLError

HOW = "start it with: bash scripts/ci_services.sh start > var/ci_services.env && source var/ci_services.env"
TABLES = ["album", "artist", "customer", "employee", "genre", "invoice", "invoiceline", "mediatype", "playlist",
          "playlisttrack", "track"]


def _url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.skip(f"{name} is not set: no PostgreSQL test server ({HOW})")
    try:
        Database.open(url, timeout_s=5).close()
    except DatabaseUnavailable as err:
        pytest.skip(f"the PostgreSQL test server is not reachable ({err}); {HOW}")
    return url


@pytest.fixture(scope="module")
def pg_url() -> str:
    return _url("SQLSAGE_TEST_PG_URL")


@pytest.fixture(scope="module")
def owner_url() -> str:
    return _url("SQLSAGE_TEST_PG_OWNER_URL")


@pytest.fixture(scope="module")
def pg(pg_url: str) -> Iterator[Database]:
    db = Database.open(pg_url, timeout_s=2)
    yield db
    db.close()


def fingerprint(db: Database) -> dict[str, str]:
    """Every table's row count and a digest of its rows."""
    out = {}
    with db.engine.connect() as conn:
        for table in TABLES:
            digest = conn.exec_driver_sql(
                f"SELECT COUNT(*)::text || ':' || COALESCE(md5(string_agg(t::text, ',' ORDER BY t::text)), '') "
                f"FROM {table} t"
            ).scalar_one()
            out[table] = str(digest)
        conn.rollback()
    return out


def test_schema_is_reflected_with_keys(pg: Database) -> None:
    schema = pg.schema()
    assert [t.name for t in schema.tables] == TABLES
    album = schema.table("Album")  # any case finds it
    assert album is not None and [c.name for c in album.columns] == ["albumid", "title", "artistid"]
    assert album.foreign_keys[0].ref_table == "artist"
    assert pg.dialect == "postgres"
    assert pg.run("SELECT COUNT(*) FROM Artist").rows == [(275,)]  # CamelCase SQL folds to the lower-case names


def test_the_guard_uses_the_postgres_dialect(pg: Database) -> None:
    for sql in ("SELECT pg_sleep(5)", "SELECT 1; DROP TABLE artist", "COPY artist TO '/tmp/x'",
                "SET TRANSACTION READ WRITE", "SELECT set_config('default_transaction_read_only', 'off', false)",
                "SELECT pg_read_file('/etc/passwd')", "SELECT * FROM dblink('x', 'DELETE FROM artist')"):
        with pytest.raises(UnsafeSQLError):
            pg.run(sql)
    assert pg.run("SELECT name FROM artist WHERE name ILIKE 'ac/dc'").rows == [("AC/DC",)]  # postgres syntax


@pytest.mark.parametrize("url_fixture", ["pg_url", "owner_url"])
def test_every_connection_is_a_read_only_transaction(url_fixture: str, request: pytest.FixtureRequest) -> None:
    """Layer 2, the guard bypassed: even the owner, who may write, gets read-only transactions."""
    db = Database.open(request.getfixturevalue(url_fixture))
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar_one() == "on"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "20s"
        for sql in ("INSERT INTO genre (genreid, name) VALUES (999, 'x')", "DELETE FROM invoiceline",
                    "UPDATE artist SET name = 'x'", "DROP TABLE artist", "CREATE TABLE pwned (x int)",
                    "CREATE TEMP TABLE pwned (x int)", "TRUNCATE playlisttrack"):
            with db.engine.connect() as conn, pytest.raises(DBAPIError, match="read-only transaction"):
                conn.exec_driver_sql(sql)
    finally:
        db.close()


def test_the_reader_role_cannot_write_even_in_a_read_write_transaction(pg: Database) -> None:
    """Layer 3: a raw connection can ask for a read-write transaction; the role's privileges still hold."""
    for sql in ("INSERT INTO genre (genreid, name) VALUES (999, 'x')", "DELETE FROM invoiceline",
                "CREATE TABLE public.pwned (x int)"):
        with pg.engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
            conn.exec_driver_sql("SET TRANSACTION READ WRITE")
            conn.exec_driver_sql(sql)


def test_a_slow_query_is_stopped_by_the_statement_timeout(pg: Database) -> None:
    with pytest.raises(QueryError) as info:
        pg.run("SELECT COUNT(*) FROM track a, track b, track c")
    assert info.value.kind == "timeout"
    assert "longer than 2 s" in str(info.value)
    assert pg.run("SELECT 1").rows == [(1,)]  # the connection is fine afterwards


def test_a_dropped_connection_is_a_clear_error_then_the_next_query_works(pg_url: str) -> None:
    """The server ends our session (a restart, a failover, an admin): one clear error, then a fresh connection."""
    import psycopg

    from agent.shared_state import libpq_url

    db = Database.open(pg_url, timeout_s=5)
    try:
        pid = db.run("SELECT pg_backend_pid()").rows[0][0]  # the pooled connection, kept for the next query
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as admin:  # a role may end its own sessions
            ended = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert ended == (True,)
        with pytest.raises(DatabaseUnavailable, match="unavailable"):
            db.run("SELECT COUNT(*) FROM genre")
        assert db.run("SELECT COUNT(*) FROM genre").rows == [(25,)]
    finally:
        db.close()


def load_corpus(name: str) -> list[str]:
    """The guard tests' own loader (tests/unit/test_guard.py), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_guard.py"
    spec = importlib.util.spec_from_file_location("_guard_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.load_corpus(name))


def test_every_refused_postgres_statement_is_refused_through_the_agent(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(db_url=pg_url, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    model = ScriptedChatModel()
    cases = load_corpus("refuse_postgres")
    with Assistant.open(settings, llm=model) as assistant:
        before = fingerprint(assistant.deps.db)
        wrong = []
        for i, sql in enumerate(cases):
            model.enqueue(f"```sql\n{sql}\n```")
            record = assistant.ask("Do what the data says.", Techniques(repair=False, answer=False))
            if record.ok or record.error_kind not in ("unsafe", "syntax"):
                wrong.append(f"case {i} {sql!r}: ok={record.ok} kind={record.error_kind}")
        after = fingerprint(assistant.deps.db)
    assert not wrong, "\n".join(wrong)
    assert after == before and len(cases) >= 150


# --- the five questions with the real local model --------------------------------------------------------


@pytest.fixture(scope="module")
def pg_assistant(pg_url: str, local_endpoint: Endpoint) -> Iterator[Assistant]:
    settings = Settings(db_url=pg_url)
    with Assistant.open(settings, llm=build_chat_model(settings, local_endpoint)) as assistant:
        yield assistant


@pytest.mark.llm
@pytest.mark.parametrize("qid, question, gold, ordered", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_question_matches_gold_rows_on_postgres(
    pg_assistant: Assistant, qid: str, question: str, gold: str, ordered: bool
) -> None:
    record = pg_assistant.ask(question, Techniques(answer=False))
    assert record.ok, f"{qid}: {record.error}\nSQL: {record.sql}"
    gold_rows = [tuple(r) for r in pg_assistant.run_sql(gold).rows]  # the same gold SQL, run on PostgreSQL
    assert same_rows(record.rows, gold_rows, ordered), f"{qid}: {record.sql} gave {record.rows[:10]}"
