"""core.sqlshape: Spider hardness, DAIL-SQL skeletons, referenced elements, normalised text."""

from __future__ import annotations

import pytest
import sqlglot

from core.sqlshape import (
    HARDNESS_LEVELS,
    SqlElements,
    column_owners,
    hardness,
    normalize_sql,
    sql_elements,
    sql_skeleton,
)

# Spider training queries (train.json) with the label worked out by hand from Spider's rules:
# c1 = WHERE + GROUP BY + ORDER BY + LIMIT + (FROM items - 1) + ORs + LIKEs; c2 = nested queries in
# conditions + set operation; others = (aggs > 1) + (select items > 1) + (where conds > 1) + (group items > 1).
HARDNESS_CASES: list[tuple[str, str, str]] = [
    # c1 = 1 (WHERE); one agg, one item, one condition -> others = 0; c2 = 0 -> easy.
    ("where-count", "SELECT count(*) FROM head WHERE age  >  56", "easy"),
    # Nothing at all: c1 = c2 = others = 0 -> easy.
    ("count-all", "SELECT count(*) FROM cinema", "easy"),
    # c1 = 0; two SELECT items -> others = 1 -> not easy; others <= 2 and c1 <= 1 -> medium.
    ("two-columns", "SELECT Player ,  Years_Played FROM player", "medium"),
    # c1 = 1 (WHERE; != is no LIKE); 2 aggs -> +1, 2 items -> +1: others = 2 <= 2 with c1 <= 1 -> medium.
    (
        "two-aggs-where",
        'SELECT max(Sales_billion) ,  min(Sales_billion) FROM Companies WHERE Industry != "Banking"',
        "medium",
    ),
    # c1 = 2 (ORDER BY, LIMIT); others = 0 -> c1 <= 2 and others < 2 -> medium.
    ("order-limit", "SELECT patient FROM undergoes ORDER BY dateundergoes LIMIT 1", "medium"),
    # c1 = 2 (WHERE + 1 OR); two WHERE conditions -> others = 1 -> medium.
    (
        "where-or",
        "SELECT LOCATION FROM bridge WHERE name  =  'Kolob Arch' OR name  =  'Rainbow Bridge'",
        "medium",
    ),
    # c1 = 2 (WHERE + LIKE); NOT LIKE counts once as an "aggregate" (Spider quirk) but 1 is not > 1 -> medium.
    ("not-like", "SELECT hire_date FROM employees WHERE first_name NOT LIKE '%M%'", "medium"),
    # c1 = 2 (GROUP BY + JOIN); 2 items -> others = 1; the count(*) in HAVING is not counted -> medium.
    (
        "group-having-join",
        "SELECT t1.gdp ,  t1.Regional_Population FROM city AS T1 JOIN hosting_city AS T2 "
        "ON T1.city_id  =  T2.host_city GROUP BY t2.Host_City HAVING count(*)  >  1",
        "medium",
    ),
    # c1 = 3 (GROUP BY, ORDER BY, LIMIT); others = 0 (one agg) -> 2 < c1 <= 3 -> hard.
    ("group-order-limit", "SELECT TYPE FROM vocals GROUP BY TYPE ORDER BY count(*) DESC LIMIT 1", "hard"),
    # c1 = 1 (WHERE), c2 = 1 (scalar sub-query), others = 0 -> c1 <= 1, others == 0, c2 <= 1 -> hard.
    (
        "scalar-subquery",
        "SELECT cust_name FROM customer WHERE credit_score  <  (SELECT avg(credit_score) FROM customer)",
        "hard",
    ),
    # c1 = 0, c2 = 1 (EXCEPT), others = 0 -> hard.
    (
        "except",
        "SELECT organization_id FROM organizations EXCEPT SELECT parent_organization_id FROM organizations",
        "hard",
    ),
    # c1 = 1 (WHERE) + 2 (three FROM items) = 3; others = 0 -> hard.
    (
        "three-table-join",
        "SELECT T3.name FROM physician AS T1 JOIN trained_in AS T2 ON T1.employeeid  =  T2.physician "
        'JOIN procedures AS T3 ON T3.code  =  T2.treatment WHERE T1.name  =  "John Wen"',
        "hard",
    ),
    # c1 = WHERE + GROUP BY + LIKE = 3; 2 items -> others = 1 -> 2 < c1 <= 3 -> hard.
    (
        "where-like-group",
        'SELECT zip_code  ,  avg(mean_temperature_f) FROM weather WHERE date LIKE "8/%" GROUP BY zip_code',
        "hard",
    ),
    # The sub-query's own ORDER BY / LIMIT do not count: c1 = 1, c2 = 1, others = 0 -> hard.
    (
        "nested-components-ignored",
        "SELECT product FROM product WHERE product != (SELECT max_page_size FROM product "
        "GROUP BY max_page_size ORDER BY count(*) DESC LIMIT 1)",
        "hard",
    ),
    # A FROM sub-query is one FROM item and no nested query for Spider: c1 = c2 = others = 0 -> easy.
    (
        "from-subquery",
        "SELECT count(*) FROM (SELECT * FROM endowment WHERE amount  >  8.5 GROUP BY school_id HAVING count(*)  >  1)",
        "easy",
    ),
    # c1 = GROUP BY + ORDER BY + LIMIT + 1 join = 4 > 3 -> extra.
    (
        "join-group-order-limit",
        "SELECT T1.booking_id ,  T1.amount_of_refund FROM Bookings AS T1 JOIN Payments AS T2 "
        "ON T1.booking_id  =  T2.booking_id GROUP BY T1.booking_id ORDER BY count(*) DESC LIMIT 1",
        "extra",
    ),
    # c1 = 1, c2 = 1, but 2 SELECT items -> others = 1, and "hard" with c2 = 1 needs others == 0 -> extra.
    (
        "not-in-two-columns",
        'SELECT fname ,  major FROM Student WHERE StuID NOT IN (SELECT StuID FROM Has_allergy WHERE Allergy  =  "Soy")',
        "extra",
    ),
    # Spider quirk: count(*) plus the NOT of NOT IN make 2 "aggregates" -> others = 1; c1 = 1, c2 = 1 -> extra.
    (
        "not-in-counts-as-agg",
        "SELECT count(*) FROM Documents WHERE document_id NOT IN ( SELECT document_id FROM Documents_with_expenses )",
        "extra",
    ),
    # c2 = 1 (EXCEPT) and 3 SELECT items -> others = 1 -> extra.
    (
        "except-three-columns",
        "SELECT characteristic_name ,  other_characteristic_details ,  characteristic_data_type "
        "FROM CHARACTERISTICS EXCEPT SELECT t1.characteristic_name ,  t1.other_characteristic_details ,  "
        "t1.characteristic_data_type FROM CHARACTERISTICS AS t1 JOIN product_characteristics AS t2 "
        "ON t1.characteristic_id  =  t2.characteristic_id",
        "extra",
    ),
]


