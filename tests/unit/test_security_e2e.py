"""Read-only by construction, end to end: every statement the guard's corpus refuses, written by the agent's
model, is refused through the whole graph and leaves the database as it was; and the read-only
connection refuses writes on its own, with the guard bypassed."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from test_guard import load_corpus  # tests/unit is on sys.path: the same loader as the guard's own tests

from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Settings, Techniques, bundled_database_path
from core.db import Database

NO_REPAIR = Techniques.minimal(repair=False, answer=False)


def sql_reply(sql: str) -> str:
    return f"Here is the query:\n```sql\n{sql}\n```"


def content_hash(path: Path) -> str:
    """A digest of the database's content (schema and every row), not of its file's bytes."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        digest = hashlib.sha256()
        for line in conn.iterdump():
            digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    conn.close()
    return digest.hexdigest()


def quick_fingerprint(path: Path) -> tuple[int, int, tuple[int, ...]]:
    """Cheap enough to take after every ask: file size and mtime, and every table's row count."""
    stat = path.stat()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        counts = tuple(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
    conn.close()
    return stat.st_size, stat.st_mtime_ns, counts


@pytest.fixture(scope="module")
def chinook_module_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("e2e")
    target = folder / "chinook.sqlite"
    shutil.copyfile(bundled_database_path(), target)
    return target


@pytest.fixture(scope="module")
def agent(chinook_module_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[Assistant, ScriptedChatModel]
]:
    base = tmp_path_factory.mktemp("e2e-data")
    settings = Settings(db_url=f"sqlite:///{chinook_module_copy}", data_dir=base / "data", cache_dir=base / "cache")
    model = ScriptedChatModel()
    with Assistant.open(settings, llm=model) as assistant:
        yield assistant, model


REFUSED_SQLITE = load_corpus("refuse_sqlite")


def test_every_refused_statement_is_refused_through_the_agent_and_changes_nothing(
    agent: tuple[Assistant, ScriptedChatModel], chinook_module_copy: Path
) -> None:
    assistant, model = agent
    folder = chinook_module_copy.parent
    files_before = sorted(p.name for p in folder.iterdir())
    hash_before = content_hash(chinook_module_copy)
    fingerprint = quick_fingerprint(chinook_module_copy)
    problems = []
    for i, sql in enumerate(REFUSED_SQLITE):
        model.enqueue(sql_reply(sql))
        record = assistant.ask("Do what the data says.", NO_REPAIR)
        ran = [s for s in record.trace if s.node == "execute"]
        if record.ok or record.error_kind not in ("unsafe", "syntax") or ran or record.rows:
            problems.append(f"case {i} {sql!r}: ok={record.ok} kind={record.error_kind} executed={bool(ran)}")
        if quick_fingerprint(chinook_module_copy) != fingerprint:
            problems.append(f"case {i} {sql!r} CHANGED THE DATABASE")
            fingerprint = quick_fingerprint(chinook_module_copy)
    assert model.replies == [], "each ask should have made exactly one model call"
    assert not problems, "\n".join(problems)
    assert len(REFUSED_SQLITE) >= 150
    assert content_hash(chinook_module_copy) == hash_before
    assert sorted(p.name for p in folder.iterdir()) == files_before  # no file created beside it (ATTACH, VACUUM INTO)


def test_the_refusal_is_told_to_the_user_not_repaired(agent: tuple[Assistant, ScriptedChatModel]) -> None:
    assistant, model = agent
    model.enqueue(sql_reply("DELETE FROM Track"))
    record = assistant.ask("Remove every track", Techniques(answer=False))  # repair on: still one call
    assert record.error_kind == "unsafe" and (record.error or "").startswith("Refused, nothing was run")
    assert record.answer is None and record.rows == []
    assert model.replies == []


# --- layer 2 alone: the guard bypassed, the read-only connection still refuses -------------------------

RAW_WRITES = [
    "DELETE FROM Artist",
    "UPDATE Artist SET Name = 'pwned'",
    "INSERT INTO Genre (Name) VALUES ('pwned')",
    "DROP TABLE Artist",
    "CREATE TABLE pwned (x)",
    "ALTER TABLE Album RENAME TO Album2",
    "CREATE INDEX pwned_ix ON Track (Name)",
    "PRAGMA user_version = 42",
    "REINDEX",
    "ANALYZE",
]


@pytest.fixture
def raw_db(chinook_copy: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{chinook_copy}")
    yield db
    db.close()


@pytest.mark.parametrize("sql", RAW_WRITES)
def test_read_only_connection_refuses_writes_with_the_guard_bypassed(
    raw_db: Database, chinook_copy: Path, sql: str
) -> None:
    before = content_hash(chinook_copy)
    refused = "readonly|read-only|not authorized"  # the read-only open, or an authorizer on the connection
    with raw_db.engine.connect() as conn, pytest.raises(DBAPIError, match=refused):
        conn.exec_driver_sql(sql)
        conn.commit()
    assert content_hash(chinook_copy) == before


def test_read_only_connection_refuses_attach_of_itself_read_write(raw_db: Database, chinook_copy: Path) -> None:
    """The file is opened ``?mode=ro``, but the connection's open flags would let ``ATTACH 'file:<same
    file>?mode=rw'`` give a writable handle on it: the connection's authorizer refuses the ATTACH."""
    before = content_hash(chinook_copy)
    with raw_db.engine.connect() as conn, pytest.raises(DBAPIError, match="not authorized|readonly|read-only"):
        conn.exec_driver_sql(f"ATTACH 'file:{chinook_copy}?mode=rw' AS w")
        conn.exec_driver_sql("DELETE FROM w.InvoiceLine")
        conn.commit()
    assert content_hash(chinook_copy) == before


def test_guard_refuses_what_the_connection_alone_would_let_through(raw_db: Database, chinook_copy: Path) -> None:
    """Layer 1 covers the gaps of layer 2: writing a copy elsewhere, attaching, reconfiguring."""
    from core.guard import UnsafeSQLError

    for sql in (f"ATTACH 'file:{chinook_copy}?mode=rw' AS w", "VACUUM INTO '/tmp/sqlsage-copy.db'",
                "PRAGMA query_only = 0", "CREATE TEMP TABLE t (x)"):
        with pytest.raises(UnsafeSQLError):
            raw_db.run(sql)
