"""The structure of a SQL query, read with sqlglot.

Pure functions, used by the evaluation harness, the agent's retrieval and the failure map:

- :func:`hardness` -- Spider's difficulty label (easy / medium / hard / extra).
- :func:`sql_skeleton` -- the query with every name and value replaced by ``_`` (DAIL-SQL style).
- :func:`sql_elements` -- the tables and columns a query touches, aliases resolved.
- :func:`normalize_sql` -- a canonical text form for exact-string comparison.
- :func:`column_owners` -- every column reference of a parsed query with the table that owns it
  (sqlglot's ``optimizer.scope``, through :mod:`core.aliases`, resolves the aliases); :func:`sql_elements`
  is built on it.

None of them raises on bad SQL: each has a documented fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope

from core import aliases

Hardness = Literal["easy", "medium", "hard", "extra"]

HARDNESS_LEVELS: tuple[Hardness, ...] = ("easy", "medium", "hard", "extra")

# Text inside quotes ('...' strings, "..." / `...` / [...] identifiers) is kept verbatim when case-folding.
_QUOTED_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\]")
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_WS_RE = re.compile(r"\s+")
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.Glob)


# --------------------------------------------------------------------------------------------- parsing


def parse_query(sql: str, dialect: str = "sqlite") -> exp.Expr | None:
    """One statement parsed, or None when it does not parse or holds zero or several statements."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (SqlglotError, ValueError, RecursionError):
        return None
    if len(statements) != 1:
        return None
    tree = statements[0]
    if isinstance(tree, exp.Block):  # some dialects wrap several statements in one Block
        return None
    return tree


def _walk_same_query(node: exp.Expr) -> Iterator[exp.Expr]:
    """Every node under ``node`` (itself included) that is not inside a nested query."""
    yield node
    for child in node.iter_expressions():
        if isinstance(child, exp.Subquery | exp.Query):
            continue
        yield from _walk_same_query(child)


def _count_nested_queries(node: exp.Expr) -> int:
    """How many queries sit directly in ``node`` (a query inside a query counts once, as its outer one)."""
    if isinstance(node, exp.Subquery | exp.Query):
        return 1
    return sum(_count_nested_queries(child) for child in node.iter_expressions())


def _contains_agg(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.AggFunc) for n in _walk_same_query(node))


def _leftmost_select(tree: exp.Expr) -> exp.Select | None:
    node: exp.Expr | None = tree
    while node is not None and not isinstance(node, exp.Select):
        if isinstance(node, exp.SetOperation | exp.Subquery):
            node = node.this
        else:
            return None
    return node


def _from_sources(select: exp.Select) -> list[exp.Expr]:
    """The FROM item and every JOINed item of one SELECT, in order."""
    sources: list[exp.Expr] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if isinstance(from_, exp.From) and from_.this is not None:
        sources.append(from_.this)
    for join in select.args.get("joins") or []:
        if join.this is not None:
            sources.append(join.this)
    return sources


# --------------------------------------------------------------------------------------------- hardness


@dataclass(frozen=True)
class _Conditions:
    """A WHERE / HAVING / ON condition split the way Spider's parser splits it: units joined by AND/OR."""

    units: list[exp.Expr]
    ors: int
    connectors: int  # ANDs + ORs


def _split_conditions(cond: exp.Expr | None) -> _Conditions:
    if cond is None:
        return _Conditions([], 0, 0)
    if isinstance(cond, exp.Paren):
        return _split_conditions(cond.this)
    if isinstance(cond, exp.And | exp.Or):
        left = _split_conditions(cond.this)
        right = _split_conditions(cond.expression)
        return _Conditions(
            left.units + right.units,
            left.ors + right.ors + (1 if isinstance(cond, exp.Or) else 0),
            left.connectors + right.connectors + 1,
        )
    return _Conditions([cond], 0, 0)


def _is_negated(unit: exp.Expr) -> bool:
    return isinstance(unit, exp.Not) or bool(unit.args.get("negate"))


def _is_like(unit: exp.Expr) -> bool:
    inner = unit.this if isinstance(unit, exp.Not) else unit
    return isinstance(inner, exp.Like | exp.ILike)


def _clause_condition(select: exp.Select, key: str) -> exp.Expr | None:
    clause = select.args.get(key)
    return clause.this if clause is not None else None


