"""Pure rendering: agent steps and answers to chat messages, tables, trace and schema HTML.

No Gradio here: every function takes plain data (an ``AnswerRecord``/``Step`` or their ``to_dict()``
form, which is also what the history store keeps) and returns strings, lists and dicts. The app only
wires these into components, so everything the user reads is unit-tested without a browser.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from agent.policy import CHECKS
from agent.service import AnswerRecord
from agent.streamed import PromptProgress
from agent.trace import (
    AnswerOutput,
    CheckOutput,
    ExampleShown,
    GenerateOutput,
    ReactOutput,
    RepairOutput,
    RetrieveOutput,
    Step,
    StepOutput,
    TableScore,
    ValidateOutput,
    ValueShown,
    VoteOutput,
)
from core.db import shorten

Message = dict[str, Any]
StepLike = Step | Mapping[str, Any]
RecordLike = AnswerRecord | Mapping[str, Any]

# What the user sees while a node runs (and after, in the step list). A check (agent.policy.CHECKS) gets
# "Checking the SQL (<its name>)…", any other node "<node>…".
PROGRESS = {
    "context": "Reading the schema…",
    "route": "Choosing between SQL and the tools…",
    "hyde": "Drafting a first SQL to search examples with…",
    "retrieve": "Looking up similar questions, values and tables…",
    "generate": "Writing SQL…",
    "validate": "Checking the SQL is read-only…",
    "execute": "Running SQL…",
    "repair": "Fixing the SQL from the database's error…",
    "confirm": "Checking the answer against other drafts…",
    "escalate": "Not sure of that SQL: bringing in examples and more candidates…",
    "collect": "Collecting a candidate query…",
    "vote": "Voting among the candidate queries…",
    "react": "Deciding on the next tool…",
    "answer": "Writing the answer…",
    "error": "Stopped.",
}

CHAT_TABLE_ROWS = 10
PAGE_SIZE = 100
CELL_CHARS = 300  # characters of one value shown in a table; a longer one says its full length
_TEXT_LIMIT = 20_000  # characters of one prompt or model output shown in the trace (the download has all)


def as_step_dict(step: StepLike) -> dict[str, Any]:
    return step.to_dict() if isinstance(step, Step) else dict(step)


def as_record_dict(record: RecordLike) -> dict[str, Any]:
    return record.to_dict() if isinstance(record, AnswerRecord) else dict(record)


def record_ok(record: Mapping[str, Any]) -> bool:
    return record.get("error") is None


# -- progress in the chat -------------------------------------------------------------------------------


def step_label(node: str) -> str:
    if node.startswith("tool:"):
        return f"Using the {node[5:]} tool…"
    if node in PROGRESS:
        return PROGRESS[node]
    return f"Checking the SQL ({node.replace('_', ' ')})…" if node in CHECKS else f"{node}…"


def progress_text(step: StepLike) -> str:
    s = as_step_dict(step)
    label = step_label(s.get("node", "?")).rstrip("…")
    suffix = f" — {_one_line(s['error'], 160)}" if s.get("error") else ""
    mark = "✗" if s.get("error") else "✓"
    return f"{mark} {label} ({float(s.get('duration_s') or 0):.1f}s){suffix}"


def progress_markdown(steps: Sequence[StepLike], running: bool = True, now: str | None = None,
                      waiting: str | None = None) -> str:
    """The finished steps, one a line, then (while it runs) the node running ``now`` and any wait."""
    lines = [progress_text(s) for s in steps]
    if running and now:
        lines.append(f"◷ {step_label(now)}")
    if running and waiting:
        lines.append(f"◷ {waiting}")
    return "\n".join(lines)  # one step a line (the chat keeps line breaks)


def steps_title(steps: Sequence[StepLike], running: bool, now: str | None = None) -> str:
    if running:
        return f"Working: {step_label(now)}" if now else "Working…"
    seconds = sum(float(as_step_dict(s).get("duration_s") or 0) for s in steps)
    return f"How I got there: {len(steps)} step{'s' if len(steps) != 1 else ''}, {seconds:.1f}s"


def turn_messages(question: str, steps: Sequence[StepLike], record: RecordLike | None = None,
                  now: str | None = None, waiting: str | None = None, writing: str | None = None) -> list[Message]:
    """The chat messages of one turn: the question, a collapsible step list (pending while the agent
    works, with the node running ``now`` and ``waiting`` when a model call waits in line), the answer
    as far as it is ``writing`` while the model writes it, then the answer once there is a record. The
    same function renders live and reopened turns."""
    running = record is None
    messages: list[Message] = [{"role": "user", "content": question}]
    if steps or running:
        messages.append({
            "role": "assistant", "content": progress_markdown(steps, running, now, waiting) or "…",
            "metadata": {"title": steps_title(steps, running, now),
                         "status": "pending" if running else "done"},
        })
    if record is not None:
        messages.append({"role": "assistant", "content": answer_markdown(record)})
    elif writing:
        messages.append({"role": "assistant", "content": f"{writing} …"})
    return messages


def conversation_messages(records: Iterable[RecordLike]) -> list[Message]:
    """A reopened conversation: every stored turn, rendered as it was shown."""
    messages: list[Message] = []
    for record in records:
        r = as_record_dict(record)
        messages += turn_messages(r.get("question", ""), r.get("trace") or [], r)
    return messages


def turn_index(messages: Sequence[Mapping[str, Any]], message_index: int) -> int:
    """Which turn (0-based) the chat message at ``message_index`` belongs to: user messages start turns."""
    users = sum(1 for m in messages[: message_index + 1] if m.get("role") == "user")
    return max(0, users - 1)


# -- what a long wait waits for -------------------------------------------------------------------------

# Prompt tokens a second a local model reads when nothing was measured yet: conservative (the 1.5B model
# read a 2,300-token schema in about 40 s on two busy cores, ~57 tokens/s).
DEFAULT_PROMPT_TOKENS_PER_S = 50.0
SCHEMA_NODES = ("generate", "sample")  # the first nodes whose prompt carries the whole schema
CANDIDATE_NODES = ("escalate", "sample", "candidate")


def about_seconds(seconds: float) -> str:
    """A rough duration as a person says it: "about 40 s", "about 2 min"."""
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5 if seconds >= 10 else round(seconds)):.0f} s"
    return f"about {seconds / 60:.0f} min"


def schema_wait_text(db_name: str, tokens: int, tokens_per_s: float | None) -> str:
    """Before the first model call on a database whose schema prompt the server has not read yet."""
    speed = tokens_per_s or DEFAULT_PROMPT_TOKENS_PER_S
    return (f"Reading the schema of {db_name} ({tokens:,} tokens, {about_seconds(tokens / speed)}, "
            "once per database)")


def reading_wait_text(db_name: str, reading: PromptProgress, schema: bool) -> str:
    """While the server reads a long prompt, from its own reports: how far, and how long is left."""
    left = f", {about_seconds(reading.left_s)} left" if reading.left_s is not None else ""
    done = f"{max(0, reading.processed - reading.cached):,} of {reading.to_read:,} tokens{left}"
    if schema:
        return f"Reading the schema of {db_name}: {done} (once per database)"
    return f"Reading the prompt: {done}"


def candidates_wait_text(node: str, candidates: int) -> str:
    if node == "escalate":
        return f"Not sure of the first try: trying {candidates} more candidates"
    return f"Trying {candidates} candidates"


# A prompt read this long (tokens not cached) is a wait worth telling as it goes.
LONG_READ_TOKENS = 400


def wait_text(node: str | None, *, db_name: str, schema_tokens: int | None, schema_read: bool,
              tokens_per_s: float | None, candidates: int, reading: PromptProgress | None = None) -> str | None:
    """What the node running now waits for, when it is a long wait that can be told; else None.

    ``schema_read``: the server has already read this database's schema prompt (it keeps the prefix),
    so only the question is new. ``candidates``: the self-consistency samples of the techniques.
    ``reading``: the server's own report of how far it has read this node's prompt, which, for a long
    read, replaces the estimate."""
    first_read = node in SCHEMA_NODES and not schema_read
    if reading is not None and reading.to_read >= LONG_READ_TOKENS and reading.processed < reading.total:
        return reading_wait_text(db_name, reading, schema=first_read)
    if first_read and schema_tokens:
        return schema_wait_text(db_name, schema_tokens, tokens_per_s)
    if node in CANDIDATE_NODES and candidates > 1:
        return candidates_wait_text(node, candidates)
    return None


def prompt_speed(steps: Sequence[StepLike]) -> float | None:
    """Prompt tokens a second of the model calls in ``steps`` (their reading and writing together, so it
    errs on the slow side), or None when no call took long enough to tell."""
    tokens = seconds = 0.0
    for step in steps:
        s = as_step_dict(step)
        if float(s.get("model_seconds") or 0) >= 1 and s.get("prompt_tokens"):
            tokens += float(s["prompt_tokens"])
            seconds += float(s["model_seconds"])
    return tokens / seconds if seconds else None


# -- answers and tables ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return shorten(value, CELL_CHARS).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = CHAT_TABLE_ROWS) -> str:
    if not columns:
        return ""
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:limit]]
    return "\n".join(lines)


def row_count_text(row_count: int, truncated: bool, shown: int | None = None) -> str:
    text = f"{row_count:,} row{'s' if row_count != 1 else ''}"
    if truncated:
        text += " (capped: the query returned more; add a LIMIT or narrow it down)"
    if shown is not None and shown < row_count:
        text += f", showing {shown:,}"
    return text


def answer_markdown(record: RecordLike) -> str:
    r = as_record_dict(record)
    parts: list[str] = []
    if record_ok(r):
        parts.append(r.get("answer") or "")
    elif r.get("error_kind") == "unsafe":
        parts.append(f"**Refused — nothing was run.** {r['error']}")
    else:
        parts.append(f"**Sorry — {r['error']}**")
    if r.get("sql"):
        parts.append(f"```sql\n{r['sql']}\n```")
    columns, rows = r.get("columns") or [], r.get("rows") or []
    if record_ok(r) and columns:
        shown = min(len(rows), CHAT_TABLE_ROWS)
        parts.append(row_count_text(len(rows), bool(r.get("truncated")), shown) + ":\n\n"
                     + markdown_table(columns, rows))
    return "\n\n".join(p for p in parts if p)


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / size))


def page(rows: Sequence[Any], number: int, size: int = PAGE_SIZE) -> tuple[list[Any], int, int]:
    """Rows of page ``number`` (1-based, clamped), the page shown and the number of pages."""
    pages = page_count(len(rows), size)
    number = min(max(1, int(number)), pages)
    return list(rows[(number - 1) * size: number * size]), number, pages


def result_summary(row_count: int, truncated: bool, page_number: int, pages: int, size: int = PAGE_SIZE,
                   seconds: float | None = None) -> str:
    if row_count == 0:
        return "No rows."
    first, last = (page_number - 1) * size + 1, min(page_number * size, row_count)
    text = row_count_text(row_count, truncated)
    if pages > 1:
        text += f" — rows {first:,}–{last:,}, page {page_number} of {pages}"
    if seconds is not None:
        text += f" — ran in {seconds:.2f}s"
    return text


def unique_headers(columns: Sequence[str]) -> list[str]:
    """Column names made unique for a table widget (``SELECT a.Name, b.Name`` gives Name, Name (2))."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        name = str(name) or "?"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def table_value(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Headers (unique) and rows with every cell a display string (NULL shown), for a table widget."""
    return {"headers": unique_headers(columns),
            "data": [[shorten(v, CELL_CHARS) for v in r] for r in rows]}


