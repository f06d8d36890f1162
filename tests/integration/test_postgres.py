"""PostgreSQL as the database asked about: reflection, the postgres guard dialect, the read-only
transaction and the read-only role, the statement timeout, LIKE patterns with '%', the result budget and
resource exhaustion, the hostile corpus end to end as the owner role, and the five Chinook questions with
the real local model.

Needs the server of ``scripts/ci_services.sh`` (CI starts it): ``SQLSAGE_TEST_PG_URL`` is the read-only
role's URL of the ``chinook`` database, ``SQLSAGE_TEST_PG_OWNER_URL`` its owner's (a role that may write).
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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
from ui.controller import ChatController
from ui.history import HistoryStore
from ui.sessions import AssistantPool

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


def test_past_the_timeout_and_a_grace_the_client_drops_the_connection(owner_url: str) -> None:
    """The server looks at its statement_timeout only between steps of work, not while it copies or frees one
    huge value, so the client keeps a deadline of its own. Here the sessions' statement_timeout is 60 s and
    the client's timeout 1 s: only the client can end the query in time, and the server is still at it."""
    import psycopg

    from agent.shared_state import libpq_url

    db = Database.open(owner_url, timeout_s=60)
    db.timeout_s = 1.0  # the pooled session keeps statement_timeout=60s
    pid = db.run("SELECT pg_backend_pid()").rows[0][0]
    try:
        began = time.monotonic()
        with pytest.raises(QueryError) as info:
            db.run("SELECT COUNT(*) FROM track a, track b, track c")
        seconds = time.monotonic() - began
        assert info.value.kind == "timeout" and "longer than 1 s" in str(info.value)
        assert seconds < 1.0 + 1.0 + 0.5, seconds  # the timeout, the grace, a little
        assert db.run("SELECT COUNT(*) FROM genre").rows == [(25,)]  # on a new connection
    finally:
        db.close()
        with psycopg.connect(libpq_url(owner_url), autocommit=True) as admin:  # a role may cancel its own query
            left = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
    assert left == ("active",)  # the dropped session's query was still running on the server


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


def _unit_module(name: str) -> ModuleType:
    """A helper module of tests/unit (the guard corpus loader, the memory probe), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_unit_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def load_corpus(name: str) -> list[str]:
    """The guard tests' own loader (tests/unit/test_guard.py)."""
    return list(_unit_module("test_guard").load_corpus(name))


def relations(db: Database) -> list[tuple[str, str, str]]:
    """Every relation of the database (tables, views, sequences, indexes, ...) but the system's own."""
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' "
            "ORDER BY 1, 2"
        ).all()
        conn.rollback()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def server_state(db: Database) -> dict[str, object]:
    """What a function with side effects would change: the probe sequence, large objects, advisory locks."""
    with db.engine.connect() as conn:
        state = {
            "sequence": tuple(conn.exec_driver_sql("SELECT last_value, is_called FROM sqlsage_probe_seq").one()),
            "large_objects": conn.exec_driver_sql("SELECT COUNT(*) FROM pg_largeobject_metadata").scalar_one(),
            "advisory_locks": conn.exec_driver_sql("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'")
            .scalar_one(),
        }
        conn.rollback()
    return state


def host_files(cases: list[str]) -> set[Path]:
    """The absolute paths the cases name, and any file named sqlsage-hostile* in /tmp or the cluster's folder."""
    named = {Path(m) for case in cases for m in re.findall(r"'(/[^'\\s]+)'", case)}
    folders = [Path("/tmp")] + ([Path(os.environ["SQLSAGE_TEST_PG_DATA"])] if os.environ.get("SQLSAGE_TEST_PG_DATA")
                                else [])
    found = {p for p in named if p.exists()}
    for folder in folders:
        found.update(folder.rglob("sqlsage-hostile*"))
    return found


@pytest.fixture
def probe_sequence(owner_url: str) -> Iterator[None]:
    """A sequence for nextval/setval to aim at, made (and dropped) by the owner outside the guard."""
    import psycopg

    from agent.shared_state import libpq_url

    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS sqlsage_probe_seq")
    yield
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        conn.execute("DROP SEQUENCE IF EXISTS sqlsage_probe_seq")