@pytest.mark.parametrize(("sql", "expected"), [c[1:] for c in HARDNESS_CASES], ids=[c[0] for c in HARDNESS_CASES])
def test_hardness_of_spider_training_queries(sql: str, expected: str) -> None:
    assert hardness(sql) == expected


def test_hardness_counts_only_the_first_select_of_a_set_operation() -> None:
    # Spider parses "A UNION B ORDER BY x LIMIT 1" as A with union = (B ORDER BY x LIMIT 1):
    # A alone has c1 = 0 and others = 0; c2 = 1 -> hard (the ORDER BY / LIMIT would make it extra).
    assert hardness("SELECT a FROM t UNION SELECT b FROM u ORDER BY a LIMIT 1") == "hard"
    # Two WHERE sub-queries: c2 = 2 -> extra.
    assert hardness("SELECT a FROM t WHERE b IN (SELECT b FROM u) AND c > (SELECT avg(c) FROM t)") == "extra"


@pytest.mark.parametrize("sql", ["", "   ", "SELEC a FRM", "SELECT 1; SELECT 2", "this is not sql ((("])
def test_hardness_of_unparseable_sql_is_extra(sql: str) -> None:
    assert hardness(sql) == "extra"


def test_hardness_levels_constant() -> None:
    assert HARDNESS_LEVELS == ("easy", "medium", "hard", "extra")


@pytest.mark.parametrize(
    ("sql", "skeleton"),
    [
        ("SELECT name FROM singer WHERE age > 20", "select _ from _ where _ > _"),
        ("select  name\n FROM singer where age>20 ;", "select _ from _ where _ > _"),
        (
            "SELECT T1.name, count(*) AS n FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid "
            "GROUP BY T1.id HAVING count(*) > 1 ORDER BY n DESC LIMIT 3",
            "select _, count(*) from _ join _ on _ = _ group by _ having count(*) > _ order by _ desc limit _",
        ),
        (
            "SELECT name FROM singer WHERE country = \"France\" AND name LIKE '%a%'",
            "select _ from _ where _ = _ and _ like _",
        ),
        ("SELECT max(age), min(age) FROM singer", "select max(_), min(_) from _"),
        ("SELECT DISTINCT T1.* FROM singer AS T1", "select distinct * from _"),
        (
            "SELECT a FROM t WHERE b IN (SELECT c FROM u) EXCEPT SELECT a FROM v",
            "select _ from _ where _ in (select _ from _) except select _ from _",
        ),
        ("SELECT count(*) FROM (SELECT a FROM t) AS sub", "select count(*) from (select _ from _)"),
        ("SELECT age FROM singer WHERE age BETWEEN 20 AND 30", "select _ from _ where _ between _ and _"),
    ],
)
def test_sql_skeleton(sql: str, skeleton: str) -> None:
    assert sql_skeleton(sql) == skeleton


def test_sql_skeleton_same_shape_same_skeleton() -> None:
    a = sql_skeleton("SELECT name FROM singer WHERE age > 20 ORDER BY name")
    b = sql_skeleton("SELECT T1.title FROM concert AS T1 WHERE T1.year > 2014 ORDER BY T1.title")
    assert a == b == "select _ from _ where _ > _ order by _"


