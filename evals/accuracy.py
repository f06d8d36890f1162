"""Execution accuracy, as Spider's test-suite evaluation defines it.

A predicted query is right when, on the same database, it returns the same result as the gold query:
the same number of columns, the columns possibly in another order, the same rows as a multiset -- and
in the same order when the gold query has a top-level ORDER BY.

Values are compared after :func:`normalize_value`:

- ``NULL`` equals ``NULL``; ``True``/``False`` are ``1``/``0``;
- an ``int`` is kept exactly; a ``float`` that is a whole number becomes that ``int`` (``3.0 == 3``);
- any other float is rounded to 12 significant digits (which absorbs the last-bit noise between, say,
  ``AVG(x)`` and ``SUM(x) / COUNT(x)``) and then to 6 significant digits; if that gives a whole number
  it becomes an ``int``. Two floats therefore match when they agree to about 6 significant digits;
- ``bytes`` (a BLOB) is decoded as UTF-8 (invalid bytes replaced), so it equals the same text; text
  is read from SQLite the same way, so a database with invalid UTF-8 does not make a query fail;
- strings are compared exactly (case and spaces count), and ``'3'`` is not ``3``.

Rounding, not ``math.isclose``, because rows are compared as multisets (``collections.Counter``),
which needs hashable, transitive equality.

Beside that headline figure, :func:`official_match` reproduces the default rules of the official
evaluator (``exec_eval.py`` of taoyds/test-suite-sql-eval), which are more lenient in three ways: DISTINCT
is removed from both queries before they run, two empty results are equal whatever their columns, and
the row order counts whenever ``'order by'`` appears anywhere in the gold text.
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

# How many VM instructions SQLite runs between two checks of the deadline.
_PROGRESS_STEPS = 1_000
# At most this many column assignments are tried before giving up (a verdict of "no match").
MAX_PERMUTATIONS = 5_000

TIMEOUT_PREFIX = "timeout"


@dataclass(frozen=True)
class ExecResult:
    """What one query returned: column names, rows, the error text (None when it ran) and its duration."""

    columns: list[str]
    rows: list[tuple]
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.startswith(TIMEOUT_PREFIX)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _deny_attach(action: int, *_: Any) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def execute_readonly(db_path: str | Path, sql: str, timeout_s: float = 30.0, max_rows: int = 100_000) -> ExecResult:
    """Run one SQL statement on a SQLite file opened read-only, within ``timeout_s`` seconds.

    Never raises for a bad query: a SQL error, a write attempt, a second statement, a missing
    database, a timeout (error ``"timeout after ...s"``) or more than ``max_rows`` rows (error
    ``"too many rows ..."``; rows are not silently truncated) all come back as ``error``.
    """
    start = time.perf_counter()
    deadline = start + timeout_s

    def elapsed() -> float:
        return time.perf_counter() - start

    path = Path(db_path)
    if not path.is_file():
        return ExecResult([], [], f"database not found: {path}", elapsed())
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as err:
        return ExecResult([], [], f"cannot open database: {err}", elapsed())
    timed_out = False

    def past_deadline() -> int:
        nonlocal timed_out
        if time.perf_counter() > deadline:
            timed_out = True
            return 1
        return 0

    try:
        conn.text_factory = _decode
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_deny_attach)
        conn.set_progress_handler(past_deadline, _PROGRESS_STEPS)
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchmany(max_rows + 1)
        if len(rows) > max_rows:
            return ExecResult(columns, [], f"too many rows (more than {max_rows})", elapsed())
        return ExecResult(columns, [tuple(r) for r in rows], None, elapsed())
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as err:
        if timed_out:
            return ExecResult([], [], f"{TIMEOUT_PREFIX} after {timeout_s:g}s", elapsed())
        return ExecResult([], [], f"{type(err).__name__}: {err}", elapsed())
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------- compare


def normalize_value(value: object) -> Hashable:
    """A value's comparison key (see the module docstring for the rules)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)  # 'nan' / 'inf' / '-inf'
        if value.is_integer():
            return int(value)
        denoised = float(f"{value:.12g}")
        if denoised.is_integer():
            return int(denoised)
        rounded = float(f"{denoised:.6g}")
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, bytes | bytearray | memoryview):
        return _decode(bytes(value))
    if isinstance(value, str):
        return value
    return repr(value)


