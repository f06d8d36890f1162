"""What each qualifier in a query stands for, through sqlglot's own scope analysis
(``sqlglot.optimizer.scope``): one place for alias resolution, used by SQL shape, requalify and diagnose.

A *scope* is one SELECT (or set operation) with the sources of its FROM and JOINs; a sub-query's scope
has the enclosing one as its parent, so a correlated ``T1.x`` inside it resolves outwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope


@dataclass(frozen=True)
class Source:
    """One FROM or JOIN item of a scope."""

    qualifier: str  # how the query refers to it: its alias, else its name (as written)
    alias: str  # the alias written for it, or ""
    name: str  # the table or CTE name written in FROM; "" for a sub-query or a table function
    table: str | None  # the real table it reads; None for a sub-query, a CTE or a table function


def scopes(tree: exp.Expr) -> dict[int, Scope]:
    """Every scope of a parsed query, by ``id()`` of its SELECT (or set operation); {} when sqlglot
    cannot scope the query."""
    try:
        return {id(scope.expression): scope for scope in traverse_scope(tree)}
    except (SqlglotError, ValueError, RecursionError):
        return {}


def sources(scope: Scope) -> list[Source]:
    """The FROM item and every JOINed item of one scope, in order."""
    found = []
    for qualifier, (node, source) in scope.selected_sources.items():
        if isinstance(node, exp.Table):
            name, alias = node.name, node.alias
        else:  # a derived table: sqlglot hands its SELECT, and the qualifier is the alias it must have
            name, alias = "", qualifier
        real = isinstance(node, exp.Table) and isinstance(source, exp.Table) and bool(name)
        found.append(Source(qualifier, alias, name, name if real else None))
    return found


def resolve(scope: Scope | None, qualifier: str, by_name: bool = False) -> Source | None:
    """The source a qualifier names (case-insensitively), looked up in ``scope`` and then outwards in
    the enclosing scopes (a correlated sub-query); None when no scope has it. With ``by_name``, an
    aliased table also answers to its own name (as SQLite and Spider's gold queries allow), after the
    qualifiers of the same scope."""
    wanted = qualifier.lower()
    while scope is not None:
        found = sources(scope)
        for source in found:
            if source.qualifier.lower() == wanted:
                return source
        for source in found if by_name else []:
            if source.name.lower() == wanted:
                return source
        scope = scope.parent
    return None


def table_aliases(sql: str, dialect: str) -> dict[str, str]:
    """alias -> table (or CTE) name, for every aliased table of the query, sub-queries included."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except SqlglotError:
        return {}
    # An alias used twice (in a sub-query, in both halves of a UNION) means the table named last, in
    # breadth-first order: the scopes are read in that order.
    rank = {id(node): i for i, node in enumerate(tree.bfs())}
    ordered = sorted(scopes(tree).values(), key=lambda scope: rank.get(id(scope.expression), -1))
    return {s.alias: s.name for scope in ordered for s in sources(scope) if s.alias and s.name}
