"""Build the shipped example pool, knowledge/data/spider_pool.jsonl.gz, from Spider's training file.

Only each pair's question, SQL and database name are kept (one JSON object a line, in the file's order);
the gzip header carries no time stamp, so the same input gives the same bytes and the pool's fingerprint
changes only when its content does.

    .venv/bin/python scripts/build_spider_pool.py [../shared/data/spider-train/train.json] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS = ("question", "query", "db_id")


def build(source: Path, out: Path) -> int:
    rows = json.loads(source.read_text(encoding="utf-8"))
    lines = [json.dumps({k: str(row[k]) for k in KEYS}, ensure_ascii=False, separators=(",", ":")) for row in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, nargs="?",
                        default=REPO.parent / "shared" / "data" / "spider-train" / "train.json")
    parser.add_argument("--out", type=Path, default=REPO / "knowledge" / "data" / "spider_pool.jsonl.gz")
    args = parser.parse_args(argv)
    count = build(args.source, args.out)
    print(f"{count} pairs -> {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
