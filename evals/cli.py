"""The ``sqlsage eval`` and ``sqlsage export-finetune`` commands.

``agent.cli`` adds them with ``add_commands(sub)``. :func:`evaluate` is the whole evaluation as one
function (the benchmark script and the tests call it directly, the tests with a scripted model).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Endpoint, Settings, Techniques
from core.errors import SqlsageError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from evals.ragas_metrics import Embedder
    from evals.report import ConfigSummary, ReportFiles
    from evals.runner import QuestionResult
    from knowledge.retrieval import Retriever

EXIT_OK, EXIT_FAILED = 0, 1
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
    configs: tuple[str, ...] = ("baseline",)
    out: Path | None = None
    workers: int = 2
    ragas: bool = False
    ragas_limit: int = 20
    timeout_s: float = 30.0
    progress: bool = True
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


def resolve_configs(names: Sequence[str], ragas: bool = False) -> dict[str, Techniques]:
    """The Techniques of each named configuration; with RAGAS, the written answer is on (it is judged)."""
    from evals.ladder import resolve, validate

    validate()
    if len(set(names)) != len(names):
        raise SqlsageError(f"A configuration is named twice in {list(names)}.")
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
    one under the data folder. Examples from the databases being evaluated are never retrieved.
    """
    from evals.dataset import load_questions, select
    from evals.report import write_reports
    from evals.runner import AssistantPool, RunOptions, run_ladder

    configs = resolve_configs(request.configs, request.ragas)
    questions = select(
        load_questions(request.data, request.db_dir, request.db_url or settings.db_url),
        request.split, request.limit, request.seed, request.by_database,  # type: ignore[arg-type]
    )
    out_dir = request.out or default_out_dir()
    options = RunOptions(out_dir, request.workers, request.timeout_s, request.progress)
    began = time.time()
    endpoint: Endpoint | None = None
    server = None
    opened_knowledge = knowledge is None and request.knowledge
    try:
        if opened_knowledge:
            from agent.service import open_knowledge

            knowledge = open_knowledge(settings)
        if knowledge is not None:
            from core.db import db_key

            knowledge.excluded_dbs = knowledge.excluded_dbs | {db_key(q.db_url) for q in questions}
        if llm is None:
            from agent.llm import build_chat_model, open_endpoint

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
        "by_database": request.by_database,
        "questions": len(questions), "databases": len({q.db_id for q in questions}),
        "configs": {name: _changed(t) for name, t in configs.items()},
        "model": endpoint.model if endpoint else type(llm).__name__,
        "base_url": endpoint.base_url if endpoint else None, "workers": request.workers,
        "knowledge": knowledge is not None,
        "started": datetime.fromtimestamp(began).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - began, 1),
    }
    if request.ragas:
        info["ragas_questions"] = min(request.ragas_limit, len(questions))
    summaries, files = write_reports(out_dir, runs, info, ragas)
    return EvalOutcome(out_dir, runs, summaries, files, ragas, info)


def _changed(techniques: Techniques) -> dict[str, Any]:
    """The switches that differ from the defaults (the whole set is in each result)."""
    default = Techniques().model_dump(mode="json")
    return {k: v for k, v in techniques.model_dump(mode="json").items() if default.get(k) != v}


def _ragas(
    runs: Mapping[str, Sequence[QuestionResult]], questions: Sequence[Any], pool: Any, settings: Settings,
    endpoint: Endpoint | None, judge: Any, embedder: Embedder | None, request: EvalRequest,
) -> dict[str, Any]:
    from evals.ragas_metrics import build_metrics, evaluate_ragas, judge_llm, ragas_embeddings

    if judge is None:
        if endpoint is None:
            raise SqlsageError("RAGAS needs a judge: give one, or let the evaluation open the model endpoint.")
        judge = judge_llm(endpoint, settings)
    if embedder is None:
        from knowledge.embeddings import MiniLMEmbedder

        embedder = MiniLMEmbedder(cache_dir=settings.cache_dir / "embeddings")
    url_of = {q.qid: q.db_url for q in questions}
    metrics = build_metrics(judge, ragas_embeddings(embedder))
    return evaluate_ragas(
        runs, lambda r: pool.get(url_of[r.qid]).deps.db.schema(), metrics, request.ragas_limit, request.workers
    )


# --------------------------------------------------------------------------------------------- commands


