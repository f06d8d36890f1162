"""RAGAS metrics (ragas 0.4 "collections" API), judged by an LLM, with the project's offline embedder.

Four metrics, for the first questions of a run:

- **context precision** and **context recall**: the contexts are what the model was given to write its
  SQL (the schema, one chunk per table, and any few-shot examples), the reference is the gold SQL;
- **faithfulness**: is the written answer supported by what it was written from (the SQL and its rows)?
- **answer relevancy**: does the written answer address the question (questions generated back from
  the answer, compared with the real one through MiniLM embeddings)?

A judge call that fails or whose output does not parse is not a score: it is recorded as missing, with
its error counted by kind and reported. A transport failure of the judge (server down, bad key) stops
the evaluation. ragas is imported only when these run (it takes seconds to import).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from agent.prompts import format_rows
from core.config import Endpoint, Settings
from core.db import Schema, render_table
from core.errors import LLMUnavailable
from evals.retrieval import context_of, examples_of
from evals.runner import QuestionResult

T = TypeVar("T")

if TYPE_CHECKING:
    from ragas.embeddings.base import BaseRagasEmbedding
    from ragas.llms.base import InstructorBaseRagasLLM

METRICS: tuple[str, ...] = ("context_precision", "context_recall", "faithfulness", "answer_relevancy")
DEFAULT_LIMIT = 20
FIRST_ERRORS_KEPT = 3


def _no_tracking() -> None:
    """ragas sends usage analytics unless told not to; the user's own setting wins."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@cache
def _adapter_class() -> type:
    _no_tracking()
    from ragas.embeddings.base import BaseRagasEmbedding

    class MiniLMRagasEmbedding(BaseRagasEmbedding):
        """ragas' modern embedding interface over any object with ``embed(texts) -> (n, d) array``."""

        def __init__(self, embedder: Embedder) -> None:
            super().__init__(cache=None)
            self.embedder = embedder

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_texts([text])[0]

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            vectors = np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)
            return [row.tolist() for row in vectors]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return (await self.aembed_texts([text]))[0]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return await asyncio.to_thread(self.embed_texts, list(texts))

    return MiniLMRagasEmbedding


def ragas_embeddings(embedder: Embedder) -> BaseRagasEmbedding:
    """Wrap the project's embedder (``knowledge.embeddings.MiniLMEmbedder``) for ragas' metrics."""
    return _adapter_class()(embedder)  # type: ignore[no-any-return]


def judge_llm(endpoint: Endpoint, settings: Settings) -> InstructorBaseRagasLLM:
    """The judge: the endpoint's model through ragas' ``llm_factory`` (Instructor, JSON mode)."""
    _no_tracking()
    from openai import AsyncOpenAI
    from ragas.llms.base import llm_factory

    client = AsyncOpenAI(
        base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=settings.request_timeout_s,
        max_retries=settings.max_retries,
    )
    return llm_factory(endpoint.model, client=client, temperature=0.0, max_tokens=1024)


# --------------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class RagasSample:
    qid: str
    question: str
    reference: str  # the gold SQL
    contexts: list[str]  # what the model was given to write SQL: schema tables, few-shot examples
    answer: str | None  # the written answer (None when the agent gave up)
    answer_contexts: list[str]  # what the answer was written from: the SQL and its rows


def example_text(example: Any) -> str:
    if isinstance(example, Mapping):
        question = example.get("question")
        sql = example.get("sql") or example.get("query")
        if question is not None and sql is not None:
            return f"Question: {question}\nSQL: {sql}"
    if isinstance(example, str):
        return example
    return json.dumps(example, ensure_ascii=False, default=str)


def sample_of(result: QuestionResult, schema: Schema) -> RagasSample:
    """The RAGAS view of one answered question; ``schema`` is its database's reflected schema."""
    context = context_of(result.trace)
    sample_rows = int(result.techniques.get("sample_rows", 3))
    tables = context.tables if context else []
    chunks = [render_table(t, sample_rows) for name in tables if (t := schema.table(name))]
    chunks += [example_text(e) for e in examples_of(result.trace)]
    answer_contexts = []
    if result.prediction:
        answer_contexts = [f"SQL:\n{result.prediction}", "Result:\n" + format_rows(result.columns, result.rows)]
    return RagasSample(result.qid, result.question, result.gold, chunks, result.answer, answer_contexts)


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class MetricTally:
    """One metric over the questions judged: the mean of the real scores, and what went wrong."""

    scores: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # not applicable (no answer to judge, no context)
    first_errors: list[str] = field(default_factory=list)

    def add_error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < FIRST_ERRORS_KEPT:
            self.first_errors.append(f"{kind}: {message[:300]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": float(np.mean(self.scores)) if self.scores else None, "scored": len(self.scores),
            "errors": sum(self.errors.values()), "errors_by_kind": dict(self.errors), "skipped": self.skipped,
            "first_errors": list(self.first_errors),
        }


