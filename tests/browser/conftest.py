"""Browser tests: the chat UI served in-process on a free port, driven by Debian's Chromium (Playwright).

``local_endpoint`` (the real model) comes from tests/conftest.py. Tests that do not need the real model
use a scripted one, so they are fast and deterministic; those that do are marked ``llm`` as well.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.service import Assistant, open_knowledge
from agent.testing import ScriptedChatModel
from core.config import Settings
from ui.auth import Credentials

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the browser tests, closed after them: Playwright's sync API keeps an event loop
    running in this thread while it is open, which other tests' ``asyncio.run`` would trip over."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) for browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright (Python) is not installed: pip install playwright")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the session: the offline embedding model is built into it once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, "name")`` saves artifacts/screenshots/name.png (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save


def scripted_reply(messages: list[Any]) -> str:
    """A stand-in model: an answer for the answer prompt, else SQL chosen from the question's words."""
    last = str(messages[-1].content)
    if "The query" in last:
        numbers = re.findall(r"^\s*(\d+)\s*$", last, re.MULTILINE)
        return f"The answer is {numbers[-1]}." if numbers else "Here is the result."
    question = last.lower()
    if "album" in question:
        return "```sql\nSELECT COUNT(*) AS albums FROM Album\n```"
    if "genre" in question:
        return ("```sql\nSELECT g.Name AS Genre, COUNT(*) AS Tracks FROM Track t JOIN Genre g ON g.GenreId = t.GenreId"
                " GROUP BY g.Name ORDER BY Tracks DESC\n```")
    return "```sql\nSELECT COUNT(*) AS artists FROM Artist\n```"


@dataclass
class Served:
    url: str
    app: Any
    assistant: Assistant
    settings: Settings

    @property
    def knowledge(self) -> Any:
        return self.assistant.deps.knowledge


@pytest.fixture
def serve_ui(settings: Settings, shared_cache: Path) -> Iterator[Callable[..., Served]]:
    """Start the UI in-process on a free port: ``serve_ui(llm=None, auth=None, knowledge=False)``; the
    scripted model is used when no llm is given. Everything is closed after the test."""
    from ui.app import build_app, serve

    opened: list[tuple[Any, Assistant]] = []
    settings = settings.model_copy(update={"cache_dir": shared_cache})

    def start(llm: Any = None, auth: Credentials | None = None, knowledge: bool = False) -> Served:
        model = llm or ScriptedChatModel(replies=[scripted_reply] * 500)
        store = open_knowledge(settings) if knowledge else None
        assistant = Assistant.open(settings, llm=model, conversations=True, knowledge=store)
        app = build_app(assistant)
        opened.append((app, assistant))
        url = serve(app, port=_free_port(), auth=auth, block=False)
        return Served(url, app, assistant, settings)

    yield start
    for app, assistant in opened:
        app.close()
        app.sqlsage_controller.pool.close()
        app.sqlsage_controller.history.close()
        app.sqlsage_controller.close()
        knowledge = assistant.deps.knowledge
        assistant.close()
        if knowledge is not None:
            knowledge.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
