"""The whole evaluation as one function, :func:`evaluate`: what ``sqlsage eval`` runs (``cli.eval_commands``),
and what the benchmark script and the tests call directly (the tests with a scripted model).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.llm import build_chat_model, open_endpoint
from agent.service import open_knowledge
from core.config import Endpoint, Settings, Techniques
from core.db import db_key
from core.errors import SqlsageError
from core.measured import Figures, write_own
from evals.dataset import heldout_db_ids, load_questions, select
from evals.ladder import REFERENCE, resolve, validate
from evals.ragas_metrics import Embedder, build_metrics, evaluate_ragas, judge_llm, ragas_embeddings
from evals.report import ConfigSummary, ReportFiles, write_reports
from evals.runner import AssistantPool, QuestionResult, RunOptions, backfill, run_ladder
from knowledge.embeddings import MiniLMEmbedder
from knowledge.retrieval import Retriever

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

DEFAULT_OUT_ROOT = Path("var") / "eval"


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: the questions, the configurations, and where the results go."""

    data: Path
    db_dir: Path | None = None
    db_url: str | None = None  # the database of a user file (Spider files name their own)
    split: str = "all"
    limit: int | None = None
    seed: int | None = None
    by_database: bool = False  # ask the chosen questions database by database
    databases: int | None = None  # only the questions of the first N (shuffled) databases
    per_database: int | None = None  # at most this many questions of each database
    configs: tuple[str, ...] = ("baseline",)
    out: Path | None = None
    workers: int = 2
    ragas: bool = False
    ragas_limit: int = 20
    timeout_s: float = 30.0
    progress: bool = True
    reference: bool = True  # run the plain-prompt `script` rung too, beside the others
    knowledge: bool = False  # open the knowledge store (few-shot examples, values, schema linking)


@dataclass
class EvalOutcome:
    out_dir: Path
    runs: dict[str, list[QuestionResult]]
    summaries: list[ConfigSummary]
    files: ReportFiles
    ragas: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def default_out_dir(now: datetime | None = None) -> Path:
    return DEFAULT_OUT_ROOT / (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


def resolve_configs(names: Sequence[str], ragas: bool = False, reference: bool = True) -> dict[str, Techniques]:
    """The Techniques of each named configuration; with RAGAS, the written answer is on (it is judged).
    With ``reference``, the plain-prompt ``script`` rung runs too (first, or right after ``baseline``)
    unless it is named already."""
    validate()
    if len(set(names)) != len(names):
        raise SqlsageError(f"A configuration is named twice in {list(names)}.")
    names = list(names)
    if reference and REFERENCE not in names:
        names.insert(names.index("baseline") + 1 if "baseline" in names else 0, REFERENCE)
    configs = {name: resolve(name) for name in names}
    if ragas:
        configs = {name: t.model_copy(update={"answer": True}) for name, t in configs.items()}
    return configs


def evaluate(
    request: EvalRequest, settings: Settings, llm: BaseChatModel | None = None, judge: Any = None,
    embedder: Embedder | None = None, knowledge: Retriever | None = None,
) -> EvalOutcome:
    """Run the configurations on the questions, then RAGAS if asked, and write the reports.

    Without ``llm`` the model endpoint of ``settings`` is used (the local server is started and
    stopped here when there is none); RAGAS then judges with that endpoint's model. With ``llm`` (a
    test), RAGAS needs ``judge``. ``embedder`` defaults to the offline MiniLM embedder.

    The retrieval techniques need a knowledge store: ``knowledge``, or with ``request.knowledge`` the
    one under the data folder. Examples from the databases being evaluated, and from the held-out
    databases, are never retrieved; the example pool is not indexed by an evaluation (see
    ``agent.service.start_pool``), so it cannot bring them in.
    """
    configs = resolve_configs(request.configs, request.ragas, request.reference)
    questions = select(
        load_questions(request.data, request.db_dir, request.db_url or settings.db_url),
        request.split, request.limit, request.seed, request.by_database,  # type: ignore[arg-type]
        request.databases, request.per_database,
    )
    out_dir = request.out or default_out_dir()
    options = RunOptions(out_dir, request.workers, request.timeout_s, request.progress)
    began = time.time()
    endpoint: Endpoint | None = None
    server = None
    opened_knowledge = knowledge is None and request.knowledge
    try:
        if opened_knowledge:
            knowledge = open_knowledge(settings)
        if knowledge is not None:
            # Neither the databases asked about nor the held-out ones (a store the UI filled holds the whole
            # shipped pool, held-out databases included). The evaluation never indexes the pool itself.
            knowledge.excluded_dbs = (knowledge.excluded_dbs | heldout_db_ids()
                                      | {db_key(q.db_url) for q in questions})
        if llm is None:
            endpoint, server = open_endpoint(settings)
            llm = build_chat_model(settings, endpoint)
        with AssistantPool(settings, llm, knowledge) as pool:
            runs = run_ladder(configs, questions, pool, options)
            ragas = None
            if request.ragas:
                ragas = _ragas(runs, questions, pool, settings, endpoint, judge, embedder, request)
    finally:
        if server is not None:
            server.stop()
        if opened_knowledge and knowledge is not None:
            knowledge.close()
    info = {
        "data": str(request.data), "split": request.split, "limit": request.limit, "sample_seed": request.seed,
        "by_database": request.by_database, "databases_asked": request.databases,
        "per_database": request.per_database,
        "questions": len(questions), "databases": len({q.db_id for q in questions}),
        "configs": {name: _changed(t) for name, t in configs.items()},
        "model": endpoint.model if endpoint else type(llm).__name__,
        "base_url": endpoint.base_url if endpoint else None, "workers": request.workers,
        "knowledge": knowledge is not None,
        "started": datetime.fromtimestamp(began).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - began, 1),
    }
    by_id = {q.qid: q for q in questions}  # results recorded before the official verdict and failure map
    runs = {name: [backfill(r, by_id[r.qid], request.timeout_s) for r in results] for name, results in runs.items()}
    if request.ragas:
        info["ragas_questions"] = min(request.ragas_limit, len(questions))
    summaries, files = write_reports(out_dir, runs, info, ragas)
    remember_figures(settings.data_dir, questions, summaries)
    return EvalOutcome(out_dir, runs, summaries, files, ragas, info)


