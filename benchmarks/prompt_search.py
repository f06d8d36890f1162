"""The prompt search's table: every variant of one `sqlsage eval` run against that run's reference rung.

Reads the per-question results (``<config>.jsonl``) of an eval output folder, pairs every configuration
with the reference (``baseline`` by default) question by question, and prints one row each: questions
asked, execution accuracy, the official evaluator's figure, questions gained and lost against the
reference, median seconds, and the prompt set's version. Writes the same as JSON, with each row's
failure map (counts by category) and the ids of the questions it answered right, so two rows can still
be paired question by question once the run's folder is gone.

    .venv/bin/python benchmarks/prompt_search.py var/eval/search1 --out benchmarks/results/prompt_search.json

The run itself is an ordinary ladder run on the pool split, e.g.::

    .venv/bin/sqlsage eval --data ../shared/data/spider-train/train.json --split pool --sample-seed 13 \\
        --databases 10 --per-database 10 --by-database --workers 4 --out var/eval/search1 \\
        --config baseline baseline:prompts=no-join-line baseline:prompts=no-rules ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from evals.report import failure_map
from evals.runner import QuestionResult


def load_runs(run_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """config -> qid -> result, from every ``*.jsonl`` of the folder (a cut-short last line is skipped)."""
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(run_dir.glob("*.jsonl")):
        results: dict[str, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            results[item["qid"]] = item
        if results:
            runs[next(iter(results.values()))["config"]] = results
    return runs


def compare(runs: dict[str, dict[str, dict[str, Any]]], reference: str) -> list[dict[str, Any]]:
    base = runs[reference]
    rows = []
    for config, results in runs.items():
        shared = [qid for qid in results if qid in base]
        prompts = next(iter(results.values())).get("prompts") or {}
        rows.append({
            "config": config, "n": len(shared),
            "correct": sum(results[q]["match"] for q in shared),
            "reference_correct": sum(base[q]["match"] for q in shared),
            # recorded since the official figure exists (older lines: the eval report back-fills it)
            "official": sum(bool(results[q]["official_match"]) for q in shared)
            if all(results[q].get("official_match") is not None for q in shared) else None,
            "gained": sum(results[q]["match"] and not base[q]["match"] for q in shared),
            "lost": sum(base[q]["match"] and not results[q]["match"] for q in shared),
            "median_s": round(statistics.median(results[q]["seconds"] for q in shared), 1) if shared else None,
            "prompts": f"{prompts.get('set', '?')}@{prompts.get('version', '?')}",
            "failures": failure_map([QuestionResult.from_dict(results[q]) for q in shared])[0],
            "right": sorted(q for q in shared if results[q]["match"]),
        })
    return rows


def table(rows: list[dict[str, Any]], reference: str) -> str:
    lines = [f"| config | n | EX | EX (official) | vs {reference} | median s | prompts |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = r["correct"] - r["reference_correct"]
        official = "–" if r["official"] is None else r["official"]
        lines.append(f"| {r['config']} | {r['n']} | {r['correct']} | {official} | {delta:+d} "
                     f"(+{r['gained']}/−{r['lost']}) | {r['median_s']} | {r['prompts']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the --out folder of an eval run")
    parser.add_argument("--reference", default="baseline", help="the configuration to pair with (default baseline)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    runs = load_runs(args.run_dir)
    if args.reference not in runs:
        print(f"no results of {args.reference!r} in {args.run_dir} (found: {', '.join(runs) or 'none'})",
              file=sys.stderr)
        return 1
    rows = compare(runs, args.reference)
    print(table(rows, args.reference))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(args.run_dir), "reference": args.reference, "rows": rows},
                                       indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
