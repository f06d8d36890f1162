"""The failure map: why a wrong answer is wrong, one category per miss, without a model.

:func:`classify` reads the predicted and gold SQL with sqlglot (aliases resolved by its
``optimizer.scope``, through :func:`core.sqlshape.column_owners`) and the two execution results, and
returns the first category of :data:`CATEGORIES` whose check holds. The order is the priority:

1. ``gold_error`` -- the gold query itself failed (not the model's fault).
2. Did not run, by error class: ``no_sql`` (no SQL came back), ``refused`` (the guard or the read-only
   connection refused it), ``timeout``, ``no_such_table``, ``no_such_column``, ``ambiguous_column``,
   ``syntax_error``, ``run_error`` (any other error, e.g. too many rows).
3. ``order_limit`` when the results say so: the prediction returned the gold rows, in another order.
4. From the SQL (a query that sqlglot cannot parse goes to ``other``):

   - ``extra_table`` -- the prediction reads a table the gold query does not;
   - ``missing_table`` -- the gold query reads a table the prediction does not;
   - ``set_operation`` -- UNION / INTERSECT / EXCEPT on one side and not (or another one) on the other,
     typically a set operation answered with a JOIN or an IN;
   - ``wrong_column`` -- the selected columns differ (the number of result columns, or the column names
     in the SELECT list outside aggregates);
   - ``alias_mixup`` -- the same tables, the same column names selected and used, but a column taken
     from other tables (through the wrong alias or qualifier): of the references scope resolves, the
     tables differ, or the same number of references is shared out differently among them;
   - ``aggregate_group`` -- other aggregates (function or argument, DISTINCT aside), GROUP BY columns or
     HAVING;
   - ``distinct`` -- DISTINCT missing or extra (``SELECT DISTINCT`` or inside an aggregate);
   - ``wrong_literal`` -- the same shape (:func:`core.sqlshape.sql_skeleton`) with other literal values
     (LIMIT / OFFSET values and ORDER BY positions aside);
   - ``order_limit`` -- ORDER BY keys or direction, LIMIT or OFFSET differ;
5. ``other`` -- none of the checks tells the two apart (a different condition, join type, NULL handling).

Each check compares one aspect of the two queries as a whole (every scope, sub-queries included), so a
prediction is put where its first difference in this order lies, not where all its differences lie.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot import exp

from core.sqlshape import column_owners, is_quoted_value, parse_query, sql_skeleton, tree_elements
from evals.accuracy import ExecResult, results_match

# key -> label, in priority order.
CATEGORIES: dict[str, str] = {
    "gold_error": "gold query failed",
    "no_sql": "did not run: no SQL",
    "refused": "did not run: refused / unsafe",
    "timeout": "did not run: timeout",
    "no_such_table": "did not run: no such table",
    "no_such_column": "did not run: no such column",
    "ambiguous_column": "did not run: ambiguous column",
    "syntax_error": "did not run: syntax error",
    "run_error": "did not run: other error",
    "extra_table": "extra table joined",
    "missing_table": "table missing",
    "set_operation": "set operation vs join",
    "wrong_column": "wrong column",
    "alias_mixup": "alias mix-up",
    "aggregate_group": "wrong aggregate / GROUP BY",
    "distinct": "DISTINCT missing or extra",
    "wrong_literal": "wrong literal value",
    "order_limit": "ORDER BY / LIMIT",
    "other": "other",
}

# Error text (lower-cased) -> category, checked in this order; SQLite's own messages.
_ERROR_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("refused", "readonly database", "not authorized"), "refused"),
    (("no such table",), "no_such_table"),
    (("no such column",), "no_such_column"),
    (("ambiguous column",), "ambiguous_column"),
    (("syntax error", "incomplete input", "unrecognized token"), "syntax_error"),
)


@dataclass(frozen=True)
class Failure:
    """Why one answer is wrong: a key of :data:`CATEGORIES` and what the check saw."""

    category: str
    detail: str

    @property
    def label(self) -> str:
        return CATEGORIES[self.category]


def error_class(error: str, timed_out: bool = False) -> str:
    """The category of a query that did not run, from its error text."""
    if timed_out:
        return "timeout"
    text = error.lower()
    for needles, category in _ERROR_CLASSES:
        if any(n in text for n in needles):
            return category
    return "run_error"


def classify(gold_sql: str, pred_sql: str | None, gold: ExecResult, pred: ExecResult | None,
             dialect: str = "sqlite") -> Failure:
    """The category of a wrong answer (see the module docstring for the order of the checks): call it
    for a miss only (a prediction with the gold rows in the gold order would be put under
    ``order_limit``). ``pred`` is None when there is no predicted SQL. Never raises on bad SQL."""
    if gold.error is not None:
        return Failure("gold_error", gold.error)
    if pred_sql is None or pred is None:
        return Failure("no_sql", "no SQL in the answer")
    if pred.error is not None:
        return Failure(error_class(pred.error, pred.timed_out), pred.error)
    if results_match(gold, pred, order_matters=False):
        return Failure("order_limit", "the gold rows, in another order")
    gold_tree, pred_tree = parse_query(gold_sql, dialect), parse_query(pred_sql, dialect)
    if gold_tree is None or pred_tree is None:
        which = "gold query" if gold_tree is None else "prediction"
        return Failure("other", f"sqlglot cannot parse the {which}; {_shapes(gold, pred)}")
    for check in _CHECKS:
        found = check(gold_tree, pred_tree, gold, pred)
        if found is not None:
            return found
    if sql_skeleton(gold_sql, dialect) == sql_skeleton(pred_sql, dialect) and \
            _literals(gold_tree) != _literals(pred_tree):
        return Failure("wrong_literal", _differ(_literals(gold_tree), _literals(pred_tree)))
    found = _order_limit(gold_tree, pred_tree)
    if found is not None:
        return found
    return Failure("other", f"no check tells them apart; {_shapes(gold, pred)}")


# --------------------------------------------------------------------------------------------- helpers


def _shapes(gold: ExecResult, pred: ExecResult) -> str:
    return (f"predicted {len(pred.rows)} row(s) x {len(pred.columns)} column(s), "
            f"gold {len(gold.rows)} x {len(gold.columns)}")


def _show(items: Counter[str] | set[str]) -> str:
    return ", ".join(sorted(items)) if items else "none"


def _differ(gold: Counter[str], pred: Counter[str]) -> str:
    return f"predicted {_show(set((pred - gold).elements()))} where gold has {_show(set((gold - pred).elements()))}"


def _walk_outside_queries(node: exp.Expr) -> Iterator[exp.Expr]:
    """``node`` and everything under it that is not inside a nested query."""
    yield node
    for child in node.iter_expressions():
        if not isinstance(child, exp.Query | exp.Subquery):
            yield from _walk_outside_queries(child)


def _top_selects(tree: exp.Expr) -> list[exp.Select]:
    """The SELECTs whose rows are the result: the query itself, or every branch of a set operation."""
    if isinstance(tree, exp.SetOperation):
        return _top_selects(tree.this) + _top_selects(tree.expression)
    if isinstance(tree, exp.Subquery):
        return _top_selects(tree.this)
    return [tree] if isinstance(tree, exp.Select) else []


def _bare_names(node: exp.Expr) -> Iterator[str]:
    """The column names under ``node``, lower-cased and unqualified; ``*`` for a star."""
    for n in node.find_all(exp.Column, exp.Star):
        if isinstance(n, exp.Column):
            if not is_quoted_value(n):
                yield "*" if isinstance(n.this, exp.Star) else n.name.lower()
        elif not isinstance(n.parent, exp.Column):
            yield "*"


# --------------------------------------------------------------------------------------------- checks


def _tables(gold_tree: exp.Expr, pred_tree: exp.Expr, _g: ExecResult, _p: ExecResult) -> Failure | None:
    gold_tables, pred_tables = tree_elements(gold_tree).tables, tree_elements(pred_tree).tables
    if pred_tables - gold_tables:
        return Failure("extra_table", f"reads {_show(set(pred_tables - gold_tables))}; "
                                      f"gold reads {_show(set(gold_tables))}")
    if gold_tables - pred_tables:
        return Failure("missing_table", f"does not read {_show(set(gold_tables - pred_tables))}; "
                                        f"it reads {_show(set(pred_tables))}")
    return None


def _set_op_name(node: exp.SetOperation) -> str:
    name = type(node).__name__.upper()
    return f"{name} ALL" if isinstance(node, exp.Union) and node.args.get("distinct") is False else name


def _set_ops(tree: exp.Expr) -> Counter[str]:
    return Counter(_set_op_name(n) for n in tree.find_all(exp.SetOperation))


def _set_operation(gold_tree: exp.Expr, pred_tree: exp.Expr, _g: ExecResult, _p: ExecResult) -> Failure | None:
    gold_ops, pred_ops = _set_ops(gold_tree), _set_ops(pred_tree)
    if gold_ops == pred_ops:
        return None
    joins = sum(1 for _ in pred_tree.find_all(exp.Join)) + sum(1 for _ in pred_tree.find_all(exp.In))
    how = f" (the prediction uses {joins} JOIN / IN)" if not pred_ops and joins else ""
    return Failure("set_operation", f"gold {_show(set(gold_ops)) if gold_ops else 'no set operation'}, "
                                    f"predicted {_show(set(pred_ops)) if pred_ops else 'none'}{how}")


def _owners(tree: exp.Expr) -> dict[str, Counter[str]]:
    """Column name -> how often it is taken from each table (references scope cannot resolve count as
    the name only)."""
    owners: dict[str, Counter[str]] = {}
    for column, owner in column_owners(tree):
        taken = owners.setdefault(column.name.lower(), Counter())
        if owner is not None:
            taken[owner] += 1
    return owners


def _alias_mixup(gold_tree: exp.Expr, pred_tree: exp.Expr, _g: ExecResult, _p: ExecResult) -> Failure | None:
    gold_owners, pred_owners = _owners(gold_tree), _owners(pred_tree)
    if gold_owners.keys() != pred_owners.keys():
        return None
    for name in sorted(gold_owners):
        theirs, ours = gold_owners[name], pred_owners[name]
        moved = set(theirs) != set(ours) or (sum(theirs.values()) == sum(ours.values()) and theirs != ours)
        if theirs and ours and moved:
            return Failure("alias_mixup", f"{name}: predicted {_counts(ours)}; gold {_counts(theirs)}")
    return None


def _counts(taken: Counter[str]) -> str:
    return ", ".join(f"{table} x{n}" for table, n in sorted(taken.items()))


def _selected(tree: exp.Expr) -> Counter[str]:
    """The column names that the result's SELECT lists use outside aggregates (``*`` for a star)."""
    names = Counter[str]()
    for select in _top_selects(tree):
        for item in select.expressions:
            for node in _walk_outside_queries(item):
                if isinstance(node, exp.Column) and not is_quoted_value(node) and \
                        node.find_ancestor(exp.AggFunc, exp.Select) is select:
                    names["*" if isinstance(node.this, exp.Star) else node.name.lower()] += 1
                elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.Column | exp.AggFunc):
                    names["*"] += 1
    return names


