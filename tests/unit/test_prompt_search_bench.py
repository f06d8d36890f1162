"""benchmarks/prompt_search.py at the unit level: rows paired question by question with the reference."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "prompt_search.py"


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT))


# the rest of an eval result line (evals.runner.QuestionResult), as sqlsage eval writes it
_RESULT: dict[str, Any] = {
    "db_id": "db", "db_url": "sqlite:///db.sqlite", "question": "How many?", "gold": "SELECT 1",
    "hardness": "easy", "prediction": "SELECT 2", "exact_match": False, "executed": True, "error": None,
    "error_kind": None, "exec_error": None, "gold_error": None, "model_calls": 1, "prompt_tokens": 10,
    "completion_tokens": 5, "retrieval": None, "answer": None, "columns": [], "rows": [], "techniques": {},
}


def _write(folder: Path, config: str, matches: dict[str, bool], failure: str = "no_such_column") -> None:
    lines = [json.dumps({**_RESULT, "config": config, "qid": qid, "match": ok, "official_match": ok,
                         "seconds": 1.0 + i, "failure": None if ok else failure,
                         "prompts": {"set": config, "version": "abc"}})
             for i, (qid, ok) in enumerate(matches.items())]
    (folder / f"{config}.jsonl").write_text("\n".join(lines) + "\n{cut short", encoding="utf-8")


def test_rows_pair_with_the_reference_and_keep_what_pairs_them_later(bench: dict[str, Any], tmp_path: Path) -> None:
    _write(tmp_path, "baseline", {"a": True, "b": False, "c": True, "d": False})
    _write(tmp_path, "script", {"a": False, "b": True, "c": True, "d": True, "e": True}, failure="extra_table")
    out = tmp_path / "rows.json"

    assert bench["main"]([str(tmp_path), "--out", str(out)]) == 0

    rows = {r["config"]: r for r in json.loads(out.read_text())["rows"]}
    script = rows["script"]
    assert (script["n"], script["correct"], script["reference_correct"]) == (4, 3, 2)  # e: not asked of baseline
    assert (script["gained"], script["lost"]) == (2, 1)
    assert script["right"] == ["b", "c", "d"] and script["failures"] == {"extra_table": 1}
    assert rows["baseline"]["failures"] == {"no_such_column": 2} and rows["baseline"]["right"] == ["a", "c"]
    assert script["prompts"] == "script@abc"


def test_a_missing_reference_is_a_clear_error(bench: dict[str, Any], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "script", {"a": True})
    assert bench["main"]([str(tmp_path)]) == 1
    assert "no results of 'baseline'" in capsys.readouterr().err
