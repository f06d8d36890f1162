"""What the chat UI does, without Gradio: each action returns (or streams) a dict of named UI slots.

``ui.app`` maps the slot names to components; tests drive the controller directly with a scripted
model. Slots: chat, question, conv, records, current, view, page, sql, sql_msg, summary, table,
page_info, chart, trace, download, feedback, history, ok_sql, owner, techniques, settings_msg, header,
schema.

Who may see what: every history read takes the owner (the logged-in user, else a random id kept in the
browser), and a session's assistant is looked up by the session key (Gradio's session hash).
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.budget import tokens_of_chars
from agent.service import AnswerRecord, AnswerText, Assistant, ResultReady
from agent.slots import QueueStatus
from agent.streamed import PromptProgress
from agent.trace import ContextOutput, Running
from core.config import Techniques
from core.db import Database, QueryError, mask_url
from core.errors import SqlsageError
from core.guard import UnsafeSQLError
from core.measured import Measured, figures_for
from ui import charts
from ui.history import HistoryStore, NotYours
from ui.presets import Preset, matching, presets
from ui.render import (
    PAGE_SIZE,
    SCHEMA_NODES,
    conversation_label,
    conversation_messages,
    page,
    prompt_speed,
    record_ok,
    result_summary,
    schema_html,
    short_url,
    trace_html,
    trace_json,
    turn_index,
    turn_messages,
    wait_text,
)
from ui.sessions import AssistantPool, Choice
from ui.switches import Switch, current_values, describe, switches, techniques_from_form

Slots = dict[str, Any]
EXAMPLE_SOURCES = ("thumbs_up", "corrected")


def normalized(record: AnswerRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The record as plain JSON data: exactly what the history store keeps and gives back."""
    data = record.to_dict() if isinstance(record, AnswerRecord) else dict(record)
    return json.loads(json.dumps(data, ensure_ascii=False, default=str))


def new_owner_id() -> str:
    return "browser-" + secrets.token_hex(16)


def owner_for(username: str | None, browser_id: str | None, session_hash: str | None) -> str:
    """The logged-in user when there is a login, else the browser's own random id (else the session)."""
    if username:
        return f"user:{username}"
    if browser_id:
        return browser_id
    return f"session:{session_hash or 'anonymous'}"


def view_of(record: Mapping[str, Any] | None) -> dict[str, Any]:
    if not record:
        return {"columns": [], "rows": [], "truncated": False, "sql": "", "seconds": None}
    return {"columns": list(record.get("columns") or []), "rows": list(record.get("rows") or []),
            "truncated": bool(record.get("truncated")), "sql": record.get("sql") or "", "seconds": None}


