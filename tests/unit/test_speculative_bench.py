"""benchmarks/speculative.py at the unit level: its summary, its table, its turns and its skip without data."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "speculative.py"


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT))


def _record(mode: str, qid: str, text: str, tok_s: float, drafted: int | None = None,
            accepted: int | None = None) -> dict[str, Any]:
    return {"mode": mode, "qid": qid, "text": text, "decode_tok_s": tok_s, "wall_s": 10.0 / tok_s,
            "draft_n": drafted, "draft_n_accepted": accepted, "error": None}


def test_the_summary_pairs_each_question_with_off(bench: dict[str, Any]) -> None:
    records = [_record("off", "a", "x", 4.0), _record("off", "b", "y", 2.0),
               _record("ngram", "a", "x", 6.0, 10, 5), _record("ngram", "b", "z", 3.0, 10, 3),
               {"mode": "draft", "qid": "a", "error": "LLMUnavailable: no"},
               {"mode": "draft", "qid": "b", "error": "LLMUnavailable: no"}]
    off, ngram, draft = bench["summarize"](records, ["off", "ngram", "draft"])
    assert (off["identical"], off["speedup"], off["acceptance"]) == (2, 1.0, None)
    assert (ngram["n"], ngram["identical"], ngram["paired"]) == (2, 1, 2)
    assert ngram["decode_tok_s"] == 4.5 and ngram["speedup"] == 1.5 and ngram["acceptance"] == 0.4
    assert draft["n"] == 0 and draft["failed"] == 2 and draft["error"] == "LLMUnavailable: no"
    lines = bench["table"]([off, ngram, draft]).splitlines()
    assert lines[2] == "| off | 2 | 2/2 | 3.00 | 1.00x | 3.75 | - |"
    assert lines[3] == "| ngram | 2 | 1/2 | 4.50 | 1.50x | 2.50 | 0.40 (8/20) |"
    assert lines[4].startswith("| draft | 0 |") and "failed: LLMUnavailable: no" in lines[4]


def test_the_modes_take_turns_forwards_then_backwards(bench: dict[str, Any]) -> None:
    assert [bench["mode_order"](i, ["a", "b", "c"]) for i in range(3)] == [
        ["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_without_spider_data_it_says_so_and_exits_0(bench: dict[str, Any], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert bench["main"](["--spider", str(tmp_path / "none")]) == 0
    assert "skipped: no Spider training data" in capsys.readouterr().err