def _sort_key(value: Hashable) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def _permutations(gold_cols: list[Counter[Hashable]], pred_cols: list[Counter[Hashable]]) -> Iterator[tuple[int, ...]]:
    """Assignments ``perm`` (gold column i <- pred column perm[i]) whose column value multisets agree.

    A permutation of the columns never changes a column's multiset of values, so only pred columns
    with the same multiset as a gold column are candidates for it; this prunes nearly every search
    to a single assignment. The caller caps how many are tried.
    """
    candidates = [[j for j, pc in enumerate(pred_cols) if pc == gc] for gc in gold_cols]
    if any(not c for c in candidates):
        return
    # Assign the most constrained gold columns first.
    order = sorted(range(len(gold_cols)), key=lambda i: len(candidates[i]))
    chosen: list[int] = [-1] * len(gold_cols)
    used: set[int] = set()

    def search(depth: int) -> Iterator[tuple[int, ...]]:
        if depth == len(order):
            yield tuple(chosen)
            return
        i = order[depth]
        for j in candidates[i]:
            if j in used:
                continue
            chosen[i] = j
            used.add(j)
            yield from search(depth + 1)
            used.discard(j)
        chosen[i] = -1

    yield from search(0)


def results_match(gold: ExecResult, pred: ExecResult, order_matters: bool) -> bool:
    """Whether ``pred`` returned the same result as ``gold`` (Spider test-suite semantics).

    False if either has an error or their column counts differ. Otherwise the columns of ``pred``
    may be in any order; the rows are compared as multisets, or as lists when ``order_matters``.
    Two empty results with the same number of columns match.
    """
    if gold.error is not None or pred.error is not None:
        return False
    width = len(gold.columns)
    if width != len(pred.columns):
        return False
    if len(gold.rows) != len(pred.rows):
        return False
    if not gold.rows:
        return True
    gold_rows = [tuple(normalize_value(v) for v in row) for row in gold.rows]
    pred_rows = [tuple(normalize_value(v) for v in row) for row in pred.rows]
    if any(len(r) != width for r in gold_rows) or any(len(r) != width for r in pred_rows):
        return False

    # Quick rejection: each row's values as a sorted bag do not depend on the column order.
    def bag(row: Sequence[Hashable]) -> tuple[Hashable, ...]:
        return tuple(sorted(row, key=_sort_key))

    if order_matters:
        if [bag(r) for r in gold_rows] != [bag(r) for r in pred_rows]:
            return False
    elif Counter(bag(r) for r in gold_rows) != Counter(bag(r) for r in pred_rows):
        return False

    return _some_permutation_matches(gold_rows, pred_rows, order_matters)


def _some_permutation_matches(gold_rows: Sequence[tuple], pred_rows: Sequence[tuple], order_matters: bool) -> bool:
    """Whether some assignment of ``pred``'s columns to ``gold``'s makes the rows equal (as lists when
    ``order_matters``, else as multisets). Both hold the same number of rows, all of one width."""
    width = len(gold_rows[0])
    gold_cols = [Counter(row[i] for row in gold_rows) for i in range(width)]
    pred_cols = [Counter(row[i] for row in pred_rows) for i in range(width)]
    gold_list = list(gold_rows)
    gold_counter = None if order_matters else Counter(gold_rows)
    for perm in itertools.islice(_permutations(gold_cols, pred_cols), MAX_PERMUTATIONS):
        permuted = [tuple(row[j] for j in perm) for row in pred_rows]
        if order_matters:
            if permuted == gold_list:
                return True
        elif Counter(permuted) == gold_counter:
            return True
    return False


def gold_has_order_by(sql: str) -> bool:
    """Whether the query ends with a top-level ORDER BY (an ORDER BY inside a sub-query does not
    count: it fixes which rows a LIMIT keeps, not the order of the final result). When the SQL does
    not parse, falls back to Spider's test: ``'order by'`` appears anywhere in it."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except (SqlglotError, ValueError, RecursionError):
        statements = []
    if len(statements) != 1:
        return "order by" in " ".join(sql.lower().split())
    node: exp.Expr = statements[0]
    while isinstance(node, exp.Subquery) and node.args.get("order") is None:
        node = node.this
    return node.args.get("order") is not None


def execution_match(
    db_path: str | Path, gold_sql: str, pred_sql: str, timeout_s: float = 30.0
) -> tuple[bool, ExecResult, ExecResult]:
    """Run gold and predicted SQL on ``db_path`` and compare them with :func:`results_match`, the row
    order counting only when the gold query has a top-level ORDER BY."""
    gold = execute_readonly(db_path, gold_sql, timeout_s=timeout_s)
    pred = execute_readonly(db_path, pred_sql, timeout_s=timeout_s)
    return results_match(gold, pred, order_matters=gold_has_order_by(gold_sql)), gold, pred


# --------------------------------------------------------------------------------------------- official

_OPERATOR_GAPS = (("> =", ">="), ("< =", "<="), ("! =", "!="))
_CUR_YEAR_RE = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)


def remove_distinct(sql: str, dialect: str = "sqlite") -> str:
    """``sql`` with every DISTINCT keyword cut out -- ``SELECT DISTINCT``, ``COUNT(DISTINCT x)``, in
    sub-queries too -- as the official evaluator's ``remove_distinct`` does with sqlparse tokens. Here
    sqlglot's tokenizer finds them, so ``'distinct'`` in a string and a ``"distinct"`` identifier stay;
    the rest of the text is kept as written (nothing is regenerated). Text that does not tokenize is
    returned unchanged (it will fail to run either way)."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (SqlglotError, ValueError):
        return sql
    pieces: list[str] = []
    last = 0
    for token in tokens:
        if token.token_type is TokenType.DISTINCT:
            pieces.append(sql[last : token.start])
            last = token.end + 1
    pieces.append(sql[last:])
    return "".join(pieces)


