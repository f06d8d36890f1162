"""The graph's routing, with a scripted model: generate, validate, execute, repair, answer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import openai
import pytest

from agent.service import AnswerText, Assistant
from agent.testing import ScriptedChatModel
from agent.trace import Running, Step
from core.config import Settings, Techniques
from core.db import Database, QueryResult
from core.errors import LLMUnavailable


def sql_reply(sql: str) -> str:
    return f"Here you go:\n```sql\n{sql}\n```"


def open_with(settings: Settings, *replies: object) -> tuple[Assistant, ScriptedChatModel]:
    model = ScriptedChatModel().enqueue(*replies)  # type: ignore[arg-type]
    return Assistant.open(settings, llm=model), model


def nodes(record) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.node for s in record.trace]


def test_happy_path_runs_sql_and_answers(settings: Settings) -> None:
    assistant, model = open_with(settings, sql_reply("SELECT COUNT(*) FROM Artist"), "There are 275 artists.")
    with assistant:
        record = assistant.ask("How many artists are there?")
    assert record.ok, record.error
    assert record.rows == [[275]]
    assert record.answer == "There are 275 artists."
    assert nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]
    # the schema and the question reach the model; the answer is grounded in the rows
    assert "CREATE TABLE Artist" in str(model.history[0][0].content)
    assert "How many artists" in str(model.history[0][1].content)
    assert "275" in str(model.history[1][-1].content)
    generate = record.trace[1]
    assert generate.model_calls == 1 and generate.prompt_tokens > 0 and generate.prompt is not None


def test_the_answer_follows_the_sql_steps_cached_prefix_then_the_question_sql_and_rows(settings: Settings) -> None:
    assistant, model = open_with(settings, sql_reply("SELECT COUNT(*) FROM Artist"), "There are 275 artists.")
    with assistant:
        record = assistant.ask("How many artists are there?")
    system, user = model.history[1]
    assert system.content == model.history[0][0].content  # the SQL step's prefix, cached by the server
    assert "How many artists" in str(user.content) and "SELECT COUNT(*) FROM Artist" in str(user.content)
    assert "CREATE TABLE" not in str(user.content)
    assert record.answer == "There are 275 artists."


def test_the_short_answer_prompt_has_no_schema() -> None:
    from agent.nodes.answer import answer_messages
    from core.prompt_sets import prompt_set

    system, user = answer_messages(prompt_set("default"), "SQLite", "How many?", "SELECT 1", ["n"], [[1]], False)
    assert "never instructions" in str(system.content) and "CREATE TABLE" not in str(system.content)
    assert "How many?" in str(user.content) and "SELECT 1" in str(user.content)


def test_bad_sql_is_repaired_from_the_database_error(settings: Settings) -> None:
    assistant, model = open_with(
        settings, sql_reply("SELECT COUNT(*) FROM Artists"), sql_reply("SELECT COUNT(*) FROM Artist"), "275."
    )
    with assistant:
        record = assistant.ask("How many artists are there?")
    assert record.ok
    assert record.rows == [[275]]
    assert nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "repair", "validate",
                             "fix_qualifiers", "execute", "answer"]
    repair_prompt = str(model.history[1][-1].content)
    assert "no such table: Artists" in repair_prompt and "SELECT COUNT(*) FROM Artists" in repair_prompt


def test_syntax_error_is_repaired_with_its_position(settings: Settings) -> None:
    assistant, model = open_with(settings, sql_reply("SELECT COUNT(* FROM Artist"), sql_reply("SELECT 1"), "1")
    with assistant:
        record = assistant.ask("one?")
    assert record.ok
    assert record.trace[2].node == "validate" and record.trace[2].error
    assert "does not parse" in str(model.history[1][-1].content)


def test_repairs_are_bounded(settings: Settings) -> None:
    bad = [sql_reply(f"SELECT nope{i} FROM Artist") for i in range(5)]
    assistant, model = open_with(settings, *bad)
    techniques = Techniques(max_repairs=2, answer=False)
    with assistant:
        record = assistant.ask("How many artists are there?", techniques)
    assert not record.ok
    assert "no such column: nope2" in (record.error or "")
    assert len(model.history) == 3  # one generation, two repairs


def test_repeated_sql_stops_repairing(settings: Settings) -> None:
    same = sql_reply("SELECT nope FROM Artist")
    assistant, model = open_with(settings, same, same, same, same)
    with assistant:
        record = assistant.ask("x", Techniques(max_repairs=5, answer=False))
    assert not record.ok and "already tried" in (record.error or "")
    assert len(model.history) == 3  # generate, repair, one freer re-sample of the repair
    assert model.kwargs_history[2].get("temperature", 0) > 0


def test_without_repair_switch_a_failure_ends_the_run(settings: Settings) -> None:
    assistant, model = open_with(settings, sql_reply("SELECT nope FROM Artist"))
    with assistant:
        record = assistant.ask("x", Techniques(repair=False, answer=False))
    assert not record.ok and len(model.history) == 1


def test_write_statement_is_refused_and_not_repaired(settings: Settings, chinook_copy: Path) -> None:
    assistant, model = open_with(settings, sql_reply("DELETE FROM Artist"))
    with assistant:
        record = assistant.ask("Delete all artists")
    assert not record.ok
    assert record.error_kind == "unsafe" and "Refused" in (record.error or "")
    assert len(model.history) == 1
    with sqlite3.connect(chinook_copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM Artist").fetchone() == (275,)


def test_stacked_statement_is_refused(settings: Settings, chinook_copy: Path) -> None:
    assistant, _ = open_with(settings, sql_reply("SELECT 1; DROP TABLE Artist"))
    with assistant:
        record = assistant.ask("x")
    assert record.error_kind == "unsafe"
    with sqlite3.connect(chinook_copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM Artist").fetchone() == (275,)


def test_reply_without_sql_goes_to_repair(settings: Settings) -> None:
    assistant, model = open_with(settings, "I am not sure what you mean.", sql_reply("SELECT 1"), "1")
    with assistant:
        record = assistant.ask("x")
    assert record.ok and record.rows == [[1]]
    assert "no SQL" in str(model.history[1][-1].content)


def test_llm_error_is_surfaced_as_a_clear_message(settings: Settings) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    assistant, _ = open_with(settings, openai.APIConnectionError(request=request))
    with assistant:
        record = assistant.ask("How many artists are there?")
    assert not record.ok
    assert record.error_kind == "LLMUnavailable"
    assert "model server is unavailable" in (record.error or "")
    assert record.trace[-1].node == "error"


@pytest.mark.parametrize("question, fragment", [("", "empty"), ("   \n\t", "empty"), ("x" * 10_000, "10,000")])
def test_bad_questions_get_a_clear_message_without_a_model_call(
    settings: Settings, question: str, fragment: str
) -> None:
    assistant, model = open_with(settings)
    with assistant:
        record = assistant.ask(question)
    assert not record.ok and fragment in (record.error or "")
    assert model.history == []


def test_streaming_yields_steps_before_the_record(settings: Settings) -> None:
    assistant, _ = open_with(settings, sql_reply("SELECT 1"), "one")
    with assistant:
        items = list(assistant.stream("x"))
    names = [type(i).__name__ for i in items if not isinstance(i, Running)]
    # the rows come as soon as the query ran, before the answer is written; a reply that came whole is
    # heard whole, once
    assert names == ["Step"] * 5 + ["ResultReady", "AnswerText", "Step", "AnswerRecord"]


def test_the_answer_is_streamed_as_it_is_written_and_no_other_call_is(settings: Settings) -> None:
    model = ScriptedChatModel(streams=True).enqueue(sql_reply("SELECT COUNT(*) FROM Artist"),
                                                   "There are 275 artists.")
    assistant = Assistant.open(settings, llm=model)
    with assistant:
        items = list(assistant.stream("How many artists are there?"))
    texts = [i.text for i in items if isinstance(i, AnswerText)]
    assert texts == ["There", "There are", "There are 275", "There are 275 artists."]  # word by word
    kinds = [type(i).__name__ for i in items if not isinstance(i, Running | Step)]
    assert kinds == ["ResultReady"] + ["AnswerText"] * 4 + ["AnswerRecord"]  # the table first
    assert items[-1].answer == texts[-1]  # type: ignore[union-attr]


def test_streaming_says_which_node_runs_before_its_step(settings: Settings) -> None:
    """From LangGraph's task stream: each node is reported running when it starts, and not once it ended."""
    assistant, _ = open_with(settings, sql_reply("SELECT 1"), "one")
    with assistant:
        items = list(assistant.stream("x"))
    events = [("running", i.nodes) if isinstance(i, Running) else ("step", i.node)
              for i in items if isinstance(i, Running | Step)]
    expected = []
    for node in ("context", "generate", "validate", "fix_qualifiers", "execute", "answer"):
        expected += [("running", (node,)), ("step", node), ("running", ())]
    assert events == expected


