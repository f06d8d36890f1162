"""Deterministic retrieval precision/recall of the prompt's schema against the gold query."""

from __future__ import annotations

import pytest

from evals.retrieval import mean_scores, retrieval_scores, scores_for_trace


def test_hand_computed_case() -> None:
    # The prompt showed 3 tables and 6 columns; the gold uses singer and concert through aliases.
    gold = (
        "SELECT T1.name, T2.title FROM singer AS T1 JOIN singer_in_concert AS S ON S.singer_id = T1.singer_id "
        "JOIN concert AS T2 ON T2.concert_id = S.concert_id WHERE T2.year = 2015"
    )
    # gold tables: singer, singer_in_concert, concert (3)
    # gold columns: singer.name, concert.title, singer_in_concert.singer_id, singer.singer_id,
    #               concert.concert_id, singer_in_concert.concert_id, concert.year (7)
    scores = retrieval_scores(
        tables=["Singer", "Concert", "Stadium"],
        columns=["Singer.Name", "Singer.Singer_ID", "Singer.Age", "Concert.Title", "Concert.Year", "Stadium.Name"],
        gold_sql=gold,
    )
    assert scores.table_precision == pytest.approx(2 / 3)  # singer, concert of 3 shown
    assert scores.table_recall == pytest.approx(2 / 3)  # singer_in_concert missing
    assert scores.column_precision == pytest.approx(4 / 6)  # name, singer_id, title, year of 6 shown
    assert scores.column_recall == pytest.approx(4 / 7)


def test_bare_gold_columns_match_by_name() -> None:
    # two tables in FROM and no qualifiers: sql_elements cannot tell the owners, the names are bare
    scores = retrieval_scores(["a", "b"], ["a.x", "a.y", "b.z"], "SELECT x FROM a, b WHERE z = 1")
    assert scores.column_recall == 1.0
    assert scores.column_precision == pytest.approx(2 / 3)


def test_undefined_ratios_are_none_and_left_out_of_means() -> None:
    s = retrieval_scores(["singer"], [], "SELECT count(*) FROM singer")
    assert (s.table_precision, s.table_recall) == (1.0, 1.0)
    assert s.column_precision is None and s.column_recall is None
    other = retrieval_scores(["singer"], ["singer.name"], "SELECT name FROM singer")
    means = mean_scores([s, other, None])
    assert means["column_recall"] == 1.0 and means["table_recall"] == 1.0


def test_scores_come_from_the_context_step_of_a_trace() -> None:
    trace = [
        {"node": "context", "output": {"tables": ["singer"], "columns": ["singer.name", "singer.age"]}},
        {"node": "generate", "output": {"sql": "SELECT name FROM singer"}},
    ]
    s = scores_for_trace(trace, "SELECT name FROM singer WHERE age > 3")
    assert s is not None and s.column_recall == 1.0 and s.column_precision == 1.0
    assert scores_for_trace([{"node": "generate", "output": {}}], "SELECT 1") is None


def test_a_linked_schema_is_scored_by_what_the_retrieve_step_kept() -> None:
    context = {"node": "context", "output": {"tables": ["singer", "concert"],
                                             "columns": ["singer.name", "singer.age", "concert.title"]}}
    linked = {"node": "retrieve", "output": {"tables": ["singer"], "columns": ["singer.name", "singer.age"]}}
    gold = "SELECT name FROM singer WHERE age > 3"
    whole, kept = scores_for_trace([context], gold), scores_for_trace([context, linked], gold)
    assert whole is not None and kept is not None
    assert whole.table_precision == 0.5 and kept.table_precision == 1.0 and kept.table_recall == 1.0
    examples_only = {"node": "retrieve", "output": {"examples": []}}  # no schema linking: the context counts
    assert scores_for_trace([context, examples_only], gold) == whole


def test_examples_are_scored_by_the_gold_querys_skeleton_and_hardness() -> None:
    from evals.retrieval import example_scores

    shown = [{"sql": "SELECT count(*) FROM ship", "hardness": "easy"},
             {"sql": "SELECT name FROM ship WHERE tonnage > 5", "hardness": "easy"},
             {"sql": "SELECT a FROM b JOIN c ON b.x = c.y", "hardness": "medium"}]
    trace = [{"node": "retrieve", "output": {"examples": shown}}]
    scores = example_scores(trace, "SELECT title FROM film WHERE year > 2000")
    assert scores is not None
    assert scores["example_skeleton_precision"] == pytest.approx(1 / 3) and scores["example_skeleton_hit"] == 1.0
    assert scores["example_hardness_precision"] == pytest.approx(2 / 3)
    assert example_scores([{"node": "retrieve", "output": {"examples": []}}], "SELECT 1") is None
