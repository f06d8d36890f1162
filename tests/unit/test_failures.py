"""evals.failures: one hand-written wrong answer per category, run on the tiny database and classified."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.accuracy import ExecResult, execute_readonly, execution_match
from evals.failures import CATEGORIES, Failure, classify, error_class

TINY_DB = Path(__file__).resolve().parent.parent / "fixtures" / "eval" / "tiny.sqlite"

# (id, gold, prediction, expected category, a piece of the expected detail)
CASES: list[tuple[str, str, str, str, str]] = [
    ("gold-fails", "SELECT nope FROM singer", "SELECT name FROM singer", "gold_error", "no such column"),
    ("write", "SELECT name FROM singer", "DELETE FROM singer", "refused", "readonly"),
    ("no-such-table", "SELECT title FROM concert", "SELECT title FROM concerts", "no_such_table", "concerts"),
    ("no-such-column", "SELECT name FROM singer", "SELECT nme FROM singer", "no_such_column", "nme"),
    ("ambiguous", "SELECT count(*) FROM singer_in_concert",
     "SELECT singer_id FROM singer JOIN singer_in_concert ON singer.singer_id = singer_in_concert.singer_id",
     "ambiguous_column", "singer_id"),
    ("syntax", "SELECT name FROM singer", "SELECT name FROM singer WHERE", "syntax_error", "incomplete"),
    ("rows-in-another-order", "SELECT name FROM singer ORDER BY age", "SELECT name FROM singer ORDER BY age DESC",
     "order_limit", "another order"),
    # a question about one table, answered through a join that repeats its rows
    ("extra-join", "SELECT name FROM singer WHERE age > 26",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id WHERE T1.age > 26",
     "extra_table", "reads singer_in_concert"),
    ("missing-join",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id "
     "WHERE T2.concert_id = 1",
     "SELECT name FROM singer WHERE singer_id = 1", "missing_table", "does not read singer_in_concert"),
    ("intersect-as-in",
     "SELECT name FROM singer WHERE country = 'France' INTERSECT SELECT name FROM singer WHERE age = 30",
     "SELECT name FROM singer WHERE country = 'France' AND singer_id IN (SELECT singer_id FROM singer WHERE age = 25)",
     "set_operation", "gold INTERSECT, predicted none (the prediction uses 1 JOIN / IN)"),
    ("wrong-alias",
     "SELECT T1.singer_id FROM singer AS T1 LEFT JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T2.singer_id FROM singer AS T1 LEFT JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id",
     "alias_mixup", "singer_id: predicted singer x1, singer_in_concert x2; gold singer x2, singer_in_concert x1"),
    ("other-column", "SELECT name FROM singer WHERE age > 26", "SELECT country FROM singer WHERE age > 26",
     "wrong_column", "selects country; gold selects name"),
    ("extra-column", "SELECT name FROM singer WHERE age > 26", "SELECT name, age FROM singer WHERE age > 26",
     "wrong_column", "returns 2 column(s)"),
    ("both-empty-other-width", "SELECT name FROM singer WHERE age > 100",
     "SELECT name, age FROM singer WHERE age > 100", "wrong_column", "returns 2 column(s)"),
    ("min-for-max", "SELECT max(age) FROM singer", "SELECT min(age) FROM singer", "aggregate_group",
     "predicted min(age) where gold has max(age)"),
    ("other-group", "SELECT country, count(*) FROM singer GROUP BY country",
     "SELECT country, count(*) FROM singer GROUP BY age", "aggregate_group",
     "predicted GROUP BY age where gold has GROUP BY country"),
    ("missing-having", "SELECT country FROM singer GROUP BY country HAVING count(*) > 1",
     "SELECT country FROM singer GROUP BY country", "aggregate_group", "predicted none where gold has count(*)"),
    ("missing-distinct", "SELECT DISTINCT country FROM singer", "SELECT country FROM singer", "distinct",
     "where gold has SELECT DISTINCT; the same distinct rows, other duplicates"),
    ("count-without-distinct", "SELECT count(DISTINCT country) FROM singer", "SELECT count(country) FROM singer",
     "distinct", "where gold has COUNT(DISTINCT)"),
    ("literal-case", 'SELECT name FROM singer WHERE country = "France"',
     "SELECT name FROM singer WHERE country = 'france'", "wrong_literal",
     "predicted 'france' where gold has 'France'"),
    ("literal-number", "SELECT count(*) FROM concert WHERE year = 2015",
     "SELECT count(*) FROM concert WHERE year = 2014", "wrong_literal", "predicted 2014 where gold has 2015"),
    ("other-direction", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer ORDER BY age LIMIT 1", "order_limit",
     "predicted ORDER BY age where gold has ORDER BY age DESC"),
    ("other-limit", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer ORDER BY age DESC LIMIT 2", "order_limit", "predicted LIMIT 2 where gold has LIMIT 1"),
    ("other-operator", "SELECT name FROM singer WHERE age > 30", "SELECT name FROM singer WHERE age >= 30",
     "other", "no check tells them apart; predicted 3 row(s) x 1 column(s), gold 1 x 1"),
]


def _classified(gold_sql: str, pred_sql: str) -> Failure:
    match, gold, pred = execution_match(TINY_DB, gold_sql, pred_sql, timeout_s=5.0)
    assert not match, "a case must be a wrong answer"
    return classify(gold_sql, pred_sql, gold, pred)


@pytest.mark.parametrize(("gold_sql", "pred_sql", "category", "detail"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_wrong_answer_gets_its_category(gold_sql: str, pred_sql: str, category: str, detail: str) -> None:
    failure = _classified(gold_sql, pred_sql)
    assert failure.category == category, failure
    assert detail in failure.detail
    assert failure.label == CATEGORIES[category]


def test_no_sql_timeout_other_errors_and_unparseable_sql() -> None:
    gold = execute_readonly(TINY_DB, "SELECT name FROM singer")
    assert classify("SELECT name FROM singer", None, gold, None).category == "no_sql"
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    assert classify("SELECT 1", slow, gold, execute_readonly(TINY_DB, slow, timeout_s=0.2)).category == "timeout"
    too_many = execute_readonly(TINY_DB, "SELECT * FROM singer", max_rows=3)
    assert classify("SELECT 1", "SELECT * FROM singer", gold, too_many) == Failure(
        "run_error", "too many rows (more than 3)")
    refused = ExecResult([], [], "refused: not a read-only query", 0.0)  # as the agent's guard reports it
    assert classify("SELECT 1", "SELECT 1; DROP TABLE t", gold, refused).category == "refused"
    # it ran (a result is given) but sqlglot cannot read it
    unreadable = classify("SELECT name FROM singer", "SELECT name FROM singer WHERE (", gold,
                          ExecResult(["name"], [("Ann",)], None, 0.0))
    assert unreadable.category == "other" and "cannot parse the prediction" in unreadable.detail


@pytest.mark.parametrize(
    ("error", "category"),
    [("no such table: concerts", "no_such_table"), ("OperationalError: no such column: T3.name", "no_such_column"),
     ("ambiguous column name: id", "ambiguous_column"), ('near "FROM": syntax error', "syntax_error"),
     ('unrecognized token: "\'"', "syntax_error"), ("refused: writes are not allowed", "refused"),
     ("datatype mismatch", "run_error")],
)
def test_error_classes(error: str, category: str) -> None:
    assert error_class(error) == category


def test_every_category_has_a_case() -> None:
    covered = {c[3] for c in CASES} | {"no_sql", "timeout", "run_error"}
    assert covered == set(CATEGORIES)


def test_the_first_difference_in_priority_order_wins() -> None:
    # an extra join AND a missing DISTINCT: the table comes first
    gold = "SELECT DISTINCT name FROM singer WHERE age > 26"
    pred = "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id WHERE age > 26"
    assert _classified(gold, pred).category == "extra_table"
    # another column AND another literal: the column comes first
    assert _classified("SELECT name FROM singer WHERE age = 30", "SELECT country FROM singer WHERE age = 25").category \
        == "wrong_column"
    # another aggregate AND a missing DISTINCT inside it: the aggregate comes first
    assert _classified("SELECT count(DISTINCT country) FROM singer", "SELECT max(country) FROM singer").category \
        == "aggregate_group"
