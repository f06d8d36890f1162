"""Run configurations of the agent over evaluation questions and score every answer.

One :class:`Assistant` per database (opened once, shared by the worker threads), one JSONL file of
results per configuration in the output folder, appended to as each question finishes: a re-run
with the same folder asks only the questions that have no result yet.

A question's answer is scored by execution: Spider's execution match on the SQLite file when there is
one, else gold and prediction both run through the agent's own guarded ``Database.run`` and compared
with :func:`evals.accuracy.results_match`. Each result also carries the official evaluator's verdict
(:func:`evals.accuracy.official_match`) and, for a miss, its failure category (:mod:`evals.failures`).
The model's mistakes (no SQL, SQL that fails) are results;
a broken backend (the model server or the database unavailable) stops the run, so that it is never
recorded as a wrong answer.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from agent.prompts import ROWS_SHOWN
from agent.service import AnswerRecord, Assistant
from core.config import Settings, Techniques
from core.db import Database, QueryError, jsonable, jsonable_rows, mask_url
from core.errors import DatabaseUnavailable, SqlsageError
from core.guard import UnsafeSQLError
from core.prompt_sets import prompt_set
from core.sqlshape import hardness, normalize_sql
from evals.accuracy import ExecResult, execute_readonly, gold_has_order_by, official_match, results_match
from evals.dataset import EvalQuestion
from evals.failures import Failure, classify
from evals.retrieval import scores_for_trace

if TYPE_CHECKING:
    from knowledge.retrieval import Retriever

# Errors of the backend, not of the model: the run stops instead of recording a wrong answer.
FATAL_ERROR_KINDS = frozenset({"LLMUnavailable", "DatabaseUnavailable", "ModelFileError"})


class RunError(SqlsageError):
    """The run cannot go on (a broken backend, or an output folder that belongs to another run)."""


@dataclass
class QuestionResult:
    """One question answered by one configuration: what was asked, what came back, how it scored."""

    config: str
    qid: str
    db_id: str
    db_url: str  # with any password masked
    question: str
    gold: str
    hardness: str
    prediction: str | None
    match: bool
    exact_match: bool
    executed: bool  # the predicted SQL ran without an error when scored
    error: str | None  # the agent's error, if it gave up
    error_kind: str | None
    exec_error: str | None  # the predicted SQL's error when scored
    gold_error: str | None  # the gold SQL's error (a broken gold query scores as a miss)
    seconds: float  # wall clock of the whole question
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    retrieval: dict[str, float | None] | None
    answer: str | None
    columns: list[str]
    rows: list[list[Any]]  # the first rows the answer was written from
    techniques: dict[str, Any]
    # Lines written before these were recorded load with None (see backfill):
    official_match: bool | None = None  # the official test-suite evaluator's verdict
    failure: str | None = None  # for a miss: its key in evals.failures.CATEGORIES
    failure_detail: str | None = None  # what the failure check saw
    trace: list[dict[str, Any]] = field(default_factory=list)
    # The prompt set asked with: its name, version and each file's hash (agent.prompts.PromptSet.describe).
    prompts: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionResult:
        return cls(**data)


@dataclass(frozen=True)
class Verdict:
    match: bool
    executed: bool
    exec_error: str | None
    gold_error: str | None
    official_match: bool = False
    failure: Failure | None = None  # for a miss


def _as_exec(run: Callable[[], Any]) -> ExecResult:
    began = time.monotonic()
    try:
        result = run()
    except UnsafeSQLError as err:
        return ExecResult([], [], f"refused: {err.reason}", time.monotonic() - began)
    except QueryError as err:
        return ExecResult([], [], str(err), time.monotonic() - began)
    return ExecResult(list(result.columns), [tuple(r) for r in result.rows], None, result.seconds)


def score(question: EvalQuestion, prediction: str | None, db: Database, timeout_s: float = 30.0) -> Verdict:
    """Execution match of ``prediction`` against the gold SQL, the official evaluator's verdict and, for a
    miss, its failure category (raises DatabaseUnavailable)."""
    path = question.db_path
    if path is not None:
        def run(sql: str) -> ExecResult:
            return execute_readonly(path, sql, timeout_s)
    else:
        def run(sql: str) -> ExecResult:
            return _as_exec(lambda: db.run(sql))
    gold = run(question.gold)
    return verdict_of(question.gold, prediction, gold, run(prediction) if prediction is not None else None, run,
                      db.dialect)


def verdict_of(gold_sql: str, prediction: str | None, gold: ExecResult, pred: ExecResult | None,
               run: Callable[[str], ExecResult], dialect: str = "sqlite") -> Verdict:
    """Score the results of the gold and predicted SQL (``run`` runs the official evaluator's rewrites)."""
    if prediction is None or pred is None:
        return Verdict(False, False, "no SQL", gold.error, False, classify(gold_sql, None, gold, None, dialect))
    match = results_match(gold, pred, order_matters=gold_has_order_by(gold_sql))
    official = official_match(gold_sql, prediction, gold, pred, run, dialect)
    failure = None if match else classify(gold_sql, prediction, gold, pred, dialect)
    return Verdict(match, pred.ok, pred.error, gold.error, official, failure)


def result_of(
    config: str, techniques: Techniques, question: EvalQuestion, record: AnswerRecord, seconds: float,
    verdict: Verdict, dialect: str = "sqlite",
) -> QuestionResult:
    trace = [step.to_dict() for step in record.trace]
    totals = record.totals()
    prediction = record.sql
    retrieval = scores_for_trace(trace, question.gold, dialect)
    exact = prediction is not None and normalize_sql(prediction, dialect) == normalize_sql(question.gold, dialect)
    return QuestionResult(
        config=config, qid=question.qid, db_id=question.db_id, db_url=mask_url(question.db_url),
        question=question.question, gold=question.gold, hardness=hardness(question.gold, dialect),
        prediction=prediction,
        match=verdict.match, exact_match=exact, executed=verdict.executed, error=record.error,
        error_kind=record.error_kind, exec_error=verdict.exec_error, gold_error=verdict.gold_error,
        official_match=verdict.official_match, failure=verdict.failure.category if verdict.failure else None,
        failure_detail=verdict.failure.detail if verdict.failure else None,
        seconds=seconds, model_calls=int(totals["model_calls"]), prompt_tokens=int(totals["prompt_tokens"]),
        completion_tokens=int(totals["completion_tokens"]),
        retrieval=retrieval.to_dict() if retrieval is not None else None, answer=record.answer,
        columns=list(record.columns), rows=jsonable_rows(record.rows[:ROWS_SHOWN]),
        techniques=techniques.model_dump(mode="json"), trace=json.loads(json.dumps(trace, default=jsonable)),
        prompts=prompt_set(techniques.prompts).describe(),
    )


class AssistantPool:
    """One Assistant per database URL, opened on first use with the shared chat model (and knowledge
    store, for the retrieval techniques); thread-safe."""

    def __init__(self, settings: Settings, llm: BaseChatModel, knowledge: Retriever | None = None) -> None:
        self.settings = settings
        self.llm = llm
        self.knowledge = knowledge
        self._assistants: dict[str, Assistant] = {}
        self._lock = threading.Lock()

    def get(self, db_url: str) -> Assistant:
        with self._lock:
            assistant = self._assistants.get(db_url)
            if assistant is None:
                assistant = Assistant.open(
                    self.settings.with_overrides(db_url=db_url), llm=self.llm, knowledge=self.knowledge
                )
                assistant.deps.db.schema()  # reflect once here, not in several threads at once
                self._assistants[db_url] = assistant
            return assistant

    def close(self) -> None:
        with self._lock:
            for assistant in self._assistants.values():
                assistant.close()
            self._assistants.clear()

    def __enter__(self) -> AssistantPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_+.=-]")


