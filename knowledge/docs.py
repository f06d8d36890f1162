"""User documentation in the store: Markdown files cut into chunks at headings, and a YAML file of
table/column descriptions and business terms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from knowledge.store import Item

MAX_CHUNK_CHARS = 1200


def markdown_chunks(path: Path, db: str) -> list[Item]:
    text = path.read_text(encoding="utf-8")
    sections = [s.strip() for s in re.split(r"(?m)^(?=#{1,3} )", text) if s.strip()]
    items = []
    for i, section in enumerate(sections):
        for j in range(0, len(section), MAX_CHUNK_CHARS):
            chunk = section[j : j + MAX_CHUNK_CHARS]
            items.append(Item(id=f"doc:{db}:{path.name}:{i}:{j}", kind="doc", text=chunk,
                              metadata={"db_id": db, "source": path.name}))
    return items


def description_items(path: Path, db: str) -> list[Item]:
    """YAML: ``tables: {Table: {description: ..., columns: {col: ...}}}`` and ``terms: {term: meaning}``."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = []
    for table, spec in (data.get("tables") or {}).items():
        spec = spec or {}
        cols = "; ".join(f"{c}: {d}" for c, d in (spec.get("columns") or {}).items())
        text = f"Table {table}: {spec.get('description', '')}" + (f" Columns — {cols}" if cols else "")
        items.append(Item(id=f"doc:{db}:desc:{table}", kind="doc", text=text,
                          metadata={"db_id": db, "source": path.name, "table": table}))
    for term, meaning in (data.get("terms") or {}).items():
        items.append(Item(id=f"doc:{db}:term:{term}", kind="doc", text=f"{term}: {meaning}",
                          metadata={"db_id": db, "source": path.name, "term": term}))
    return items