def _wrong_column(gold_tree: exp.Expr, pred_tree: exp.Expr, gold: ExecResult, pred: ExecResult) -> Failure | None:
    if len(gold.columns) != len(pred.columns):
        return Failure("wrong_column", f"returns {len(pred.columns)} column(s) ({', '.join(pred.columns)}), "
                                       f"gold {len(gold.columns)} ({', '.join(gold.columns)})")
    gold_names, pred_names = _selected(gold_tree), _selected(pred_tree)
    if set(gold_names) != set(pred_names):
        return Failure("wrong_column", f"selects {_show(set(pred_names))}; gold selects {_show(set(gold_names))}")
    return None


def _aggregates(tree: exp.Expr) -> Counter[str]:
    """Each aggregate as ``name(columns)``, qualifiers and DISTINCT left out."""
    return Counter(f"{agg.key}({','.join(sorted(set(_bare_names(agg))))})" for agg in tree.find_all(exp.AggFunc))


def _groups(tree: exp.Expr) -> Counter[str]:
    found = Counter[str]()
    for group in tree.find_all(exp.Group):
        found[f"GROUP BY {','.join(sorted(set(_bare_names(group))))}"] += 1
    for _ in tree.find_all(exp.Having):
        found["HAVING"] += 1
    return found


def _aggregate_group(gold_tree: exp.Expr, pred_tree: exp.Expr, _g: ExecResult, _p: ExecResult) -> Failure | None:
    gold_aggs, pred_aggs = _aggregates(gold_tree), _aggregates(pred_tree)
    if gold_aggs != pred_aggs:
        return Failure("aggregate_group", "aggregates: " + _differ(gold_aggs, pred_aggs))
    gold_groups, pred_groups = _groups(gold_tree), _groups(pred_tree)
    if gold_groups != pred_groups:
        return Failure("aggregate_group", _differ(gold_groups, pred_groups))
    return None