def _hardness_counts(tree: exp.Expr) -> tuple[int, int, int] | None:
    """Spider's (count_component1, count_component2, count_others) for a parsed query."""
    select = _leftmost_select(tree)
    if select is None:
        return None

    join_on = [_split_conditions(j.args.get("on")) for j in select.args.get("joins") or []]
    on_units = [u for c in join_on for u in c.units]
    on_ors = sum(c.ors for c in join_on)
    where = _split_conditions(_clause_condition(select, "where"))
    having = _split_conditions(_clause_condition(select, "having"))
    group = select.args.get("group")
    group_items = list(group.expressions) if group is not None else []
    order = select.args.get("order")
    order_items = [o.this if isinstance(o, exp.Ordered) else o for o in order.expressions] if order else []
    cond_units = on_units + where.units + having.units

    # count_component1: WHERE, GROUP BY, ORDER BY, LIMIT, one per extra FROM item, each OR, each LIKE.
    comp1 = sum(1 for present in (where.units, group_items, order_items) if present)
    comp1 += 1 if select.args.get("limit") is not None else 0
    comp1 += max(len(_from_sources(select)) - 1, 0)
    comp1 += on_ors + where.ors + having.ors
    comp1 += sum(1 for u in cond_units if _is_like(u))

    # count_component2: queries nested in ON / WHERE / HAVING conditions (not FROM items), plus one when
    # the query is an INTERSECT / UNION / EXCEPT (Spider keeps a single set operation per level).
    comp2 = sum(_count_nested_queries(u) for u in cond_units)
    comp2 += 1 if isinstance(tree, exp.SetOperation) else 0

    # count_others, reproducing Spider's count_agg exactly (see the hardness docstring).
    aggs = sum(1 for e in select.expressions if _contains_agg(e))
    aggs += sum(1 for u in where.units if _is_negated(u))
    aggs += sum(1 for g in group_items if _contains_agg(g))
    aggs += sum(min(sum(1 for n in _walk_same_query(o) if isinstance(n, exp.AggFunc)), 2) for o in order_items)
    aggs += sum(1 for u in having.units if _is_negated(u)) + having.connectors
    others = sum(
        1 for flag in (aggs > 1, len(select.expressions) > 1, len(where.units) > 1, len(group_items) > 1) if flag
    )
    return comp1, comp2, others