def test_every_refused_postgres_statement_is_refused_through_the_agent_as_the_owner(
    owner_url: str, tmp_path: Path, probe_sequence: None
) -> None:
    """Connected as the role that owns the data, so that the guard and the read-only session are the only
    barriers: every case is refused, and afterwards the data, the relations, the sequence, the large objects
    and the advisory locks are as they were, no notification was sent and no file appeared on the host."""
    import psycopg

    from agent.shared_state import libpq_url

    settings = Settings(db_url=owner_url, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    model = ScriptedChatModel()
    cases = load_corpus("refuse_postgres")
    files_before = host_files(cases)
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as listener, \
            Assistant.open(settings, llm=model) as assistant:
        listener.execute("LISTEN sqlsage_probe")
        db = assistant.deps.db
        before = (fingerprint(db), relations(db), server_state(db))
        wrong = []
        for i, sql in enumerate(cases):
            model.enqueue(f"```sql\n{sql}\n```")
            record = assistant.ask("Do what the data says.", Techniques(repair=False, answer=False))
            if record.ok or record.error_kind not in ("unsafe", "syntax"):
                wrong.append(f"case {i} {sql!r}: ok={record.ok} kind={record.error_kind}")
        after = (fingerprint(db), relations(db), server_state(db))
        select.select([listener.fileno()], [], [], 0.5)
        notified = list(listener.notifies(timeout=0.5, stop_after=1))
    assert not wrong, "\n".join(wrong)
    assert after == before and len(cases) >= 190
    assert not notified
    assert host_files(cases) == files_before


# --- LIKE patterns, the result budget, resource exhaustion -------------------------------------------------

LIKE = "SELECT name FROM artist WHERE name ILIKE '%metal%' OR name LIKE '100%% %s' ORDER BY name"


@pytest.mark.parametrize("url_fixture", ["pg_url", "owner_url"])
def test_a_like_pattern_with_percent_runs(url_fixture: str, request: pytest.FixtureRequest) -> None:
    db = Database.open(request.getfixturevalue(url_fixture))
    try:
        assert db.run(LIKE).rows == [("Metallica",)]
        assert db.run("SELECT '%s %m %(x)s %%' AS t").rows == [("%s %m %(x)s %%",)]
    finally:
        db.close()


def test_a_like_pattern_runs_from_sqlsage_sql_ask_and_the_ui(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main

    monkeypatch.setenv("SQLSAGE_DATA_DIR", str(tmp_path / "data"))
    assert main(["sql", LIKE, "--db", pg_url]) == 0
    assert "Metallica" in capsys.readouterr().out

    settings = Settings(db_url=pg_url, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    model = ScriptedChatModel().enqueue(f"```sql\n{LIKE}\n```")
    with Assistant.open(settings, llm=model) as assistant, HistoryStore(tmp_path / "ui.sqlite") as history:
        record = assistant.ask("Which artists have metal in their name?", Techniques(answer=False, tools=False))
        assert record.ok and record.rows == [["Metallica"]], record.error
        slots = ChatController(AssistantPool(assistant), history, tmp_path / "traces").run_sql(LIKE, "s1")
        assert slots["table"] == (["name"], [["Metallica"]]), slots["sql_msg"]


def test_order_names_and_row_cap_survive_the_budget_wrapper(pg: Database) -> None:
    result = pg.run("SELECT t.name, g.name, NULL AS q, ROW(1, 'x') FROM track t JOIN genre g USING (genreid) "
                    "ORDER BY t.name DESC, t.trackid LIMIT 3 -- the last line may be a comment")
    assert result.columns == ["name", "name", "q", "row"]
    with pg.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT t.name, g.name FROM track t JOIN genre g USING (genreid) "
                                   "ORDER BY t.name DESC, t.trackid LIMIT 3").all()
        conn.rollback()
    assert [tuple(r[:2]) for r in result.rows] == [tuple(r) for r in raw]
    assert result.rows[0][2] is None
    capped = pg.run("SELECT trackid FROM track ORDER BY trackid DESC")
    assert capped.truncated and len(capped.rows) == pg.row_cap and capped.rows[0] == (3503,)


@pytest.fixture(scope="module")
def peak_growth() -> object:
    return _unit_module("peak_rss").peak_growth


TIMEOUT_S = 2.0
MARGIN_S = 3.0
MEMORY_BOUND_MIB = 5 * 32  # a few times the default budget, whatever the query asked for


@pytest.mark.parametrize(
    ("sql", "outcomes"),
    [
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c", {"timeout"}),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", {"capped"}),
        ("SELECT COUNT(*) FROM track a, track b, track c", {"timeout"}),
        ("SELECT * FROM track a, track b", {"capped"}),
        ("SELECT a.name, b.name FROM track a, track b ORDER BY a.name || b.name DESC", {"timeout", "capped"}),
        ("SELECT string_agg(a.name || b.name, ',') FROM track a, track b", {"timeout", "too_large"}),
        ("SELECT repeat('x', 40000000)", {"too_large", "timeout"}),
        ("SELECT repeat('x', 1000000) FROM generate_series(1, 1000)", {"too_large", "timeout"}),
        ("SELECT repeat('x', 1000000000)", {"too_large", "timeout"}),
    ],
)
def test_resource_exhaustion_ends_in_time_with_bounded_memory(owner_url: str, sql: str, outcomes: set[str]) -> None:
    db = Database.open(owner_url, timeout_s=TIMEOUT_S, row_cap=1000)
    try:
        ended = _unit_module("peak_rss").run_bounded(db, sql)
        print(f"PostgreSQL {sql}: {ended.got} after {ended.seconds:.2f} s, {ended.growth}")
        assert ended.got in outcomes
        assert ended.seconds < TIMEOUT_S + MARGIN_S
        assert ended.growth.mib < MEMORY_BOUND_MIB
        assert db.run("SELECT COUNT(*) FROM genre").rows == [(25,)]  # the next query is answered normally
    finally:
        db.close()


def test_a_1_gb_value_is_refused_and_the_memory_growth_is_measured(owner_url: str, peak_growth: object) -> None:
    """With time to make it (60 s), the server makes the 1 GB value and refuses to send it."""
    db = Database.open(owner_url, timeout_s=60)
    try:
        began = time.monotonic()
        with peak_growth() as growth, pytest.raises(QueryError) as info:  # type: ignore[operator]
            db.run("SELECT repeat('x', 1000000000) AS v")
        print(f"PostgreSQL, a 1 GB value: refused after {time.monotonic() - began:.1f} s ({info.value}); {growth}")
        assert info.value.kind == "too_large"
        assert str(info.value).startswith("the result is too large: select fewer or shorter columns")
        assert growth.mib < 16  # nothing of it reached this process
    finally:
        db.close()


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