def _distincts(tree: exp.Expr) -> Counter[str]:
    """Where DISTINCT is used: ``SELECT DISTINCT`` or ``COUNT(DISTINCT)`` (by aggregate)."""
    return Counter("SELECT DISTINCT" if isinstance(d.parent, exp.Select) else f"{d.parent.key.upper()}(DISTINCT)"
                   for d in tree.find_all(exp.Distinct) if d.parent is not None)


def _distinct(gold_tree: exp.Expr, pred_tree: exp.Expr, gold: ExecResult, pred: ExecResult) -> Failure | None:
    gold_d, pred_d = _distincts(gold_tree), _distincts(pred_tree)
    if gold_d == pred_d:
        return None
    same_set = {tuple(map(repr, r)) for r in gold.rows} == {tuple(map(repr, r)) for r in pred.rows}
    rows = "; the same distinct rows, other duplicates" if same_set else ""
    return Failure("distinct", _differ(gold_d, pred_d) + rows)


def _literal_key(node: exp.Expr) -> str:
    if isinstance(node, exp.Column):  # a double-quoted value: SQLite reads "Paris" as a string
        return repr(node.name)
    assert isinstance(node, exp.Literal)
    if node.is_string:
        return repr(node.this)
    try:
        number = float(node.this)
    except ValueError:
        return node.this
    return str(int(number)) if number.is_integer() else repr(number)


