"""A scripted chat model for tests and examples: replays replies in order and records every call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Script = str | BaseException | Callable[[list[BaseMessage]], str]


class ScriptedChatModel(BaseChatModel):
    """``ScriptedChatModel(replies=["```sql\\nSELECT 1\\n```"])``. A reply may be a string, an exception
    to raise, or a function of the messages. ``history`` holds the messages of every call."""

    replies: list[Any] = Field(default_factory=list)
    history: list[list[BaseMessage]] = Field(default_factory=list)
    kwargs_history: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def enqueue(self, *replies: Script) -> ScriptedChatModel:
        self.replies.extend(replies)
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Sequence[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        """One reply per call, or ``n`` replies when called with ``n`` (several samples of one prompt)."""
        self.history.append(list(messages))
        self.kwargs_history.append(kwargs)
        generations = []
        for _ in range(int(kwargs.get("n") or 1)):
            if not self.replies:
                raise AssertionError(f"ScriptedChatModel ran out of replies after {len(self.history) - 1} call(s)")
            reply = self.replies.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            text = reply(messages) if callable(reply) else reply
            words = sum(len(str(m.content).split()) for m in messages)
            usage = {"input_tokens": words, "output_tokens": len(text.split()),
                     "total_tokens": words + len(text.split())}
            generations.append(ChatGeneration(message=AIMessage(text, usage_metadata=usage)))
        return ChatResult(generations=generations)