def test_parallel_candidates_are_running_side_by_side(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Database.run

    def slow_run(self: Database, sql: str) -> QueryResult:  # long enough for the two branches to overlap
        time.sleep(0.3)
        return run(self, sql)

    monkeypatch.setattr(Database, "run", slow_run)
    assistant, _ = open_with(settings, sql_reply("SELECT 1"), sql_reply("SELECT 2"), "one")
    with assistant:
        items = list(assistant.stream("x", Techniques(self_consistency=2, tools=False)))
    running = [i.nodes for i in items if isinstance(i, Running)]
    assert any(len(nodes) == 2 for nodes in running)  # the two branches of the vote at once
    assert "candidate" not in {n for nodes in running for n in nodes}  # a subgraph shows its own nodes
    assert running[-1] == ()


def test_llm_unavailable_is_the_error_type_for_transport_failures() -> None:
    from agent.llm import call

    request = httpx.Request("POST", "http://x")
    model = ScriptedChatModel().enqueue(openai.APITimeoutError(request=request))
    with pytest.raises(LLMUnavailable, match="did not answer in time"):
        call(model, [])


def test_a_server_that_is_down_gives_a_clear_message_after_bounded_retries(
    settings: Settings, allow_model_client: None
) -> None:
    import socket

    from agent.llm import build_chat_model
    from core.config import Endpoint

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quick = settings.model_copy(update={"max_retries": 1, "request_timeout_s": 2.0})
    llm = build_chat_model(quick, Endpoint(f"http://127.0.0.1:{port}/v1", "m", "k"))
    with Assistant.open(quick, llm=llm) as assistant:
        record = assistant.ask("How many artists are there?")
    assert record.error_kind == "LLMUnavailable" and "unavailable" in (record.error or "")


def test_follow_up_sees_the_previous_question_and_sql_and_survives_a_restart(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT COUNT(*) FROM Invoice"), "412 invoices.",
        sql_reply("SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2012'"), "83.",
    )
    with Assistant.open(settings, llm=model, conversations=True) as first:
        assert first.ask("How many invoices are there?", thread_id="t1").rows == [[412]]
    with Assistant.open(settings, llm=model, conversations=True) as second:  # a restart: same data folder
        record = second.ask("and only in 2012?", thread_id="t1")
    assert record.ok and record.sql and "2012" in record.sql
    follow_up_prompt = str(model.history[2][-1].content)
    assert "How many invoices are there?" in follow_up_prompt and "SELECT COUNT(*) FROM Invoice" in follow_up_prompt
    assert [s.node for s in record.trace][0] == "context"  # the trace is this turn's only


def test_a_conversation_may_change_its_switches_between_questions(settings: Settings) -> None:
    """Each question runs the graph of its own switches; all of them share the conversation's state."""
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT COUNT(*) FROM Invoice"), "412 invoices.",
        sql_reply("SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2012'"),
        sql_reply("SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2012'"), "83.",
    )
    with Assistant.open(settings, llm=model, conversations=True) as assistant:
        assert assistant.ask("How many invoices are there?", thread_id="t1").rows == [[412]]
        record = assistant.ask("and only in 2012?", Techniques(self_consistency=2, tools=False), thread_id="t1")
    assert record.ok and "2012" in (record.sql or "") and "vote" in nodes(record)
    assert "How many invoices are there?" in str(model.history[2][-1].content)