# -- the trace inspector ----------------------------------------------------------------------------------

# The output fields that get a section of their own (any other field that is set shows as JSON under
# Output): the SQL, generate's plan and a ReAct step's thought; retrieve's examples, values and table
# scores; vote's candidates and result; the answer.
_SECTIONED = frozenset({"sql", "plan", "thought", "examples", "values", "table_scores", "all_sql", "winner",
                        "groups", "failed", "answer"})


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _pre(text: Any, cls: str = "") -> str:
    body = str(text)
    if len(body) > _TEXT_LIMIT:
        body = body[:_TEXT_LIMIT] + f"\n… ({len(body) - _TEXT_LIMIT:,} more characters in the JSON download)"
    return f'<pre class="sqlsage-pre {cls}">{_esc(body)}</pre>'


def _section(title: str, body: str, cls: str = "") -> str:
    return f'<div class="trace-section {cls}"><div class="trace-label">{_esc(title)}</div>{body}</div>'


# The items of a retrieve step's lists, as text (each list is shown with its scores).
def _example_text(item: ExampleShown) -> str:
    hardness = f" [{item['hardness']}]" if item.get("hardness") else ""
    return f"{item['question']}{hardness} → {item['sql']}"


def _value_text(item: ValueShown) -> str:
    return f"“{item['phrase']}” → {item['table']}.{item['column']} = {item['value']!r}"


