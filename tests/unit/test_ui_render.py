"""The pure rendering of the chat UI: progress, answers, tables, the trace inspector, the schema browser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.service import AnswerRecord
from agent.streamed import PromptProgress
from agent.trace import Step
from core.db import Database
from ui import render


def step(node: str, **kw: object) -> Step:
    """A step as the history stores it (``to_dict()``), typed again."""
    return Step.from_dict({"node": node, "started_at": 0.0, "duration_s": kw.pop("duration_s", 0.25), **kw})


def record(**kw: object) -> AnswerRecord:
    base: dict[str, object] = {"question": "How many artists are there?", "sql": "SELECT COUNT(*) FROM Artist",
                               "columns": ["n"], "rows": [[275]], "answer": "There are 275 artists."}
    base.update(kw)
    return AnswerRecord(**base)  # type: ignore[arg-type]


def test_progress_text_names_the_step_and_its_time() -> None:
    assert render.progress_text(step("generate", duration_s=1.24)) == "✓ Writing SQL (1.2s)"
    failed = render.progress_text(step("execute", error="no such table: Artists"))
    assert failed.startswith("✗ Running SQL") and "no such table: Artists" in failed
    assert render.step_label("tool:run_sql") == "Using the run_sql tool…"
    assert render.step_label("brand_new_node") == "brand_new_node…"


def test_escalation_has_its_own_label() -> None:
    assert render.step_label("escalate").startswith("Not sure of that SQL")


def test_turn_messages_are_pending_while_running_then_done() -> None:
    running = render.turn_messages("How many?", [step("context")], now="retrieve")
    assert [m["role"] for m in running] == ["user", "assistant"]
    assert running[1]["metadata"]["status"] == "pending"
    assert running[1]["metadata"]["title"] == "Working: Looking up similar questions, values and tables…"
    assert "✓ Reading the schema" in running[1]["content"]
    assert running[1]["content"].endswith("◷ Looking up similar questions, values and tables…")
    between = render.turn_messages("How many?", [step("context")])  # nothing known to be running
    assert between[1]["metadata"]["title"] == "Working…" and "◷" not in between[1]["content"]

    rec = record(trace=[step("context"), step("generate")])
    done = render.turn_messages("How many?", rec.trace, rec)
    assert [m["role"] for m in done] == ["user", "assistant", "assistant"]
    assert done[1]["metadata"]["status"] == "done"
    assert done[1]["metadata"]["title"].startswith("How I got there: 2 steps")
    assert "◷" not in done[1]["content"]
    assert "There are 275 artists." in done[2]["content"]


def test_conversation_messages_and_turn_index_round_trip() -> None:
    records = [record(question="q1", trace=[step("context")]).to_dict(),
               record(question="q2", trace=[step("context")]).to_dict()]
    messages = render.conversation_messages(records)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["q1", "q2"]
    assert [render.turn_index(messages, i) for i in range(len(messages))] == [0, 0, 0, 1, 1, 1]


def test_answer_markdown_ok_error_refused_and_capped() -> None:
    ok = render.answer_markdown(record())
    assert "There are 275 artists." in ok and "```sql\nSELECT COUNT(*) FROM Artist\n```" in ok
    assert "1 row" in ok and "| 275 |" in ok

    failed = render.answer_markdown(record(error="Could not get a working query.", answer=None, rows=[]))
    assert failed.startswith("**Sorry — Could not get a working query.**")

    refused = render.answer_markdown(record(error="Refused, nothing was run: not DELETE", error_kind="unsafe",
                                            sql="DELETE FROM Artist", answer=None))
    assert refused.startswith("**Refused — nothing was run.**")

    many = record(columns=["id"], rows=[[i] for i in range(1000)], truncated=True)
    text = render.answer_markdown(many)
    assert "1,000 rows (capped" in text and "showing 10" in text
    assert text.count("\n| ") == render.CHAT_TABLE_ROWS + 1  # header + the shown rows


def test_markdown_table_escapes_pipes_and_shows_null() -> None:
    table = render.markdown_table(["a|b", "c"], [["x|y", None]])
    assert "a\\|b" in table and "x\\|y" in table and "NULL" in table


def test_paging_clamps_and_summarises() -> None:
    rows = list(range(250))
    shown, number, pages = render.page(rows, 3)
    assert (shown[0], len(shown), number, pages) == (200, 50, 3, 3)
    assert render.page(rows, 99)[1] == 3 and render.page(rows, -1)[1] == 1
    assert render.page([], 1) == ([], 1, 1)
    summary = render.result_summary(250, True, 2, 3)
    assert "250 rows (capped" in summary and "rows 101–200, page 2 of 3" in summary
    assert render.result_summary(0, False, 1, 1) == "No rows."


def test_table_value_makes_headers_unique_and_shows_null() -> None:
    value = render.table_value(["Name", "Name", "n"], [["a", None, 1]])
    assert value == {"headers": ["Name", "Name (2)", "n"], "data": [["a", "NULL", "1"]]}


def test_trace_html_has_one_item_per_step_with_prompt_output_and_tokens_escaped() -> None:
    steps = [
        step("context", output={"tables": ["Artist"]}),
        step("generate", prompt=[{"role": "system", "content": "<b>schema</b>"}, {"role": "user", "content": "q"}],
             model_output="```sql\nSELECT 1\n```", model_calls=1, prompt_tokens=1200, completion_tokens=9,
             output={"sql": "SELECT 1", "plan": {"tables": ["Artist"], "columns": ["Name"]}}),
        step("repair", inputs={"sql": "SELECT nope", "diagnosis": "no such column: nope", "attempt": 1},
             output={"sql": "SELECT 1"}),
        step("execute", error="no such table: <script>"),
    ]
    html = render.trace_html(steps, open_steps=("generate",))
    assert html.count("<details class='trace-step") == 4
    assert "4 steps" in html and "1 model call" in html and "1,200 prompt + 9 completion tokens" in html
    assert "&lt;b&gt;schema&lt;/b&gt;" in html and "<b>schema</b>" not in html  # prompts are shown as text
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "Prompt sent (2 messages)" in html and "Model output" in html
    assert "Plan" in html and "Repair #1: what went wrong" in html and "no such column: nope" in html
    assert "data-node='generate' open" in html
    assert "trace-step error" in html


def test_trace_html_shows_retrieved_context_with_scores_and_the_vote() -> None:
    retrieve = step("retrieve", output={
        "examples": [{"question": "How many albums?", "sql": "SELECT COUNT(*) FROM Album", "hardness": "easy",
                      "score": 0.9123}],
        "values": [{"phrase": "AC/DC", "value": "AC/DC", "table": "Artist", "column": "Name", "score": 0.97}],
        "table_scores": [{"table": "Artist", "score": 0.8}],
    })
    vote = step("vote", inputs={"candidates": 3}, output={
        "winner": 1, "sql": "SELECT 2", "groups": [{"candidates": [1, 2], "size": 2, "rows": 1}],
        "failed": [], "all_sql": {"0": "SELECT 1", "1": "SELECT 2", "2": "SELECT 2"},
    })
    html = render.trace_html([retrieve, vote])
    assert "Retrieved examples (with scores)" in html and "score 0.912" in html
    assert "How many albums? [easy] → SELECT COUNT(*) FROM Album" in html
    assert "“AC/DC” → Artist.Name = &#x27;AC/DC&#x27;" in html and "Retrieved table scores" in html
    assert "score 0.800</span> Artist" in html
    assert "Candidates" in html and "#2" in html and "Vote" in html and "&quot;winner&quot;: 1" in html


def test_trace_html_empty_and_json_download() -> None:
    assert "Ask a question" in render.trace_html([])
    rec = record(trace=[step("context")])
    data = json.loads(render.trace_json(rec))
    assert data["question"] == rec.question and data["trace"][0]["node"] == "context" and "totals" in data


def test_schema_html_lists_tables_columns_keys_and_samples(chinook_copy: Path) -> None:
    db = Database.open(f"sqlite:///{chinook_copy}")
    try:
        html = render.schema_html(db.schema())
    finally:
        db.close()
    assert "11 tables" in html
    assert "data-table='Album'" in html and "ArtistId" in html and "→ Artist.ArtistId" in html
    assert "Sample rows" in html and "AC/DC" in html


def test_conversation_label() -> None:
    label = render.conversation_label("How many artists are there?", 0.0, 2)
    assert label.startswith("How many artists are there? · ") and label.endswith("2 questions")


def test_short_url_keeps_the_file_name() -> None:
    assert render.short_url("sqlite:///chinook.db") == "sqlite:///chinook.db"
    long = "sqlite:///" + "/very" * 20 + "/chinook.sqlite"
    assert render.short_url(long) == "sqlite:///…/chinook.sqlite"
    assert len(render.short_url("postgresql://reader:***@" + "h" * 100 + "/db")) == 60


def test_a_long_wait_says_what_it_waits_for_and_about_how_long() -> None:
    from ui.render import about_seconds, prompt_speed, wait_text

    common = {"db_name": "chinook", "schema_tokens": 2300, "tokens_per_s": 57.5, "candidates": 4}
    assert wait_text("generate", schema_read=False, **common) == (  # type: ignore[arg-type]
        "Reading the schema of chinook (2,300 tokens, about 40 s, once per database)")
    assert wait_text("generate", schema_read=True, **common) is None  # type: ignore[arg-type]
    assert wait_text("escalate", schema_read=True, **common) == (  # type: ignore[arg-type]
        "Not sure of the first try: trying 4 more candidates")
    assert wait_text("validate", schema_read=False, **common) is None  # type: ignore[arg-type]
    assert about_seconds(3.2) == "about 3 s" and about_seconds(200) == "about 3 min"
    steps = [{"node": "generate", "prompt_tokens": 2000, "model_seconds": 40.0}, {"node": "x", "model_seconds": 0.1}]
    assert prompt_speed(steps) == 50.0 and prompt_speed([]) is None


@pytest.mark.parametrize(("node", "schema_read", "reading", "expected"), [
    # the server's own report replaces the estimate: tokens read of those to read, and the time left
    ("generate", False, PromptProgress(2300, 0, 1024, 20.0), "Reading the schema of chinook: 1,024 of 2,300 tokens, "
                                                             "about 25 s left (once per database)"),
    # cached tokens are neither read nor to read
    ("generate", False, PromptProgress(2300, 300, 1324, 20.0), "Reading the schema of chinook: 1,024 of 2,000 tokens, "
                                                               "about 20 s left (once per database)"),
    # a long prompt that is not the first schema read (examples, a repair) is told as a prompt
    ("escalate", True, PromptProgress(900, 100, 612, 10.0), "Reading the prompt: 512 of 800 tokens, about 6 s left"),
    # a short read is no wait worth telling: the estimate (or nothing) stays
    ("generate", True, PromptProgress(2300, 2000, 2256, 1.0), None),
    ("generate", False, PromptProgress(2300, 2000, 2256, 1.0), "Reading the schema of chinook (2,300 tokens, "
                                                               "about 40 s, once per database)"),
    # read to the end: decoding now, not reading
    ("generate", True, PromptProgress(2300, 0, 2300, 40.0), None),
    # nothing read yet: no time left can be told
    ("sample", True, PromptProgress(900, 0, 0, 0.0), "Reading the prompt: 0 of 900 tokens"),
])
def test_a_long_prompt_read_is_told_from_the_servers_own_progress(
        node: str, schema_read: bool, reading: PromptProgress, expected: str | None) -> None:
    from ui.render import wait_text

    assert wait_text(node, db_name="chinook", schema_tokens=2300, schema_read=schema_read, tokens_per_s=57.5,
                     candidates=1, reading=reading) == expected
