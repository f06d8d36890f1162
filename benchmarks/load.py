"""Benchmark: several chat sessions at once against one assistant, as the UI serves them.

Each of ``--sessions`` threads is a chat session with its own conversation thread, asking its own questions
about Chinook (``--rounds`` each, all different). Every answer is checked against the rows of its own
question's gold SQL, so an answer that went to the wrong session would show as wrong (the gold results are
checked to be pairwise distinct first), and each thread's saved history must hold its own questions only.
Prints and writes benchmarks/results/load.json: throughput (questions answered per minute of wall clock),
latency p50/p95/max, errors, accuracy, mix-ups.

    .venv/bin/python benchmarks/load.py --base-url http://127.0.0.1:18080/v1   # a running server
    .venv/bin/python benchmarks/load.py                                        # starts the local model

Throughput depends on the machine, the model server's parallel slots and whoever else uses it.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# (question, gold SQL, order matters); one list per session and round: QUESTIONS[round][session].
QUESTIONS: list[list[tuple[str, str, bool]]] = [
    [
        ("How many artists are there?", "SELECT COUNT(*) FROM Artist", False),
        ("How many customers live in Brazil?", "SELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'", False),
        ("What is the title of the album that contains the track 'Balls to the Wall'?",
         "SELECT Album.Title FROM Album JOIN Track ON Track.AlbumId = Album.AlbumId "
         "WHERE Track.Name = 'Balls to the Wall'", False),
        ("For each media type, give its name and the number of tracks of that media type.",
         "SELECT MediaType.Name, COUNT(*) FROM MediaType JOIN Track ON Track.MediaTypeId = MediaType.MediaTypeId "
         "GROUP BY MediaType.MediaTypeId", False),
        ("List the names of the 5 longest tracks, longest first.",
         "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 5", True),
        ("How many albums are there?", "SELECT COUNT(*) FROM Album", False),
        ("How many employees are there?", "SELECT COUNT(*) FROM Employee", False),
        ("List the names of all media types.", "SELECT Name FROM MediaType", False),
    ],
    [
        ("How many playlists are there?", "SELECT COUNT(*) FROM Playlist", False),
        ("List the names of all genres.", "SELECT Name FROM Genre", False),
        ("How many invoices have the billing country Germany?",
         "SELECT COUNT(*) FROM Invoice WHERE BillingCountry = 'Germany'", False),
        ("What are the first and last names of all employees?", "SELECT FirstName, LastName FROM Employee", False),
        ("How many albums does the artist 'AC/DC' have?",
         "SELECT COUNT(*) FROM Album JOIN Artist ON Album.ArtistId = Artist.ArtistId WHERE Artist.Name = 'AC/DC'",
         False),
        ("In which city does the customer with id 5 live?", "SELECT City FROM Customer WHERE CustomerId = 5", False),
        ("How many tracks are in the genre 'Jazz'?",
         "SELECT COUNT(*) FROM Track JOIN Genre ON Track.GenreId = Genre.GenreId WHERE Genre.Name = 'Jazz'", False),
        ("How many invoices are there?", "SELECT COUNT(*) FROM Invoice", False),
    ],
]


@dataclass
class Outcome:
    session: int
    round: int
    question: str
    seconds: float
    ok: bool
    correct: bool
    mixed_up: bool  # the rows are those of another session's question
    sql: str | None
    error: str | None


def canonical(rows: list[Any], ordered: bool) -> Any:
    """Rows as comparable text: as a list when order matters, else as a multiset; columns in any order."""
    as_text = [tuple(sorted(str(v) for v in r)) for r in rows]
    return tuple(as_text) if ordered else tuple(sorted(Counter(as_text).items()))


def gold_results(db_path: Path, rounds: int, sessions: int) -> dict[tuple[int, int], Any]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        gold = {(r, s): canonical(conn.execute(QUESTIONS[r][s][1]).fetchall(), QUESTIONS[r][s][2])
                for r in range(rounds) for s in range(sessions)}
    conn.close()
    assert len(set(gold.values())) == len(gold), "gold results must differ, or a mix-up could go unseen"
    return gold


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8, choices=range(1, 9), metavar="1..8")
    parser.add_argument("--rounds", type=int, default=2, choices=range(1, len(QUESTIONS) + 1),
                        metavar=f"1..{len(QUESTIONS)}", help="questions asked by each session, one after another")
    parser.add_argument("--base-url", help="a running OpenAI-compatible endpoint; else the local model is started")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--no-answer", action="store_true", help="skip the written answer (one model call less)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "load.json")
    args = parser.parse_args(argv)

    from agent.llm import build_chat_model, open_endpoint
    from agent.service import Assistant
    from core.config import Endpoint, Settings, bundled_database_path

    gold = gold_results(bundled_database_path(), args.rounds, args.sessions)
    work = tempfile.TemporaryDirectory(prefix="sqlsage-load-")
    settings = Settings(data_dir=Path(work.name) / "data")
    techniques = settings.techniques.model_copy(update={"answer": not args.no_answer})
    server = None
    if args.base_url:
        endpoint = Endpoint(args.base_url, args.model, "not-needed")
    else:
        print("starting the local model server…", file=sys.stderr)
        endpoint, server = open_endpoint(settings)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    start = threading.Barrier(args.sessions)
    llm = build_chat_model(settings, endpoint)
    gate = getattr(llm, "gate", None)  # the line in front of the local server (None for another endpoint)
    try:
        with Assistant.open(settings, llm=llm, conversations=True) as assistant:
            assistant.deps.db.schema()  # reflect once before the sessions start, as the UI does at launch

            def session(index: int) -> None:
                start.wait()
                for round_ in range(args.rounds):
                    question, _, ordered = QUESTIONS[round_][index]
                    began = time.monotonic()
                    record = assistant.ask(question, techniques, thread_id=f"load-{index}")
                    seconds = time.monotonic() - began
                    got = canonical(record.rows, ordered) if record.ok else None
                    others = {v for k, v in gold.items() if k != (round_, index)}
                    outcome = Outcome(index, round_, question, round(seconds, 2), record.ok,
                                      record.ok and got == gold[(round_, index)], got in others, record.sql,
                                      record.error)
                    with lock:
                        outcomes.append(outcome)
                    mark = "ok " if outcome.correct else ("ERR" if not record.ok else "bad")
                    print(f"[{mark}] session {index} round {round_} {seconds:6.1f}s  {question}", file=sys.stderr)

            began = time.monotonic()
            threads = [threading.Thread(target=session, args=(i,), name=f"session-{i}") for i in range(args.sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - began
            histories = {
                i: [turn["question"] for turn in
                    assistant.graph.get_state({"configurable": {"thread_id": f"load-{i}"}}).values.get("history", [])]
                for i in range(args.sessions)
            }
    finally:
        if server is not None:
            server.stop()
        work.cleanup()

    own = {i: {QUESTIONS[r][i][0] for r in range(args.rounds)} for i in range(args.sessions)}
    foreign_turns = sum(1 for i, asked in histories.items() for q in asked if q not in own[i])
    latencies = [o.seconds for o in outcomes]
    waits = list(gate.waits) if gate is not None else []
    answered = [o for o in outcomes if o.ok]
    result = {
        "sessions": args.sessions, "rounds": args.rounds, "questions": len(outcomes),
        "endpoint": endpoint.base_url, "model": endpoint.model, "written_answer": techniques.answer,
        "wall_s": round(wall, 1),
        "throughput_qpm": round(len(answered) / (wall / 60), 2) if wall else 0.0,
        "latency_s": {"p50": quantile(latencies, 0.5), "p95": quantile(latencies, 0.95), "max": max(latencies),
                      "mean": round(statistics.fmean(latencies), 2)},
        "model_calls_waiting_in_line": {"calls": len(waits), "waited": sum(w > 0.5 for w in waits),
                                        "p50_s": round(quantile(waits, 0.5), 1) if waits else None,
                                        "max_s": round(max(waits), 1) if waits else None},
        "errors": len(outcomes) - len(answered),
        "correct": sum(o.correct for o in outcomes),
        "accuracy": round(sum(o.correct for o in outcomes) / len(outcomes), 3),
        "mixed_up_answers": sum(o.mixed_up for o in outcomes),
        "foreign_turns_in_histories": foreign_turns,
        "per_question": [asdict(o) for o in sorted(outcomes, key=lambda o: (o.session, o.round))],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_s"]
    print(f"{len(outcomes)} questions from {args.sessions} sessions in {result['wall_s']} s: "
          f"{result['throughput_qpm']} answered/min; latency p50 {lat['p50']} s, p95 {lat['p95']} s, "  # type: ignore[index]
          f"max {lat['max']} s; errors {result['errors']}; correct {result['correct']}/{len(outcomes)}; "  # type: ignore[index]
          f"mix-ups {result['mixed_up_answers']}, foreign turns {foreign_turns}")
    queued = result["model_calls_waiting_in_line"]
    print(f"model calls: {queued['calls']}, {queued['waited']} waited in line (p50 {queued['p50_s']} s, "  # type: ignore[index]
          f"max {queued['max_s']} s)")  # type: ignore[index]
    print(f"wrote {args.out}")
    return 0 if result["mixed_up_answers"] == 0 and foreign_turns == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
