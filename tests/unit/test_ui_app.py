"""The Gradio app: a factory (nothing built or imported at import time), served offline on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_importing_the_ui_builds_nothing_and_does_not_import_gradio() -> None:
    code = "import sys, ui.app, ui.render, ui.charts, ui.controller; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_render_modules_are_pure() -> None:
    for name in ("render", "charts", "history", "switches", "auth", "controller", "sessions"):
        text = (REPO / "ui" / f"{name}.py").read_text(encoding="utf-8")
        assert "import gradio" not in text, f"ui/{name}.py must not import gradio"


def test_build_app_serves_the_page_offline(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.app import build_app, serve

    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    with Assistant.open(settings, llm=ScriptedChatModel(), conversations=True) as assistant:
        app = build_app(assistant)
        assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
        try:
            url = serve(app, port=free_port(), block=False)
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url + "/config", timeout=30) as resp:
                config = resp.read().decode("utf-8")
            for elem in ("question", "chat", "sql-editor", "trace", "history-list", "schema", "db-url"):
                assert f'"{elem}"' in config, elem
        finally:
            app.close()
            app.sqlsage_controller.history.close()


def test_the_page_shows_the_background_work_line(settings: Settings) -> None:
    from ui.app import build_app, serve

    with Assistant.open(settings, llm=ScriptedChatModel(), conversations=True) as assistant:
        app = build_app(assistant, background=lambda: ("Example pool: indexing 256/6,896 in the background…", True))
        try:
            url = serve(app, port=free_port(), block=False)
            with urllib.request.urlopen(url + "/config", timeout=30) as resp:
                config = resp.read().decode("utf-8")
            assert '"background-status"' in config and "indexing 256/6,896" in config
        finally:
            app.close()
            app.sqlsage_controller.history.close()


@pytest.mark.slow
def test_sqlsage_ui_prints_its_url_and_requires_the_login(tmp_path: Path, chinook_copy: Path) -> None:
    port = free_port()
    env = {**os.environ, "SQLSAGE_DATA_DIR": str(tmp_path / "data"), "SQLSAGE_CACHE_DIR": str(tmp_path / "cache"),
           "SQLSAGE_BASE_URL": "http://127.0.0.1:9/v1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "ui", "--db", f"sqlite:///{chinook_copy}", "--port", str(port),
         "--auth", "alice:wonderland"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline, lines = time.monotonic() + 180, []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "sqlsage is ready" in line:
                break
        assert any(f"sqlsage is ready: http://127.0.0.1:{port}" in line for line in lines), "".join(lines)
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30)
        assert denied.value.code == 401
        form = urllib.parse.urlencode({"username": "alice", "password": "wrong"}).encode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=form, timeout=30)
        form = urllib.parse.urlencode({"username": "alice", "password": "wonderland"}).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=form, timeout=30) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_waiting_for_a_page_that_never_answers_says_so() -> None:
    from ui.app import wait_until_answering

    port = free_port()  # nothing listens there
    with pytest.raises(RuntimeError, match=rf"127.0.0.1:{port} did not answer within 1 s \(ConnectError\)"):
        wait_until_answering(f"http://127.0.0.1:{port}", timeout_s=1.0)