def official_sql(sql: str, dialect: str = "sqlite") -> str:
    """The query as the official evaluator runs it by default: its ``postprocess`` (``> =`` becomes
    ``>=``, likewise ``< =`` and ``! =``), ``YEAR(CURDATE())`` replaced by 2020, DISTINCT removed."""
    for gap, joined in _OPERATOR_GAPS:
        sql = sql.replace(gap, joined)
    return remove_distinct(_CUR_YEAR_RE.sub("2020", sql), dialect)


def official_order_matters(gold_sql: str) -> bool:
    """The official test: ``'order by'`` (one space) anywhere in the gold text, in a sub-query or a
    string too."""
    return "order by" in gold_sql.lower()


def _official_sort_key(value: object) -> str:
    return str(value) + str(type(value))


def official_results_match(gold: ExecResult, pred: ExecResult, order_matters: bool) -> bool:
    """The official evaluator's ``result_eq`` on two results, with its rules:

    - an error on either side is a miss (the official evaluator stops on a failing gold query);
    - two empty results are equal, whatever their columns;
    - otherwise the row counts and the widths of the first rows must agree;
    - values are compared as SQLite returned them, with Python's ``==`` (``3 == 3.0``, but ``0.1 + 0.2``
      is not ``0.3`` and a BLOB is not its text): no :func:`normalize_value`;
    - its quick rejection: each row sorted by ``str(v) + str(type(v))``, then compared as lists (order
      matters) or as *sets*;
    - then some assignment of the columns must make the rows equal, as lists or as multisets. Its
      search is exhaustive (its random sampling only prunes assignments that cannot match); this one
      tries at most :data:`MAX_PERMUTATIONS`, like :func:`results_match`.
    """
    if gold.error is not None or pred.error is not None:
        return False
    if not gold.rows and not pred.rows:
        return True
    if len(gold.rows) != len(pred.rows):
        return False
    width = len(gold.rows[0])
    if len(pred.rows[0]) != width:
        return False
    gold_rows = [tuple(r) for r in gold.rows]
    pred_rows = [tuple(r) for r in pred.rows]
    if any(len(r) != width for r in gold_rows) or any(len(r) != width for r in pred_rows):
        return False

    def unordered(row: tuple) -> tuple:
        return tuple(sorted(row, key=_official_sort_key))

    gold_bags = [unordered(r) for r in gold_rows]
    pred_bags = [unordered(r) for r in pred_rows]
    if order_matters:
        if gold_bags != pred_bags:
            return False
    elif set(gold_bags) != set(pred_bags):
        return False
    return _some_permutation_matches(gold_rows, pred_rows, order_matters)


def official_match(
    gold_sql: str, pred_sql: str, gold: ExecResult, pred: ExecResult, run: Callable[[str], ExecResult],
    dialect: str = "sqlite",
) -> bool:
    """The official evaluator's verdict (``eval_exec_match`` with its defaults: DISTINCT removed, values
    not plugged in) on one database. ``gold`` and ``pred`` are the results of the queries as written;
    a query that the official rewrite changes is run again through ``run``."""
    gold_text, pred_text = official_sql(gold_sql, dialect), official_sql(pred_sql, dialect)
    gold_result = gold if gold_text == gold_sql else run(gold_text)
    pred_result = pred if pred_text == pred_sql else run(pred_text)
    return official_results_match(gold_result, pred_result, official_order_matters(gold_text))
