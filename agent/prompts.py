"""Prompts are data files in agent/prompts/; this module fills them in."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template
from typing import Any


@cache
def template(name: str) -> Template:
    return Template((resources.files("agent") / "prompts" / f"{name}.md").read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> str:
    """Fill a prompt file; every $placeholder must be given (a missing one is a bug, so it raises)."""
    return template(name).substitute(**values).strip()


def dialect_label(dialect: str) -> str:
    return {"": "ANSI", "postgres": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "tsql": "T-SQL"}.get(
        dialect, dialect.capitalize()
    )