def test_sql_skeleton_unparseable_falls_back_to_text_masking() -> None:
    assert sql_skeleton("SELEC  name FRM singer WHERE age > 20 AND x = 'a b';") == (
        "selec name frm singer where age > _ and x = _"
    )


def test_sql_elements_resolves_aliases() -> None:
    elements = sql_elements(
        "SELECT T1.name, T2.title FROM singer AS T1 JOIN singer_in_concert AS T3 ON T1.singer_id = T3.singer_id "
        "JOIN concert AS T2 ON T2.concert_id = T3.concert_id WHERE T2.year > 2014"
    )
    assert elements == SqlElements(
        tables=frozenset({"singer", "concert", "singer_in_concert"}),
        columns=frozenset(
            {
                "singer.name",
                "concert.title",
                "singer.singer_id",
                "singer_in_concert.singer_id",
                "concert.concert_id",
                "singer_in_concert.concert_id",
                "concert.year",
            }
        ),
    )


def test_sql_elements_unqualified_columns_with_one_table() -> None:
    elements = sql_elements('SELECT Name, count(*) FROM Singer WHERE Country = "France" GROUP BY name')
    assert elements.tables == frozenset({"singer"})
    # "France" is a double-quoted value, not a column; names are lower-cased and deduplicated.
    assert elements.columns == frozenset({"singer.name", "singer.country"})


def test_sql_elements_unqualified_columns_with_several_tables_stay_bare() -> None:
    elements = sql_elements("SELECT name, title FROM singer JOIN concert ON singer.id = concert.sid")
    assert elements.columns == frozenset({"name", "title", "singer.id", "concert.sid"})


def test_sql_elements_subqueries_have_their_own_scope() -> None:
    elements = sql_elements("SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)")
    assert elements.tables == frozenset({"singer", "singer_in_concert"})
    assert elements.columns == frozenset({"singer.name", "singer.singer_id", "singer_in_concert.singer_id"})


def test_sql_elements_skips_select_aliases_and_ctes() -> None:
    elements = sql_elements(
        "WITH top AS (SELECT country, count(*) AS n FROM singer GROUP BY country) "
        "SELECT country FROM top ORDER BY n DESC"
    )
    assert elements.tables == frozenset({"singer"})
    assert "singer.country" in elements.columns
    assert not any(c.startswith("top.") for c in elements.columns)


def test_sql_elements_correlated_subquery_uses_outer_alias() -> None:
    elements = sql_elements(
        "SELECT T1.name FROM singer AS T1 WHERE EXISTS "
        "(SELECT 1 FROM singer_in_concert AS T2 WHERE T2.singer_id = T1.singer_id)"
    )
    assert elements.columns == frozenset({"singer.name", "singer_in_concert.singer_id", "singer.singer_id"})


def test_sql_elements_resolves_having_and_subquery_columns_where_they_are_written() -> None:
    # scope lists a sub-query's unqualified column in the outer query too, and drops unqualified HAVING
    # columns (they might be aliases): each column is still owned by the table of its own query.
    elements = sql_elements(
        "SELECT name FROM city WHERE city_id NOT IN (SELECT host_id FROM farm GROUP BY host_id "
        "HAVING avg(score) > 10 AND count(*) > n) ORDER BY n"
    )
    assert elements.columns == frozenset(
        {"city.name", "city.city_id", "farm.host_id", "farm.score", "farm.n", "city.n"})
    owners = {(c.sql(), owner) for c, owner in column_owners(sqlglot.parse_one("SELECT T1.a FROM t AS T1"))}
    assert owners == {("T1.a", "t")}


def test_sql_elements_of_unparseable_sql_is_empty() -> None:
    assert sql_elements("SELEC broken (") == SqlElements(frozenset(), frozenset())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT name FROM singer WHERE age > 20;", "select  NAME\nfrom Singer where age>20"),
        ("SELECT count(*) FROM t", "select COUNT( * ) from T ;"),
        ("SELECT a FROM t WHERE b <> 1", "SELECT a FROM t WHERE b != 1"),
        ("SELECT T1.a FROM t AS T1", "select t1.a from t as t1"),
    ],
)
def test_normalize_sql_equal(a: str, b: str) -> None:
    assert normalize_sql(a) == normalize_sql(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT name FROM singer WHERE name = 'Ann'", "SELECT name FROM singer WHERE name = 'ann'"),
        ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age >= 20"),
        ("SELECT a, b FROM t", "SELECT b, a FROM t"),
    ],
)
def test_normalize_sql_different(a: str, b: str) -> None:
    assert normalize_sql(a) != normalize_sql(b)


def test_normalize_sql_format() -> None:
    assert normalize_sql("SELECT Name FROM Singer WHERE Country = 'France' ;") == (
        "select name from singer where country = 'France'"
    )


def test_normalize_sql_unparseable_falls_back() -> None:
    assert normalize_sql("  SELEC  Name\n FRM  'X'  ;") == "selec name frm 'X'"
