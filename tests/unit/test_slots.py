"""Waiting in line is not a failure: model requests wait for a free slot in our own line, told their place,
and only a server that stops making progress times out.

A fake OpenAI-compatible server on 127.0.0.1 plays a llama.cpp server with few slots: a request beyond
them waits inside it, as llama.cpp's own queue does, and that wait counts against the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agent.llm import GatedChatOpenAI, build_chat_model, call
from agent.service import AnswerRecord, Assistant
from agent.slots import QueueStatus, SlotGate
from core.config import Endpoint, Settings, Techniques
from core.errors import LLMUnavailable
from ui.controller import ChatController
from ui.history import HistoryStore
from ui.sessions import AssistantPool

# Every test here runs its own fake OpenAI-compatible server on 127.0.0.1 (never a real model).
pytestmark = pytest.mark.usefixtures("allow_model_client")

SQL_REPLY = "```sql\nSELECT COUNT(*) AS n FROM Artist\n```"


class FakeServer:
    """``slots`` requests at once, each ``work_s`` long; the others wait inside the server. With
    ``stalled`` set, a request in a slot never finishes (a server that stopped making progress)."""

    def __init__(self, slots: int, work_s: float) -> None:
        self.slots = threading.Semaphore(slots)
        self.work_s = work_s
        self.stalled = threading.Event()
        self.closing = threading.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                try:
                    with outer.slots:  # the server's own queue
                        if outer.stalled.is_set():
                            outer.closing.wait(30)
                            return
                        time.sleep(outer.work_s)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                choices = [{"index": i, "message": {"role": "assistant", "content": SQL_REPLY}, "finish_reason": "stop"}
                           for i in range(int(body.get("n") or 1))]
                data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                   "choices": choices,
                                   "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out) first
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(slots=1, work_s=0.5) as fake:
        yield fake


def local_settings(tmp_path: Path, chinook: Path, slots: int = 1, timeout_s: float = 1.2) -> Settings:
    return Settings(db_url=f"sqlite:///{chinook}", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                    parallel_slots=slots, request_timeout_s=timeout_s, max_retries=0)


def ask_model(llm: Any) -> str:
    return call(llm, [HumanMessage("How many artists?")]).text


# --- the gate ---------------------------------------------------------------------------------------------------


def test_the_gate_admits_first_come_first_served_and_tells_each_its_place() -> None:
    gate = SlotGate(2, report_every_s=0.05)
    order: list[int] = []
    reports: dict[int, list[QueueStatus]] = {}
    release = threading.Event()

    def work(i: int, units: int = 1) -> None:
        with gate.slot(units, report=lambda s: reports.setdefault(i, []).append(s)):
            order.append(i)
            release.wait(5)

    threads = [threading.Thread(target=work, args=(0, 2))]  # two samples in one request take both slots
    threads[0].start()
    while not order:
        time.sleep(0.01)
    for i in (1, 2, 3):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
        while gate.waiting < i:
            time.sleep(0.01)
    assert [s.position for s in reports[3][:1]] == [3] and reports[3][0].waiting == 3
    assert reports[3][0].estimate_s is None  # no call has ended yet: no estimate
    release.set()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3]
    assert 0 not in reports  # it never waited
    assert [s.position for s in reports[2]][-1] in (1, 2)


def test_the_estimate_comes_from_the_calls_that_ended() -> None:
    gate = SlotGate(1)
    with gate.slot():
        time.sleep(0.2)
    ticket_status: list[QueueStatus] = []
    with gate.slot():
        waiter = threading.Thread(target=lambda: gate.slot(report=ticket_status.append).__enter__())
        waiter.start()
        while not ticket_status:
            time.sleep(0.01)
    waiter.join(5)
    assert ticket_status[0].position == 1 and ticket_status[0].estimate_s == pytest.approx(0.2, abs=0.1)
    assert "next in line" in ticket_status[0].text() and "about 0 s" in ticket_status[0].text()


# --- against a fake server with one slot ------------------------------------------------------------------


def test_without_the_gate_waiting_in_the_server_counts_against_the_timeout(server: FakeServer) -> None:
    """The failure of the load benchmark, in small: four callers, one slot, 0.5 s each, a 1.2 s timeout."""
    plain = ChatOpenAI(model="m", base_url=server.url, api_key=SecretStr("x"), timeout=1.2, max_retries=0)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: _outcome(plain), range(4)))
    assert outcomes.count("timeout") >= 1, outcomes


def test_with_the_gate_no_question_is_lost_while_it_waits(server: FakeServer, tmp_path: Path,
                                                          chinook_copy: Path) -> None:
    llm = build_chat_model(local_settings(tmp_path, chinook_copy), Endpoint(server.url, "qwen2.5-coder-1.5b", "x"))
    assert isinstance(llm, GatedChatOpenAI) and llm.gate is not None and llm.gate.slots == 1
    began = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda _: _outcome(llm), range(6)))
    assert outcomes == ["ok"] * 6  # 3 s of waiting in all, with a 1.2 s timeout
    assert time.monotonic() - began >= 6 * server.work_s
    assert server.most_in_flight == 1  # nothing ever waited inside the server


def test_a_request_for_n_samples_waits_for_n_slots(tmp_path: Path, chinook_copy: Path) -> None:
    with FakeServer(slots=2, work_s=0.3) as fake:
        llm = build_chat_model(local_settings(tmp_path, chinook_copy, slots=2),
                               Endpoint(fake.url, "qwen2.5-coder-1.5b", "x"))
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: len(llm.generate([[HumanMessage("q")]], n=2).generations[0]),
                                    range(3)))
        assert results == [2, 2, 2] and fake.most_in_flight == 1


def test_a_server_that_stops_making_progress_still_times_out(server: FakeServer, tmp_path: Path,
                                                             chinook_copy: Path) -> None:
    llm = build_chat_model(local_settings(tmp_path, chinook_copy, timeout_s=0.8),
                           Endpoint(server.url, "qwen2.5-coder-1.5b", "x"))
    server.stalled.set()
    began = time.monotonic()
    with pytest.raises(LLMUnavailable, match="stopped making progress: nothing came for 0.8 s"):
        ask_model(llm)
    assert time.monotonic() - began < 3


def test_other_endpoints_get_no_gate(server: FakeServer, tmp_path: Path, chinook_copy: Path) -> None:
    settings = local_settings(tmp_path, chinook_copy).model_copy(update={"base_url": server.url})
    llm = build_chat_model(settings, Endpoint(server.url, "gpt-4o-mini", "x"))
    assert isinstance(llm, GatedChatOpenAI) and llm.gate is None
    assert ask_model(llm) == SQL_REPLY


# --- the user sees their place ------------------------------------------------------------------------------


def test_a_waiting_question_streams_its_place_and_the_ui_shows_it(server: FakeServer, tmp_path: Path,
                                                                   chinook_copy: Path) -> None:
    settings = local_settings(tmp_path, chinook_copy, timeout_s=1.2)
    llm = build_chat_model(settings, Endpoint(server.url, "qwen2.5-coder-1.5b", "x"))
    techniques = Techniques(answer=False, tools=False, repair=False)
    with Assistant.open(settings, llm=llm, conversations=True) as assistant, \
            HistoryStore(tmp_path / "ui.sqlite") as history:
        assistant.deps.db.schema()  # read once, before the questions race
        gate = llm.gate
        assert gate is not None
        pool = ThreadPoolExecutor(1)
        with gate.slot():  # someone else's request holds the only slot for a while
            items = pool.submit(lambda: list(assistant.stream("How many artists?", techniques, thread_id="t1")))
            while gate.waiting < 1 and not items.done():
                time.sleep(0.01)
            time.sleep(1.5)  # longer than the request timeout: waiting must not count
        streamed = items.result(10)
        statuses = [i for i in streamed if isinstance(i, QueueStatus)]
        record = streamed[-1]
        assert isinstance(record, AnswerRecord) and record.ok, record.error
        assert statuses and statuses[0].position == 1

        control = ChatController(AssistantPool(assistant), history, tmp_path / "traces")
        with gate.slot():
            slots = pool.submit(lambda: list(control.ask("How many artists?", [], None, [], "alice",
                                                         techniques.model_dump(), "s1")))
            while gate.waiting < 1 and not slots.done():
                time.sleep(0.01)
            time.sleep(0.2)
        shown = [m["content"] for s in slots.result(10) for m in s.get("chat", []) if m["role"] == "assistant"]
        pool.shutdown()
        assert any("Waiting for the model: next in line" in text for text in shown)


def _outcome(llm: Any) -> str:
    try:
        ask_model(llm)
    except LLMUnavailable as err:
        return "timeout" if "in time" in str(err) else f"error: {err}"
    return "ok"


def test_the_estimate_counts_the_slots_each_request_ahead_takes_and_the_time_left_in_flight() -> None:
    """Two slots, each request taking 10 s: two in flight that just began, then in line A (two samples: both
    slots), B and C. A starts when both are free (10 s), B and C side by side after A (20 s); one in flight
    for 8 s already would free its slot 8 s sooner."""
    gate = SlotGate(2, report_every_s=0.05)
    gate._mean_s = 10.0  # as if the calls so far took 10 s each
    release = threading.Event()
    first: dict[str, QueueStatus] = {}

    def hold() -> None:
        with gate.slot():
            release.wait(5)

    def wait(name: str, units: int) -> None:
        with gate.slot(units, report=lambda s: first.setdefault(name, s)):
            pass

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    while gate._busy < 2:
        time.sleep(0.01)
    waiters = []
    for name, units in (("A", 2), ("B", 1), ("C", 1)):
        waiters.append(threading.Thread(target=wait, args=(name, units)))
        waiters[-1].start()
        while name not in first:
            time.sleep(0.01)
    estimates = {name: status.estimate_s for name, status in first.items()}
    assert estimates == {"A": pytest.approx(10, abs=0.5), "B": pytest.approx(20, abs=0.5),
                         "C": pytest.approx(20, abs=0.5)}
    with gate._cond:  # one of the two in flight has worked 8 s already
        ticket = next(iter(gate._held))
        gate._held[ticket] = (gate._held[ticket][0] - 8, 1)
        assert gate._start_estimate(1, time.monotonic()) == pytest.approx(10, abs=0.5)  # A still waits for both
        gate._held[next(t for t in gate._held if t is not ticket)] = (time.monotonic() - 8, 1)
        assert gate._start_estimate(1, time.monotonic()) == pytest.approx(2, abs=0.5)
    release.set()
    for t in holders + waiters:
        t.join(5)
    assert not gate._held and gate.waiting == 0
