"""Only a server that stops making progress times out: model replies are read as a stream, and every token
or prompt-reading step (llama.cpp's ``prompt_progress``) counts as progress; a generous overall cap still
ends a server that works forever.

A fake OpenAI-compatible server on 127.0.0.1 streams server-sent events the way llama.cpp's does, on a
script each test writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agent.llm import GatedChatOpenAI, build_chat_model, call, call_many
from core.config import Endpoint, Settings
from core.errors import LLMUnavailable

pytestmark = pytest.mark.usefixtures("allow_model_client")

LOCAL = "qwen2.5-coder-1.5b"
Send = Callable[[dict[str, Any]], None]


class StreamingServer:
    """Streams what ``script(request, send)`` sends; records each request's JSON body."""

    def __init__(self, script: Callable[[dict[str, Any], Send], None]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def send(event: dict[str, Any] | str) -> None:
                    data = event if isinstance(event, str) else json.dumps(event)
                    raw = f"data: {data}\n\n".encode()
                    self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                    self.wfile.flush()

                try:
                    outer.script(body, send)
                    send("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> StreamingServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def progress(processed: int, total: int = 1000) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}],
            "object": "chat.completion.chunk", "prompt_progress": {"total": total, "cache": 0,
                                                                    "processed": processed, "time_ms": 1}}


def token(text: str, index: int = 0, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish, **extra}],
            "object": "chat.completion.chunk", "model": LOCAL}


USAGE = {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 2, "total_tokens": 1002}}


def model(server: StreamingServer, tmp_path: Path, idle_s: float = 0.8, max_s: float = 30.0,
          slots: int = 2, name: str = LOCAL) -> GatedChatOpenAI:
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", parallel_slots=slots,
                        request_timeout_s=idle_s, request_max_s=max_s, max_retries=0)
    llm = build_chat_model(settings, Endpoint(server.url, name, "x"))
    assert isinstance(llm, GatedChatOpenAI)
    return llm


def ask(llm: Any) -> str:
    return call(llm, [HumanMessage("How many artists?")]).text


@pytest.fixture
def slow_reader() -> Iterator[StreamingServer]:
    """Reads a long prompt in steps 0.3 s apart for 2.4 s in all (three times the idle timeout), then answers."""
    def script(_: dict[str, Any], send: Send) -> None:
        for step in range(1, 9):
            time.sleep(0.3)
            send(progress(step * 125))
        send(token("SELECT "))
        send(token("1", finish="stop"))
        send(USAGE)

    with StreamingServer(script) as server:
        yield server


def test_a_server_reading_a_long_prompt_steadily_is_waited_for(slow_reader: StreamingServer, tmp_path: Path) -> None:
    began = time.monotonic()
    reply = call(model(slow_reader, tmp_path, idle_s=0.8), [HumanMessage("How many artists?")])
    assert reply.text == "SELECT 1" and (reply.prompt_tokens, reply.completion_tokens) == (1000, 2)
    assert time.monotonic() - began >= 2.4  # longer than the idle timeout, and still answered
    request = slow_reader.requests[0]
    assert request["stream"] is True and request["return_progress"] is True  # asked of the local server
    assert request["stream_options"] == {"include_usage": True}


def test_without_progress_reports_the_same_wait_times_out(tmp_path: Path) -> None:
    """The control: the same 2.4 s of silence before the first token is a stall."""
    def script(_: dict[str, Any], send: Send) -> None:
        time.sleep(2.4)
        send(token("SELECT 1", finish="stop"))

    with StreamingServer(script) as server:
        with pytest.raises(LLMUnavailable, match="stopped making progress: nothing came for 0.8 s"):
            ask(model(server, tmp_path, idle_s=0.8))


def test_a_server_that_stalls_mid_reply_times_out_after_the_idle_timeout(tmp_path: Path) -> None:
    def script(_: dict[str, Any], send: Send) -> None:
        send(progress(500))
        send(token("SELECT"))
        server.closing.wait(30)  # hung: the connection stays open, nothing more comes

    with StreamingServer(script) as server:
        began = time.monotonic()
        with pytest.raises(LLMUnavailable, match="stopped making progress") as caught:
            ask(model(server, tmp_path, idle_s=0.8, max_s=30))
        waited = time.monotonic() - began
    assert 0.8 <= waited < 3, waited  # the idle timeout, not the 30 s cap
    assert "request_timeout_s" in str(caught.value)


def test_a_server_that_works_forever_ends_at_the_overall_cap(tmp_path: Path) -> None:
    def script(_: dict[str, Any], send: Send) -> None:
        while not server.closing.is_set():
            send(token("x"))
            time.sleep(0.1)

    with StreamingServer(script) as server:
        began = time.monotonic()
        with pytest.raises(LLMUnavailable, match=r"ran for 1.5 s, the most one may take \(setting request_max_s\)"):
            ask(model(server, tmp_path, idle_s=0.8, max_s=1.5))
        assert time.monotonic() - began < 4


