"""Benchmark: the written answer's prompt, with the schema (as it was) against the short one (as it is).

The answer step writes one or two sentences from the question, the SQL and its rows. It used to be
sent the SQL step's system message, schema and all; now it has a short system message of its own
(``core/prompts/answer_system.md``). This measures both on the same questions, the same server, one
after the other, with the schema prefix already cached for the old prompt (as it is after the SQL step
ran with it), so the old prompt is given its best case:

- seconds and prompt tokens per answer (median and p95);
- **grounded**: every number the answer states is in the result (a cell, the row count) or the
  question, checked without a model;
- **covers**: for a result of at most three cells, each cell's value is in the answer.

The questions are an evaluation's rows that ran and returned something (``sqlsage eval --out DIR``
writes them, with their SQL and first rows). Prints a table and writes JSON.

    .venv/bin/python benchmarks/answer_prompt.py var/eval/ho-prompts/baseline.jsonl --limit 30 \\
        --base-url http://127.0.0.1:18080/v1 --model qwen2.5-coder-1.5b --out benchmarks/results/answer_prompt.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "spider-train" / "database"
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")


def numbers_in(text: str) -> set[float]:
    return {float(m.replace(",", "")) for m in _NUMBER.findall(text)}


def _cells(rows: list[list[Any]]) -> list[float]:
    out = []
    for row in rows:
        for value in row:
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append(float(value))
            elif value is not None:
                out += numbers_in(str(value))
    return out


def _said_as(stated: str, value: float) -> bool:
    """Is ``stated`` (as written, e.g. "3.14") the value, or the value rounded to the decimals written?"""
    number = float(stated.replace(",", ""))
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    return abs(number - value) < 1e-9 or abs(round(value, decimals) - number) < 1e-9


def grounded(answer: str, question: str, rows: list[list[Any]]) -> bool:
    """Every number the answer states is a cell of the result (or a cell rounded to the decimals
    written), the row count or a number of the question."""
    allowed = [*numbers_in(question), float(len(rows)), *_cells(rows)]
    return all(any(_said_as(stated, a) for a in allowed) for stated in _NUMBER.findall(answer))


def covers(answer: str, rows: list[list[Any]]) -> bool | None:
    """For a result of at most three cells: is each value in the answer? None for a bigger result."""
    cells = [v for row in rows for v in row]
    if not cells or len(cells) > 3:
        return None
    said = answer.lower()
    for value in cells:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not any(_said_as(stated, float(value)) for stated in _NUMBER.findall(answer)):
                return False
        elif str(value).lower() not in said:
            return False
    return True


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="an evaluation's JSONL rows (sqlsage eval --out DIR)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--base-url", default="http://127.0.0.1:18080/v1")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--databases", type=Path, default=SHARED, help="folder of <db_id>/<db_id>.sqlite")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "answer_prompt.json")
    args = parser.parse_args(argv)
    if not args.databases.is_dir():
        print(f"skipped: no databases at {args.databases} (the Spider data under ../shared)", file=sys.stderr)
        return 0
    sys.path.insert(0, str(REPO))
    from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    from agent.nodes.answer import ANSWER_MAX_TOKENS, answer_messages
    from agent.prompts import dialect_label
    from core.db import Database
    from core.prompt_sets import prompt_set

    rows_in = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    chosen = [r for r in rows_in if r.get("executed") and r.get("rows") and r.get("prediction")][: args.limit]
    if not chosen:
        print(f"error: no executed rows with results in {args.results}", file=sys.stderr)
        return 1
    llm = ChatOpenAI(model=args.model, base_url=args.base_url, api_key="none", temperature=0,  # type: ignore[arg-type]
                     max_tokens=ANSWER_MAX_TOKENS, timeout=900)  # type: ignore[call-arg]
    prompts = prompt_set("default")
    dialect = dialect_label("sqlite")

    def ask(messages: list[BaseMessage]) -> tuple[str, float, int]:
        began = time.monotonic()
        reply = llm.invoke(messages)
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        return str(reply.content).strip(), time.monotonic() - began, int(usage.get("input_tokens", 0))

    per: list[dict[str, Any]] = []
    for i, r in enumerate(chosen, 1):
        db = Database.open(f"sqlite:///{args.databases / r['db_id'] / (r['db_id'] + '.sqlite')}")
        schema_text = db.schema().render(sample_rows=3, style=prompts.style)
        system = SystemMessage(prompts.render("system", dialect=dialect, schema=schema_text))
        ask([system, HumanMessage("Reply OK.")])  # the schema prefix cached, as after the SQL step
        short = answer_messages(prompts, dialect, r["question"], r["prediction"], r["columns"], r["rows"], False)
        old = [system, short[1]]
        entry: dict[str, Any] = {"qid": r["qid"], "db_id": r["db_id"], "question": r["question"]}
        for name, messages in (("schema", old), ("short", short)):
            text, seconds, tokens = ask(messages)
            entry[name] = {"answer": text, "seconds": round(seconds, 2), "prompt_tokens": tokens,
                           "grounded": grounded(text, r["question"], r["rows"]), "covers": covers(text, r["rows"])}
        per.append(entry)
        print(f"{i}/{len(chosen)} {r['db_id']}: schema {entry['schema']['seconds']:.1f}s, "
              f"short {entry['short']['seconds']:.1f}s", file=sys.stderr)
        db.close()

    summary = {}
    for name in ("schema", "short"):
        secs = [e[name]["seconds"] for e in per]
        small = [e[name]["covers"] for e in per if e[name]["covers"] is not None]
        summary[name] = {
            "n": len(per), "median_s": round(statistics.median(secs), 2), "p95_s": round(quantile(secs, 0.95), 2),
            "median_prompt_tokens": statistics.median(e[name]["prompt_tokens"] for e in per),
            "grounded": sum(e[name]["grounded"] for e in per), "covers": sum(small), "small_results": len(small),
        }
    print("| prompt | n | median s | p95 s | median prompt tokens | grounded | covers (small results) |")
    print("|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['n']} | {s['median_s']} | {s['p95_s']} | {s['median_prompt_tokens']:.0f} | "
              f"{s['grounded']}/{s['n']} | {s['covers']}/{s['small_results']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"source": str(args.results), "summary": summary, "questions": per}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
