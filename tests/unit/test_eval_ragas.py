"""RAGAS metrics with a fake judge and a fake embedder: scores, counted judge errors, the wiring."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import BaseMessage

from agent.testing import ScriptedChatModel
from core.config import Settings
from core.db import Database
from evals.evaluate import EvalRequest, evaluate
from evals.runner import QuestionResult

pytest.importorskip("ragas")

from ragas.llms.base import InstructorBaseRagasLLM  # noqa: E402

from evals.ragas_metrics import (  # noqa: E402
    build_metrics,
    evaluate_ragas,
    example_text,
    ragas_embeddings,
    sample_of,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "eval"
SPIDER = FIXTURES / "spider" / "questions.json"
TINY = FIXTURES / "spider" / "database" / "tiny" / "tiny.sqlite"
URL = f"sqlite:///{TINY}"

GOOD: dict[str, Any] = {
    "ContextPrecisionOutput": {"reason": "useful", "verdict": 1},
    "ContextRecallOutput": {"classifications": [
        {"statement": "a", "reason": "r", "attributed": 1}, {"statement": "b", "reason": "r", "attributed": 0}]},
    "StatementGeneratorOutput": {"statements": ["There are 5 singers."]},
    "NLIStatementOutput": {"statements": [{"statement": "There are 5 singers.", "reason": "r", "verdict": 1}]},
    "AnswerRelevanceOutput": {"question": "How many singers are there?", "noncommittal": 0},
}


class FakeJudge(InstructorBaseRagasLLM):
    """Answers by the response model's name; an entry may be an exception, or output that does not fit."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs
        self.calls: list[str] = []

    def generate(self, prompt: str, response_model: Any) -> Any:
        self.calls.append(response_model.__name__)
        out = self.outputs[response_model.__name__]
        if isinstance(out, BaseException):
            raise out
        return response_model.model_validate(out)  # a misfit raises pydantic's ValidationError

    async def agenerate(self, prompt: str, response_model: Any) -> Any:
        return self.generate(prompt, response_model)