def results_path(out_dir: Path, config: str) -> Path:
    return out_dir / f"{_UNSAFE_NAME.sub('_', config)}.jsonl"


class ResultStore:
    """The JSONL file of one configuration's results: read once, then appended to line by line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> dict[str, QuestionResult]:
        """Results by question id. A last line cut short by an interruption is dropped (and the file
        truncated before it); a broken line anywhere else is an error."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        results: dict[str, QuestionResult] = {}
        offset = 0
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    item = QuestionResult.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as err:
                    if number < len(lines) and any(rest.strip() for rest in lines[number:]):
                        raise RunError(f"{self.path}:{number} is not a result line ({err}).") from err
                    print(f"note: dropping an unfinished last line of {self.path}", file=sys.stderr)
                    with self.path.open("r+b") as fh:
                        fh.truncate(offset)
                    break
                results[item.qid] = item
            offset += len(line) + 1
        return results

    def append(self, result: QuestionResult) -> None:
        line = json.dumps(result.to_dict(), ensure_ascii=False, default=jsonable)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    workers: int = 2
    timeout_s: float = 30.0  # per query, when scoring
    progress: bool = True


def _check_resumable(done: dict[str, QuestionResult], questions: Sequence[EvalQuestion], techniques: Techniques,
                     path: Path) -> None:
    wanted = techniques.model_dump(mode="json")
    # A switch added since the run was recorded, asked for at its default, changes nothing: a new
    # switch's default keeps the old behaviour.
    defaults = Techniques().model_dump(mode="json")
    for q in questions:
        old = done.get(q.qid)
        if old is None:
            continue
        if old.question != q.question or old.gold != q.gold:
            raise RunError(f"{path} holds another question under id {q.qid!r}: it belongs to another data file. "
                           "Use a new --out folder.")
        version = prompt_set(techniques.prompts).version
        if old.prompts is not None and old.prompts.get("version") != version:
            raise RunError(f"{path} was run with other prompts (set {old.prompts.get('set')!r} version "
                           f"{old.prompts.get('version')}, now {version}). Use a new --out folder.")
        then = {k: old.techniques.get(k, defaults.get(k, "(absent)")) for k in old.techniques.keys() | wanted.keys()}
        if then != wanted:
            changed = {k: (then.get(k, "(absent)"), wanted.get(k, "(absent)"))
                       for k in sorted(then.keys() | wanted.keys())
                       if then.get(k, "(absent)") != wanted.get(k, "(absent)")}
            shown = ", ".join(f"{k}: {a} then, {b} now" for k, (a, b) in changed.items())
            raise RunError(f"{path} was run with other techniques ({shown}). Use a new --out folder.")