def test_a_slot_that_hears_nothing_while_its_neighbour_reads_is_not_failed(tmp_path: Path) -> None:
    """llama.cpp gives a whole batch to one slot's prompt: the other slot hears nothing for a while, yet
    the server is making progress, so that request waits."""
    first_done = threading.Event()

    def script(body: dict[str, Any], send: Send) -> None:
        if "first" in body["messages"][0]["content"]:
            for step in range(1, 9):
                time.sleep(0.3)
                send(progress(step * 125))
            send(token("one", finish="stop"))
            first_done.set()
        else:
            time.sleep(0.1)
            first_done.wait(10)  # 2.4 s of silence for this one, three times the idle timeout
            send(token("two", finish="stop"))

    with StreamingServer(script) as server:
        llm = model(server, tmp_path, idle_s=0.8, slots=2)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(call, llm, [HumanMessage("first")])
            time.sleep(0.05)
            second = pool.submit(call, llm, [HumanMessage("second")])
            assert (first.result(10).text, second.result(10).text) == ("one", "two")


def test_waiting_in_our_line_longer_than_the_timeout_is_not_a_failure(slow_reader: StreamingServer,
                                                                      tmp_path: Path) -> None:
    llm = model(slow_reader, tmp_path, idle_s=0.8, slots=1)
    assert llm.gate is not None
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: ask(llm), range(3)))  # the third waits 4.8 s for the slot
    assert replies == ["SELECT 1"] * 3
    assert max(llm.gate.waits) >= 4.0


def test_several_samples_tool_calls_and_logprobs_are_put_together(tmp_path: Path) -> None:
    def script(body: dict[str, Any], send: Send) -> None:
        if body.get("tools"):
            call_delta = [{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "run_sql", "arguments": '{"sql": "SELECT'}}]
            send({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": call_delta}}]})
            send({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' 1"}'}}]},
                               "finish_reason": "tool_calls"}]})
            return
        for i in range(body.get("n") or 1):
            send(token(f"sample{i}", index=i, logprobs={"content": [{"token": f"sample{i}", "logprob": -0.5,
                                                                     "bytes": None, "top_logprobs": []}]}))
        for i in range(body.get("n") or 1):
            send(token("!", index=i, finish="stop", logprobs={"content": [{"token": "!", "logprob": -0.1,
                                                                           "bytes": None, "top_logprobs": []}]}))
        send(USAGE)

    with StreamingServer(script) as server:
        llm = model(server, tmp_path)
        replies = call_many(llm, [HumanMessage("q")], n=2)
        assert [r.text for r in replies] == ["sample0!", "sample1!"] and replies[0].prompt_tokens == 1000
        assert call(llm, [HumanMessage("q")], logprobs=True).logprobs == (("sample0", -0.5), ("!", -0.1))
        tool = {"type": "function", "function": {"name": "run_sql", "description": "run",
                                                 "parameters": {"type": "object",
                                                                "properties": {"sql": {"type": "string"}}}}}
        message = llm.bind_tools([tool]).invoke([HumanMessage("q")])
        assert message.tool_calls == [{"name": "run_sql", "args": {"sql": "SELECT 1"}, "id": "call_1",  # type: ignore[attr-defined]
                                       "type": "tool_call"}]


def test_other_endpoints_stream_without_being_asked_for_prompt_progress(slow_reader: StreamingServer,
                                                                        tmp_path: Path) -> None:
    llm = model(slow_reader, tmp_path, idle_s=5, name="gpt-4o-mini")
    assert llm.gate is None and ask(llm) == "SELECT 1"
    assert slow_reader.requests[0]["stream"] is True and "return_progress" not in slow_reader.requests[0]


def test_each_piece_of_the_first_reply_is_told_to_the_callbacks_as_it_arrives(tmp_path: Path) -> None:
    """The chat model tells its callbacks (and so LangGraph's ``messages`` stream) each piece of text when it
    comes, before the reply has ended: the UI shows the answer while it is written. Other samples are not."""
    from langchain_core.callbacks import BaseCallbackHandler

    first_heard = threading.Event()
    heard: list[str] = []
    before_the_rest: list[bool] = []

    class Listener(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **_: Any) -> None:
            heard.append(token)
            first_heard.set()

    def script(body: dict[str, Any], send: Send) -> None:
        send(token("other ", index=1))
        send(token("There are "))
        before_the_rest.append(first_heard.wait(60))  # the rest is sent once the client has told the first piece
        send(token("275 artists."))
        send(token("", finish="stop"))
        send(USAGE)

    with StreamingServer(script) as server:
        reply = model(server, tmp_path, idle_s=90).invoke([HumanMessage("q")], config={"callbacks": [Listener()]})
    assert reply.content == "There are 275 artists."
    assert heard == ["There are ", "275 artists."] and before_the_rest == [True]


def test_the_servers_reports_of_reading_the_prompt_reach_the_graph_run(slow_reader: StreamingServer,
                                                                       tmp_path: Path) -> None:
    """llama.cpp's ``prompt_progress`` reports are told to the graph run's custom stream (the UI's
    progress line), each as a PromptProgress; outside a run they go nowhere."""
    from langgraph.graph import END, START, StateGraph

    from agent.streamed import PromptProgress

    llm = model(slow_reader, tmp_path, idle_s=5)

    def node(state: dict[str, Any]) -> dict[str, Any]:
        return {"text": ask(llm)}

    graph = StateGraph(dict)  # type: ignore[type-var]
    graph.add_node("ask", node)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    told = [c["prompt"] for c in graph.compile().stream({}, stream_mode="custom") if "prompt" in c]
    assert [p.processed for p in told] == [step * 125 for step in range(1, 9)]
    assert all(isinstance(p, PromptProgress) and p.total == 1000 and p.to_read == 1000 for p in told)
    assert ask(llm) == "SELECT 1"  # outside a graph run: no one to tell, nothing fails
