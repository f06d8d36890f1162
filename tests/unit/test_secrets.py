"""Secrets stay secret: the API key and the database password never appear in answer records, CLI output,
the settings' repr, log records, or evaluation results, even when things fail."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from agent.deps import Deps
from agent.llm import build_chat_model
from agent.service import Assistant
from agent.testing import ScriptedChatModel
from cli.main import main
from core.config import Endpoint, Settings, Techniques
from core.db import Database

REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk-test-SECRET123"
PASSWORD = "s3cretpw"
STATE_PASSWORD = "st4tepw"
DEAD_PG = f"postgresql://bob:{PASSWORD}@127.0.0.1:1/x"  # nothing listens on port 1
SECRETS = (API_KEY, PASSWORD, STATE_PASSWORD)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}:\n{text[:2000]}"


@pytest.fixture
def secret_settings(tmp_path: Path) -> Settings:
    return Settings(
        api_key=SecretStr(API_KEY), db_url=DEAD_PG, base_url="http://127.0.0.1:9/v1",
        conversations_url=SecretStr(f"postgresql://app:{STATE_PASSWORD}@127.0.0.1:1/state"),
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", max_retries=0, request_timeout_s=2.0,
    )


def unreachable_database(url: str) -> Database:
    """A Database whose server is down (``Database.open`` would refuse it; here it goes down later)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"),
                              connect_args={"connect_timeout": 2})
    return Database(url=url, engine=engine)


class _RejectingHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that rejects every key, as a real one does (without echoing it)."""

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def rejecting_endpoint(allow_model_client: None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RejectingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_settings_repr_hides_the_key_and_the_database_password(secret_settings: Settings) -> None:
    assert_no_secret(repr(secret_settings), "repr(Settings)")
    assert_no_secret(str(secret_settings), "str(Settings)")


def test_a_failed_run_records_no_secret(secret_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = ScriptedChatModel()
    assistant = Assistant(secret_settings, Deps(llm=model, db=unreachable_database(DEAD_PG)))
    with assistant:
        record = assistant.ask("How many artists are there?", Techniques(answer=False))
    assert not record.ok and record.error_kind == "DatabaseUnavailable"
    assert "bob:***@127.0.0.1:1/x" in (record.error or "")
    assert_no_secret(json.dumps(record.to_dict(), default=str), "AnswerRecord.to_dict()")
    assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "log records")


def test_a_rejected_key_is_reported_without_the_key(
    secret_settings: Settings, rejecting_endpoint: str, chinook_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # openai and httpx log requests at DEBUG
    settings = secret_settings.with_overrides(db_url=f"sqlite:///{chinook_copy}", base_url=rejecting_endpoint)
    llm = build_chat_model(settings, Endpoint(settings.base_url, "m", settings.endpoint_api_key()))
    with Assistant.open(settings, llm=llm) as assistant:
        record = assistant.ask("How many artists are there?")
    assert record.error_kind == "LLMUnavailable" and "AuthenticationError" in (record.error or "")
    assert_no_secret(json.dumps(record.to_dict(), default=str), "AnswerRecord.to_dict()")
    assert_no_secret(repr(llm), "repr(ChatOpenAI)")
    assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "log records")


@pytest.mark.parametrize("command", [["ask", "How many artists are there?"], ["sql", "SELECT 1"]])
def test_cli_shows_the_masked_url_only(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SQLSAGE_API_KEY", API_KEY)
    monkeypatch.setenv("SQLSAGE_CONVERSATIONS_URL", f"postgresql://app:{STATE_PASSWORD}@127.0.0.1:1/state")
    assert main([*command, "--db", DEAD_PG]) == 1
    out, err = capsys.readouterr()
    assert "postgresql://bob:***@127.0.0.1:1/x" in err
    assert_no_secret(out + err, "CLI output")
    assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "log records")


def test_cli_process_stderr_shows_the_masked_url_only(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SQLSAGE_API_KEY": API_KEY}
    proc = subprocess.run([sys.executable, "-m", "cli", "ask", "How many artists are there?", "--db", DEAD_PG],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "postgresql://bob:***@127.0.0.1:1/x" in proc.stderr and "Traceback" not in proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, "CLI process output")


def test_shared_state_errors_mask_passwords(secret_settings: Settings) -> None:
    from agent.service import open_checkpointer
    from agent.shared_state import SharedStateUnavailable

    with pytest.raises(SharedStateUnavailable) as info:
        open_checkpointer(secret_settings)
    assert "app:***@127.0.0.1:1/state" in str(info.value)
    assert_no_secret(str(info.value), "the conversation store's error")


def test_evaluation_results_mask_the_database_password(secret_settings: Settings) -> None:
    from evals.dataset import EvalQuestion
    from evals.runner import AssistantPool, Verdict, ask_one, result_of

    question = EvalQuestion("q1", "x", "How many artists are there?", "SELECT COUNT(*) FROM Artist", DEAD_PG)
    model = ScriptedChatModel()
    with Assistant(secret_settings, Deps(llm=model, db=unreachable_database(DEAD_PG))) as assistant:
        record = assistant.ask(question.question, Techniques(answer=False))
    result = result_of("zero-shot", Techniques(), question, record, 0.1, Verdict(False, False, "no SQL", None))
    assert result.db_url == "postgresql://bob:***@127.0.0.1:1/x"
    assert_no_secret(json.dumps(asdict(result), default=str), "an evaluation result line")
    with AssistantPool(secret_settings, model) as pool, pytest.raises(Exception) as info:
        ask_one("zero-shot", Techniques(), question, pool, 2.0)
    assert_no_secret(str(info.value), "the evaluation's stop message")