def cmd_eval(args: argparse.Namespace) -> int:
    from agent.cli import settings_from
    from evals.report import ladder_table

    settings = settings_from(args)
    request = EvalRequest(
        data=args.data, db_dir=args.db_dir, db_url=args.db_url, split=args.split, limit=args.limit,
        seed=args.sample_seed, by_database=args.by_database, configs=tuple(args.config), out=args.out,
        workers=args.workers, ragas=args.ragas,
        ragas_limit=args.ragas_limit, timeout_s=args.query_timeout, progress=not args.no_progress,
        knowledge=args.knowledge,
    )
    outcome = evaluate(request, settings)
    print(ladder_table(outcome.summaries))
    if outcome.ragas:
        from evals.report import ragas_table

        print()
        print(ragas_table(outcome.ragas))
    print(f"\nreports: {outcome.files.markdown}, {outcome.files.json}, {outcome.files.chart}")
    return EXIT_OK


def cmd_export_finetune(args: argparse.Namespace) -> int:
    from agent.cli import settings_from
    from evals import finetune
    from evals.dataset import load_questions

    settings = settings_from(args)
    if args.from_run is not None:
        def url_of(result: QuestionResult) -> str:  # a masked password cannot be used: take --db's URL
            return settings.db_url if "***" in result.db_url else result.db_url

        examples = finetune.examples_from_run(args.from_run, url_of)
    else:
        questions = load_questions(args.data, args.db_dir, settings.db_url)
        examples = finetune.examples_from_questions(questions, args.include_heldout)
    if not examples:
        print("error: no examples to export (a run with no correct answer?)", file=sys.stderr)
        return EXIT_FAILED
    note = finetune.heldout_note(examples)
    if note:
        print(note, file=sys.stderr)
    written = finetune.write_jsonl(examples, args.out, args.limit)
    print(f"wrote {written} example(s) to {args.out}")
    report = finetune.validate_finetune_file(args.out)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``eval`` and ``export-finetune`` to the ``sqlsage`` parser's subcommands."""
    from agent.cli import _common
    from evals.dataset import SPLITS

    ev = sub.add_parser(
        "eval", help="measure execution accuracy of technique configurations",
        description="Ask every question with each configuration, score by execution, write reports. "
        "Resumable: re-run with the same --out to finish an interrupted run.",
    )
    ev.add_argument("--data", type=Path, required=True,
                    help="questions: Spider's JSON (db_id/question/query) or your YAML/JSON list of {question, sql}")
    ev.add_argument("--db-dir", type=Path, help="Spider's databases, DIR/<db_id>/<db_id>.sqlite "
                    "(default: 'database' beside --data)")
    ev.add_argument("--split", choices=SPLITS, default="all",
                    help="'heldout': only the held-out Spider databases; 'pool': only the others (to tune a value)")
    ev.add_argument("--limit", type=int, help="ask only this many questions")
    ev.add_argument("--sample-seed", type=int, help="shuffle the questions with this seed before --limit")
    ev.add_argument("--by-database", action="store_true",
                    help="ask the chosen questions database by database, as a user does (the same questions; "
                    "the model server keeps each schema cached)")
    ev.add_argument("--config", nargs="+", default=["baseline"], metavar="NAME",
                    help="configurations of the technique ladder (evals/ladder.py), e.g. baseline +repair; "
                    "NAME:switch=value,... changes switches of one (full:escalate_min_logprob=-0.5)")
    ev.add_argument("--out", type=Path, help="output folder (default: var/eval/<timestamp>)")
    ev.add_argument("--workers", type=int, default=2, help="questions in flight at once (default 2)")
    ev.add_argument("--ragas", action="store_true", help="also compute RAGAS metrics (turns on the written answer)")
    ev.add_argument("--ragas-limit", type=int, default=20, help="RAGAS on the first N questions (default 20)")
    ev.add_argument("--knowledge", action="store_true",
                    help="open the knowledge store under the data folder, for configurations with retrieval "
                    "techniques (few-shot, values, schema linking); examples of the evaluated databases are excluded")
    ev.add_argument("--query-timeout", type=float, default=30.0, help="seconds per query when scoring")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(ev)
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser(
        "export-finetune", help="write OpenAI chat fine-tuning JSONL with the agent's own prompts",
        description="From a run: the questions answered correctly, with the model's SQL. From Spider data: "
        "the gold SQL, without the held-out databases. The file is then checked and summarised.",
    )
    source = ex.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-run", type=Path, help="the --out folder of an eval run")
    source.add_argument("--data", type=Path, help="questions in Spider's format (or your own, with --db)")
    ex.add_argument("--db-dir", type=Path, help="Spider's databases (default: 'database' beside --data)")
    ex.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    ex.add_argument("--limit", type=int, help="at most this many examples")
    ex.add_argument("--include-heldout", action="store_true", help="keep the held-out databases (--data only)")
    _common(ex)
    ex.set_defaults(func=cmd_export_finetune)