def _table_text(item: TableScore) -> str:
    return item["table"]


Shown = TypeVar("Shown", ExampleShown, ValueShown, TableScore)


def _retrieved_html(items: Sequence[Shown], text: Callable[[Shown], str]) -> str:
    """The items with their scores, or "" for none."""
    rows = [f"<li><span class='score'>score {float(item['score']):.3f}</span> {_esc(_one_line(text(item), 400))}</li>"
            for item in items]
    return f"<ul class='retrieved'>{''.join(rows)}</ul>" if rows else ""


def _candidates_html(all_sql: Mapping[str, str | None]) -> str:
    """Each candidate's SQL, by its index."""
    return "".join(f"<div class='candidate'><b>#{_esc(i)}</b> {_pre(sql, 'sql') if sql else ''}</div>"
                   for i, sql in all_sql.items())


def step_summary(step: StepLike, number: int) -> str:
    s = as_step_dict(step)
    bits = [f"{number}. {s.get('node', '?')}", f"{float(s.get('duration_s') or 0):.2f}s"]
    if s.get("model_calls"):
        bits.append(f"{s['model_calls']} model call{'s' if s['model_calls'] != 1 else ''}, "
                    f"{s.get('prompt_tokens', 0):,}+{s.get('completion_tokens', 0):,} tokens")
    if s.get("error"):
        bits.append("error")
    return " · ".join(bits)


