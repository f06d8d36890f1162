"""End to end with the real local model on Chinook: rows must equal those of hand-written gold SQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agent.llm import build_chat_model
from agent.service import Assistant
from core.config import Endpoint, Settings, Techniques, bundled_database_path

pytestmark = pytest.mark.llm

QUESTIONS = [  # (id, question, gold SQL, order matters)
    ("count", "How many artists are there?", "SELECT COUNT(*) FROM Artist", False),
    ("join", "What is the title of the album that contains the track 'Balls to the Wall'?",
     "SELECT Album.Title FROM Album JOIN Track ON Track.AlbumId = Album.AlbumId "
     "WHERE Track.Name = 'Balls to the Wall'", False),
    ("group_by", "For each media type, give its name and the number of tracks of that media type.",
     "SELECT MediaType.Name, COUNT(*) FROM MediaType JOIN Track ON Track.MediaTypeId = MediaType.MediaTypeId "
     "GROUP BY MediaType.MediaTypeId", False),
    ("literal_filter", "How many customers live in Brazil?",
     "SELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'", False),
    ("ordering", "List the names of the 5 longest tracks, longest first.",
     "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 5", True),
]


def gold_rows(sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{bundled_database_path()}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def same_rows(got: list[list[object]], gold: list[tuple[object, ...]], ordered: bool) -> bool:
    """Rows equal as multisets (as lists when order matters), allowing the columns in another order."""
    got_t = [tuple(r) for r in got]
    if got_t and gold and len(got_t[0]) != len(gold[0]):
        return False
    if ordered:
        return got_t == gold or [sorted(map(str, r)) for r in got_t] == [sorted(map(str, r)) for r in gold]
    return Counter(tuple(sorted(map(str, r))) for r in got_t) == Counter(tuple(sorted(map(str, r))) for r in gold)


@pytest.fixture(scope="module")
def assistant(local_endpoint: Endpoint) -> Assistant:
    settings = Settings()
    return Assistant.open(settings, llm=build_chat_model(settings, local_endpoint))


@pytest.mark.parametrize("qid, question, gold, ordered", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_question_matches_gold_rows(assistant: Assistant, qid: str, question: str, gold: str, ordered: bool) -> None:
    record = assistant.ask(question, Techniques(answer=False))
    assert record.ok, f"{qid}: {record.error}\nSQL: {record.sql}"
    assert same_rows(record.rows, gold_rows(gold), ordered), f"{qid}: {record.sql} gave {record.rows[:10]}"


def test_answer_is_grounded_in_the_rows(assistant: Assistant) -> None:
    record = assistant.ask("How many artists are there?")
    assert record.ok and record.rows == [[275]]
    assert "275" in (record.answer or "")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSAGE_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=Path(__file__).resolve().parents[2])


def test_cli_ask_json_answers_the_five_questions(local_endpoint: Endpoint) -> None:
    for qid, question, gold, ordered in QUESTIONS:
        proc = run_cli("ask", question, "--json", "--no-answer", "--base-url", local_endpoint.base_url or "",
                       "--model", local_endpoint.model)
        assert proc.returncode == 0, f"{qid}: {proc.stderr}"
        data = json.loads(proc.stdout)
        assert {"question", "sql", "columns", "rows", "answer", "error", "trace"} <= data.keys()
        assert same_rows(data["rows"], gold_rows(gold), ordered), f"{qid}: {data['sql']}"


def test_cli_starts_and_stops_its_own_local_server() -> None:
    proc = run_cli("ask", "How many artists are there?", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rows"] == [[275]] and "275" in data["answer"]
