"""Property tests for the SQL guard: disguising a refused statement never gets it through, and harmless
comments around an allowed statement never get it refused.

Reproducible: derandomize=True, no example database.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from core.guard import UnsafeSQLError, check_sql

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "guard"
SEPARATOR = "\n-- ----\n"


def load_corpus(name: str) -> list[str]:
    """Same format as in test_guard.py: '-- ----' lines separate cases, '-- #' lines head the file."""
    with open(CORPUS_DIR / f"{name}.sql", encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    while lines and lines[0].startswith("-- #"):
        lines.pop(0)
    return [case for case in "\n".join(lines).split(SEPARATOR) if case.strip()]


def cases(kind: str) -> list[tuple[str, str]]:
    return [(sql, dialect) for dialect in ("sqlite", "postgres") for sql in load_corpus(f"{kind}_{dialect}")]


REFUSED = cases("refuse")
ALLOWED = cases("allow")

FAST = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")

# What may go between two tokens that are already apart: whitespace (Unicode too), comments.
FILLERS = [
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "\u00a0",
    "\u2003",
    "/**/",
    " /* x */ ",
    "/* ; */",
    "/* DROP TABLE x; */",
    " -- c\n",
    "--;\n",
    "\n-- SELECT 1;\n",
]


def _token_spans(sql: str, dialect: str) -> list[tuple[int, int, TokenType]] | None:
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except Exception:
        return None
    return [(t.start, t.end + 1, t.token_type) for t in tokens]


def flip_case(sql: str, dialect: str, rnd: random.Random) -> str:
    """Randomly flip the case of letters in bare words (keywords, unquoted names); quoted text is untouched."""
    spans = _token_spans(sql, dialect)
    if not spans:
        return sql
    chars = list(sql)
    for start, end, _ in spans:
        if not _WORD.fullmatch(sql[start:end]):
            continue
        for i in range(start, end):
            if rnd.random() < 0.5:
                chars[i] = chars[i].swapcase()
    return "".join(chars)


def insert_fillers(sql: str, dialect: str, rnd: random.Random) -> str:
    """Insert whitespace or comments right after tokens that are already separated from the next one."""
    spans = _token_spans(sql, dialect)
    if not spans:
        return sql
    gaps = [end for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False) if start > end]
    gaps.append(len(sql))
    chosen = sorted({rnd.choice(gaps) for _ in range(rnd.randint(1, 4))}, reverse=True)
    for pos in chosen:
        sql = sql[:pos] + rnd.choice(FILLERS) + sql[pos:]
    return sql


def prefix_select(sql: str, dialect: str, rnd: random.Random) -> str:
    return rnd.choice(["SELECT 1;", "SELECT 1; ", "select 1 ;\n", "SELECT 'ok';"]) + sql


def wrap_in_cte(sql: str, dialect: str, rnd: random.Random) -> str:
    # A bare VALUES list is refused as a statement of its own, but is a harmless row source inside a CTE.
    if rnd.random() < 0.5 or sql.lstrip().upper().startswith("VALUES"):
        return f"WITH w AS (SELECT 1) {sql}"
    return f"WITH w AS ({sql}\n) SELECT * FROM w"


def append_comment(sql: str, dialect: str, rnd: random.Random) -> str:
    return sql + rnd.choice([" -- trailing", "\n-- SELECT 1", " /* ok */", "\n-- ;", " --"])


MUTATIONS = [flip_case, insert_fillers, prefix_select, wrap_in_cte, append_comment]


@settings(FAST, max_examples=120)
@given(
    case=st.sampled_from(REFUSED),
    ops=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4),
    rnd=st.randoms(use_true_random=False),
)
def test_disguised_refused_statements_stay_refused(case: tuple[str, str], ops: list, rnd: random.Random) -> None:
    sql, dialect = case
    for op in ops:
        sql = op(sql, dialect, rnd)
    with pytest.raises(UnsafeSQLError):
        check_sql(sql, dialect)


@settings(FAST, max_examples=30)
@given(case=st.sampled_from(REFUSED), rnd=st.randoms(use_true_random=False))
def test_case_and_spacing_alone_never_unlock(case: tuple[str, str], rnd: random.Random) -> None:
    sql, dialect = case
    sql = insert_fillers(flip_case(sql, dialect, rnd), dialect, rnd)
    with pytest.raises(UnsafeSQLError):
        check_sql(sql, dialect)


LEADING = ["", "-- note\n", "/* note */ ", "/* DROP TABLE x; */\n", "\n\n", "-- DELETE FROM t;\n", "\u00a0"]
TRAILING = ["", " -- note", "\n-- DROP TABLE x;", " /* ; DELETE */", ";", "; -- done", ";\n\n", "\n"]


@settings(FAST, max_examples=50)
@given(
    case=st.sampled_from(ALLOWED),
    lead=st.sampled_from(LEADING),
    trail=st.sampled_from(TRAILING),
    rnd=st.randoms(use_true_random=False),
)
def test_harmless_comments_keep_allowed_statements_allowed(
    case: tuple[str, str], lead: str, trail: str, rnd: random.Random
) -> None:
    sql, dialect = case
    if rnd.random() < 0.5:
        sql = flip_case(sql, dialect, rnd) if "$" not in sql else sql
    statement = check_sql(lead + sql + trail, dialect)
    assert statement and statement == statement.strip()
    assert check_sql(statement, dialect) == statement