def step_html(step: StepLike, number: int, open_: bool = False) -> str:
    """One expandable trace item: summary line, then error, SQL, plan, retrieved context, candidates and
    votes, inputs, other output, the prompt sent and the model's raw output."""
    s = as_step_dict(step)
    output = Step.from_dict(s).output
    inputs = dict(s.get("inputs") or {})
    sections: list[str] = []
    if s.get("error"):
        sections.append(_section("Error", _pre(s["error"], "error"), "error"))
    if s.get("node") == "repair":
        if inputs.get("diagnosis"):
            sections.append(_section(f"Repair #{inputs.get('attempt', '?')}: what went wrong",
                                     _pre(inputs.pop("diagnosis"))))
        if inputs.get("sql"):
            sections.append(_section("Failed SQL", _pre(inputs.pop("sql"), "sql")))
    sections += _output_sections(output)
    if inputs:
        sections.append(_section("Inputs", _pre(_json(inputs))))
    prompt = s.get("prompt") or []
    if prompt:
        msgs = "".join(
            f"<div class='prompt-msg'><div class='role'>{_esc(m.get('role', '?'))}</div>{_pre(m.get('content', ''))}"
            f"</div>" for m in prompt
        )
        sections.append(_section(f"Prompt sent ({len(prompt)} message{'s' if len(prompt) != 1 else ''})", msgs))
    if s.get("model_output") is not None:
        sections.append(_section("Model output", _pre(s["model_output"])))
    node = _esc(s.get("node", "?"))
    cls = "trace-step error" if s.get("error") else "trace-step"
    return (f"<details class='{cls}' data-node='{node}'{' open' if open_ else ''}>"
            f"<summary>{_esc(step_summary(s, number))}</summary>{''.join(sections) or '<i>no details</i>'}</details>")


def _output_sections(output: StepOutput) -> list[str]:
    """The sections of a step's typed output: its SQL, plan, retrieved context, candidates, vote, answer;
    then whatever else it set, as JSON."""
    sections: list[str] = []
    if isinstance(output, GenerateOutput | ValidateOutput | CheckOutput | RepairOutput | VoteOutput) and output.sql:
        sections.append(_section("SQL", _pre(output.sql, "sql")))
    if isinstance(output, GenerateOutput) and output.plan is not None:
        sections.append(_section("Plan", _pre(_json(output.plan))))
    if isinstance(output, ReactOutput) and output.thought is not None:
        sections.append(_section("Plan", _pre(output.thought)))
    if isinstance(output, RetrieveOutput):
        for title, shown in (("examples", _retrieved_html(output.examples, _example_text)),
                             ("values", _retrieved_html(output.values, _value_text)),
                             ("table scores", _retrieved_html(output.table_scores, _table_text))):
            if shown:
                sections.append(_section(f"Retrieved {title} (with scores)", shown))
    if isinstance(output, VoteOutput):
        sections.append(_section("Candidates", _candidates_html(output.all_sql)))
        votes = {"winner": output.winner, "groups": output.groups, "failed": output.failed}
        sections.append(_section("Vote", _pre(_json(votes))))
    if isinstance(output, AnswerOutput) and output.answer:
        sections.append(_section("Answer", _pre(output.answer)))
    rest = {k: v for k, v in asdict(output).items() if k not in _SECTIONED and v is not None and v != [] and v != {}}
    if rest:
        sections.append(_section("Output", _pre(_json(rest))))
    return sections


