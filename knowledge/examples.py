"""Solved question → SQL examples: how they are stored, and importing a Spider-format file as a pool."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.sqlshape import hardness, sql_skeleton
from knowledge.store import Item

POOL_SOURCE = "pool"  # the shipped example pool (knowledge.pool)


def is_imported(source: str) -> bool:
    """An example that came from a file (the shipped pool, ``import-spider``), not from a person's say-so."""
    return source == POOL_SOURCE or source.startswith("spider:")


@dataclass(frozen=True)
class Example:
    question: str
    sql: str
    db_id: str
    hardness: str
    skeleton: str
    source: str = "user"

    @property
    def own(self) -> bool:
        """Confirmed by a user (thumbs up, a correction, ``knowledge add``)."""
        return not is_imported(self.source)


def example_id(db_id: str, question: str, sql: str) -> str:
    digest = hashlib.sha1(f"{db_id}\x00{question.strip()}\x00{sql.strip()}".encode()).hexdigest()[:16]
    return f"ex-{digest}"


def make_example(question: str, sql: str, db_id: str, source: str = "user", dialect: str = "sqlite") -> Item:
    """An example item: the question is what gets embedded; SQL, hardness and skeleton ride along."""
    return Item(
        id=example_id(db_id, question, sql), kind="example", text=question.strip(),
        metadata={"sql": sql.strip(), "db_id": db_id, "hardness": hardness(sql, dialect),
                  "skeleton": sql_skeleton(sql, dialect), "source": source},
    )


def as_example(item: Item) -> Example:
    m = item.metadata
    return Example(item.text, str(m.get("sql", "")), str(m.get("db_id", "")), str(m.get("hardness", "")),
                   str(m.get("skeleton", "")), str(m.get("source", "")))


def spider_items(rows: Iterable[dict[str, str]], source: str, exclude_db_ids: Iterable[str] = ()) -> Iterator[Item]:
    """Examples from Spider-format rows ({db_id, question, query}), leaving out ``exclude_db_ids``."""
    excluded = set(exclude_db_ids)
    for row in rows:
        if row["db_id"] in excluded:
            continue
        yield make_example(row["question"], row["query"], row["db_id"], source=source)


def read_spider(path: Path, exclude_db_ids: Iterable[str] = ()) -> Iterator[Item]:
    """Examples from a Spider-format file (a JSON list of {db_id, question, query})."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return spider_items(rows, f"spider:{Path(path).name}", exclude_db_ids)