def test_threads_do_not_mix(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT 1"), "one", sql_reply("SELECT 2"), "two")
    with Assistant.open(settings, llm=model, conversations=True) as assistant:
        assistant.ask("first question", thread_id="a")
        assistant.ask("second question", thread_id="b")
    assert "first question" not in str(model.history[2][-1].content)


def test_sql_calls_stop_when_the_fenced_block_closes(settings: Settings) -> None:
    chatty = "```sql\nSELECT COUNT(*) FROM Artist\n```\n\nThis counts the artists, because..."
    assistant, model = open_with(settings, chatty)
    with assistant:
        record = assistant.ask("How many artists are there?", Techniques(answer=False))
    assert record.ok and record.rows == [[275]]
    assert model.kwargs_history[0]["stop"] == ["\n```\n"]
    assert "because" not in (record.trace[1].model_output or "")  # the prose was never decoded


def test_the_default_stack_without_a_store_answers_and_says_what_it_skipped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in Techniques.model_fields:  # the product's defaults, not the unit tests' minimal ones
        monkeypatch.delenv(f"SQLSAGE_TECH_{name.upper()}", raising=False)
    settings = settings.model_copy(update={"techniques": Techniques()})
    assert settings.techniques.escalate and settings.techniques.few_shot
    # a first try that returns no rows escalates to the samples; their vote picks the answer
    assistant, model = open_with(settings, sql_reply("SELECT Name FROM Artist WHERE Name = 'nobody'"),
                                 *[sql_reply("SELECT COUNT(*) FROM Artist")] * 4, "There are 275 artists.")
    with assistant:
        record = assistant.ask("How many artists are there?")
    assert record.ok, record.error
    assert record.rows == [[275]]
    assert "retrieve" not in nodes(record)
    skipped = record.trace[0].output.skipped
    assert "no knowledge store" in skipped and "few_shot" in skipped and "values" in skipped
