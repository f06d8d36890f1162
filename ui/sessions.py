"""Per-browser-session assistants that share one model.

Every session starts on the assistant the server was launched with. Applying settings in a session
opens an Assistant for that session only: its own database, and the chat model of its endpoint. The
model clients are cached by endpoint, and a session that keeps the launch endpoint reuses the launch
model itself, so the shared local llama.cpp server is never restarted by a session (a new endpoint is
only a new HTTP client). Technique switches need no new Assistant: they are passed with each question.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agent.llm import build_chat_model
from agent.service import Assistant
from core.config import Endpoint, Settings
from core.db import mask_url

Opener = Callable[..., Assistant]
LLMBuilder = Callable[[Settings, Endpoint], BaseChatModel]


@dataclass(frozen=True)
class Choice:
    """What a session may change (blank endpoint fields mean: the one the server was launched with)."""

    db_url: str
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _build_chat_model(settings: Settings, endpoint: Endpoint) -> BaseChatModel:
    return build_chat_model(settings, endpoint)


class AssistantPool:
    """Maps a session key (Gradio's session hash) to its Assistant; the launch assistant is the default.

    The pool closes the assistants it opened; the launch assistant belongs to its opener.
    """

    def __init__(self, base: Assistant, opener: Opener | None = None, llm_builder: LLMBuilder | None = None) -> None:
        self.base = base
        self._opener: Opener = opener or Assistant.open
        self._llm_builder: LLMBuilder = llm_builder or _build_chat_model
        self._sessions: dict[str, tuple[Choice, Assistant]] = {}
        self._llms: dict[tuple[str | None, str, str], BaseChatModel] = {}
        self._lock = threading.Lock()

    # -- the launch endpoint ------------------------------------------------------------------------

    @property
    def base_endpoint_url(self) -> str | None:
        """Where the launch model is reached (the local server's URL when sqlsage started it)."""
        server = self.base.server
        return getattr(server, "base_url", None) or self.base.settings.base_url or \
            getattr(self.base.deps.llm, "openai_api_base", None)

    @property
    def base_model(self) -> str:
        return self.base.settings.endpoint_model_name()

    def base_choice(self) -> Choice:
        return Choice(self.base.settings.db_url)

    # -- sessions -------------------------------------------------------------------------------------

    def get(self, key: str | None) -> Assistant:
        with self._lock:
            entry = self._sessions.get(key or "")
        return entry[1] if entry else self.base

    def choice(self, key: str | None) -> Choice:
        with self._lock:
            entry = self._sessions.get(key or "")
        return entry[0] if entry else self.base_choice()

    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _uses_base_llm(self, choice: Choice) -> bool:
        url, model = _blank(choice.base_url), _blank(choice.model)
        return (url is None or url == self.base_endpoint_url) and (model is None or model == self.base_model) \
            and _blank(choice.api_key) is None

    def llm_for(self, choice: Choice) -> BaseChatModel:
        """The launch model for the launch endpoint; otherwise a cached client for that endpoint."""
        if self._uses_base_llm(choice):
            return self.base.deps.llm
        url = _blank(choice.base_url) or self.base_endpoint_url
        model = _blank(choice.model) or (self.base_model if url == self.base_endpoint_url else "default")
        api_key = _blank(choice.api_key) or self.base.settings.endpoint_api_key()
        key = (url, model, api_key)
        with self._lock:
            llm = self._llms.get(key)
        if llm is None:
            llm = self._llm_builder(self.base.settings, Endpoint(url, model, api_key))
            with self._lock:
                llm = self._llms.setdefault(key, llm)
        return llm

    def apply(self, key: str, choice: Choice) -> Assistant:
        """Open the session's assistant for ``choice`` (the default one when nothing differs). Raises the
        opener's SqlsageError (e.g. DatabaseUnavailable) and leaves the session as it was on failure."""
        choice = Choice(choice.db_url.strip() or self.base.settings.db_url, _blank(choice.base_url),
                        _blank(choice.model), _blank(choice.api_key))
        if choice.db_url == self.base.settings.db_url and self._uses_base_llm(choice):
            self.release(key)
            return self.base
        if choice == self.choice(key):
            return self.get(key)
        update: dict[str, Any] = {"db_url": choice.db_url}
        if choice.base_url:
            update["base_url"] = choice.base_url
        if choice.model:
            update["model"] = choice.model
        if choice.api_key:
            update["api_key"] = SecretStr(choice.api_key)
        settings = self.base.settings.model_copy(update=update)
        extra: dict[str, Any] = {}
        for shared in ("knowledge", "tools"):  # one knowledge store and one tool registry for every session
            if getattr(self.base.deps, shared, None) is not None:
                extra[shared] = getattr(self.base.deps, shared)
        assistant = self._opener(settings, llm=self.llm_for(choice), conversations=True, **extra)
        with self._lock:
            old = self._sessions.pop(key, None)
            self._sessions[key] = (choice, assistant)
        if old is not None:
            old[1].close()
        return assistant

    def release(self, key: str | None) -> None:
        """Close the session's own assistant (when the tab closes, or it goes back to the default)."""
        with self._lock:
            entry = self._sessions.pop(key or "", None)
        if entry is not None:
            entry[1].close()

    def close(self) -> None:
        with self._lock:
            entries = list(self._sessions.values())
            self._sessions.clear()
        for _, assistant in entries:
            assistant.close()

    def model_text(self, key: str | None) -> str:
        choice = self.choice(key)
        url = _blank(choice.base_url) or self.base_endpoint_url or \
            ("OpenAI" if self.base.settings.openai_api_key else "the launch endpoint")
        return f"model {self.get(key).settings.endpoint_model_name()} at {url}"

    def describe(self, key: str | None) -> str:
        return f"database {mask_url(self.get(key).settings.db_url)} · {self.model_text(key)}"
