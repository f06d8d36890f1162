"""The chat model: built from config, reached only through langchain-openai's ChatOpenAI.

``open_endpoint`` starts the embedded llama.cpp server when no other endpoint is configured;
``EndpointStarter`` does that in the background while the caller opens everything else.
``call`` is the one place a node talks to the model: it turns transport failures into LLMUnavailable
and reports the tokens used.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr, SecretStr

from agent.confidence import TokenLogprob
from agent.llm_server import LocalServer, ServerOptions
from agent.model_files import ensure_model_file
from agent.slots import QueueStatus, SlotGate
from agent.streamed import (
    ModelStalled,
    NotAChatCompletion,
    PromptProgress,
    ServerProgress,
    WatchedHttpClient,
    stream_completion,
)
from agent.trace import StepTimer
from core.config import Endpoint, Settings, draft_model_name
from core.errors import LLMUnavailable

log = logging.getLogger(__name__)


def slot_dir(settings: Settings) -> Path | None:
    """Where the local server saves slots (the schema prompt's cache, agent.prefix_cache); None when off."""
    return settings.cache_dir / "slots" if settings.slot_cache_mib > 0 else None


def start_local_server(settings: Settings) -> LocalServer:
    """The embedded llama.cpp server for the configured local model (the caller stops it)."""
    model_path = ensure_model_file(settings.local_model, settings.cache_dir)
    slots = slot_dir(settings)
    if slots is not None:
        slots.mkdir(parents=True, exist_ok=True)
    draft_path = None
    if settings.speculative == "draft":
        draft = draft_model_name(settings.local_model)
        if draft is None:  # a --local-model flag overrides settings without validating them again
            raise LLMUnavailable(f"speculative='draft' has no smaller model to draft for {settings.local_model}.")
        draft_path = ensure_model_file(draft, settings.cache_dir)
    options = ServerOptions(
        model_path=model_path, alias=settings.local_model, threads=settings.threads,
        parallel_slots=settings.parallel_slots, ctx_per_slot=settings.ctx_per_slot,
        prompt_cache_mib=settings.prompt_cache_mib, kv_cache_type=settings.kv_cache_type,
        prompt_batch=settings.prompt_batch, slot_save_path=slots, speculative=settings.speculative,
        draft_model_path=draft_path,
    )
    return LocalServer.start(options, timeout_s=settings.server_start_timeout_s)


def open_endpoint(settings: Settings) -> tuple[Endpoint, LocalServer | None]:
    """The configured endpoint, or the embedded server started for it (the caller stops it)."""
    if not settings.uses_local_model():
        return Endpoint(settings.base_url, settings.endpoint_model_name(), settings.endpoint_api_key()), None
    server = start_local_server(settings)
    return Endpoint(server.base_url, settings.local_model, "not-needed"), server


class EndpointStarter:
    """``open_endpoint`` in a background thread: the local model server loads (seconds) while the caller
    opens the knowledge store and the tools. ``result()`` waits for it and raises what it raised;
    ``close()`` stops the server it started (idempotent, and harmless once an Assistant owns it)."""

    def __init__(self, settings: Settings,
                 opener: Callable[[Settings], tuple[Endpoint, LocalServer | None]] = open_endpoint) -> None:
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(opener, settings), name="model-start", daemon=True)
        self._thread.start()

    def _run(self, opener: Callable[[Settings], tuple[Endpoint, LocalServer | None]], settings: Settings) -> None:
        try:
            self._box["value"] = opener(settings)
        except BaseException as err:  # handed to whoever waits, in their thread
            self._box["error"] = err

    def result(self) -> tuple[Endpoint, LocalServer | None]:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self._thread.join()
        server = self._box.get("value", (None, None))[1]
        if server is not None:
            server.stop()


class GatedChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose requests wait in a ``SlotGate`` (when it has one) before they are sent, and are
    read as a stream (``agent.streamed``): a request fails only when its server stops making progress
    (``idle_s`` without a token or, from llama.cpp, a prompt-reading step) or runs past ``max_s``. The
    time spent waiting for a slot counts toward neither."""

    _gate: SlotGate | None = PrivateAttr(default=None)
    _progress: ServerProgress = PrivateAttr(default_factory=ServerProgress)
    _idle_s: float = PrivateAttr(default=120.0)
    _max_s: float = PrivateAttr(default=1800.0)
    _ask_progress: bool = PrivateAttr(default=False)

    def with_gate(self, gate: SlotGate | None) -> GatedChatOpenAI:
        self._gate = gate
        return self

    def with_progress_limits(self, idle_s: float, max_s: float, ask_progress: bool) -> GatedChatOpenAI:
        self._idle_s, self._max_s, self._ask_progress = idle_s, max_s, ask_progress
        return self

    @property
    def gate(self) -> SlotGate | None:
        return self._gate

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if self._gate is None:
            return self._streamed(messages, stop, run_manager, **kwargs)
        with self._gate.slot(int(kwargs.get("n") or 1), report=report_waiting):
            return self._streamed(messages, stop, run_manager, **kwargs)

    def _streamed(self, messages: list[BaseMessage], stop: list[str] | None,
                  run_manager: CallbackManagerForLLMRun | None, **kwargs: Any) -> ChatResult:
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if "response_format" in payload or self._use_responses_api(payload):
            return super()._generate(messages, stop, run_manager, **kwargs)  # sent whole, as langchain does
        payload.pop("stream", None)
        completion = stream_completion(self.root_client, payload, self._progress, idle_s=self._idle_s,
                                       max_s=self._max_s, ask_progress=self._ask_progress,
                                       on_text=_token_callback(run_manager), on_prompt=report_prompt)
        return self._create_chat_result(completion)


def _token_callback(run_manager: CallbackManagerForLLMRun | None) -> Callable[[str], None] | None:
    """Each piece of the reply's text, told to the run's callbacks as it comes, as langchain's own streaming
    does: LangGraph's ``messages`` stream hears it, so a reader can show the reply while it is written."""
    if run_manager is None:
        return None

    def told(text: str) -> None:
        run_manager.on_llm_new_token(text, chunk=ChatGenerationChunk(message=AIMessageChunk(content=text)))

    return told


def report_prompt(progress: PromptProgress) -> None:
    """Tell the graph run (LangGraph's custom stream) how far the server has read its prompt; outside a run,
    there is no one to tell."""
    _tell({"prompt": progress})


def report_waiting(status: QueueStatus) -> None:
    """Tell the graph run (LangGraph's custom stream) that its model call waits in line; outside a run,
    there is no one to tell."""
    _tell({"queue": status})


def _tell(news: dict[str, Any]) -> None:
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # not inside a graph run
        return
    writer(news)


def build_chat_model(settings: Settings, endpoint: Endpoint) -> ChatOpenAI:
    """The chat model for an endpoint. For the local server, requests wait for one of its
    ``parallel_slots`` in our own line (the same gate for every caller of this model)."""
    local = settings.uses_local_model() and endpoint.model == settings.local_model
    gate = SlotGate(settings.parallel_slots) if local else None
    return GatedChatOpenAI(
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=SecretStr(endpoint.api_key),
        temperature=settings.temperature,
        seed=settings.sample_seed,  # samples repeat from run to run (the samples of one request still differ)
        max_tokens=settings.max_tokens,  # type: ignore[call-arg]
        # Per read and overall: the watchdog of agent.streamed ends a request that stops making progress.
        http_client=WatchedHttpClient(_transport_timeout(settings)),
        timeout=_transport_timeout(settings),
        max_retries=settings.max_retries,  # the openai client backs off exponentially between tries
        stream_usage=True,
        # Every request is read as a stream by _generate (agent.streamed), which tells each token to the
        # callbacks; langchain's own streaming path (taken when a streaming callback such as LangGraph's
        # messages stream is attached) would bypass the slot gate and the progress watchdog.
        disable_streaming=True,
    ).with_gate(gate).with_progress_limits(settings.request_timeout_s, settings.request_max_s, ask_progress=local)


def _transport_timeout(settings: Settings) -> httpx.Timeout:
    """The socket-level bounds: connecting is quick or never; reads may wait as long as the overall cap,
    since a slot whose neighbour reads its prompt hears nothing while the server works."""
    return httpx.Timeout(settings.request_max_s, connect=min(30.0, settings.request_timeout_s))


# Stop once the fenced SQL block closes and prose follows: the model's explanation after it is never
# read, and on a small machine every token costs decoding time (with self-consistency the request waits
# for its longest sample). The closing fence must be followed by a line break, so an opening fence after a
# preamble ("Here it is:\n```sql") does not match.
SQL_STOP = ("\n```\n",)


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    logprobs: tuple[TokenLogprob, ...] = ()  # (token, log-probability) of each token, when asked for


_TRANSPORT_ERRORS = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.RateLimitError,
    openai.APIResponseValidationError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
)


def call(llm: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Reply:
    """Invoke the model once (the client retries transport errors with backoff first)."""
    began = time.monotonic()
    with _told_as_unavailable(llm):
        message = llm.invoke(messages, **kwargs)
    text = message.content if isinstance(message.content, str) else _join_content(message.content)
    usage = getattr(message, "usage_metadata", None) or {}
    return Reply(text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)),
                 time.monotonic() - began, token_logprobs(message))


def token_logprobs(message: BaseMessage) -> tuple[TokenLogprob, ...]:
    """The reply's tokens with their log-probabilities, in the OpenAI shape (``logprobs=True``); empty
    when the endpoint sent none."""
    content = ((message.response_metadata or {}).get("logprobs") or {}).get("content") or []
    try:
        return tuple((str(t["token"]), float(t["logprob"])) for t in content)
    except (KeyError, TypeError, ValueError):  # a server's own shape: no confidence rather than a crash
        return ()


