"""Benchmark: index the Spider training split (138 databases' schemas and values, 6,904 examples) into
the knowledge store, then time retrieval calls. Prints figures and writes benchmarks/results/index_spider.json.

    .venv/bin/python benchmarks/index_spider.py [--spider ../shared/data/spider-train] [--store DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "data" / "spider-train")
    parser.add_argument("--store", type=Path, default=REPO / "var" / "spider-data" / "knowledge")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sqlsage")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "index_spider.json")
    args = parser.parse_args(argv)
    if not (args.spider / "train.json").exists():
        print(f"skipped: no Spider data at {args.spider}", file=sys.stderr)
        return 0

    from core.db import Database
    from knowledge.embeddings import MiniLMEmbedder
    from knowledge.examples import read_spider
    from knowledge.indexing import index_database
    from knowledge.retrieval import Retriever
    from knowledge.store import KnowledgeStore

    began = time.monotonic()
    retriever = Retriever(KnowledgeStore(args.store, MiniLMEmbedder(args.cache / "embeddings")))
    opened = time.monotonic() - began

    t0 = time.monotonic()
    items = list(read_spider(args.spider / "train.json"))
    changed = retriever.store.upsert(items)
    examples_s = time.monotonic() - t0

    t0 = time.monotonic()
    tables = values = 0
    databases = sorted(p for p in (args.spider / "database").iterdir() if (p / f"{p.name}.sqlite").exists())
    for path in databases:
        db = Database.open(f"sqlite:///{path / (path.name + '.sqlite')}")
        report = index_database(retriever.store, db)
        tables, values = tables + report.tables, values + report.values
        db.close()
    databases_s = time.monotonic() - t0

    questions = [row["question"] for row in json.loads((args.spider / "train.json").read_text())[:: 137]][:50]
    timings = []
    for q in questions:
        t0 = time.monotonic()
        retriever.examples(q, k=4, exclude_db="concert_singer", draft_sql="SELECT count(*) FROM singer")
        retriever.values(q, "concert_singer")
        retriever.tables(q, "concert_singer", k=5)
        timings.append((time.monotonic() - t0) * 1000)

    result = {
        "examples": len(items), "examples_changed": changed, "examples_seconds": round(examples_s, 1),
        "databases": len(databases), "tables": tables, "values": values,
        "databases_seconds": round(databases_s, 1), "store_open_seconds": round(opened, 2),
        "retrieval_ms_median": round(statistics.median(timings), 1),
        "retrieval_ms_p95": round(sorted(timings)[int(0.95 * (len(timings) - 1))], 1),
        "peak_rss_mb": round(peak_rss_mb(), 0),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    retriever.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
