"""Pure rendering: agent steps and answers to chat messages. No Gradio imports here."""

from __future__ import annotations

from typing import Any

from agent.service import AnswerRecord
from agent.trace import Step

PROGRESS = {
    "context": "Reading the schema…",
    "generate": "Writing SQL…",
    "validate": "Checking the SQL is read-only…",
    "execute": "Running SQL…",
    "repair": "Fixing the SQL from the database's error…",
    "answer": "Writing the answer…",
    "error": "Stopped.",
}

MAX_TABLE_ROWS = 20


def progress_text(step: Step) -> str:
    label = PROGRESS.get(step.node, f"{step.node}…")
    suffix = f" ({step.error})" if step.error else ""
    return f"{label} done in {step.duration_s:.1f}s{suffix}"


def markdown_table(columns: list[str], rows: list[list[Any]], limit: int = MAX_TABLE_ROWS) -> str:
    if not columns:
        return ""

    def cell(value: Any) -> str:
        return ("NULL" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:limit]]
    return "\n".join(lines)


def answer_markdown(record: AnswerRecord) -> str:
    parts = []
    if record.ok:
        parts.append(record.answer or "")
    else:
        parts.append(f"**Sorry — {record.error}**")
    if record.sql:
        parts.append(f"```sql\n{record.sql}\n```")
    if record.ok and record.columns:
        shown = min(len(record.rows), MAX_TABLE_ROWS)
        more = " (capped)" if record.truncated else ""
        table = markdown_table(record.columns, record.rows)
        parts.append(f"{len(record.rows)} row(s){more}, showing {shown}:\n\n{table}")
    return "\n\n".join(p for p in parts if p)
