"""A scripted chat model for tests and examples: replays replies in order and records every call."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field


@dataclass(frozen=True)
class Scored:
    """A scripted reply whose every token has this log-probability, sent when a call asks for
    ``logprobs`` (as an OpenAI-compatible server sends them)."""

    text: str
    logprob: float


Script = str | Scored | BaseException | Callable[[list[BaseMessage]], str]


def token_logprobs(text: str, logprob: float) -> dict[str, Any]:
    """``logprobs`` in the OpenAI shape: the text cut at white space, every piece with ``logprob``."""
    return {"content": [{"token": tok, "logprob": logprob} for tok in re.findall(r"\s*\S+|\s+", text)]}


class ScriptedChatModel(BaseChatModel):
    """``ScriptedChatModel(replies=["```sql\\nSELECT 1\\n```"])``. A reply may be a string, a ``Scored``
    string (with its log-probability), an exception to raise, or a function of the messages. ``history``
    holds the messages of every call."""

    replies: list[Any] = Field(default_factory=list)
    history: list[list[BaseMessage]] = Field(default_factory=list)
    kwargs_history: list[dict[str, Any]] = Field(default_factory=list)
    sends_logprobs: bool = True  # False: an endpoint that ignores ``logprobs``
    streams: bool = False  # True: each word of the first reply is told to the callbacks as it "arrives"
    stream_pause_s: float = 0.0  # with streams: the pause before each word, as a model decoding slowly

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
        self.kwargs_history.append({**kwargs, "stop": list(stop)} if stop else kwargs)
        generations: list[ChatGeneration] = []
        for _ in range(int(kwargs.get("n") or 1)):
            if not self.replies:
                raise AssertionError(f"ScriptedChatModel ran out of replies after {len(self.history) - 1} call(s)")
            reply = self.replies.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            logprob = reply.logprob if isinstance(reply, Scored) else 0.0  # unscored replies: sure of all
            text = reply.text if isinstance(reply, Scored) else reply(messages) if callable(reply) else reply
            for end in stop or ():  # as a server does: the text ends before the first stop sequence
                text = text.split(end, 1)[0]
            words = sum(len(str(m.content).split()) for m in messages)
            usage = {"input_tokens": words, "output_tokens": len(text.split()),
                     "total_tokens": words + len(text.split())}
            asked = kwargs.get("logprobs") and self.sends_logprobs
            metadata = {"logprobs": token_logprobs(text, logprob)} if asked else {}
            if self.streams and run_manager is not None and not generations:
                for piece in re.findall(r"\s*\S+|\s+", text):
                    time.sleep(self.stream_pause_s)
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                    run_manager.on_llm_new_token(piece, chunk=chunk)
            generations.append(ChatGeneration(
                message=AIMessage(text, usage_metadata=usage, response_metadata=metadata)))
        return ChatResult(generations=generations)
