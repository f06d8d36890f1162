"""Benchmark: index the shipped example pool into an empty store in the background (as the UI and
`sqlsage ask` do on first use), then open the store again as a restart would and time the check that finds
the pool indexed. Prints figures and writes benchmarks/results/pool_index.json.

    .venv/bin/python benchmarks/pool_index.py [--store DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sqlsage")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "pool_index.json")
    args = parser.parse_args(argv)

    from knowledge.embeddings import MiniLMEmbedder
    from knowledge.pool import PoolIndexer, bundled_pool_path, pool_status
    from knowledge.store import KnowledgeStore

    store_dir = args.store or Path(tempfile.mkdtemp(prefix="sqlsage-pool-")) / "knowledge"
    rss_before = peak_rss_mb()
    began = time.monotonic()
    store = KnowledgeStore(store_dir, MiniLMEmbedder(args.cache / "embeddings"))
    opened_s = time.monotonic() - began
    t0 = time.monotonic()
    indexer = PoolIndexer(store, bundled_pool_path()).start()
    started_s = time.monotonic() - t0  # what the caller waits for: the thread is started, no more
    last = ""
    while not indexer.wait(5.0):
        if indexer.line() != last:
            last = indexer.line()
            print(last, flush=True)
    index_s = time.monotonic() - began
    print(indexer.line())
    status = pool_status(store)
    store.close()
    peak_first = peak_rss_mb()

    began = time.monotonic()
    store = KnowledgeStore(store_dir, MiniLMEmbedder(args.cache / "embeddings"))
    again = PoolIndexer(store, bundled_pool_path()).start()
    again.wait()
    restart_s = time.monotonic() - began
    store.close()

    result = {
        "pool_file_kib": round(bundled_pool_path().stat().st_size / 1024),
        "examples": status.examples, "state": indexer.state, "restart_state": again.state,
        "store_open_seconds": round(opened_s, 2), "start_returns_seconds": round(started_s, 3),
        "index_seconds": round(index_s, 1),
        "restart_check_seconds": round(restart_s, 2),
        "peak_rss_mb_before": round(rss_before), "peak_rss_mb": round(peak_first),
        "store_mb": round(sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file()) / 2**20, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
