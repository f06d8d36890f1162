"""evals.accuracy: read-only execution and Spider-style result comparison."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.sqlshape import HARDNESS_LEVELS, hardness
from evals.accuracy import (
    MAX_PERMUTATIONS,
    ExecResult,
    execute_readonly,
    execution_match,
    gold_has_order_by,
    normalize_value,
    official_match,
    official_order_matters,
    official_results_match,
    official_sql,
    remove_distinct,
    results_match,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
TINY_DB = FIXTURES / "tiny.sqlite"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "cases.yaml").read_text(encoding="utf-8"))
SPIDER_TRAIN = REPO.parent / "shared" / "data" / "spider-train"
SANITY_DB_ID = "manufactory_1"  # 80 training questions on a 12 KB database


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _ok(columns: list[str], rows: list[tuple]) -> ExecResult:
    return ExecResult(columns=columns, rows=rows, error=None, seconds=0.0)


# --------------------------------------------------------------------------------------------- fixtures


def test_cases_file_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(CASES) >= 20
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert {"id", "gold", "pred", "match", "why"} <= case.keys(), case
        assert isinstance(case["match"], bool)


def test_tiny_db_matches_its_build_script(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("eval_make_db", FIXTURES / "make_db.py")
    assert spec is not None and spec.loader is not None
    make_db = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_db)
    rebuilt = make_db.build(tmp_path / "tiny.sqlite")

    def dump(path: Path) -> list[str]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    assert dump(rebuilt) == dump(TINY_DB)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_execution_match_cases(case: dict[str, Any]) -> None:
    before = _md5(TINY_DB)
    matched, gold, pred = execution_match(
        TINY_DB, case["gold"], case["pred"], timeout_s=float(case.get("timeout_s", 10.0))
    )
    assert gold.error is None, gold.error
    assert matched is case["match"], case["why"]
    expected_error = case.get("pred_error")
    if expected_error is None:
        assert pred.error is None, pred.error
    else:
        assert pred.error is not None
        if expected_error == "timeout":
            assert pred.timed_out
            assert pred.seconds < float(case["timeout_s"]) + 2.0
    assert _md5(TINY_DB) == before  # nothing ever writes to the fixture


# --------------------------------------------------------------------------------------------- execute


def test_execute_readonly_returns_columns_and_rows() -> None:
    result = execute_readonly(TINY_DB, "SELECT name, age FROM singer WHERE age > 26 ORDER BY name")
    assert result.error is None and result.ok
    assert result.columns == ["name", "age"]
    assert result.rows == [("Ann", 30), ("Cid", 30), ("Dee", 41)]
    assert result.seconds >= 0


def test_execute_readonly_missing_database(tmp_path: Path) -> None:
    result = execute_readonly(tmp_path / "nope.sqlite", "SELECT 1")
    assert result.error is not None and "not found" in result.error
    assert not (tmp_path / "nope.sqlite").exists()


def test_execute_readonly_too_many_rows() -> None:
    result = execute_readonly(TINY_DB, "SELECT * FROM singer", max_rows=3)
    assert result.error is not None and "too many rows" in result.error
    assert execute_readonly(TINY_DB, "SELECT * FROM singer", max_rows=5).error is None


def test_execute_readonly_timeout_is_enforced() -> None:
    start = time.perf_counter()
    result = execute_readonly(
        TINY_DB, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c", timeout_s=0.2
    )
    assert result.timed_out
    assert time.perf_counter() - start < 2.0


def test_execute_readonly_refuses_attach(tmp_path: Path) -> None:
    result = execute_readonly(TINY_DB, f"ATTACH DATABASE '{tmp_path / 'x.sqlite'}' AS x")
    assert result.error is not None
    assert not (tmp_path / "x.sqlite").exists()


def test_execute_readonly_path_with_special_characters(tmp_path: Path) -> None:
    odd = tmp_path / "a dir #1?" / "tiny copy.sqlite"
    odd.parent.mkdir()
    odd.write_bytes(TINY_DB.read_bytes())
    assert execute_readonly(odd, "SELECT count(*) FROM singer").rows == [(5,)]


def test_execute_readonly_invalid_utf8_text(tmp_path: Path) -> None:
    db = tmp_path / "bad.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (s TEXT)")
    conn.execute("INSERT INTO t VALUES (CAST(x'41ff42' AS TEXT))")
    conn.commit()
    conn.close()
    result = execute_readonly(db, "SELECT s FROM t")
    assert result.error is None
    assert result.rows == [("A\ufffdB",)]


# --------------------------------------------------------------------------------------------- compare


@pytest.mark.parametrize(
    ("a", "b"),
    [(3, 3.0), (None, None), (True, 1), (0.1 + 0.2, 0.3), (2.9999999999999996, 3), (b"abc", "abc"), (1e20, 1e20)],
)
def test_normalize_value_equal(a: object, b: object) -> None:
    assert normalize_value(a) == normalize_value(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [(3, "3"), (None, 0), (None, ""), (1.5, 1.6), (0.333, 1 / 3), ("a", "A"), (1234567, 1234568.0)],
)
def test_normalize_value_different(a: object, b: object) -> None:
    assert normalize_value(a) != normalize_value(b)


def test_results_match_errors_never_match() -> None:
    good = _ok(["a"], [(1,)])
    bad = ExecResult(columns=[], rows=[], error="boom", seconds=0.0)
    assert not results_match(good, bad, order_matters=False)
    assert not results_match(bad, good, order_matters=False)
    assert not results_match(bad, bad, order_matters=False)


def test_results_match_needs_the_permutation_that_pairs_rows() -> None:
    # Columns a and b hold the same values; only pairing them with c tells which is which.
    gold = _ok(["a", "b", "c"], [(1, 2, "p"), (2, 1, "q")])
    pred = _ok(["b", "a", "c"], [(2, 1, "p"), (1, 2, "q")])
    assert results_match(gold, pred, order_matters=False)
    assert results_match(gold, pred, order_matters=True)
    wrong = _ok(["x", "y", "c"], [(1, 1, "p"), (2, 2, "q")])
    assert not results_match(gold, wrong, order_matters=False)


def test_results_match_order() -> None:
    gold = _ok(["a"], [(1,), (2,), (3,)])
    pred = _ok(["a"], [(3,), (2,), (1,)])
    assert results_match(gold, pred, order_matters=False)
    assert not results_match(gold, pred, order_matters=True)


def test_results_match_multiset() -> None:
    gold = _ok(["a"], [(1,), (1,), (2,)])
    assert not results_match(gold, _ok(["a"], [(1,), (2,), (2,)]), order_matters=False)
    assert not results_match(gold, _ok(["a"], [(1,), (2,)]), order_matters=False)


def test_results_match_empty() -> None:
    assert results_match(_ok(["a"], []), _ok(["b"], []), order_matters=True)
    assert not results_match(_ok(["a"], []), _ok(["a", "b"], []), order_matters=False)


def test_results_match_wide_results_are_fast() -> None:
    width = 12
    names = [f"c{i}" for i in range(width)]
    # Every column holds different values: the multisets pin the one assignment (a rotation) at once.
    rows = [tuple(range(i, i + width)) for i in range(width)]
    rotated = [tuple(r[(j + 1) % width] for j in range(width)) for r in rows]
    start = time.perf_counter()
    assert results_match(_ok(names, rows), _ok(names, rotated), order_matters=True)
    # Every column holds two 0s and two 1s, and every row six of each, so neither the column multisets
    # nor the row bags reject; no column order turns rows A, A, B, B into A, B, A, B. The search tries
    # at most MAX_PERMUTATIONS of the 12! assignments and says no.
    a = tuple([1] * 6 + [0] * 6)
    b = tuple([0] * 6 + [1] * 6)
    assert not results_match(_ok(names, [a, a, b, b]), _ok(names, [a, b, a, b]), order_matters=True)
    assert results_match(_ok(names, [a, a, b, b]), _ok(names, [a, b, a, b]), order_matters=False)
    assert MAX_PERMUTATIONS <= 100_000
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order  by a desc limit 3;", True),
        ("SELECT a FROM t", False),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 3)", False),
        ("SELECT a FROM t WHERE a IN (SELECT a FROM u ORDER BY a LIMIT 1)", False),
        ("SELECT a FROM t UNION SELECT a FROM u ORDER BY a", True),
        ("WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x", False),
        ("SELEC a FRM t ORDER BY a", True),  # unparseable: Spider's substring test
    ],
)
def test_gold_has_order_by(sql: str, expected: bool) -> None:
    assert gold_has_order_by(sql) is expected


# --------------------------------------------------------------------------------------------- official


def _official(gold_sql: str, pred_sql: str) -> tuple[bool, bool]:
    """(our verdict, the official evaluator's) for two queries on the tiny database."""
    ours, gold, pred = execution_match(TINY_DB, gold_sql, pred_sql)
    return ours, official_match(gold_sql, pred_sql, gold, pred, lambda sql: execute_readonly(TINY_DB, sql))


def test_remove_distinct_cuts_every_distinct_keyword_and_nothing_else() -> None:
    sql = "SELECT DISTINCT count(DISTINCT a), 'distinct', \"distinct\" FROM t WHERE b IN (SELECT distinct b FROM u)"
    assert remove_distinct(sql) == "SELECT  count( a), 'distinct', \"distinct\" FROM t WHERE b IN (SELECT  b FROM u)"
    assert remove_distinct("SELECT a FROM t") == "SELECT a FROM t"
    assert remove_distinct("SELECT 'unterminated") == "SELECT 'unterminated"  # does not tokenize: unchanged


def test_official_sql_applies_the_official_postprocessing() -> None:
    assert official_sql("SELECT DISTINCT a FROM t WHERE b > = 2 AND c ! = 3") == (
        "SELECT  a FROM t WHERE b >= 2 AND c != 3")
    assert official_sql("SELECT a FROM t WHERE y < YEAR(CURDATE())") == "SELECT a FROM t WHERE y < 2020"


@pytest.mark.parametrize(
    ("gold_sql", "pred_sql"),
    [
        ("SELECT country FROM singer", "SELECT DISTINCT country FROM singer"),  # 5 rows vs 3
        ("SELECT DISTINCT country FROM singer", "SELECT country FROM singer"),
        ("SELECT count(DISTINCT country) FROM singer", "SELECT count(country) FROM singer"),  # 2 vs 4
    ],
)
def test_official_match_strips_distinct_from_both_queries(gold_sql: str, pred_sql: str) -> None:
    assert _official(gold_sql, pred_sql) == (False, True)


def test_official_match_of_two_empty_results_ignores_their_columns() -> None:
    gold_sql = "SELECT name FROM singer WHERE age > 100"
    assert _official(gold_sql, "SELECT name, age FROM singer WHERE age > 100") == (False, True)
    assert official_results_match(_ok(["a"], []), _ok(["a", "b", "c"], []), order_matters=True)
    assert not official_results_match(_ok(["a"], []), _ok(["a"], [(1,)]), order_matters=False)


def test_official_order_comes_from_the_gold_text() -> None:
    # 'order by' only in a sub-query: we compare rows as a multiset, the official evaluator in order.
    gold_sql = "SELECT name FROM singer WHERE singer_id IN (SELECT singer_id FROM singer ORDER BY age LIMIT 2)"
    assert execute_readonly(TINY_DB, gold_sql).rows == [("Bob",), ("Eve",)]
    assert _official(gold_sql, "SELECT name FROM singer WHERE age = 25 ORDER BY name DESC") == (True, False)
    assert _official(gold_sql, "SELECT name FROM singer WHERE age = 25 ORDER BY name") == (True, True)
    assert official_order_matters("SELECT a FROM t WHERE b = 'x order by y'")  # in a string too
    assert not official_order_matters("SELECT a FROM t ORDER  BY a")  # two spaces: the official test misses it
    assert official_order_matters("select a from t Order By a")


def test_official_results_match_compares_raw_values() -> None:
    assert official_results_match(_ok(["a"], [(3,)]), _ok(["a"], [(3.0,)]), order_matters=False)
    assert not official_results_match(_ok(["a"], [(0.3,)]), _ok(["a"], [(0.1 + 0.2,)]), order_matters=False)
    assert results_match(_ok(["a"], [(0.3,)]), _ok(["a"], [(0.1 + 0.2,)]), order_matters=False)
    assert not official_results_match(_ok(["a"], [("abc",)]), _ok(["a"], [(b"abc",)]), order_matters=False)


def test_official_results_match_permutes_columns_and_keeps_multiplicities() -> None:
    gold = _ok(["a", "b", "c"], [(1, 2, "p"), (2, 1, "q")])
    assert official_results_match(gold, _ok(["b", "a", "c"], [(2, 1, "p"), (1, 2, "q")]), order_matters=True)
    assert not official_results_match(gold, _ok(["x", "y", "c"], [(1, 1, "p"), (2, 2, "q")]), order_matters=False)
    # the quick rejection compares sets; the multiset check after it still tells 1,1,2 from 1,2,2
    assert not official_results_match(_ok(["a"], [(1,), (1,), (2,)]), _ok(["a"], [(1,), (2,), (2,)]),
                                      order_matters=False)
    assert not official_results_match(_ok(["a"], [(1,), (2,)]), _ok(["a", "b"], [(1, 1), (2, 2)]), order_matters=False)


def test_official_results_match_errors_never_match() -> None:
    bad = ExecResult(columns=[], rows=[], error="boom", seconds=0.0)
    assert not official_results_match(bad, bad, order_matters=False)
    assert not official_results_match(_ok(["a"], []), bad, order_matters=False)


# --------------------------------------------------------------------------------------------- spider


def test_spider_gold_queries_match_themselves() -> None:
    if not (SPIDER_TRAIN / "train.json").is_file():
        pytest.skip(f"Spider training data not found at {SPIDER_TRAIN} (it lives in ../shared beside the repo)")
    db = SPIDER_TRAIN / "database" / SANITY_DB_ID / f"{SANITY_DB_ID}.sqlite"
    examples = [e for e in json.loads((SPIDER_TRAIN / "train.json").read_text()) if e["db_id"] == SANITY_DB_ID]
    assert len(examples) >= 20
    failures = []
    for example in examples:
        matched, gold, _ = execution_match(db, example["query"], example["query"], timeout_s=10.0)
        if not matched:
            failures.append((example["query"], gold.error))
        assert hardness(example["query"]) in HARDNESS_LEVELS
    assert not failures
