"""A chat completion read as a stream, so that only a server that stops making progress times out.

Sent whole, a request waits for the complete reply, and a timeout on it bounds the server's prompt reading
and decoding together: a long cold prompt behind other slots ran out of time while the server was busy on
it. Streamed, the server sends each token as it is decoded, and llama.cpp's server, asked with
``return_progress``, also sends a ``prompt_progress`` chunk after each batch of the prompt it reads. A
request then fails when nothing came for ``idle_s`` (``ModelStalled``), or when it ran longer than the
generous ``max_s``.

Progress is counted per server (``ServerProgress``, shared by the requests to one endpoint): while one
request reads its prompt, llama.cpp gives the whole batch to it and the other slots hear nothing, yet the
server is making progress. A watchdog thread ends a stalled request by shutting its socket (the openai
client would otherwise sit in a blocking read); the connection is captured through httpcore's ``trace``
extension, which ``WatchedHttpClient`` adds to each request sent from a watched thread.

A server that ignores ``stream`` and answers with one JSON body is read as it is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai


class ModelStalled(Exception):
    """The model server sent nothing for too long, or the request ran past its cap."""


class NotAChatCompletion(ValueError):
    """The endpoint answered, but not with an OpenAI chat completion: it is some other server (a proxy's
    HTML page, another API), so asking again will not help. ``url`` is the endpoint's base URL."""

    def __init__(self, url: str, what: str) -> None:
        self.url, self.what = url.rstrip("/"), what
        super().__init__(f"{self.url} answered {what}")


def _completion_problem(completion: Any) -> str | None:
    """What keeps a parsed reply from being a chat completion, or None when it is one. A reply that
    reports an error of its own is left to the client, which raises it with the server's message."""
    if not isinstance(completion, dict):
        return f"JSON that is not an object ({type(completion).__name__})"
    if completion.get("error"):
        return None
    if not isinstance(completion.get("choices"), list) or not completion["choices"]:
        keys = ", ".join(sorted(map(str, completion))) or "none"
        return f"JSON that has no choices (its keys: {keys:.120})"
    return None


@dataclass(frozen=True)
class PromptProgress:
    """How far a llama.cpp server has read one request's prompt (its ``prompt_progress`` report): of
    ``total`` tokens, ``cached`` were already there and ``processed`` (cached ones included) are read,
    in ``seconds`` of reading."""

    total: int
    cached: int
    processed: int
    seconds: float

    @classmethod
    def of(cls, report: dict[str, Any]) -> PromptProgress | None:
        try:
            return cls(int(report["total"]), int(report.get("cache") or 0), int(report["processed"]),
                       float(report.get("time_ms") or 0) / 1000)
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def to_read(self) -> int:
        """The tokens this request has to read (those not cached)."""
        return max(0, self.total - self.cached)

    @property
    def left_s(self) -> float | None:
        """Seconds left at the speed read so far, or None before anything was read."""
        read = self.processed - self.cached
        if read <= 0 or self.seconds <= 0:
            return None
        return max(0, self.total - self.processed) * self.seconds / read


class ServerProgress:
    """When a server last showed progress on any of our requests (thread-safe, one per endpoint)."""

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def mark(self) -> None:
        with self._lock:
            self._last = time.monotonic()

    @property
    def last(self) -> float:
        with self._lock:
            return self._last


class _Watch:
    """One request's watchdog: aborts it (by shutting its sockets) when the server stalls or time is up."""

    def __init__(self, progress: ServerProgress, idle_s: float, max_s: float) -> None:
        self.progress, self.idle_s, self.max_s = progress, idle_s, max_s
        self.began = self.own_last = time.monotonic()
        self.reason: str | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watchdog", daemon=True)

    def seen(self) -> None:
        self.own_last = time.monotonic()
        self.progress.mark()

    def adopt(self, sock: socket.socket) -> None:
        with self._lock:
            if self.reason is not None:  # a retry after the abort: end it at once
                _shut(sock)
            self._sockets.append(sock)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace callback: keep each new connection's socket."""
        if event in ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete"):
            sock = info["return_value"].get_extra_info("socket")
            if isinstance(sock, socket.socket):
                self.adopt(sock)

    def _verdict(self) -> str | None:
        now = time.monotonic()
        if now - self.began > self.max_s:
            return (f"The model call ran for {self.max_s:g} s, the most one may take (setting request_max_s); "
                    "the model server is too slow for this question. Try again when it is less busy.")
        if now - max(self.own_last, self.progress.last) > self.idle_s:
            return (f"The model server stopped making progress: nothing came for {self.idle_s:g} s (setting "
                    "request_timeout_s). It may have hung or be overloaded; check it, then try again.")
        return None

    def _run(self) -> None:
        tick = min(1.0, self.idle_s / 4)
        while not self._done.wait(tick):
            reason = self._verdict()
            if reason is not None:
                with self._lock:
                    self.reason = reason
                    for sock in self._sockets:
                        _shut(sock)
                return

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on it in another thread, as close() does not
    except OSError:
        pass


_current = threading.local()