def call_many(llm: BaseChatModel, messages: list[BaseMessage], n: int, **kwargs: Any) -> list[Reply]:
    """N completions of one prompt in one request (``n``): the server reads the prompt once and
    decodes the samples side by side in its parallel slots. Usage is reported once for the request."""
    began = time.monotonic()
    try:
        with _told_as_unavailable(llm):
            result = llm.generate([messages], n=n, **kwargs)
    except LLMUnavailable as err:
        if n == 1 or not isinstance(err.__cause__, openai.BadRequestError):
            raise
        # llama.cpp refuses more samples than it has parallel slots (a server started with fewer, or an
        # external one), and some servers know no ``n``: ask for the samples one request each (the
        # server's prompt cache keeps the repeats cheap). A request bad for another reason fails again,
        # alone, and that error is the one told.
        log.warning("The model server refused %d samples in one request (%s); asking one at a time.", n, err)
        seed = kwargs.get("seed", getattr(llm, "seed", None))  # one request each: each needs its own seed
        return [reply for i in range(n) for reply in call_many(
            llm, messages, 1, **{**kwargs, **({} if seed is None else {"seed": seed + i})})]
    seconds = time.monotonic() - began
    replies = []
    for i, generation in enumerate(result.generations[0]):
        message = generation.message  # type: ignore[attr-defined]
        text = message.content if isinstance(message.content, str) else _join_content(message.content)
        usage = getattr(message, "usage_metadata", None) or {}
        prompt_tokens = int(usage.get("input_tokens", 0)) if i == 0 else 0
        replies.append(Reply(text, prompt_tokens, int(usage.get("output_tokens", 0)), seconds if i == 0 else 0.0))
    return replies


@contextmanager
def _told_as_unavailable(llm: BaseChatModel) -> Iterator[None]:
    """A failure of the model's backend as LLMUnavailable: a message for the user, and the run stops."""
    try:
        yield
    except ModelStalled as err:
        raise LLMUnavailable(str(err)) from err
    except openai.APITimeoutError as err:
        raise LLMUnavailable("The model did not answer in time; it may be overloaded. Try again.") from err
    except _TRANSPORT_ERRORS as err:
        raise LLMUnavailable(f"The model server is unavailable: {type(err).__name__}: {err}") from err
    except openai.BadRequestError as err:
        raise LLMUnavailable(f"The model server refused the request: {err}") from err
    except NotAChatCompletion as err:
        raise LLMUnavailable(_not_a_chat_server(err.url, err.what)) from err
    except (ValueError, TypeError) as err:  # the client's own checks of the reply's shape
        url = getattr(llm, "openai_api_base", None) or "the model endpoint"
        raise LLMUnavailable(_not_a_chat_server(url, f"a reply the client could not read "
                                                     f"({type(err).__name__}: {str(err)[:200]})")) from err


def _not_a_chat_server(url: str, what: str) -> str:
    return (f"The model endpoint {url} is not an OpenAI-compatible chat server: it answered {what}. "
            "Check the base URL (setting base_url): it must be the server's OpenAI-compatible /v1 address.")


def call_recorded(timer: StepTimer, llm: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Reply:
    """``call``, with the prompt, the reply, its tokens and its time recorded on the step."""
    reply = call(llm, messages, **kwargs)
    timer.record_call(as_dicts(messages), reply.text, reply.prompt_tokens, reply.completion_tokens, reply.seconds)
    return reply


def _join_content(content: list[Any]) -> str:
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


def as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
    return [{"role": roles.get(type(m), m.type), "content": str(m.content)} for m in messages]


_FENCED = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_BARE = re.compile(r"(?is)^\s*((?:WITH|SELECT)\b.*?)(?:;\s*$|\Z)", re.MULTILINE)


def extract_sql(text: str) -> str | None:
    """The SQL in a model reply: the first ```sql block, else the first fenced block that looks like a
    query, else a bare statement starting with SELECT or WITH. None when there is none."""
    blocks = [(lang.lower(), body.strip()) for lang, body in _FENCED.findall(text)]
    for lang, body in blocks:
        if lang in ("sql", "sqlite", "postgresql", "postgres", "mysql") and body:
            return body
    for _, body in blocks:
        if re.match(r"(?is)\s*(WITH|SELECT)\b", body):
            return body
    match = _BARE.search(text)
    return match.group(1).strip() if match else None


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply: the whole reply, else a fenced block, else the first ``{...}``."""
    stripped = text.strip()
    candidates = [stripped, *re.findall(r"```(?:json)?\s*\n(.*?)```", text, re.DOTALL)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
