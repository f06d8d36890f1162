"""What the chat UI does, driven without a browser: a scripted model, a private Chinook, temp history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Endpoint, Settings, Techniques
from ui.controller import ChatController, owner_for
from ui.history import HistoryStore
from ui.render import step_label
from ui.sessions import AssistantPool, Choice


def reply(messages: list[Any]) -> str:
    if "The query" in str(messages[-1].content):
        return "There are 275 artists."
    return "```sql\nSELECT COUNT(*) AS n FROM Artist\n```"


@pytest.fixture
def assistant(settings: Settings) -> Iterator[Assistant]:
    with Assistant.open(settings, llm=ScriptedChatModel(replies=[reply] * 100), conversations=True) as a:
        yield a


@pytest.fixture
def control(assistant: Assistant, tmp_path: Path) -> Iterator[ChatController]:
    with HistoryStore(tmp_path / "ui.sqlite") as history:
        pool = AssistantPool(assistant)
        yield ChatController(pool, history, tmp_path / "traces")
        pool.close()


def ask(control: ChatController, question: str, owner: str = "alice", conv: str | None = None,
        chat: list[dict[str, Any]] | None = None, records: list[dict[str, Any]] | None = None,
        techniques: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return list(control.ask(question, chat or [], conv, records or [], owner, techniques, "session-1"))


def test_owner_is_the_login_else_the_browser_else_the_session() -> None:
    assert owner_for("alice", "browser-x", "s") == "user:alice"
    assert owner_for(None, "browser-x", "s") == "browser-x"
    assert owner_for(None, "", "s") == "session:s"


def test_ask_streams_each_step_then_fills_the_panel(control: ChatController) -> None:
    updates = ask(control, "How many artists are there?")
    first, *updates, final = updates
    assert first["chat"][-1]["metadata"]["status"] == "pending" and first["question"] == ""
    (early,) = [u for u in updates if "table" in u]  # the rows, as soon as the query ran
    assert early["table"] == (["n"], [[275]]) and "chat" not in early
    assert updates.index(early) < max(i for i, u in enumerate(updates) if "trace" in u)  # before the answer
    (writing,) = [u for u in updates if "chat" in u and "trace" not in u and "metadata" not in u["chat"][-1]]
    assert writing["chat"][-1]["content"] == "There are 275 artists. …"  # the answer while it is written
    assert updates.index(early) < updates.index(writing)  # the table first, then the sentence
    updates = [{**u, "chat": [m for m in u["chat"] if m is not u["chat"][-1] or "metadata" in m]} if "chat" in u
               else u for u in updates if u is not early and u is not writing]  # the steps message last
    started = [u for u in updates if "trace" not in u]  # a node started: the chat says what runs now
    finished = [u for u in updates if "trace" in u]  # a node finished: one more step in the list
    nodes = ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]  # as the task stream says
    assert [u["chat"][-1]["metadata"]["title"] for u in started] == [f"Working: {step_label(n)}" for n in nodes]
    assert [u["chat"][-1]["content"].count("✓") for u in started] == [0, 1, 2, 3, 4, 5]
    assert all(f"◷ {step_label(n)}" in u["chat"][-1]["content"] for u, n in zip(started, nodes, strict=True))
    assert "◷ Reading the schema of chinook" in started[1]["chat"][-1]["content"]  # the first SQL call here
    assert [u["chat"][-1]["content"].count("✓") for u in finished] == [1, 2, 3, 4, 5, 6]
    assert "275" in final["chat"][-1]["content"]
    assert final["sql"] == "SELECT COUNT(*) AS n FROM Artist"
    assert final["table"] == (["n"], [[275]]) and final["summary"].startswith("1 row")
    assert final["chart"]["kind"] == "none" and final["chart"]["reason"] == "a single value"
    assert final["trace"].count("<details class='trace-step") == 6
    data = json.loads(Path(final["download"]).read_text(encoding="utf-8"))
    assert data["question"] == "How many artists are there?" and len(data["trace"]) == 6
    assert final["records"][0]["rows"] == [[275]] and final["conv"]
    assert len(final["history"]) == 1 and final["history"][0][1] == final["conv"]


def test_follow_ups_stay_in_one_conversation_and_reopen_from_history(control: ChatController) -> None:
    final = ask(control, "How many artists are there?")[-1]
    again = ask(control, "And albums?", conv=final["conv"], chat=final["chat"], records=final["records"])[-1]
    assert again["conv"] == final["conv"] and len(again["records"]) == 2
    assert [m["content"] for m in again["chat"] if m["role"] == "user"] == ["How many artists are there?",
                                                                              "And albums?"]
    reopened = control.open_conversation(final["conv"], "alice")
    assert reopened["tab"] == "chat" and len(reopened["records"]) == 2
    assert reopened["chat"] == again["chat"]
    # clicking the first answer shows the first turn's details
    assert control.select_turn(again["chat"], again["records"], 1)["current"]["question"] == \
        "How many artists are there?"


def test_one_owner_cannot_open_anothers_conversation(control: ChatController) -> None:
    final = ask(control, "How many artists are there?", owner="alice")
    conv = final[-1]["conv"]
    assert control.history_choices("bob") == []
    refused = control.open_conversation(conv, "bob")
    assert "not yours" in refused["feedback"] and "chat" not in refused
    assert control.load(None, None, "s2")["history"] == []  # a new browser starts with an empty history


def test_techniques_chosen_in_the_ui_reach_the_agent(control: ChatController) -> None:
    no_answer = Techniques(answer=False).model_dump()
    final = ask(control, "How many artists are there?", techniques=no_answer)[-1]
    assert final["current"]["answer"] == "n: 275"  # the plain answer: no model call for it
    assert [s["node"] for s in final["current"]["trace"]][-1] == "answer"


def test_empty_question_is_a_message_not_a_run(control: ChatController) -> None:
    assert ask(control, "   ") == [{"feedback": "Type a question first, e.g. *How many artists are there?*"}]


def test_edited_sql_runs_read_only_and_refusals_are_clear(control: ChatController) -> None:
    ok = control.run_sql("SELECT COUNT(*) FROM Album", "session-1")
    assert ok["table"] == (["COUNT(*)"], [[347]]) and ok["ok_sql"] == "SELECT COUNT(*) FROM Album"
    assert ok["sql_msg"].startswith("✓ Ran your SQL: 1 row(s)")
    refused = control.run_sql("DELETE FROM Album", "session-1")
    assert refused["sql_msg"].startswith("✗ **Refused — nothing was run.**") and refused["ok_sql"] is None
    wrong = control.run_sql("SELECT nope FROM Album", "session-1")
    assert "rejected" in wrong["sql_msg"] and "no such column" in wrong["sql_msg"]
    assert "Write a query" in control.run_sql("  ", "session-1")["sql_msg"]
    assert control.assistant("session-1").run_sql("SELECT COUNT(*) FROM Album").rows == [(347,)]  # unchanged


def test_paging_through_a_large_result(control: ChatController) -> None:
    ran = control.run_sql("SELECT TrackId FROM Track ORDER BY TrackId", "session-1")
    assert ran["summary"].startswith("1,000 rows (capped") and "page 1 of 10" in ran["summary"]
    assert len(ran["table"][1]) == 100
    third = control.turn_page(ran["view"], 3)
    assert third["table"][1][0] == [201] and third["page"] == 3


def test_thumbs_up_and_corrected_sql_reach_remember_example(control: ChatController, assistant: Assistant,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[tuple[str, str, str]] = []

    def remember(question: str, sql: str, source: str) -> str:
        saved.append((question, sql, source))
        return f"ex-{len(saved)}"

    monkeypatch.setattr(assistant, "remember_example", remember)
    final = ask(control, "How many artists are there?")[-1]
    assert "ex-1" in control.thumbs_up(final["current"], "session-1")["feedback"]
    assert saved[-1] == ("How many artists are there?", "SELECT COUNT(*) AS n FROM Artist", "thumbs_up")

    edited = "SELECT COUNT(DISTINCT Name) FROM Artist"
    assert "Run the edited SQL first" in control.save_corrected(final["current"], edited, None, "s")["feedback"]
    ran = control.run_sql(edited, "session-1")
    assert "ex-2" in control.save_corrected(final["current"], edited, ran["ok_sql"], "session-1")["feedback"]
    assert saved[-1] == ("How many artists are there?", edited, "corrected")
    assert "Ask a question first" in control.thumbs_up(None, "s")["feedback"]


def test_without_a_knowledge_store_saving_says_so(control: ChatController) -> None:
    final = ask(control, "How many artists are there?")[-1]
    message = control.thumbs_up(final["current"], "session-1")["feedback"]
    assert message.startswith("✗ Could not save the example") and "knowledge store" in message


def test_test_connection_masks_passwords_and_explains(control: ChatController, chinook_copy: Path) -> None:
    assert control.test_connection(f"sqlite:///{chinook_copy}", "s")["settings_msg"].endswith("11 table(s).")
    missing = control.test_connection("sqlite:////no/such/file.db", "s")["settings_msg"]
    assert missing.startswith("✗") and "does not exist" in missing
    remote = control.test_connection("postgresql://reader:hunter2@127.0.0.1:1/shop", "s")["settings_msg"]
    assert remote.startswith("✗") and "hunter2" not in remote and "***" in remote


def test_settings_apply_to_one_session_and_share_the_model(control: ChatController, assistant: Assistant,
                                                           tmp_path: Path, chinook_copy: Path) -> None:
    import shutil

    other = tmp_path / "other.sqlite"
    shutil.copyfile(chinook_copy, other)
    values = [getattr(Techniques(), s.name) for s in control.switches]
    applied = control.apply_settings(f"sqlite:///{other}", "", "", "", values, "session-2")
    assert applied["settings_msg"].startswith("✓ Applied for this browser tab") and "other.sqlite" in applied["header"]
    mine = control.assistant("session-2")
    assert mine is not assistant and mine.deps.llm is assistant.deps.llm  # the same model, not a new server
    assert control.assistant("session-1") is assistant  # other sessions keep the default
    bad = control.apply_settings("sqlite:////no/such.db", "", "", "", values, "session-2")
    assert bad["settings_msg"].startswith("✗ Settings not applied") and control.assistant("session-2") is mine
    wrong = list(values)
    wrong[[s.name for s in control.switches].index("max_repairs")] = 99
    assert "max_repairs" in control.apply_settings("", "", "", "", wrong, "session-2")["settings_msg"]
    back = control.apply_settings("", "", "", "", values, "session-2")  # blank: the session's current db
    assert back["settings_msg"].startswith("✓") and control.assistant("session-2") is mine


def test_pool_builds_a_client_for_a_new_endpoint_and_closes_what_it_opened(assistant: Assistant) -> None:
    built: list[Endpoint] = []

    def builder(settings: Settings, endpoint: Endpoint) -> ScriptedChatModel:
        built.append(endpoint)
        return ScriptedChatModel()

    pool = AssistantPool(assistant, llm_builder=builder)
    same = pool.apply("s1", Choice(assistant.settings.db_url))
    assert same is assistant and pool.sessions() == 0 and built == []
    remote = pool.apply("s1", Choice(assistant.settings.db_url, base_url="http://127.0.0.1:9/v1", model="m"))
    assert remote is not assistant and built == [Endpoint("http://127.0.0.1:9/v1", "m", "not-needed")]
    pool.apply("s2", Choice(assistant.settings.db_url, base_url="http://127.0.0.1:9/v1", model="m"))
    assert len(built) == 1  # one client per endpoint, shared by the sessions on it
    assert pool.get("s1").deps.llm is pool.get("s2").deps.llm
    pool.release("s1")
    assert pool.get("s1") is assistant and pool.sessions() == 1
    pool.close()
    assert pool.sessions() == 0
    assert assistant.run_sql("SELECT 1").rows == [(1,)]  # the launch assistant is not the pool's to close


def test_the_first_question_on_a_database_says_it_reads_the_schema_and_the_next_does_not(
        control: ChatController) -> None:
    def lines(updates: list[dict[str, Any]]) -> str:
        return "\n".join(u["chat"][-1]["content"] for u in updates if "chat" in u and "trace" not in u)

    first = lines(ask(control, "How many artists are there?"))
    assert "Reading the schema of chinook (" in first and "tokens, about" in first and "once per database" in first
    again = lines(ask(control, "How many artists are there?"))
    assert "Reading the schema of" not in again  # the server has it now


def test_presets_fill_the_form_and_an_applied_preset_is_named(control: ChatController) -> None:
    assert [p.key for p in control.presets] == ["fast", "default"]
    assert control.preset_form("custom") is None
    fast = control.preset_form("fast")
    assert fast is not None
    applied = control.apply_settings("", "", "", "", fast, "session-1")
    assert applied["preset"] == "fast" and applied["settings_msg"].startswith("✓ Applied")
    untouched = control.apply_settings("", "", "", "", control.form_values(control.assistant("s").settings.techniques),
                                       "session-1")
    assert Techniques.model_validate(untouched["techniques"]) == control.assistant("s").settings.techniques
