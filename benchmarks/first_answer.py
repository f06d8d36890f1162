"""Benchmark: a new user's first answer, on the first run ever and after a restart with the saved cache.

What the UI's launch does, in-process (without gradio): start the local model, open the knowledge store,
index the example pool and the database in the background, open the assistant and warm the model with the
schema prompt; that is "ready". Then, 10 s later (a person typing), "How many artists are there?" is
asked with the product's default techniques, then a second question (a warm one). Run twice on the same,
initially empty, data and cache folders (temporary; the model file is linked in, not copied): the first
run ever, and a restart that finds the pool and the database indexed and the schema's slot saved.

Prints a table and writes benchmarks/results/first_answer.json. CPU heavy: run it under ``nice``.

    .venv/bin/python benchmarks/first_answer.py [--pause 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIRST = "How many artists are there?"
SECOND = "How many albums does each artist have? Show the top 5."


def run_once(settings: Any, pause_s: float, label: str) -> dict[str, Any]:
    """One launch of the product: seconds to ready, to the first answer (asked ``pause_s`` after ready)
    and to a second one; where the first answer's seconds went (its steps); the background work."""
    from agent.llm import EndpointStarter
    from agent.service import Assistant, open_knowledge, start_database_index, start_pool
    from tools.registry import ToolRegistry

    began = time.monotonic()
    starting = EndpointStarter(settings)
    knowledge = open_knowledge(settings)
    pool = start_pool(settings, knowledge)
    result: dict[str, Any] = {"run": label}
    try:
        with Assistant.open(settings, knowledge=knowledge, tools=ToolRegistry.default(settings.tool_specs),
                            starting=starting) as assistant:
            db_index = start_database_index(knowledge, assistant.deps.db)
            warmer = assistant.start_warming()
            result["ready_s"] = round(time.monotonic() - began, 2)
            result["server_start_s"] = round(assistant.server.startup_seconds, 2) if assistant.server else None
            time.sleep(pause_s)
            for key, question in (("first", FIRST), ("second", SECOND)):
                t = time.monotonic()
                record = assistant.ask(question)
                result[f"{key}_answer_s"] = round(time.monotonic() - t, 2)
                result[f"{key}_ok"] = record.ok
                result[f"{key}_sql"] = record.sql
                result[f"{key}_steps"] = steps_of(record.trace)
                print(f"{label}: {key} answer in {result[f'{key}_answer_s']} s", file=sys.stderr, flush=True)
                if key == "first":
                    result["first_answer"] = record.answer or record.error
            if warmer is not None:
                result["warm"] = {"how": warmer.how, "state": warmer.state, "seconds": round(warmer.seconds, 2),
                                  "error": warmer.error}
            if db_index is not None:
                db_index.stop()
                result["database_index"] = db_index.line()
    finally:
        starting.close()
        if pool is not None:
            result["pool"] = pool.line()
            pool.stop()
        knowledge.close()
    return result


def steps_of(trace: list[Any]) -> list[dict[str, Any]]:
    """Where an answer's seconds went: each step's node, seconds, seconds in the model, prompt tokens."""
    return [{"node": s.node, "seconds": round(s.duration_s, 2), "model_seconds": round(s.model_seconds, 2),
             "prompt_tokens": s.prompt_tokens} for s in trace]


def table(runs: list[dict[str, Any]]) -> str:
    """The runs as a fixed-width table: seconds to ready, to the first and the second answer, and how
    the schema prompt got into the server."""
    head = f"{'run':<10} {'ready s':>8} {'1st answer s':>13} {'2nd answer s':>13} {'1st/2nd':>8}  warm"
    lines = [head, "-" * len(head)]
    for r in runs:
        first, second = r.get("first_answer_s"), r.get("second_answer_s")
        ratio = f"{first / second:.2f}" if first and second else "-"
        warm = r.get("warm") or {}
        how = f"{warm.get('how') or warm.get('state', '-')} in {warm.get('seconds', 0):.1f} s" if warm else "-"
        lines.append(f"{r['run']:<10} {r.get('ready_s', float('nan')):>8.1f} {first or float('nan'):>13.1f} "
                     f"{second or float('nan'):>13.1f} {ratio:>8}  {how}")
    return "\n".join(lines)


def fresh_folders(root: Path, models: Path) -> tuple[Path, Path]:
    """An empty data folder and a cache folder whose ``models`` is the real one (linked, not copied)."""
    data, cache = root / "data", root / "cache"
    data.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "models").exists():
        os.symlink(models, cache / "models")
    return data, cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between ready and the first question")
    parser.add_argument("--models", type=Path, default=Path.home() / ".cache" / "sqlsage" / "models",
                        help="the folder holding the local model file")
    parser.add_argument("--keep", type=Path, help="use (and keep) this folder instead of a temporary one")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "first_answer.json")
    args = parser.parse_args(argv)

    from core.config import Settings

    if not args.models.is_dir():
        print(f"skipped: no model folder at {args.models}", file=sys.stderr)
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="sqlsage-first-"))
    data, cache = fresh_folders(root, args.models)
    settings = Settings(data_dir=data, cache_dir=cache)
    runs = []
    try:
        for label in ("first run", "restart"):
            runs.append(run_once(settings, args.pause, label))
            print(json.dumps(runs[-1], default=str), file=sys.stderr, flush=True)
            write(args.out, settings, args.pause, runs)  # what is measured so far, should a later run fail
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(table(runs))
    return 0


def write(out: Path, settings: Any, pause_s: float, runs: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "pause_s": pause_s, "threads": settings.threads,
              "techniques": settings.techniques.model_dump(), "runs": runs}
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
