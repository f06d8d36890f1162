"""Benchmark: the ``baseline`` configuration on 100 held-out Spider questions (sample seed 0).

Prints execution accuracy (overall and by hardness), seconds per question (median, p95), model calls and
tokens, and writes them to benchmarks/results/eval_baseline.json. The full run (reports, per-question
results) goes to var/eval/bench-baseline-<timestamp>, or to --run-dir, which also resumes an interrupted run.

    .venv/bin/python benchmarks/eval_baseline.py --base-url http://127.0.0.1:18080/v1 --model qwen2.5-coder-1.5b

Without --base-url the local model is started (and stopped) for the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "data" / "spider-train")
    parser.add_argument("--base-url", help="a running OpenAI-compatible endpoint (default: start the local model)")
    parser.add_argument("--model", help="model name at the endpoint")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run-dir", type=Path, help="where the run goes (default: var/eval/bench-baseline-<time>)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "eval_baseline.json")
    args = parser.parse_args(argv)
    if not (args.spider / "train.json").exists():
        print(f"skipped: no Spider data at {args.spider}", file=sys.stderr)
        return 0

    from core.config import Settings
    from evals.evaluate import EvalRequest, evaluate
    from evals.report import hardness_table, ladder_table

    settings = Settings().with_overrides(base_url=args.base_url, model=args.model)
    run_dir = args.run_dir or REPO / "var" / "eval" / f"bench-baseline-{datetime.now():%Y%m%d-%H%M%S}"
    request = EvalRequest(
        data=args.spider / "train.json", db_dir=args.spider / "database", split="heldout", limit=args.limit,
        seed=args.seed, configs=("baseline",), out=run_dir, workers=args.workers,
    )
    outcome = evaluate(request, settings)
    (s,) = outcome.summaries
    figures = {
        "benchmark": "eval_baseline",
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": settings.threads},
        "model": outcome.info["model"], "base_url": outcome.info["base_url"],
        "questions": s.n, "split": "heldout", "sample_seed": args.seed, "workers": args.workers,
        "execution_accuracy": s.accuracy, "correct": s.correct,
        "by_hardness": s.by_hardness, "exact_match": s.exact_match, "executed": s.exec_rate,
        "seconds_per_question": {"median": s.median_s, "p95": s.p95_s},
        "wall_seconds": outcome.info["wall_seconds"],
        "model_calls_per_question": s.mean_calls,
        "tokens_per_question": {"prompt": s.mean_prompt_tokens, "completion": s.mean_completion_tokens},
        "retrieval": s.retrieval,
        "run_dir": str(run_dir),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(ladder_table(outcome.summaries))
    print()
    print(hardness_table(outcome.summaries))
    print(f"\nwrote {args.out}; run in {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
