"""A cap on the prompt's size: its tokens estimated, and what is left out first when it is over.

The order of what goes: the least similar examples, one at a time (they help, but a missing table is
fatal); then, with the knowledge store's ranking, the least relevant tables, never the ones the
question's values or the draft name, nor the tables joining two kept ones; last, the sample rows.
What was left out is recorded on the step, so the trace shows what the cap cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.db import Schema
from core.prompt_sets import SchemaStyle

# Schemas and SQL come to about 3 characters a token with qwen2.5's tokenizer (measured on five Spider
# schemas: 2.85 to 3.33), English prose to about 4: 3 errs on the side of a prompt that fits.
CHARS_PER_TOKEN = 3

T = TypeVar("T")


def tokens_of_chars(chars: int) -> int:
    """The estimated tokens of a prompt part ``chars`` characters long (rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    return tokens_of_chars(len(text))


@dataclass(frozen=True)
class SchemaView:
    """A rendering of the schema for the prompt: of these tables (lower-cased; None: all of them)."""

    text: str
    tables: frozenset[str] | None = None
    sample_rows: int | None = None  # None: as configured


@dataclass(frozen=True)
class Fitted(Generic[T]):
    examples: list[T]
    schema: SchemaView
    estimated: int  # the prompt's estimated tokens with what was kept
    examples_dropped: int
    schema_cut: bool  # a smaller rendering than the first was needed


def fit(
    budget: int, measure: Callable[[SchemaView, list[T]], int], examples: list[T], schemas: Iterable[SchemaView],
) -> Fitted[T]:
    """Keep what fits in ``budget`` estimated tokens. ``schemas`` yields the schema as it is, then ever
    smaller renderings of it; ``measure(schema, examples)`` is the whole prompt's estimate. When even
    the smallest schema and no example are over, that smallest prompt is returned (the caller says so
    in the trace; the model server's own context limit is the hard stop)."""
    options: Iterator[SchemaView] = iter(schemas)
    first = schema = next(options)
    kept = list(examples)
    size = measure(schema, kept)
    while size > budget and kept:
        kept.pop()  # examples come best first
        size = measure(schema, kept)
    for smaller in options:
        if size <= budget:
            break
        schema = smaller
        size = measure(schema, kept)
    return Fitted(kept, schema, size, len(examples) - len(kept), schema is not first)


def smaller_schemas(
    schema: Schema, ranked: list[tuple[str, float]], must: set[str], sample_rows: int,
    link: Callable[[Schema, list[tuple[str, float]], set[str], int], set[str]],
    start: set[str] | None = None, style: SchemaStyle | None = None,
) -> Iterator[SchemaView]:
    """The schema with ever fewer tables (the least relevant by ``ranked`` dropped first; ``link`` keeps
    ``must`` and the join paths), then without sample rows. ``start``: the tables already chosen."""
    names = {t.name.lower() for t in schema.tables} if start is None else {n.lower() for n in start}
    order = [n.lower() for n, _ in ranked if n.lower() in names]
    order += sorted(names - set(order))
    last = frozenset(names)
    for k in range(len(order) - 1, 0, -1):
        chosen = frozenset(link(schema, [(n, 0.0) for n in order[:k]], must, k) & names)
        if len(chosen) < len(last):
            last = chosen
            yield SchemaView(schema.render(sample_rows=sample_rows, only=set(chosen), style=style), chosen)
    if sample_rows:
        yield SchemaView(schema.render(sample_rows=0, only=set(last), style=style), last, 0)
