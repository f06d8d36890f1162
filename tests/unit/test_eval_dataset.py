"""Questions files (Spider's format and the user's own) and the held-out split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.dataset import (
    HELDOUT_DBS,
    DatasetError,
    EvalQuestion,
    heldout_db_ids,
    load_questions,
    select,
    sqlite_path,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "eval"
SPIDER = FIXTURES / "spider" / "questions.json"
TINY = FIXTURES / "spider" / "database" / "tiny" / "tiny.sqlite"


def test_spider_format_finds_its_databases_beside_the_file() -> None:
    questions = load_questions(SPIDER)
    assert len(questions) == 6
    q = questions[0]
    assert (q.qid, q.db_id, q.question) == ("tiny/0", "tiny", "How many singers are there?")
    assert q.db_path == TINY and q.db_url == f"sqlite:///{TINY}"


def test_a_missing_database_is_named(tmp_path: Path) -> None:
    data = tmp_path / "q.json"
    data.write_text(json.dumps([{"db_id": "nowhere", "question": "q?", "query": "SELECT 1"}]))
    with pytest.raises(DatasetError, match="nowhere"):
        load_questions(data, tmp_path)


def test_user_yaml_with_sql_or_gold() -> None:
    url = f"sqlite:///{TINY}"
    questions = load_questions(FIXTURES / "user_questions.yaml", db_url=url)
    assert [q.gold for q in questions][:2] == [
        "SELECT count(*) FROM singer", "SELECT name FROM singer WHERE country = 'France'"]
    assert {q.db_url for q in questions} == {url} and questions[0].db_path == TINY


def test_user_json_needs_a_database_and_the_right_keys(tmp_path: Path) -> None:
    data = tmp_path / "mine.json"
    data.write_text(json.dumps([{"question": "How many?", "sql": "SELECT 1"}]))
    with pytest.raises(DatasetError, match="--db"):
        load_questions(data)
    questions = load_questions(data, db_url="postgresql://u:secret@host/db")
    assert questions[0].db_path is None and questions[0].db_id == "postgresql:host/db"
    data.write_text(json.dumps([{"question": "How many?", "answer": "3"}]))
    with pytest.raises(DatasetError, match="needs a 'question' and an 'sql'"):
        load_questions(data, db_url=f"sqlite:///{TINY}")


def test_sqlite_path_only_for_sqlite_files() -> None:
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("sqlite:///rel/x.db") == Path("rel/x.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql://u@h/db") is None


def _questions(n: int) -> list[EvalQuestion]:
    return [EvalQuestion(f"db{i % 3}/{i}", f"db{i % 3}", f"q{i}", "SELECT 1", "sqlite://") for i in range(n)]


def test_sampling_is_deterministic_and_a_larger_limit_extends_a_smaller_one() -> None:
    questions = _questions(50)
    a = select(questions, limit=10, seed=0)
    assert a == select(questions, limit=10, seed=0)
    assert a != select(questions, limit=10, seed=1)
    assert select(questions, limit=20, seed=0)[:10] == a
    assert select(questions, limit=5) == questions[:5]  # no seed: file order


def test_by_database_asks_the_same_questions_one_database_after_another() -> None:
    questions = _questions(50)
    shuffled = select(questions, limit=20, seed=0)
    grouped = select(questions, limit=20, seed=0, by_database=True)
    assert sorted(q.qid for q in grouped) == sorted(q.qid for q in shuffled)
    dbs = [q.db_id for q in grouped]
    assert dbs == sorted(dbs, key=dbs.index)  # each database's questions together
    assert [q.db_id for q in grouped][0] == shuffled[0].db_id  # databases in order of their first question
    for db in {q.db_id for q in shuffled}:  # each database keeps its questions' shuffled order
        assert [q for q in grouped if q.db_id == db] == [q for q in shuffled if q.db_id == db]


def test_a_few_databases_and_at_most_k_questions_of_each() -> None:
    questions = _questions(60)  # three databases, twenty questions each
    shuffled = select(questions, seed=3)
    first_two = list(dict.fromkeys(q.db_id for q in shuffled))[:2]
    chosen = select(questions, seed=3, databases=2, per_database=4)
    assert Counter(q.db_id for q in chosen) == {first_two[0]: 4, first_two[1]: 4}
    # each database's first four, in the shuffled order
    for db in first_two:
        assert [q for q in chosen if q.db_id == db] == [q for q in shuffled if q.db_id == db][:4]
    assert len(select(questions, seed=3, databases=5)) == 60  # more databases than there are: all of them
    assert select(questions, seed=3, databases=1, limit=3) == [q for q in shuffled if q.db_id == first_two[0]][:3]
    with pytest.raises(DatasetError):
        select(questions, databases=0)
    with pytest.raises(DatasetError):
        select(questions, per_database=0)


def test_heldout_split_keeps_only_heldout_databases() -> None:
    held = sorted(heldout_db_ids())
    questions = [EvalQuestion(f"{db}/{i}", db, "q", "SELECT 1", "sqlite://") for i, db in enumerate([*held, "other"])]
    chosen = select(questions, "heldout")
    assert {q.db_id for q in chosen} == set(held)
    with pytest.raises(DatasetError):
        select(_questions(3), "heldout")


def test_heldout_choice_is_ten_to_twelve_databases_with_enough_questions(spider_dir: Path) -> None:
    assert 10 <= len(HELDOUT_DBS) <= 12 and len(set(HELDOUT_DBS)) == len(HELDOUT_DBS)
    items = json.loads((spider_dir / "train.json").read_text())
    counts = Counter(item["db_id"] for item in items)
    assert all(counts[db] > 0 for db in HELDOUT_DBS)
    assert sum(counts[db] for db in HELDOUT_DBS) >= 250
    for db in HELDOUT_DBS:
        assert (spider_dir / "database" / db / f"{db}.sqlite").is_file()
    sample = select(load_questions(spider_dir / "train.json"), "heldout", 100, 0)
    assert len(sample) == 100 and {q.db_id for q in sample} <= heldout_db_ids()


def test_pool_split_keeps_only_the_other_databases() -> None:
    held = sorted(heldout_db_ids())
    questions = [EvalQuestion(f"{db}/{i}", db, "q", "SELECT 1", "sqlite://") for i, db in enumerate([*held, "other"])]
    assert [q.db_id for q in select(questions, "pool")] == ["other"]
