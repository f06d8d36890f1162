"""The UI's conversation history: SQLite, and each owner sees only their own conversations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ui.history import HistoryStore, NotYours, title_for


def rec(question: str) -> dict[str, object]:
    return {"question": question, "sql": "SELECT 1", "rows": [[1]], "trace": [{"node": "context"}]}


def test_owners_see_only_their_own_conversations(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "ui.sqlite") as store:
        alice = store.start("alice", "How many artists are there?")
        store.add_turn(alice.id, "alice", rec("How many artists are there?"))
        bob = store.start("bob", "Top genres")

        assert [c.id for c in store.conversations("alice")] == [alice.id]
        assert [c.id for c in store.conversations("bob")] == [bob.id]
        assert store.conversations("mallory") == []
        assert store.turns(alice.id, "alice")[0]["question"] == "How many artists are there?"
        with pytest.raises(NotYours):
            store.turns(alice.id, "bob")
        with pytest.raises(NotYours):
            store.add_turn(alice.id, "bob", rec("sneaky"))
        with pytest.raises(NotYours):
            store.delete(alice.id, "bob")
        assert len(store.turns(alice.id, "alice")) == 1


def test_turns_keep_order_and_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ui.sqlite"
    with HistoryStore(path) as store:
        conv = store.start("alice", "q1", db="sqlite:///x")
        for q in ("q1", "q2", "q3"):
            store.add_turn(conv.id, "alice", rec(q))
    with HistoryStore(path) as store:
        listed = store.conversations("alice")
        assert listed[0].turns == 3 and listed[0].title == "q1" and listed[0].db == "sqlite:///x"
        assert [t["question"] for t in store.turns(conv.id, "alice")] == ["q1", "q2", "q3"]
        assert store.turns(conv.id, "alice")[0]["trace"] == [{"node": "context"}]
        store.delete(conv.id, "alice")
        assert store.conversations("alice") == []


def test_most_recently_used_first(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "ui.sqlite") as store:
        first = store.start("alice", "first")
        second = store.start("alice", "second")
        store.add_turn(first.id, "alice", rec("again"))
        assert [c.title for c in store.conversations("alice")] == ["first", "second"]
        assert store.get(second.id, "alice").title == "second"


def test_titles_are_one_short_line_and_an_owner_is_required(tmp_path: Path) -> None:
    assert title_for("a\n  b") == "a b"
    assert len(title_for("x" * 500)) == 80
    with HistoryStore(tmp_path / "ui.sqlite") as store, pytest.raises(ValueError):
        store.start("", "q")


def test_concurrent_writers(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "ui.sqlite") as store:
        convs = [store.start(f"user{i}", f"q{i}") for i in range(4)]

        def write(i: int) -> None:
            for j in range(20):
                store.add_turn(convs[i].id, f"user{i}", rec(f"q{j}"))

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(store.turns(c.id, f"user{i}")) == 20 for i, c in enumerate(convs))


def test_browser_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    from ui.history import browser_secret

    path = tmp_path / "data" / "ui-browser-key"
    first = browser_secret(path)
    assert len(first) >= 16 and browser_secret(path) == first
    assert path.stat().st_mode & 0o077 == 0