def trace_html(steps: Sequence[StepLike], open_steps: Iterable[str] = ()) -> str:
    """The whole trace: a totals line, then one expandable item per step (``open_steps`` nodes open)."""
    if not steps:
        return "<div class='trace-empty'>Ask a question: each step the agent takes will show up here.</div>"
    dicts = [as_step_dict(s) for s in steps]
    wanted = set(open_steps)
    calls = sum(int(s.get("model_calls") or 0) for s in dicts)
    tokens_in = sum(int(s.get("prompt_tokens") or 0) for s in dicts)
    tokens_out = sum(int(s.get("completion_tokens") or 0) for s in dicts)
    seconds = sum(float(s.get("duration_s") or 0) for s in dicts)
    head = (f"<div class='trace-totals'>{len(dicts)} steps · {seconds:.1f}s · {calls} model call"
            f"{'s' if calls != 1 else ''} · {tokens_in:,} prompt + {tokens_out:,} completion tokens</div>")
    items = "".join(step_html(s, i, s.get("node") in wanted) for i, s in enumerate(dicts, 1))
    return f"<div class='sqlsage-trace'>{head}{items}</div>"


def trace_json(record: RecordLike) -> str:
    return json.dumps(as_record_dict(record), ensure_ascii=False, indent=2, default=str)


# -- the schema browser -------------------------------------------------------------------------------------


def schema_html(schema: Any, sample_rows: int = 3) -> str:
    """Tables as expandable items: columns (type, key, nullable, references) and a few sample rows."""
    tables = list(getattr(schema, "tables", ()) or ())
    if not tables:
        return "<div class='schema-empty'>No tables found.</div>"
    parts = [f"<div class='schema-head'>{len(tables)} tables</div>"]
    for table in tables:
        refs = {c: f"{fk.ref_table}.{rc}" for fk in table.foreign_keys
                for c, rc in zip(fk.columns, fk.ref_columns, strict=False)}
        col_rows = "".join(
            f"<tr><td><b>{_esc(c.name)}</b></td><td>{_esc(c.type)}</td>"
            f"<td>{'PK' if c.primary_key else ''}{' → ' + _esc(refs[c.name]) if c.name in refs else ''}</td>"
            f"<td>{'' if c.nullable else 'NOT NULL'}</td></tr>" for c in table.columns
        )
        names = [c.name for c in table.columns]
        samples = list(table.sample_rows[:sample_rows])
        sample_html = ""
        if samples:
            head = "".join(f"<th>{_esc(n)}</th>" for n in names)
            body = "".join("<tr>" + "".join(f"<td>{_esc(_one_line('NULL' if v is None else v, 60))}</td>" for v in r)
                           + "</tr>" for r in samples)
            sample_html = (f"<div class='trace-label'>Sample rows</div>"
                           f"<table class='samples'><tr>{head}</tr>{body}</table>")
        parts.append(
            f"<details class='schema-table' data-table='{_esc(table.name)}'><summary><b>{_esc(table.name)}</b> "
            f"· {len(names)} columns</summary><table class='columns'><tr><th>column</th><th>type</th><th>key</th>"
            f"<th></th></tr>{col_rows}</table>{sample_html}</details>"
        )
    return "".join(parts)


def short_url(url: str, limit: int = 60) -> str:
    """A (masked) database URL short enough for a header: long file paths keep their file name."""
    if len(url) <= limit:
        return url
    head, sep, rest = url.partition(":///")
    name = rest.rsplit("/", 1)[-1]
    if sep and name and len(name) < limit - len(head) - 6:
        return f"{head}:///…/{name}"
    return url[: limit - 1] + "…"


# -- the history list -------------------------------------------------------------------------------------


def conversation_label(title: str, created: float, turns: int) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
    return f"{_one_line(title, 70)} · {when} · {turns} question{'s' if turns != 1 else ''}"