class BagOfWords:
    """A tiny deterministic embedder: hashed words, L2-normalised."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def result(qid: str, answer: str | None, tables: list[str], examples: list[Any] | None = None) -> QuestionResult:
    trace: list[dict[str, Any]] = [{"node": "context", "output": {"tables": tables, "columns": []}}]
    if examples is not None:
        trace.insert(0, {"node": "retrieve", "output": {"examples": examples}})
    return QuestionResult(
        config="baseline", qid=qid, db_id="tiny", db_url=URL, question="How many singers are there?",
        gold="SELECT count(*) FROM singer", hardness="easy",
        prediction="SELECT COUNT(*) FROM singer" if answer else None,
        match=True, exact_match=True, executed=True, error=None, error_kind=None, exec_error=None, gold_error=None,
        seconds=1.0, model_calls=2, prompt_tokens=10, completion_tokens=5, retrieval=None, answer=answer,
        columns=["COUNT(*)"], rows=[[5]], techniques={"sample_rows": 1}, trace=trace,
    )


@pytest.fixture(scope="module")
def schema() -> Any:
    db = Database.open(URL)
    try:
        return db.schema()
    finally:
        db.close()


def test_the_embedding_adapter_is_a_modern_ragas_embedding() -> None:
    from ragas.embeddings.base import BaseRagasEmbedding

    emb = ragas_embeddings(BagOfWords())
    assert isinstance(emb, BaseRagasEmbedding)
    vec = emb.embed_text("how many singers")
    assert len(vec) == 64 and math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-5)
    assert len(emb.embed_texts(["a", "b c"])) == 2


def test_samples_hold_the_schema_tables_examples_and_the_answers_sources(schema: Any) -> None:
    sample = sample_of(result("q1", "There are 5 singers.", ["singer", "concert"],
                              [{"question": "How many concerts?", "sql": "SELECT count(*) FROM concert"}]), schema)
    assert [c.split("(", 1)[0].strip() for c in sample.contexts[:2]] == ["CREATE TABLE singer", "CREATE TABLE concert"]
    assert "1 example rows" in sample.contexts[0]  # the result's own sample_rows setting
    assert sample.contexts[2] == "Question: How many concerts?\nSQL: SELECT count(*) FROM concert"
    assert sample.answer_contexts == ["SQL:\nSELECT COUNT(*) FROM singer", "Result:\nCOUNT(*)\n5"]
    assert example_text("plain") == "plain" and example_text({"x": 1}) == '{"x": 1}'


def test_scores_with_a_fake_judge(schema: Any) -> None:
    judge = FakeJudge(GOOD)
    metrics = build_metrics(judge, ragas_embeddings(BagOfWords()))
    runs = {"baseline": [result("q1", "There are 5 singers.", ["singer", "concert"]),
                         result("q2", None, ["singer"]), result("q3", "5.", ["singer"])]}
    out = evaluate_ragas(runs, lambda r: schema, metrics, limit=2)["baseline"]
    assert out["n"] == 2  # the limit
    m = out["metrics"]
    assert m["context_precision"]["mean"] == pytest.approx(1.0) and m["context_precision"]["scored"] == 2
    assert m["context_recall"]["mean"] == pytest.approx(0.5)
    assert m["faithfulness"]["mean"] == pytest.approx(1.0)
    assert m["answer_relevancy"]["mean"] == pytest.approx(1.0, abs=1e-5)  # the same question came back
    # q2 has no written answer: faithfulness and relevancy do not apply (not an error)
    assert m["faithfulness"]["skipped"] == 1 and m["faithfulness"]["errors"] == 0
    assert out["questions"][1]["scores"]["faithfulness"] is None
    assert judge.calls.count("ContextPrecisionOutput") == 3  # one verdict per schema table given


def test_failed_or_unparseable_judgements_are_counted_not_scored(schema: Any) -> None:
    bad = dict(GOOD)
    bad["ContextRecallOutput"] = {"nonsense": True}  # does not fit the schema
    bad["StatementGeneratorOutput"] = {"statements": []}  # nothing to judge: the metric gives NaN
    bad["AnswerRelevanceOutput"] = json.JSONDecodeError("Expecting value", "oops", 0)
    metrics = build_metrics(FakeJudge(bad), ragas_embeddings(BagOfWords()))
    out = evaluate_ragas({"c": [result("q1", "There are 5 singers.", ["singer"])]}, lambda r: schema, metrics)["c"]
    m = out["metrics"]
    assert m["context_recall"] == {**m["context_recall"], "mean": None, "scored": 0, "errors": 1,
                                   "errors_by_kind": {"ValidationError": 1}}
    assert m["faithfulness"]["errors_by_kind"] == {"no_judgement": 1}
    assert m["answer_relevancy"]["errors_by_kind"] == {"JSONDecodeError": 1}
    assert m["context_precision"]["mean"] == pytest.approx(1.0)
    assert "ValidationError" in out["questions"][0]["errors"]["context_recall"]


def test_a_judge_that_cannot_be_reached_stops_the_evaluation(schema: Any) -> None:
    import httpx
    import openai

    from core.errors import LLMUnavailable

    down = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1"))
    metrics = build_metrics(FakeJudge({**GOOD, "ContextPrecisionOutput": down}), ragas_embeddings(BagOfWords()))
    with pytest.raises(LLMUnavailable, match="RAGAS judge"):
        evaluate_ragas({"c": [result("q1", "5", ["singer"])]}, lambda r: schema, metrics)


def _reply(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content)
    if "using only this result" in text:
        return "There are 5 singers."
    return "```sql\nSELECT COUNT(*) FROM singer\n```"


def test_ragas_runs_turn_on_the_answer_and_reach_the_report(tmp_path: Path) -> None:
    model = ScriptedChatModel().enqueue(*([_reply] * 20))
    settings = Settings(db_url=URL, data_dir=tmp_path, cache_dir=tmp_path)
    req = EvalRequest(data=SPIDER, out=tmp_path / "run", limit=2, ragas=True, ragas_limit=1, progress=False,
                      reference=False)
    outcome = evaluate(req, settings, llm=model, judge=FakeJudge(GOOD), embedder=BagOfWords())
    assert len(model.history) == 4  # SQL and a written answer for each question
    assert outcome.runs["baseline"][0].answer == "There are 5 singers."
    assert outcome.ragas is not None and outcome.ragas["baseline"]["n"] == 1
    assert "## RAGAS (LLM-judged)" in outcome.files.markdown.read_text()
    assert json.loads(outcome.files.json.read_text())["ragas"]["baseline"]["metrics"]["faithfulness"]["mean"] == 1.0


def test_scores_from_inside_a_running_event_loop(schema: Any) -> None:
    """A caller that already runs a loop in this thread (a notebook, Playwright's sync API in the same test
    session) still gets its figures: the scoring loop runs in a worker thread instead."""
    import asyncio
    import concurrent.futures

    metrics = build_metrics(FakeJudge(GOOD), ragas_embeddings(BagOfWords()))

    async def caller() -> dict[str, Any]:
        return evaluate_ragas({"c": [result("q1", "There are 5 singers.", ["singer"])]}, lambda r: schema, metrics)

    # In a thread of its own, so that the caller's loop is the only one (the test session may run another).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        out = pool.submit(asyncio.run, caller()).result()["c"]
    assert out["n"] == 1 and out["metrics"]["faithfulness"]["mean"] == pytest.approx(1.0)