def ask_one(config: str, techniques: Techniques, question: EvalQuestion, pool: AssistantPool,
            timeout_s: float) -> QuestionResult:
    """Ask one question and score the answer; raises RunError when the backend is broken."""
    assistant = pool.get(question.db_url)
    began = time.monotonic()
    record = assistant.ask(question.question, techniques)
    seconds = time.monotonic() - began
    if record.error_kind in FATAL_ERROR_KINDS:
        raise RunError(f"Stopped at question {question.qid}: {record.error}")
    try:
        verdict = score(question, record.sql, assistant.deps.db, timeout_s)
    except DatabaseUnavailable as err:
        raise RunError(f"Stopped at question {question.qid}: {err}") from err
    return result_of(config, techniques, question, record, seconds, verdict, assistant.deps.db.dialect)


def run_config(
    config: str, techniques: Techniques, questions: Sequence[EvalQuestion], pool: AssistantPool, options: RunOptions
) -> list[QuestionResult]:
    """Every question's result for one configuration, asking only those not already in its JSONL file.
    At most ``options.workers`` questions are in flight at once. Results come back in question order."""
    from tqdm import tqdm

    store = ResultStore(results_path(options.out_dir, config))
    done = store.load()
    _check_resumable(done, questions, techniques, store.path)
    results = {q.qid: done[q.qid] for q in questions if q.qid in done}
    todo = [q for q in questions if q.qid not in results]
    bar = tqdm(total=len(questions), initial=len(results), desc=config, unit="q", disable=not options.progress,
               file=sys.stderr, dynamic_ncols=True)

    def show() -> None:
        if results:
            right = sum(r.match for r in results.values())
            bar.set_postfix_str(f"EX {right / len(results):.1%} ({right}/{len(results)})")

    show()
    executor = ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix=f"eval-{config}")
    futures: set[Future[QuestionResult]] = {
        executor.submit(ask_one, config, techniques, q, pool, options.timeout_s) for q in todo
    }
    pending = set(futures)

    def keep(finished: set[Future[QuestionResult]]) -> None:
        for future in finished:
            if not future.cancelled() and future.exception() is None:
                result = future.result()
                store.append(result)
                results[result.qid] = result
                bar.update(1)

    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            keep(finished)
            show()
            failed = next((f.exception() for f in finished if f.exception() is not None), None)
            if failed is not None:
                raise failed
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)  # questions already asked still finish ...
        keep({f for f in pending if f.done()})  # ... and are kept, so a re-run does not ask them again
        raise
    finally:
        bar.close()
    executor.shutdown(wait=True)
    return [results[q.qid] for q in questions]


def run_ladder(
    configs: dict[str, Techniques], questions: Sequence[EvalQuestion], pool: AssistantPool, options: RunOptions
) -> dict[str, list[QuestionResult]]:
    """Run every configuration, one after the other, on the same questions."""
    return {name: run_config(name, techniques, questions, pool, options) for name, techniques in configs.items()}


def backfill(result: QuestionResult, question: EvalQuestion, timeout_s: float = 30.0) -> QuestionResult:
    """A result recorded before the official verdict and the failure category were, with them computed
    now from its stored SQL, when the question has a SQLite file to run it on (no model is asked; the
    recorded ``match`` stays). Others come back unchanged: the report counts them as unknown. Nothing
    is written back to the JSONL file."""
    path = question.db_path
    if result.official_match is not None or path is None or question.gold != result.gold:
        return result

    def run(sql: str) -> ExecResult:
        return execute_readonly(path, sql, timeout_s)

    prediction = result.prediction
    gold, pred = run(result.gold), run(prediction) if prediction is not None else None
    verdict = verdict_of(result.gold, prediction, gold, pred, run)
    # a miss that matches when run again (a timeout then, say) still gets a category: the checks' verdict
    failure = None if result.match else verdict.failure or classify(result.gold, prediction, gold, pred)
    return replace(result, official_match=verdict.official_match,
                   failure=failure.category if failure else None, failure_detail=failure.detail if failure else None)