def hardness(sql: str, dialect: str = "sqlite") -> Hardness:
    """Spider's difficulty label for ``sql``, following ``Evaluator.eval_hardness`` of Spider's
    ``evaluation.py``, computed over a sqlglot tree instead of Spider's own parser.

    Only the top level counts, as in Spider: for ``A UNION B`` that is ``A`` (an ORDER BY / LIMIT after
    the last SELECT belongs to ``B`` in Spider's parser, so it is not counted either).

    - component1: WHERE, GROUP BY, ORDER BY, LIMIT present (1 each); FROM items (tables, joined tables,
      sub-queries) minus one; every OR and every LIKE / NOT LIKE in the ON, WHERE and HAVING conditions.
    - component2: every query nested in an ON / WHERE / HAVING condition, plus one for a top-level
      INTERSECT / UNION / EXCEPT. As in Spider, a sub-query used as a FROM item is not counted here (it
      only counts as a FROM item in component1).
    - others: +1 each for more than one "aggregate", more than one SELECT item, more than one WHERE
      condition, more than one GROUP BY item. The "aggregate" count reproduces Spider's ``count_agg``
      faithfully, quirks included: SELECT items containing an aggregate, ORDER BY aggregates (at most two
      per item), GROUP BY items with an aggregate, **plus** negated WHERE / HAVING conditions (NOT IN,
      NOT LIKE, NOT BETWEEN, ...) and the AND/OR connectors of HAVING -- Spider's ``has_agg`` reads the
      first field of a condition tuple (its NOT flag) as an aggregate id, and of an 'and'/'or' string its
      first letter. Aggregates inside HAVING conditions themselves are not counted, as in Spider.

    Then: easy if c1 <= 1, others == 0, c2 == 0; medium if (others <= 2, c1 <= 1, c2 == 0) or
    (c1 <= 2, others < 2, c2 == 0); hard if (others > 2, c1 <= 2, c2 == 0) or (2 < c1 <= 3,
    others <= 2, c2 == 0) or (c1 <= 1, others == 0, c2 <= 1); else extra.

    SQL that does not parse into exactly one query is "extra".

    Checked against Spider's own parser and ``eval_hardness`` on the 6,904 train.json queries: the same
    label for all but two (and one Spider cannot parse). The two are ``... WHERE a < b OR a > c`` with
    column values, where Spider's parser swallows the ``OR`` into the value; the OR is counted here.
    """
    tree = parse_query(sql, dialect)
    counts = _hardness_counts(tree) if tree is not None else None
    if counts is None:
        return "extra"
    c1, c2, others = counts
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (
        (others > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and others <= 2 and c2 == 0)
        or (c1 <= 1 and others == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


# --------------------------------------------------------------------------------------------- skeleton

_PLACEHOLDER = "_"


def _skeletonize_node(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Alias):
        return node.this
    if isinstance(node, exp.TableAlias):
        return None  # type: ignore[return-value]  # removing the node is how sqlglot drops it
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            return exp.Star()
        return exp.column(_PLACEHOLDER)
    if isinstance(node, exp.Table):
        return exp.to_table(_PLACEHOLDER)
    if isinstance(node, exp.Literal | exp.Placeholder | exp.Parameter):
        return exp.var(_PLACEHOLDER)
    return node


def _fold_case_outside_quotes(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for match in _QUOTED_RE.finditer(text):
        pieces.append(text[last : match.start()].lower())
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(text[last:].lower())
    return "".join(pieces)


def _fold_whitespace(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def _strip_semicolons(text: str) -> str:
    return text.strip().rstrip(";").strip()


def sql_skeleton(sql: str, dialect: str = "sqlite") -> str:
    """The shape of ``sql`` with its names and values masked, as in DAIL-SQL's query skeletons.

    Format: the query is parsed, then
    - every table name and every column reference (qualified or not, e.g. ``T1.name``) becomes ``_``;
      ``*`` and ``T1.*`` stay ``*``;
    - every literal (number, string, and double-quoted "strings", which SQLite parses as identifiers)
      becomes ``_``;
    - table aliases (``AS T1``) and column aliases (``AS total``) are removed;
    - keywords, operators, functions (``count(*)``, ``max(_)``), parentheses and commas are kept;
    - the result is regenerated in ``dialect``, lower-cased and whitespace-folded, without a final ``;``.

    ``SELECT name FROM singer WHERE age > 20`` -> ``select _ from _ where _ > _``;
    ``SELECT T1.name, count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid GROUP BY T1.id``
    -> ``select _, count(*) from _ join _ on _ = _ group by _``.

    When ``sql`` does not parse, a rougher text fallback masks quoted strings and numbers only.
    """
    tree = parse_query(sql, dialect)
    if tree is None:
        text = _QUOTED_RE.sub(_PLACEHOLDER, _strip_semicolons(sql))
        text = _NUMBER_RE.sub(_PLACEHOLDER, text)
        return _fold_whitespace(text.lower())
    masked = tree.transform(_skeletonize_node, copy=True)
    try:
        text = masked.sql(dialect=dialect)
    except SqlglotError:
        text = masked.sql()
    return _fold_whitespace(text.lower())


# --------------------------------------------------------------------------------------------- elements


@dataclass(frozen=True)
class SqlElements:
    """Tables and columns that a query references, lower-cased.

    ``columns`` holds ``"table.column"`` when the owning table is known (through an alias, a table
    qualifier, or because the query's FROM has a single table), else the bare ``"column"``.
    """

    tables: frozenset[str]
    columns: frozenset[str]


def is_quoted_value(column: exp.Column) -> bool:
    """A double-quoted bare name used as a compared value: SQLite reads ``name = "Paris"`` as a string."""
    if not column.this.args.get("quoted") or column.table:
        return False
    parent = column.parent
    if isinstance(parent, _COMPARISONS):
        return parent.expression is column
    if isinstance(parent, exp.In):
        return column in parent.expressions
    if isinstance(parent, exp.Between):
        return parent.args.get("low") is column or parent.args.get("high") is column
    return False


def _cte_names(tree: exp.Expr) -> set[str]:
    return {cte.alias.lower() for cte in tree.find_all(exp.CTE) if cte.alias}


def _owner(column: exp.Column, scope: Scope, cte_names: set[str]) -> str | None:
    """The real table that ``column`` of ``scope`` belongs to, lower-cased, or None when it is not known."""
    if column.table:
        source = aliases.resolve(scope, column.table)  # outwards too: a correlated sub-query
        if source is not None:
            return source.table.lower() if source.table else None  # None: a sub-query's or a CTE's column
        qualifier = column.table.lower()
        return None if qualifier in cte_names else qualifier  # a qualifier that no FROM shows
    sources = list(scope.sources.values())
    if len(sources) == 1 and isinstance(sources[0], exp.Table):
        return sources[0].name.lower()
    return None


def column_owners(tree: exp.Expr) -> list[tuple[exp.Column, str | None]]:
    """Every column reference of ``tree`` with the real table that owns it (lower-cased), or None when it
    is not known, in the order sqlglot's scopes list them.

    ``optimizer.scope`` gives each query (the root, sub-queries, CTEs, derived tables, the branches of a
    set operation) its sources, alias -> table or sub-scope. A qualified column is looked up there, then in
    the enclosing scopes (correlated sub-queries); a qualifier that no FROM shows is taken as a table
    name, unless it names a CTE. An unqualified column belongs to the table when its query reads from
    exactly one source and that source is a table. Columns of a CTE or a derived table have no owner.
    A column of a sub-query, which scope also lists in the enclosing query (it might be correlated), is
    resolved once, in the query where it is written. Left out: ``*``, SELECT-list aliases used later
    (``ORDER BY total``) and double-quoted values (``name = "Paris"``, see :func:`is_quoted_value`).
    """
    scopes = aliases.scopes(tree).values()  # in traverse_scope's order; none when sqlglot cannot scope it
    cte_names = _cte_names(tree)
    owned: list[tuple[exp.Column, str | None]] = []
    seen: set[int] = set()
    for scope in scopes:  # inner scopes come first: a column is resolved where it is written
        for column in [*scope.columns, *_having_columns(scope)]:
            if id(column) in seen or isinstance(column.this, exp.Star) or not column.name or is_quoted_value(column):
                continue
            seen.add(id(column))
            owned.append((column, _owner(column, scope, cte_names)))
    return owned


def _having_columns(scope: Scope) -> list[exp.Column]:
    """The unqualified columns of a HAVING that are not SELECT-list aliases (``scope.columns`` leaves out
    every unqualified HAVING column, since it might name an alias)."""
    having = scope.expression.args.get("having")
    if not isinstance(scope.expression, exp.Select) or having is None:
        return []
    aliases = {name.lower() for name in scope.expression.named_selects}
    return [n for n in _walk_same_query(having)
            if isinstance(n, exp.Column) and not n.table and n.name.lower() not in aliases]


def sql_elements(sql: str, dialect: str = "sqlite") -> SqlElements:
    """The tables and columns ``sql`` references, lower-cased, with table aliases resolved.

    ``SELECT T1.name FROM singer AS T1`` -> tables ``{"singer"}``, columns ``{"singer.name"}``.
    Columns are attributed to their tables by :func:`column_owners`; a column without an owner stays
    bare. CTE names are not tables. Unparseable SQL gives empty sets.
    """
    tree = parse_query(sql, dialect)
    if tree is None:
        return SqlElements(frozenset(), frozenset())
    return tree_elements(tree)


def tree_elements(tree: exp.Expr) -> SqlElements:
    """:func:`sql_elements` of a parsed query."""
    cte_names = _cte_names(tree)
    tables = {
        t.name.lower()
        for t in tree.find_all(exp.Table)
        if t.name and t.name.lower() not in cte_names and not isinstance(t.this, exp.Func)
    }
    columns = {f"{owner}.{column.name.lower()}" if owner else column.name.lower()
               for column, owner in column_owners(tree)}
    return SqlElements(frozenset(tables), frozenset(columns))


# --------------------------------------------------------------------------------------------- normalize


def normalize_sql(sql: str, dialect: str = "sqlite") -> str:
    """A canonical text of ``sql`` for exact-string comparison.

    The query is parsed and regenerated in ``dialect`` (which settles spacing, parentheses, ``<>`` vs
    ``!=``, keyword spelling), then everything outside quotes is lower-cased (keywords, function names,
    unquoted identifiers, aliases); quoted strings and quoted identifiers keep their case, so
    ``'Paris'`` and ``'paris'`` stay different. Whitespace is folded and a trailing ``;`` removed.
    When ``sql`` does not parse into one statement, the fallback only strips the trailing ``;``, folds
    whitespace and lower-cases outside quotes.
    """
    tree = parse_query(sql, dialect)
    text: str | None = None
    if tree is not None:
        try:
            text = tree.sql(dialect=dialect)
        except SqlglotError:
            text = None
    if text is None:
        text = _strip_semicolons(sql)
    return _fold_whitespace(_fold_case_outside_quotes(_strip_semicolons(text)))
