"""Warm from the first question: the stable prefix is read into a slot of the local server (or restored
from its saved file), saved under a name keyed by model, prompt and schema, kept under a cap (least recently
used first); a damaged file is rebuilt, a server without slot actions is told once. A fake server (httpx's
MockTransport) stands in for llama.cpp."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage

from agent.llm_server import LocalServer, ServerOptions
from agent.prefix_cache import SLOT, PrefixWarmer, SlotFiles, cache_name
from agent.service import Assistant, background_status
from agent.testing import ScriptedChatModel
from core.config import Settings

Handler = Callable[[httpx.Request], httpx.Response]


class FakeLlamaServer:
    """What the warmer asks of llama.cpp: a chat completion, and slot save/restore under a folder."""

    def __init__(self, folder: Path, slots: bool = True, restore_status: int = 200) -> None:
        self.folder, self.slots, self.restore_status = folder, slots, restore_status
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        what = request.url.path + (f"?{request.url.query.decode()}" if request.url.query else "")
        self.requests.append((what, body))
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(200, json={"choices": [{"message": {"content": "S"}}]})
        if not self.slots:
            return httpx.Response(501, json={"error": {"message": "This server does not support slots action"}})
        action = request.url.params["action"]
        if action == "save":
            (self.folder / body["filename"]).write_bytes(b"kv" * 100)
            return httpx.Response(200, json={"id_slot": SLOT, "filename": body["filename"], "n_saved": 120})
        if self.restore_status != 200:
            return httpx.Response(self.restore_status, json={"error": {"message": "invalid slot save file"}})
        return httpx.Response(200, json={"id_slot": SLOT, "filename": body["filename"], "n_restored": 120})

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


def warmer(fake: Handler, files: SlotFiles | None, name: str = "prefix-a.bin") -> PrefixWarmer:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return PrefixWarmer("http://fake:1", "You write SQLite. Schema: ...", name, files, 5.0, client=client)


def test_a_first_start_reads_the_prefix_into_slot_0_and_saves_it(tmp_path: Path) -> None:
    fake = FakeLlamaServer(tmp_path)
    w = warmer(fake, SlotFiles(tmp_path, 10**6)).start()
    assert w.wait(5) and w.state == "ready" and w.how == "read"
    assert fake.paths() == ["/v1/chat/completions", "/slots/0?action=save"]
    chat = fake.requests[0][1]
    assert chat["messages"] == [{"role": "system", "content": "You write SQLite. Schema: ..."}]
    assert chat["max_tokens"] == 1 and chat["id_slot"] == SLOT and chat["cache_prompt"] is True
    assert (tmp_path / "prefix-a.bin").exists() and w.line().startswith("Model: schema read in ")


def test_a_restart_restores_the_saved_slot_instead_of_reading_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "prefix-a.bin").write_bytes(b"kv")
    os.utime(tmp_path / "prefix-a.bin", (1, 1))
    fake = FakeLlamaServer(tmp_path)
    w = warmer(fake, SlotFiles(tmp_path, 10**6)).start()
    assert w.wait(5) and w.how == "restored"
    assert fake.paths() == ["/slots/0?action=restore"]
    assert (tmp_path / "prefix-a.bin").stat().st_mtime > 1  # a use, for the least-recently-used order
    assert "restored from disk" in w.line()


def test_a_file_the_server_cannot_restore_is_removed_and_rebuilt(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "prefix-a.bin").write_bytes(b"damaged")
    fake = FakeLlamaServer(tmp_path, restore_status=400)
    with caplog.at_level(logging.WARNING, logger="agent.prefix_cache"):
        w = warmer(fake, SlotFiles(tmp_path, 10**6)).start()
        assert w.wait(5)
    assert w.how == "read" and w.state == "ready"
    assert fake.paths() == ["/slots/0?action=restore", "/v1/chat/completions", "/slots/0?action=save"]
    assert (tmp_path / "prefix-a.bin").read_bytes() == b"kv" * 100  # the rebuilt one
    assert "removed and rebuilt" in caplog.text


def test_a_server_without_slot_actions_is_told_once_and_only_warmed(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "prefix-a.bin").write_bytes(b"kv")
    fake = FakeLlamaServer(tmp_path, slots=False)
    with caplog.at_level(logging.WARNING, logger="agent.prefix_cache"):
        w = warmer(fake, SlotFiles(tmp_path, 10**6)).start()
        assert w.wait(5)
    assert w.state == "ready" and w.how == "read"
    assert fake.paths() == ["/slots/0?action=restore", "/v1/chat/completions"]  # no save tried after the 501
    assert len(caplog.records) == 1 and "cannot save or restore slots" in caplog.text


def test_a_server_that_is_gone_fails_the_warming_and_nothing_waits(caplog: pytest.LogCaptureFixture) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with caplog.at_level(logging.WARNING, logger="agent.prefix_cache"):
        w = warmer(down, None).start()
        assert w.wait(5)
    assert w.state == "failed" and not w.busy and "connection refused" in w.line()
    assert len(caplog.records) == 1


def test_the_folder_keeps_under_its_cap_least_recently_used_first(tmp_path: Path) -> None:
    for age, name in enumerate(["old.bin", "mid.bin", "new.bin"]):
        (tmp_path / name).write_bytes(b"x" * 100)
        os.utime(tmp_path / name, (1000 + age, 1000 + age))
    (tmp_path / "notes.txt").write_bytes(b"x" * 1000)  # not a slot file: never touched
    files = SlotFiles(tmp_path, 250)
    files.used("old.bin")  # restored just now: the most recent
    assert files.evict() == ["mid.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin", "notes.txt", "old.bin"]


def test_the_file_name_changes_with_the_model_the_prompt_and_the_schema(tmp_path: Path) -> None:
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"1")
    b.write_bytes(b"22")
    names = {cache_name(a, "p", "f1"), cache_name(b, "p", "f1"), cache_name(a, "q", "f1"), cache_name(a, "p", "f2")}
    assert len(names) == 4 and cache_name(a, "p", "f1") == cache_name(a, "p", "f1")
    assert all("/" not in n and n.endswith(".bin") for n in names)


def test_the_prefix_is_the_system_message_the_sql_step_sends(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue("```sql\nSELECT COUNT(*) FROM Artist\n```", "There are 275 artists.")
    with Assistant.open(settings, llm=model) as assistant:
        prefix = assistant.stable_prefix()
        assert assistant.ask("How many artists are there?").ok
    assert "Artist" in prefix and str(model.history[0][0].content) == prefix


def test_no_warming_without_the_local_server(settings: Settings) -> None:
    with Assistant.open(settings, llm=ScriptedChatModel()) as assistant:
        assert assistant.start_warming() is None


def test_warming_uses_the_servers_slot_folder_and_the_question_waits_for_a_prefix_being_read(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_model_client: None) -> None:
    model_file = tmp_path / "m.gguf"
    model_file.write_bytes(b"gguf")
    server = LocalServer(ServerOptions(model_path=model_file, alias="m", threads=1), base_url="http://fake:1/v1")
    read = threading.Event()
    fake = FakeLlamaServer(settings.cache_dir / "slots")
    (settings.cache_dir / "slots").mkdir(parents=True)

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        response = fake(request)
        read.set()
        return response

    monkeypatch.setattr("agent.prefix_cache.slot_client",
                        lambda timeout_s: httpx.Client(transport=httpx.MockTransport(slow), timeout=timeout_s))
    seen: list[bool] = []

    def answer(_: list[BaseMessage]) -> str:
        seen.append(read.is_set())
        return "```sql\nSELECT COUNT(*) FROM Artist\n```"

    model = ScriptedChatModel().enqueue(answer, "There are 275 artists.")
    with Assistant.open(settings, llm=model) as assistant:
        assistant.server = server
        w = assistant.start_warming()
        assert w is not None and assistant.ask("How many artists are there?").ok
        assert seen == [True]  # the SQL step went after the prefix was in the slot
        assert w.wait(5) and w.files is not None and w.files.directory == settings.cache_dir / "slots"
        assert fake.requests[0][1]["messages"][0]["content"] == str(model.history[0][0].content)
        line, busy = background_status([None, w])
        assert not busy and line.startswith("Model: schema read")
        assistant.server = None  # not ours to stop


def test_the_server_is_given_the_slot_folder_ending_with_a_separator(tmp_path: Path) -> None:
    from agent.llm_server import slot_save_param

    options = ServerOptions(model_path=tmp_path / "m.gguf", alias="m", threads=1, slot_save_path=tmp_path / "slots")
    argv = options.argv()
    assert argv[argv.index("--slot-save-path") + 1] == str(tmp_path / "slots")
    assert "--slot-save-path" not in ServerOptions(model_path=tmp_path / "m.gguf", alias="m", threads=1).argv()
    assert slot_save_param(str(tmp_path / "slots")) == f"{tmp_path}/slots/"
    assert slot_save_param(f"{tmp_path}/slots/") == f"{tmp_path}/slots/"


def test_a_save_of_nothing_leaves_no_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeLlamaServer(tmp_path)

    def empty(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        if "action=save" in str(request.url):
            return httpx.Response(200, json={"id_slot": SLOT, "n_saved": 0})
        return response

    with caplog.at_level(logging.WARNING, logger="agent.prefix_cache"):
        w = warmer(empty, SlotFiles(tmp_path, 10**6)).start()
        assert w.wait(5)
    assert w.state == "ready" and not (tmp_path / "prefix-a.bin").exists() and "could not be saved" in caplog.text