def _root_cause(err: BaseException) -> BaseException:
    seen = {id(err)}
    while err.__cause__ is not None and id(err.__cause__) not in seen:
        err = err.__cause__
        seen.add(id(err))
    return err


def _judge_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this judgement failed" (bad output, a timeout, a refused request)."""
    import openai
    import pydantic
    from instructor.core import InstructorError

    return (InstructorError, pydantic.ValidationError, json.JSONDecodeError, openai.APIError)


def _is_backend_down(err: BaseException) -> bool:
    import openai

    if isinstance(err, openai.APITimeoutError):
        return False  # a slow judgement: counted, not fatal
    return isinstance(err, openai.APIConnectionError | openai.AuthenticationError | openai.PermissionDeniedError
                      | openai.NotFoundError)


async def _judge(metric: Any, kwargs: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    """(score, error kind, error message) of one metric on one sample."""
    try:
        result = await metric.ascore(**kwargs)
    except _judge_errors() as err:
        root = _root_cause(err)
        if _is_backend_down(root):
            raise LLMUnavailable(f"The RAGAS judge is unavailable: {type(root).__name__}: {root}") from err
        return None, type(root).__name__, str(root) or type(err).__name__
    value = result.value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "no_judgement", "the judge's output held nothing to score (no statements or verdicts)"
    return float(value), None, None


def build_metrics(llm: InstructorBaseRagasLLM, embeddings: BaseRagasEmbedding, strictness: int = 3) -> dict[str, Any]:
    _no_tracking()
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, ContextRecall, Faithfulness

    return {
        "context_precision": ContextPrecision(llm=llm),
        "context_recall": ContextRecall(llm=llm),
        "faithfulness": Faithfulness(llm=llm),
        "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=embeddings, strictness=strictness),
    }


def metric_inputs(name: str, sample: RagasSample) -> dict[str, Any] | None:
    """The keyword arguments of ``ascore`` for one metric, or None when it does not apply."""
    if name in ("context_precision", "context_recall"):
        if not sample.contexts:
            return None
        return {"user_input": sample.question, "reference": sample.reference, "retrieved_contexts": sample.contexts}
    if not sample.answer:
        return None
    if name == "faithfulness":
        if not sample.answer_contexts:
            return None
        return {"user_input": sample.question, "response": sample.answer, "retrieved_contexts": sample.answer_contexts}
    if name == "answer_relevancy":
        return {"user_input": sample.question, "response": sample.answer}
    raise ValueError(f"unknown RAGAS metric {name!r}")


async def _score_samples(samples: Sequence[RagasSample], metrics: Mapping[str, Any],
                         concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(max(1, concurrency))
    tallies = {name: MetricTally() for name in metrics}
    per_question: dict[str, dict[str, Any]] = {s.qid: {"qid": s.qid, "scores": {}, "errors": {}} for s in samples}

    async def one(sample: RagasSample, name: str) -> None:
        kwargs = metric_inputs(name, sample)
        if kwargs is None:
            tallies[name].skipped += 1
            per_question[sample.qid]["scores"][name] = None
            return
        async with gate:
            value, kind, message = await _judge(metrics[name], kwargs)
        per_question[sample.qid]["scores"][name] = value
        if value is None:
            tallies[name].add_error(kind or "error", message or "")
            per_question[sample.qid]["errors"][name] = f"{kind}: {message}"
        else:
            tallies[name].scores.append(value)

    await asyncio.gather(*(one(s, name) for s in samples for name in metrics))
    return {
        "n": len(samples),
        "metrics": {name: tally.to_dict() for name, tally in tallies.items()},
        "questions": [per_question[s.qid] for s in samples],
    }


def evaluate_ragas(
    runs: Mapping[str, Sequence[QuestionResult]], schema_of: Callable[[QuestionResult], Schema],
    metrics: Mapping[str, Any], limit: int = DEFAULT_LIMIT, concurrency: int = 2,
) -> dict[str, Any]:
    """RAGAS figures of every configuration, on its first ``limit`` questions (in run order).
    ``metrics`` comes from :func:`build_metrics` (a metric name to a ragas collections metric)."""
    _no_tracking()
    out: dict[str, Any] = {}
    for config, results in runs.items():
        samples = [sample_of(r, schema_of(r)) for r in list(results)[:limit]]
        out[config] = _run_to_completion(_score_samples(samples, metrics, concurrency))
    return out


def _run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` that also works where this thread already runs an event loop (a notebook, a
    Playwright or Gradio session in the same process): there the coroutine gets a loop of its own in a
    short-lived worker thread, and its result or exception comes back here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragas") as pool:
        return pool.submit(asyncio.run, coro).result()
