"""Fix qualifiers (a check, ``fix_qualifiers``): a column qualified with a table of the query that does
not have it is re-qualified with the one that does, without the model (``agent.requalify``)."""

from __future__ import annotations

from agent.deps import RunContext
from agent.requalify import requalify
from agent.trace import CheckOutput


def check(sql: str, ctx: RunContext) -> CheckOutput:
    db = ctx.deps.db
    fixed, notes = requalify(sql, db.schema(), db.dialect)
    return CheckOutput(fixed, notes)