class WatchedHttpClient(httpx.Client):
    """httpx client whose requests, sent while a ``stream_completion`` watches this thread, report their
    connections to its watchdog. Keep-alive is off: every request's connection is its own to shut."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        super().__init__(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=True)

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        watch: _Watch | None = getattr(_current, "watch", None)
        if watch is not None:
            request.extensions = {**request.extensions, "trace": watch.trace}
        return super().send(request, **kwargs)


@contextmanager
def _watching(watch: _Watch) -> Iterator[_Watch]:
    _current.watch = watch
    try:
        with watch:
            yield watch
    finally:
        _current.watch = None


def stream_completion(client: openai.OpenAI, payload: dict[str, Any], progress: ServerProgress, *,
                      idle_s: float, max_s: float, ask_progress: bool,
                      on_text: Callable[[str], None] | None = None,
                      on_prompt: Callable[[PromptProgress], None] | None = None) -> dict[str, Any]:
    """Send a chat completion request as a stream and put the reply together in the shape of a whole
    completion (choices with message, logprobs and finish reason; usage). ``ask_progress`` asks a llama.cpp
    server for prompt-reading progress (other servers may refuse the unknown field). Raises
    ``ModelStalled`` when the server stopped making progress or ``max_s`` passed, ``NotAChatCompletion``
    when it answered with something else (an HTML page, another API's JSON); the openai client's errors
    otherwise. ``on_text`` hears each piece of the first choice's text as it arrives (a reader that shows
    the reply while it is written); a server that answers whole sends none (the callbacks then hear
    the whole reply at its end, as langchain tells every call's result).
    ``on_prompt`` hears each of llama.cpp's reports of how far it has read the prompt."""
    body = {**payload, "stream": True, "stream_options": {"include_usage": True}}
    if ask_progress:
        body["extra_body"] = {**(body.get("extra_body") or {}), "return_progress": True}
    watch = _Watch(progress, idle_s, max_s)
    url = str(client.base_url)
    whole: bytes | None = None
    try:
        with _watching(watch), client.chat.completions.with_streaming_response.create(**body) as response:
            watch.seen()  # the server took the request
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" in content_type:
                completion = _assemble(_events(response.iter_lines(), watch, on_prompt), on_text)
            else:
                whole = response.http_response.read()
    except (httpx.HTTPError, openai.APIConnectionError, json.JSONDecodeError) as err:
        if watch.reason is not None:
            raise ModelStalled(watch.reason) from err
        if isinstance(err, json.JSONDecodeError):
            raise NotAChatCompletion(url, "an event stream whose data is not JSON") from err
        raise
    if watch.reason is not None:  # the stream ended when its socket was shut: what came is not the reply
        raise ModelStalled(watch.reason)
    if whole is not None:  # read only once the watch is over: a body cut off by it is a stall, not garbage
        try:
            completion = json.loads(whole)
        except ValueError as err:  # UnicodeDecodeError too
            raise NotAChatCompletion(url, f"a body that is not JSON ({content_type or 'no content type'}: "
                                          f"{whole[:60]!r})") from err
    problem = _completion_problem(completion)
    if problem is not None:
        raise NotAChatCompletion(url, problem)
    return completion


def _events(lines: Iterator[str], watch: _Watch,
            on_prompt: Callable[[PromptProgress], None] | None = None) -> Iterator[dict[str, Any]]:
    """The JSON data of each server-sent event (comments and blank lines skipped), each marking progress;
    ``on_prompt`` hears the prompt-reading reports among them."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if isinstance(event, dict) and event.get("error"):
            raise ValueError(event["error"])
        watch.seen()
        if isinstance(event, dict):
            if on_prompt is not None and isinstance(event.get("prompt_progress"), dict):
                read = PromptProgress.of(event["prompt_progress"])
                if read is not None:
                    on_prompt(read)
            yield event


def _assemble(events: Iterator[dict[str, Any]], on_text: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Chunks to one completion: each choice's content, tool calls and logprobs joined, in index order;
    ``on_text`` hears the first choice's text as it comes."""
    choices: dict[int, dict[str, Any]] = {}
    whole: dict[str, Any] = {"object": "chat.completion"}
    for event in events:
        for key in ("id", "model", "created", "system_fingerprint"):
            if key in event:
                whole.setdefault(key, event[key])
        if event.get("usage"):
            whole["usage"] = event["usage"]
        for chunk in event.get("choices") or []:
            choice = choices.setdefault(int(chunk.get("index") or 0), {
                "message": {"role": "assistant", "content": ""}, "finish_reason": None, "tools": {}, "logprobs": []})
            delta = chunk.get("delta") or {}
            if delta.get("content"):
                choice["message"]["content"] += delta["content"]
                if on_text is not None and int(chunk.get("index") or 0) == 0:
                    on_text(delta["content"])
            for call in delta.get("tool_calls") or []:
                merged = choice["tools"].setdefault(int(call.get("index") or 0),
                                                    {"id": None, "type": "function",
                                                     "function": {"name": "", "arguments": ""}})
                merged["id"] = call.get("id") or merged["id"]
                merged["type"] = call.get("type") or merged["type"]
                function = call.get("function") or {}
                merged["function"]["name"] += function.get("name") or ""
                merged["function"]["arguments"] += function.get("arguments") or ""
            content_logprobs = (chunk.get("logprobs") or {}).get("content")
            if content_logprobs:
                choice["logprobs"].extend(content_logprobs)
            if chunk.get("finish_reason"):
                choice["finish_reason"] = chunk["finish_reason"]
    whole["choices"] = [_finish(i, choices[i]) for i in sorted(choices)]
    return whole


def _finish(index: int, choice: dict[str, Any]) -> dict[str, Any]:
    message = choice["message"]
    if choice["tools"]:
        message["tool_calls"] = [choice["tools"][i] for i in sorted(choice["tools"])]
        message["content"] = message["content"] or None
    done: dict[str, Any] = {"index": index, "message": message, "finish_reason": choice["finish_reason"]}
    if choice["logprobs"]:
        done["logprobs"] = {"content": choice["logprobs"]}
    return done