def remember_figures(data_dir: Path, questions: Sequence[Any], summaries: Sequence[ConfigSummary]) -> Path | None:
    """Keep each configuration's accuracy and median seconds of a run on one database under the data
    folder (``core.measured``), where the UI shows them beside its presets in place of the shipped
    figures. A run over several databases (the benchmark's) is nobody's own database: nothing is kept."""
    urls = {q.db_url for q in questions}
    if len(urls) != 1:
        return None
    rungs = {s.config: Figures(s.n, s.correct, round(s.median_s, 2), techniques=dict(s.techniques))
             for s in summaries if s.n and s.median_s is not None}
    return write_own(data_dir, urls.pop(), rungs) if rungs else None


def _changed(techniques: Techniques) -> dict[str, Any]:
    """The switches that differ from the defaults (the whole set is in each result)."""
    default = Techniques().model_dump(mode="json")
    return {k: v for k, v in techniques.model_dump(mode="json").items() if default.get(k) != v}


def _ragas(
    runs: Mapping[str, Sequence[QuestionResult]], questions: Sequence[Any], pool: Any, settings: Settings,
    endpoint: Endpoint | None, judge: Any, embedder: Embedder | None, request: EvalRequest,
) -> dict[str, Any]:
    if judge is None:
        if endpoint is None:
            raise SqlsageError("RAGAS needs a judge: give one, or let the evaluation open the model endpoint.")
        judge = judge_llm(endpoint, settings)
    if embedder is None:
        embedder = MiniLMEmbedder(cache_dir=settings.cache_dir / "embeddings")
    url_of = {q.qid: q.db_url for q in questions}
    metrics = build_metrics(judge, ragas_embeddings(embedder))
    return evaluate_ragas(
        runs, lambda r: pool.get(url_of[r.qid]).deps.db.schema(), metrics, request.ragas_limit, request.workers
    )
