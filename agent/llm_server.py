"""The embedded llama.cpp server (xllamacpp), run in a child process we start and stop.

A child process rather than a thread: a request in flight cannot keep our process from exiting, and a
crash in the native server cannot take the app down with it. The child prints one line,
``LISTENING <url>`` or ``FAILED <reason>``, then serves until it is terminated.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from agent.waiting import wait_until_answering
from core.errors import LLMUnavailable

KV_CACHE_TYPES = ("f16", "q8_0")
SPECULATIVE_MODES = ("off", "ngram", "draft")  # see speculative_params
NGRAM_LOOKUP = 3  # tokens of the text so far that must match earlier text (the prompt too) to draft from it
_READY_PREFIX = "LISTENING "
_FAILED_PREFIX = "FAILED "


@dataclass(frozen=True)
class ServerOptions:
    model_path: Path
    alias: str
    threads: int
    parallel_slots: int = 4
    ctx_per_slot: int = 4096
    prompt_cache_mib: int = 128
    kv_cache_type: str = "f16"  # or "q8_0": half the memory for the slots' and the cached prompts' keys and values
    prompt_batch: int = 256  # prompt tokens per step; streamed requests hear of progress after each step
    port: int = 0
    host: str = "127.0.0.1"
    slot_save_path: Path | None = None  # where slots are saved and restored (agent.prefix_cache); None: off
    speculative: str = "off"  # "ngram" (drafts copied from earlier text) or "draft" (drafts by draft_model_path)
    draft_model_path: Path | None = None  # the small model that drafts for speculative="draft"
    draft_max: int = 8  # tokens drafted at most per step, checked by the model in one batch

    def __post_init__(self) -> None:
        if self.speculative not in SPECULATIVE_MODES:
            raise ValueError(f"speculative must be one of {', '.join(SPECULATIVE_MODES)}, not {self.speculative!r}")
        if (self.speculative == "draft") != (self.draft_model_path is not None):
            raise ValueError("speculative='draft' needs a draft_model_path, and only it uses one")

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "agent.llm_server",
            "--model", str(self.model_path), "--alias", self.alias, "--threads", str(self.threads),
            "--parallel", str(self.parallel_slots), "--ctx-per-slot", str(self.ctx_per_slot),
            "--prompt-cache-mib", str(self.prompt_cache_mib), "--kv-cache-type", self.kv_cache_type,
            "--prompt-batch", str(self.prompt_batch), "--port", str(self.port), "--host", self.host,
            "--speculative", self.speculative, "--draft-max", str(self.draft_max),
        ] + (["--slot-save-path", str(self.slot_save_path)] if self.slot_save_path is not None else []) \
          + (["--draft-model", str(self.draft_model_path)] if self.draft_model_path is not None else [])


@dataclass
class LocalServer:
    """A running llama.cpp server. Use ``start()``; ``stop()`` is idempotent and runs at exit too."""

    options: ServerOptions
    process: subprocess.Popen[str] | None = None
    base_url: str = ""
    startup_seconds: float = 0.0
    _log: deque[str] = field(default_factory=lambda: deque(maxlen=60))

    @classmethod
    def start(cls, options: ServerOptions, timeout_s: float = 300.0) -> LocalServer:
        server = cls(options)
        server._spawn(timeout_s)
        atexit.register(server.stop)
        return server

    def _spawn(self, timeout_s: float) -> None:
        began = time.monotonic()
        self.process = subprocess.Popen(
            self.options.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        stderr_reader = threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True)
        stderr_reader.start()
        line = _read_line_with_timeout(self.process, timeout_s)
        if line is None or not line.startswith(_READY_PREFIX):
            reason = line[len(_FAILED_PREFIX):] if line and line.startswith(_FAILED_PREFIX) else ""
            self.stop()
            stderr_reader.join(2.0)  # the log tells why; let it be read to the end
            raise LLMUnavailable(self._failure_message(reason, timeout_s))
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
        self.base_url = line[len(_READY_PREFIX):].strip().rstrip("/") + "/v1"
        _wait_healthy(self.base_url.removesuffix("/v1"), deadline=began + timeout_s)
        self.startup_seconds = time.monotonic() - began

    def _drain(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._log.append(line.rstrip())

    def _failure_message(self, reason: str, timeout_s: float) -> str:
        log = "\n".join(self._log)
        if "HTTP server error" in log or "couldn't bind" in log or "address already in use" in log.lower():
            why = f"port {self.options.port} on {self.options.host} is already in use"
        elif "model loading error" in log or "failed to load model" in log:
            why = f"the model file {self.options.model_path} could not be loaded (corrupt or not a GGUF)"
        elif reason:
            why = reason
        else:
            why = f"it did not report ready within {timeout_s:.0f} s"
        tail = "\n".join(list(self._log)[-5:])
        return f"The local model server could not start: {why}." + (f"\nLast log lines:\n{tail}" if tail else "")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            # A request in flight can keep llama.cpp's HTTP loop from exiting on SIGTERM.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace_s)
        except ProcessLookupError:
            pass


def _read_line_with_timeout(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    return box[0].strip() if box and box[0] else None


def _wait_healthy(root_url: str, deadline: float) -> None:
    try:
        wait_until_answering(f"{root_url}/health", max(0.0, deadline - time.monotonic()), method="GET",
                             accept=lambda status: status == 200)
    except TimeoutError:
        raise LLMUnavailable(f"The local model server at {root_url} never became healthy.") from None


def slot_save_param(folder: str) -> str:
    """``CommonParams.slot_save_path`` for a folder: the server joins it and a file name as they are (only
    its own command line adds the separator), so it must end with one, or the files land beside it."""
    return os.path.join(folder, "")


def speculative_params(params: object, mode: str, draft_max: int, threads: int, draft_model: str = "") -> None:
    """Set ``CommonParams.speculative`` for a mode. Either way the model checks a draft of up to
    ``draft_max`` tokens in one batch and keeps the longest prefix it would have chosen itself.

    - ``ngram``: llama.cpp's ngram-simple (``--spec-type ngram-simple``): when the last ``NGRAM_LOOKUP``
      tokens occurred before, in the prompt or the reply so far, the tokens that followed them there are
      the draft: SQL copies table and column names from the schema in its prompt. No second model.
    - ``draft``: a small model of the same tokenizer drafts (``--model-draft``), greedily, stopping
      when its own top token falls under 0.75 probability (``--draft-p-min``).
    """
    import xllamacpp

    spec = params.speculative  # type: ignore[attr-defined]
    kinds = xllamacpp.common_speculative_type
    if mode == "ngram":
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        spec.ngram_simple.size_n = NGRAM_LOOKUP
        spec.ngram_simple.size_m = draft_max
    elif mode == "draft":
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        spec.draft.mparams.path = draft_model
        spec.draft.n_max, spec.draft.n_min, spec.draft.p_min = draft_max, 0, 0.75
        spec.draft.cpuparams.n_threads = spec.draft.cpuparams_batch.n_threads = threads
        spec.draft.cache_type_k, spec.draft.cache_type_v = params.cache_type_k, params.cache_type_v  # type: ignore[attr-defined]
    elif mode != "off":
        raise ValueError(f"unknown speculative mode {mode!r}")


def serve(args: argparse.Namespace) -> int:
    """Child-process entry point: start xllamacpp's server and block until terminated."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = args.alias
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_per_slot * args.parallel  # llama.cpp splits n_ctx across the slots
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True
    params.cache_prompt = True
    params.cache_ram_mib = args.prompt_cache_mib  # prefixes saved from one slot are restored into another
    kv_type = getattr(xllamacpp.ggml_type, f"GGML_TYPE_{args.kv_cache_type.upper()}")
    params.cache_type_k = params.cache_type_v = kv_type
    params.n_batch = params.n_ubatch = args.prompt_batch  # a progress report per step of prompt reading
    if args.slot_save_path:
        params.slot_save_path = slot_save_param(args.slot_save_path)  # POST /slots/{id}?action=save|restore
    speculative_params(params, args.speculative, args.draft_max, args.threads, args.draft_model)
    params.hostnames = [args.host]
    params.port = args.port
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as err:
        print(f"{_FAILED_PREFIX}{err}", flush=True)
        return 1
    print(f"{_READY_PREFIX}{server.listening_address}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=watch_parent, args=(os.getppid(), stop), daemon=True).start()
    stop.wait()
    os._exit(0)  # skip native destructors that may wait on in-flight requests


def watch_parent(parent: int, stop: threading.Event, poll_s: float = 1.0) -> None:
    """Set ``stop`` once the process that started us is gone (we are re-parented). The server runs in a
    session of its own, so a parent ended by SIGTERM or SIGKILL, which runs no atexit handler, would
    otherwise leave it serving, holding its memory and port, forever."""
    while not stop.wait(poll_s):
        if os.getppid() != parent:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.llm_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", default="local")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=4096)
    parser.add_argument("--prompt-cache-mib", type=int, default=128)
    parser.add_argument("--kv-cache-type", choices=KV_CACHE_TYPES, default="f16")
    parser.add_argument("--prompt-batch", type=int, default=256)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--slot-save-path", default="")
    parser.add_argument("--speculative", choices=SPECULATIVE_MODES, default="off")
    parser.add_argument("--draft-max", type=int, default=8)
    parser.add_argument("--draft-model", default="")
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
