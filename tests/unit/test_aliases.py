"""core.aliases: what each qualifier stands for, through sqlglot's scopes."""

from __future__ import annotations

import pytest
import sqlglot

from core import aliases


def root_scope(sql: str):  # type: ignore[no-untyped-def]
    tree = sqlglot.parse_one(sql, read="sqlite")
    return aliases.scopes(tree)[id(tree)]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT 1 FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid",
         [("T1", "T1", "singer", "singer"), ("T2", "T2", "concert", "concert")]),
        ("SELECT x FROM t", [("t", "", "t", "t")]),
        ("SELECT x FROM (SELECT x FROM t) AS sub", [("sub", "sub", "", None)]),
        ("WITH c AS (SELECT a FROM t) SELECT a FROM c AS k", [("k", "k", "c", None)]),
    ],
)
def test_sources_are_the_from_items_in_order(sql: str, expected: list[tuple[str, str, str, str | None]]) -> None:
    found = [(s.qualifier, s.alias, s.name, s.table) for s in aliases.sources(root_scope(sql))]
    assert found == expected


def test_a_correlated_qualifier_resolves_in_the_enclosing_scope() -> None:
    tree = sqlglot.parse_one("SELECT T1.a FROM s AS T1 WHERE EXISTS (SELECT 1 FROM u AS T2 WHERE T2.z = T1.z)")
    scopes = aliases.scopes(tree)
    inner = next(sc for sc in scopes.values() if sc.parent is not None)
    assert aliases.resolve(inner, "t2").table == "u"  # type: ignore[union-attr]
    assert aliases.resolve(inner, "T1").table == "s"  # type: ignore[union-attr]
    assert aliases.resolve(inner, "nope") is None


def test_by_name_an_aliased_table_answers_to_its_own_name_after_the_aliases() -> None:
    scope = root_scope("SELECT 1 FROM singer AS T1")
    assert aliases.resolve(scope, "singer") is None
    assert aliases.resolve(scope, "singer", by_name=True).qualifier == "T1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT T1.a FROM x AS T1 JOIN y AS T2 ON T1.id = T2.id", {"T1": "x", "T2": "y"}),
        ("SELECT a FROM x", {}),
        ("SELECT T2.a FROM x AS T2 UNION SELECT T2.a FROM y AS T2", {"T2": "y"}),  # the last one named
        ("SELECT nonsense FROM", {}),
    ],
)
def test_table_aliases(sql: str, expected: dict[str, str]) -> None:
    assert aliases.table_aliases(sql, "sqlite") == expected