class ChatController:
    def __init__(self, pool: AssistantPool, history: HistoryStore, trace_dir: Path | None = None) -> None:
        self.pool = pool
        self.history = history
        # trace downloads: a private folder under the system temp dir (Gradio serves files from there only
        # once a handler returns them); removed by close() when it is ours
        self._own_trace_dir = trace_dir is None
        self.trace_dir = Path(trace_dir or tempfile.mkdtemp(prefix="sqlsage-traces-"))
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        self.switches: list[Switch] = switches()
        base = pool.base
        self.measured: Measured = figures_for(base.settings.data_dir, base.deps.db.url)
        self.presets: list[Preset] = presets(self.measured)
        # What the model servers have read already: (database, prompt set, sample rows, endpoint) of each
        # schema prompt sent once (a server keeps the prefix), and the prompt tokens a second measured
        # on the first, cold, read. Shared by every session, like the servers.
        self._schemas_read: set[tuple[str, str, int, str]] = set()
        self.prompt_tokens_per_s: float | None = None

    def close(self) -> None:
        """Remove the trace files written for downloads (the pool and history belong to the caller)."""
        if self._own_trace_dir:
            import shutil

            shutil.rmtree(self.trace_dir, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------------------

    def assistant(self, session: str | None) -> Assistant:
        return self.pool.get(session)

    def history_choices(self, owner: str) -> list[tuple[str, str]]:
        return [(conversation_label(c.title, c.created, c.turns), c.id) for c in self.history.conversations(owner)]

    def write_trace(self, record: Mapping[str, Any]) -> str:
        path = self.trace_dir / f"sqlsage-trace-{secrets.token_hex(6)}.json"
        path.write_text(trace_json(record), encoding="utf-8")
        return str(path)

    def result_slots(self, view: Mapping[str, Any], number: int = 1) -> Slots:
        """The result table (one page), its summary and the chart for a result (an answer or a rerun)."""
        columns, rows = list(view.get("columns") or []), list(view.get("rows") or [])
        shown, number, pages = page(rows, number, PAGE_SIZE)
        spec = charts.choose_chart(columns, rows)
        return {
            "view": dict(view), "page": number,
            "summary": result_summary(len(rows), bool(view.get("truncated")), number, pages, PAGE_SIZE,
                                      view.get("seconds")) if columns else "",
            "table": (columns, shown), "page_info": f"page {number} of {pages}",
            "chart": {"kind": spec.kind, "x": spec.x, "y": spec.y, "columns": columns, "reason": spec.reason},
        }

    def record_slots(self, record: Mapping[str, Any] | None) -> Slots:
        """Everything the side panel shows for one answer."""
        slots = self.result_slots(view_of(record))
        slots.update({
            "current": dict(record) if record else None,
            "sql": (record or {}).get("sql") or "",
            "sql_msg": "", "ok_sql": None, "feedback": "",
            "trace": trace_html((record or {}).get("trace") or [], open_steps=("generate",)),
            "download": self.write_trace(record) if record else None,
        })
        return slots

    # -- session start ------------------------------------------------------------------------------------

    def load(self, username: str | None, browser_id: str | None, session: str | None) -> Slots:
        browser_id = browser_id or new_owner_id()
        owner = owner_for(username, browser_id, session)
        return {"browser_id": browser_id, "owner": owner, "history": self.history_choices(owner),
                **self.session_info(session)}

    def session_info(self, session: str | None) -> Slots:
        assistant = self.assistant(session)
        db = assistant.deps.db
        header = f"**sqlsage** · asking **{short_url(db.display_url)}** · {self.pool.model_text(session)}"
        try:
            schema = schema_html(db.schema())
        except SqlsageError as err:
            schema = f"<div class='schema-error'>{err}</div>"
        return {"header": header, "schema": schema, "db_placeholder": db.display_url}

    # -- asking -----------------------------------------------------------------------------------------

    def ask(self, question: str, chat: Sequence[Mapping[str, Any]], conv: str | None,
            records: Sequence[Mapping[str, Any]], owner: str, techniques: Mapping[str, Any] | None,
            session: str | None) -> Iterator[Slots]:
        """Stream one question: the chat grows a step at a time, then the answer fills the side panel."""
        text = (question or "").strip()
        base = [dict(m) for m in chat or []]
        if not text:
            yield {"feedback": "Type a question first, e.g. *How many artists are there?*"}
            return
        assistant = self.assistant(session)
        chosen = Techniques.model_validate(dict(techniques)) if techniques else assistant.settings.techniques
        if not conv:
            conv = self.history.start(owner, text, db=assistant.deps.db.display_url).id
        steps: list[Any] = []
        now: str | None = None  # the node running now, as the graph's own task stream says
        writing: str | None = None  # the answer so far, while the model writes it
        schema_key = (assistant.deps.db.url, chosen.prompts, chosen.sample_rows, self.pool.model_text(session))
        schema_tokens: int | None = None  # of the schema prompt, once the context step has told its length

        reading: PromptProgress | None = None  # the server's report of how far it read the running prompt

        def waiting(node: str | None) -> str | None:
            return wait_text(node, db_name=assistant.deps.db.key, schema_tokens=schema_tokens,
                             schema_read=schema_key in self._schemas_read,
                             tokens_per_s=self.prompt_tokens_per_s, candidates=chosen.self_consistency,
                             reading=reading)

        yield {"chat": base + turn_messages(text, steps), "question": "", "conv": conv,
               "feedback": "", "trace": trace_html([])}
        for item in assistant.stream(text, techniques=chosen, thread_id=conv):
            if isinstance(item, AnswerRecord):
                record = normalized(item)
                self.history.add_turn(conv, owner, record)
                slots = self.record_slots(record)
                slots.update({"chat": base + turn_messages(text, record["trace"], record),
                              "records": [*records, record], "history": self.history_choices(owner),
                              "conv": conv})
                yield slots
                return
            if isinstance(item, ResultReady):  # the query ran: its table now, the written answer after
                yield self.result_slots({"columns": item.columns, "rows": item.rows, "truncated": item.truncated,
                                         "sql": item.sql, "seconds": None}) | {"sql": item.sql}
                continue
            if isinstance(item, AnswerText):  # the answer as far as the model has written it
                writing = item.text
                yield {"chat": base + turn_messages(text, steps, now=now, writing=writing)}
                continue
            if isinstance(item, PromptProgress):  # the server reads a prompt: how far, from its own report
                reading = item
                line = waiting(now)
                if line is not None:
                    yield {"chat": base + turn_messages(text, steps, now=now, waiting=line, writing=writing)}
                continue
            if isinstance(item, QueueStatus):  # a model call waits for a free slot: say where it stands
                yield {"chat": base + turn_messages(text, steps, now=now, waiting=item.text(), writing=writing)}
                continue
            if isinstance(item, Running):
                if item.nodes and item.nodes[-1] != now:  # between two nodes: the last one stays shown
                    now, reading = item.nodes[-1], None
                    yield {"chat": base + turn_messages(text, steps, now=now, waiting=waiting(now), writing=writing)}
                continue
            steps.append(item)
            self._note_step(item, schema_key)
            if isinstance(item.output, ContextOutput) and item.output.schema_chars:
                schema_tokens = tokens_of_chars(item.output.schema_chars)
            yield {"chat": base + turn_messages(text, steps, now=now, writing=writing), "trace": trace_html(steps)}

    def _note_step(self, step: Any, schema_key: tuple[str, str, int, str]) -> None:
        """After the first model call that carried this schema: the server has it, and its speed is known."""
        if step.node not in SCHEMA_NODES or not step.model_calls:
            return
        if schema_key not in self._schemas_read:
            self.prompt_tokens_per_s = prompt_speed([step]) or self.prompt_tokens_per_s
        self._schemas_read.add(schema_key)

    def new_conversation(self) -> Slots:
        slots = self.record_slots(None)
        slots.update({"chat": [], "conv": None, "records": [], "question": ""})
        return slots

    def select_turn(self, chat: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]],
                    message_index: int) -> Slots:
        """Show the side panel of the turn a clicked chat message belongs to."""
        if not records:
            return {}
        index = min(turn_index(chat, message_index), len(records) - 1)
        return self.record_slots(records[index])

    def open_conversation(self, conv: str | None, owner: str) -> Slots:
        """Reopen one of the owner's past conversations (someone else's is refused as not found)."""
        if not conv:
            return {}
        try:
            records = self.history.turns(conv, owner)
        except NotYours:
            return {"feedback": "That conversation is not yours or no longer exists.",
                    "history": self.history_choices(owner)}
        slots = self.record_slots(records[-1] if records else None)
        slots.update({"chat": conversation_messages(records), "conv": conv, "records": records, "tab": "chat",
                      "feedback": f"Reopened a conversation of {len(records)} question(s): ask a follow-up."})
        return slots

    # -- the SQL editor ---------------------------------------------------------------------------------

    def run_sql(self, sql: str, session: str | None) -> Slots:
        """Run edited SQL through the same read-only guard; refusals and database errors are told plainly."""
        text = (sql or "").strip()
        if not text:
            return {"sql_msg": "Write a query in the editor first.", "ok_sql": None}
        try:
            result = self.assistant(session).run_sql(text)
        except UnsafeSQLError as err:
            reason = err.reason[:1].upper() + err.reason[1:]
            return {"sql_msg": f"✗ **Refused — nothing was run.** {reason}", "ok_sql": None}
        except QueryError as err:  # wrong, too slow, or a result over the budget: nothing is shown
            lead = "The database rejected the query" if err.kind == "error" else "The query was stopped"
            return {"sql_msg": f"✗ **{lead}:** {err}", "ok_sql": None}
        except SqlsageError as err:
            return {"sql_msg": f"✗ **{err}**", "ok_sql": None}
        rows = result.json_rows()
        view = {"columns": list(result.columns), "rows": rows, "truncated": result.truncated, "sql": text,
                "seconds": result.seconds}
        slots = self.result_slots(view)
        slots.update({"ok_sql": text, "sql_msg": f"✓ Ran your SQL: {len(rows):,} row(s) in {result.seconds:.2f}s. "
                      "If it is the right answer to the question, save it as a corrected example."})
        return slots

    def turn_page(self, view: Mapping[str, Any], number: int) -> Slots:
        return self.result_slots(view, number)

    # -- feedback ---------------------------------------------------------------------------------------

    def _remember(self, session: str | None, question: str, sql: str, source: str) -> str:
        assistant = self.assistant(session)
        remember = getattr(assistant, "remember_example", None)
        if remember is None:
            return "⚠ Saving examples is not available in this version (no `Assistant.remember_example`)."
        try:
            example_id = remember(question, sql, source)
        except SqlsageError as err:
            return f"✗ Could not save the example: {err}"
        what = "this answer" if source == "thumbs_up" else "your corrected SQL"
        return f"✓ Saved {what} as an example (id `{example_id}`): similar questions will be guided by it."

    def thumbs_up(self, current: Mapping[str, Any] | None, session: str | None) -> Slots:
        if not current:
            return {"feedback": "Ask a question first: there is no answer to save yet."}
        if not record_ok(current) or not current.get("sql"):
            return {"feedback": "This answer has no working SQL to save. Fix the SQL in the editor, run it, "
                                "then save it as a corrected example."}
        return {"feedback": self._remember(session, current["question"], current["sql"], "thumbs_up")}

    def save_corrected(self, current: Mapping[str, Any] | None, sql: str, ok_sql: str | None,
                       session: str | None) -> Slots:
        if not current:
            return {"feedback": "Ask a question first: a corrected query is saved with its question."}
        text = (sql or "").strip()
        if not ok_sql or text != ok_sql.strip():
            return {"feedback": "Run the edited SQL first: only a query that ran successfully can be saved."}
        return {"feedback": self._remember(session, current["question"], text, "corrected")}

    # -- settings ---------------------------------------------------------------------------------------

    def test_connection(self, url: str, session: str | None) -> Slots:
        settings = self.assistant(session).settings
        target = (url or "").strip() or self.pool.choice(session).db_url
        try:
            db = Database.open(target, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes)
        except SqlsageError as err:
            return {"settings_msg": f"✗ {err}"}
        try:
            import sqlalchemy as sa

            tables = len(sa.inspect(db.engine).get_table_names())
        except Exception as err:  # noqa: BLE001 - a connection that opens but cannot list tables is still news
            return {"settings_msg": f"⚠ Connected to {mask_url(target)}, but cannot list its tables: {err}"}
        finally:
            db.close()
        return {"settings_msg": f"✓ Connected to {mask_url(target)}: {tables} table(s)."}

    def form_values(self, techniques: Techniques) -> list[Any]:
        """The Advanced form's values showing ``techniques`` (an unset optional number is an empty box)."""
        return ["" if v is None and s.optional else v
                for s, v in zip(self.switches, current_values(techniques, self.switches), strict=True)]

    def preset_form(self, key: str) -> list[Any] | None:
        """The form's values of the preset ``key``, or None for ``custom`` (the form stays as it is)."""
        for p in self.presets:
            if p.key == key:
                return self.form_values(p.techniques)
        return None

    def apply_settings(self, url: str, base_url: str, model: str, api_key: str, values: Sequence[Any],
                       session: str | None) -> Slots:
        try:
            techniques = techniques_from_form(self.switches, list(values))
        except ValueError as err:
            return {"settings_msg": f"✗ {err}"}
        if not session:
            return {"settings_msg": "✗ No browser session: reload the page and try again."}
        choice = Choice((url or "").strip() or self.pool.choice(session).db_url, base_url, model, api_key)
        try:
            self.pool.apply(session, choice)
        except SqlsageError as err:
            return {"settings_msg": f"✗ Settings not applied: {err}"}
        base = self.pool.base.settings.techniques
        slots = self.session_info(session)
        slots.update({
            "techniques": techniques.model_dump(), "db_url": "", "api_key": "",
            "preset": matching(self.presets, techniques),
            "settings_msg": f"✓ Applied for this browser tab: {self.pool.describe(session)}; techniques: "
                            f"{describe(techniques, base)}. New questions use them.",
        })
        return slots
