"""Past conversations and their traces, kept in SQLite (``<data_dir>/ui.sqlite``), one owner each.

Every read and write takes the owner: a browser session (or a logged-in user) only ever sees its own
conversations. A conversation's id is also its LangGraph thread id, so a reopened conversation goes on
with its follow-ups.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    title TEXT NOT NULL,
    db TEXT
);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated DESC);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, id);
"""

TITLE_CHARS = 80


class NotYours(LookupError):
    """No such conversation for this owner (it does not exist, or belongs to someone else)."""


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    created: float
    updated: float
    title: str
    db: str | None
    turns: int = 0


def browser_secret(path: Path) -> str:
    """A stable key for the browser-kept owner id (created once, kept beside the history), so a browser
    finds its conversations again after the server restarts."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if len(text) >= 16:
        return text
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(24)
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return text


def title_for(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


class HistoryStore:
    """Thread-safe: one connection behind a lock (Gradio runs handlers in worker threads)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            if str(path) != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self, owner: str, title: str, db: str | None = None) -> Conversation:
        if not owner:
            raise ValueError("a conversation needs an owner")
        now = time.time()
        conv = Conversation(uuid.uuid4().hex, owner, now, now, title_for(title) or "(untitled)", db)
        with self._lock:
            self._conn.execute(
                "INSERT INTO conversations (id, owner, created, updated, title, db) VALUES (?, ?, ?, ?, ?, ?)",
                (conv.id, conv.owner, conv.created, conv.updated, conv.title, conv.db),
            )
            self._conn.commit()
        return conv

    def _check(self, conversation_id: str, owner: str) -> None:
        row = self._conn.execute(
            "SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
        ).fetchone()
        if row is None:
            raise NotYours(f"no conversation {conversation_id!r} for this user")

    def add_turn(self, conversation_id: str, owner: str, record: Mapping[str, Any]) -> int:
        """Store one answered question (the AnswerRecord's ``to_dict()``, trace included)."""
        text = json.dumps(record, ensure_ascii=False, default=str)
        now = time.time()
        with self._lock:
            self._check(conversation_id, owner)
            cur = self._conn.execute(
                "INSERT INTO turns (conversation_id, created, question, record) VALUES (?, ?, ?, ?)",
                (conversation_id, now, str(record.get("question", "")), text),
            )
            self._conn.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
            self._conn.commit()
            return int(cur.lastrowid or 0)

    def conversations(self, owner: str, limit: int = 100) -> list[Conversation]:
        """This owner's conversations, the most recently used first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turns "
                "FROM conversations c WHERE c.owner = ? ORDER BY c.updated DESC, c.created DESC LIMIT ?",
                (owner, limit),
            ).fetchall()
        return [Conversation(r["id"], r["owner"], r["created"], r["updated"], r["title"], r["db"], r["turns"])
                for r in rows]

    def get(self, conversation_id: str, owner: str) -> Conversation:
        for conv in self.conversations(owner, limit=10_000):
            if conv.id == conversation_id:
                return conv
        raise NotYours(f"no conversation {conversation_id!r} for this user")

    def turns(self, conversation_id: str, owner: str) -> list[dict[str, Any]]:
        """The stored records of a conversation, oldest first. Raises NotYours for someone else's."""
        with self._lock:
            self._check(conversation_id, owner)
            rows = self._conn.execute(
                "SELECT record FROM turns WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            ).fetchall()
        return [json.loads(r["record"]) for r in rows]

    def delete(self, conversation_id: str, owner: str) -> None:
        with self._lock:
            self._check(conversation_id, owner)
            self._conn.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            self._conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            self._conn.commit()
