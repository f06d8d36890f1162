"""State shared by several app workers: conversations in PostgreSQL, the knowledge store on a Chroma server.

One process needs none of this: conversations live in a SQLite file and the knowledge store in Chroma
files, both under the data folder. Several workers (processes, or machines behind a load balancer) must
see the same threads and the same remembered examples, so each of those stores can be a server instead:

- ``Settings.conversations_url`` (``postgresql://user:pw@host/db``): LangGraph's ``PostgresSaver`` over a
  psycopg connection pool. Its tables are created (or migrated) once, under an advisory lock, so workers
  starting together do not race.
- ``Settings.chroma_url`` (``http://host:port``): ``chromadb.HttpClient``. Embeddings are still computed
  in the worker (offline MiniLM); the server only stores and searches vectors.

Both fail fast with a clear message (password masked) when the server cannot be reached.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agent.trace import OUTPUT_TYPES
from core.db import mask_url
from core.errors import SqlsageError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from langgraph.checkpoint.postgres import PostgresSaver

# Restoring a checkpoint may rebuild our own trace records, and nothing else outside LangGraph's types.
ALLOWED_MSGPACK_MODULES = (("agent.trace", "Step"), *(("agent.trace", kind.__name__) for kind in OUTPUT_TYPES))
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 120.0
_SETUP_LOCK = "sqlsage:checkpoint-setup"


class SharedStateUnavailable(SqlsageError):
    """The conversation store or the knowledge server is unreachable or misconfigured."""


def checkpoint_serde() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=list(ALLOWED_MSGPACK_MODULES))


def open_sqlite_checkpointer(path: Path) -> SqliteSaver:
    """LangGraph's SQLite checkpointer in one file (one machine; it switches the file to WAL itself)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    return SqliteSaver(conn, serde=checkpoint_serde())


def libpq_url(url: str) -> str:
    """A URL psycopg accepts: SQLAlchemy's ``postgresql+psycopg://`` becomes ``postgresql://``."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise SharedStateUnavailable(f"Not a PostgreSQL URL: {mask_url(url)!r}") from err
    if parsed.get_backend_name() != "postgresql":
        raise SharedStateUnavailable(
            f"Conversations can be shared through PostgreSQL only, not {parsed.get_backend_name()!r} "
            f"({mask_url(url)}); e.g. postgresql://user:password@host:5432/sqlsage"
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def open_postgres_checkpointer(url: str, max_size: int = POOL_MAX_SIZE) -> PostgresSaver:
    """LangGraph's Postgres checkpointer over a pool of ``max_size`` connections, its tables set up.

    One direct connection first: it fails fast with the server's own reason, and sets the tables up
    (or migrates them) under an advisory lock, so workers starting together do not race. ``saver.conn``
    is the pool: close it when done.
    """
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    conninfo = libpq_url(url)
    timeout = int(CONNECT_TIMEOUT_S)
    try:
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                             connect_timeout=timeout) as conn:
            _wait_for_setup_lock(conn)
            PostgresSaver(conn, serde=checkpoint_serde()).setup()  # the lock goes with the connection
    except psycopg.Error as err:
        raise SharedStateUnavailable(f"Cannot open the conversation store {mask_url(url)}: {_reason(err)}") from err
    pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
        conninfo, connection_class=psycopg.Connection[DictRow], min_size=1, max_size=max_size, open=False,
        name="sqlsage-conversations", check=ConnectionPool.check_connection,  # a restarted server: reconnect
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "connect_timeout": timeout},
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout as err:
        pool.close()
        raise SharedStateUnavailable(f"Cannot open the conversation store {mask_url(url)}: {_reason(err)}") from err
    return PostgresSaver(pool, serde=checkpoint_serde())


def _wait_for_setup_lock(conn: Any) -> None:
    """Take the setup lock, polling: a session blocked inside pg_advisory_lock() would hold a snapshot that
    LangGraph's CREATE INDEX CONCURRENTLY (run by the lock's holder) waits for, a deadlock."""
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (_SETUP_LOCK,)).fetchone()["locked"]:
        if time.monotonic() > deadline:
            raise SharedStateUnavailable(
                f"Another worker has been setting up the conversation tables for over {SETUP_TIMEOUT_S:g} s."
            )
        time.sleep(0.2)


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_chroma_client(url: str) -> ClientAPI:
    """A client of the Chroma server at ``url`` (``http://host:port`` or ``https://...``), telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SharedStateUnavailable(f"Not a Chroma server URL: {url!r} (e.g. http://127.0.0.1:8000)")
    ssl = parts.scheme == "https"
    try:
        return chromadb.HttpClient(
            host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl,
            settings=ChromaSettings(anonymized_telemetry=False),
        )
    except ValueError as err:  # chromadb's "Could not connect to a Chroma server"
        raise SharedStateUnavailable(f"Cannot reach the knowledge server at {parts.hostname}:{parts.port}: {err}") \
            from err