def _literals(tree: exp.Expr) -> Counter[str]:
    """Literal values (and double-quoted values), LIMIT / OFFSET values and ORDER BY positions aside."""
    found = Counter[str]()
    for node in tree.find_all(exp.Literal, exp.Column):
        if isinstance(node, exp.Column) and not is_quoted_value(node):
            continue
        if node.find_ancestor(exp.Limit, exp.Offset, exp.Order) is not None:
            continue
        found[_literal_key(node)] += 1
    return found


def _orders(tree: exp.Expr) -> Counter[str]:
    found = Counter[str]()
    for order in tree.find_all(exp.Order):
        keys = []
        for item in order.expressions:
            key = item.this if isinstance(item, exp.Ordered) else item
            aggs = ",".join(sorted(a.key for a in key.find_all(exp.AggFunc)))
            names = ",".join(sorted(set(_bare_names(key)))) or key.sql()
            desc = " DESC" if isinstance(item, exp.Ordered) and item.args.get("desc") else ""
            keys.append(f"{aggs}({names}){desc}" if aggs else f"{names}{desc}")
        found["ORDER BY " + ", ".join(keys)] += 1
    for node in tree.find_all(exp.Limit, exp.Offset):
        found[f"{node.key.upper()} {node.expression.sql() if node.expression else ''}"] += 1
    return found


def _order_limit(gold_tree: exp.Expr, pred_tree: exp.Expr) -> Failure | None:
    gold_o, pred_o = _orders(gold_tree), _orders(pred_tree)
    return None if gold_o == pred_o else Failure("order_limit", _differ(gold_o, pred_o))


_CHECKS = (_tables, _set_operation, _wrong_column, _alias_mixup, _aggregate_group, _distinct)
