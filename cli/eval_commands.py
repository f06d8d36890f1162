"""``sqlsage eval`` and ``sqlsage export-finetune``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.options import EXIT_FAILED, EXIT_OK, add_common, settings_from
from evals import finetune
from evals.dataset import SPLITS, load_questions
from evals.evaluate import EvalRequest, evaluate
from evals.report import ladder_table, ragas_table
from evals.runner import QuestionResult


def cmd_eval(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    request = EvalRequest(
        data=args.data, db_dir=args.db_dir, db_url=args.db_url, split=args.split, limit=args.limit,
        seed=args.sample_seed, by_database=args.by_database, databases=args.databases,
        per_database=args.per_database, configs=tuple(args.config), out=args.out,
        workers=args.workers, ragas=args.ragas,
        ragas_limit=args.ragas_limit, timeout_s=args.query_timeout, progress=not args.no_progress,
        knowledge=args.knowledge, reference=not args.no_reference,
    )
    outcome = evaluate(request, settings)
    print(ladder_table(outcome.summaries))
    if outcome.ragas:
        print()
        print(ragas_table(outcome.ragas))
    print(f"\nreports: {outcome.files.markdown}, {outcome.files.json}, {outcome.files.chart}")
    return EXIT_OK


def cmd_export_finetune(args: argparse.Namespace) -> int:
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


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``eval`` and ``export-finetune`` to the ``sqlsage`` parser's subcommands."""
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
    ev.add_argument("--databases", type=int, metavar="N",
                    help="only the questions of N databases (the first N after shuffling), before --limit")
    ev.add_argument("--per-database", type=int, metavar="K", help="at most K questions of each database")
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
    ev.add_argument("--no-reference", action="store_true",
                    help="do not add the plain-prompt reference rung 'script' (added by default)")
    add_common(ev)
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
    add_common(ex)
    ex.set_defaults(func=cmd_export_finetune)
