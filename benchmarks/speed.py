"""Benchmark: the cost of every step, per configuration of the ladder, on a fixed set of questions.

For each configuration: median and p95 seconds per question, model calls, prompt and completion tokens,
time to the first visible progress (the first step a UI would show), time outside the model (retrieval,
validation, execution, graph overhead), and the ratio of its median time to the baseline's. Also the
cold start (model server ready, knowledge store opened) and the peak memory of the app and the model
server. Prints a table and writes benchmarks/results/speed.json.

    .venv/bin/python benchmarks/speed.py [--base-url URL] [--limit 20] [--config baseline full] [--by-database]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else float("nan")


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "data" / "spider-train")
    parser.add_argument("--store", type=Path, default=REPO / "var" / "spider-data" / "knowledge",
                        help="a knowledge store holding the example pool (benchmarks/index_spider.py builds it)")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", nargs="+", default=["baseline", "full"])
    parser.add_argument("--by-database", action="store_true",
                        help="ask the questions database by database, as a user does (schemas stay cached)")
    parser.add_argument("--base-url", help="use a running endpoint instead of starting the local model")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args(argv)
    if not (args.spider / "train.json").exists():
        print(f"skipped: no Spider data at {args.spider}", file=sys.stderr)
        return 0

    from agent.llm import EndpointStarter, build_chat_model
    from agent.service import AnswerRecord, Assistant
    from agent.trace import Running
    from core.config import Endpoint, Settings
    from evals.dataset import heldout_db_ids, load_questions, select
    from evals.ladder import resolve
    from knowledge.embeddings import MiniLMEmbedder
    from knowledge.indexing import index_database
    from knowledge.retrieval import Retriever
    from knowledge.store import KnowledgeStore

    settings = Settings()
    cold: dict[str, float] = {}
    server = None
    began = time.monotonic()
    starting = None if args.base_url else EndpointStarter(settings)  # loads while the store opens, as the UI does
    t0 = time.monotonic()
    retriever = Retriever(KnowledgeStore(args.store, MiniLMEmbedder(settings.cache_dir / "embeddings")),
                          excluded_dbs=heldout_db_ids())  # never an example from an evaluation database
    retriever.store.count("example")
    retriever.examples("warm up", k=1)
    cold["store_open_s"] = round(time.monotonic() - t0, 2)
    if starting is None:
        endpoint = Endpoint(args.base_url, args.model, "not-needed")
    else:
        endpoint, server = starting.result()
        assert server is not None
        cold["model_server_ready_s"] = round(server.startup_seconds, 2)
        cold["one_after_the_other_s"] = round(server.startup_seconds + cold["store_open_s"], 2)
    llm = build_chat_model(settings, endpoint)
    cold["total_s"] = round(time.monotonic() - began, 2)  # both ready, the server started in the background

    questions = select(load_questions(args.spider / "train.json", args.spider / "database"), "heldout",
                       args.limit, args.seed, by_database=args.by_database)
    assistants: dict[str, Assistant] = {}
    results: dict[str, Any] = {}
    for name in args.config:
        techniques = resolve(name)
        rows = []
        for q in questions:
            if q.db_url not in assistants:
                assistants[q.db_url] = Assistant.open(settings.with_overrides(db_url=q.db_url), llm=llm,
                                                      knowledge=retriever)
                index_database(retriever.store, assistants[q.db_url].deps.db)
            t0 = time.monotonic()
            first = None
            record = None
            for item in assistants[q.db_url].stream(q.question, techniques):
                if first is None and not isinstance(item, Running):  # the first step (or wait), as before
                    first = time.monotonic() - t0
                if isinstance(item, AnswerRecord):
                    record = item
            total = time.monotonic() - t0
            assert record is not None
            t = record.totals()
            rows.append({"qid": q.qid, "sql": record.sql, "seconds": total, "first_progress_s": first or total,
                         "model_s": t["model_seconds"],
                         "calls": t["model_calls"], "prompt_tokens": t["prompt_tokens"],
                         "completion_tokens": t["completion_tokens"]})
        secs = [r["seconds"] for r in rows]
        outside = sum(r["seconds"] - r["model_s"] for r in rows) / max(1e-9, sum(secs))
        results[name] = {
            "questions": len(rows), "median_s": round(statistics.median(secs), 2),
            "p95_s": round(quantile(secs, 0.95), 2),
            "first_progress_median_s": round(statistics.median(r["first_progress_s"] for r in rows), 3),
            "outside_model_share": round(outside, 4),
            "calls_mean": round(statistics.mean(r["calls"] for r in rows), 2),
            "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in rows)),
            "completion_tokens_mean": round(statistics.mean(r["completion_tokens"] for r in rows)),
            "answers": [{"qid": r["qid"], "sql": r["sql"], "seconds": round(r["seconds"], 2)} for r in rows],
        }
    if "baseline" in results:
        for r in results.values():
            r["x_baseline_median"] = round(r["median_s"] / results["baseline"]["median_s"], 2)
    memory = {"app_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if server is not None and server.process is not None:
        memory["model_server_peak_rss_mb"] = round(vm_hwm_mb(server.process.pid))
        memory["total_peak_rss_mb"] = memory["app_peak_rss_mb"] + memory["model_server_peak_rss_mb"]
    report = {"cold_start": cold, "configs": results, "memory": memory, "by_database": args.by_database,
              "questions": [q.qid for q in questions], "endpoint": "local" if server else "external"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["cold_start"]), json.dumps(memory))
    header = ("config", "median s", "p95 s", "first", "outside", "calls", "tok in", "tok out", "x base")
    print(f"{header[0]:<16}" + "".join(f"{h:>9}" for h in header[1:]))
    for name, r in results.items():
        print(f"{name:<16}{r['median_s']:>9}{r['p95_s']:>9}{r['first_progress_median_s']:>9}"
              f"{r['outside_model_share']:>9.1%}{r['calls_mean']:>9}{r['prompt_tokens_mean']:>9}"
              f"{r['completion_tokens_mean']:>9}{r.get('x_baseline_median', ''):>9}")
    for assistant in assistants.values():
        assistant.close()
    retriever.close()
    if server is not None:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
