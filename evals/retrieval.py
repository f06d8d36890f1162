"""Deterministic retrieval precision and recall: did the prompt hold the schema the gold query needs?

"Retrieved" is what went into the prompt: the ``context`` step's ``tables`` and ``columns``, or the
``retrieve`` step's when schema linking (or the prompt budget) left some tables out
(``"Table.column"``). "Relevant" is what the gold query touches: :func:`core.sqlshape.sql_elements`.
Everything is compared lower-cased.

Columns: ``sql_elements`` gives ``"table.column"`` when it knows the owning table, else the bare
``"column"``. A bare gold column is found when any retrieved column has that name, and a retrieved
``"t.c"`` counts as relevant when the gold has ``"t.c"``, or has the bare ``"c"`` and uses table ``t``.

A ratio whose denominator is empty is ``None`` (no retrieved columns: precision is undefined; a gold
query with no column, such as ``SELECT count(*) FROM t``, has no column recall) and is left out of means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from agent.trace import ContextOutput, ExampleShown, RetrieveOutput, Step
from core.sqlshape import hardness, sql_elements, sql_skeleton

T = TypeVar("T")


@dataclass(frozen=True)
class RetrievalScores:
    table_precision: float | None
    table_recall: float | None
    column_precision: float | None
    column_recall: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def retrieval_scores(
    tables: Iterable[str], columns: Iterable[str], gold_sql: str, dialect: str = "sqlite"
) -> RetrievalScores:
    """Table- and column-level precision and recall of the prompt's schema against the gold query."""
    gold = sql_elements(gold_sql, dialect)
    got_tables = {t.lower() for t in tables}
    got_columns = {c.lower() for c in columns}

    table_hits = len(got_tables & gold.tables)

    qualified = {c for c in gold.columns if "." in c}
    bare = {c for c in gold.columns if "." not in c}

    def relevant(column: str) -> bool:
        table, _, name = column.rpartition(".")
        return column in qualified or (name in bare and table in gold.tables)

    got_names = {c.rpartition(".")[2] for c in got_columns}
    found = sum(1 for c in qualified if c in got_columns) + sum(1 for c in bare if c in got_names)
    return RetrievalScores(
        table_precision=_ratio(table_hits, len(got_tables)),
        table_recall=_ratio(table_hits, len(gold.tables)),
        column_precision=_ratio(sum(1 for c in got_columns if relevant(c)), len(got_columns)),
        column_recall=_ratio(found, len(gold.columns)),
    )


def _last(trace: Sequence[dict[str, Any]], kind: type[T]) -> T | None:
    """The typed output of the last step of this kind, in a trace given as dicts (``Step.to_dict()``)."""
    outputs = [o for s in trace if isinstance(o := Step.from_dict(s).output, kind)]
    return outputs[-1] if outputs else None


def context_of(trace: Sequence[dict[str, Any]]) -> ContextOutput | None:
    """The output of the (last) ``context`` step of a trace given as dicts, or None if it has none."""
    return _last(trace, ContextOutput)


def examples_of(trace: Sequence[dict[str, Any]]) -> list[ExampleShown]:
    """Few-shot examples shown to the model: the ``retrieve`` step's ``examples``, or [] without one."""
    retrieved = _last(trace, RetrieveOutput)
    return list(retrieved.examples) if retrieved else []


def example_scores(trace: Sequence[dict[str, Any]], gold_sql: str, dialect: str = "sqlite") -> dict[str, float] | None:
    """How well the few-shot examples shown fit the question, judged by its gold query: the share of them
    with the gold's SQL skeleton (DAIL-SQL's notion of a useful example), whether any had it, and the
    share of the gold's hardness. None when no example was shown."""
    examples = [e for e in examples_of(trace) if e.get("sql")]  # .get: results written by older versions load too
    if not examples:
        return None
    skeleton, level = sql_skeleton(gold_sql, dialect), hardness(gold_sql, dialect)
    same = [sql_skeleton(e["sql"], dialect) == skeleton for e in examples]
    return {"example_skeleton_precision": sum(same) / len(same), "example_skeleton_hit": float(any(same)),
            "example_hardness_precision": sum(e.get("hardness") == level for e in examples) / len(examples)}


def scores_for_trace(trace: Sequence[dict[str, Any]], gold_sql: str, dialect: str = "sqlite") -> RetrievalScores | None:
    """Retrieval scores of one answered question, or None when its trace has no context step."""
    context = context_of(trace)
    if context is None:
        return None
    linked = _last(trace, RetrieveOutput)
    if linked and linked.tables is not None:  # schema linking (or the prompt budget) showed only some tables
        return retrieval_scores(linked.tables, linked.columns or [], gold_sql, dialect)
    return retrieval_scores(context.tables, context.columns, gold_sql, dialect)


def mean_scores(scores: Iterable[RetrievalScores | None]) -> dict[str, float | None]:
    """Each field averaged over the questions where it is defined (None when it never is)."""
    sums: dict[str, list[float]] = {k: [] for k in RetrievalScores.__dataclass_fields__}
    for s in scores:
        if s is None:
            continue
        for key, value in s.to_dict().items():
            if value is not None:
                sums[key].append(value)
    return {k: (sum(v) / len(v) if v else None) for k, v in sums.items()}
