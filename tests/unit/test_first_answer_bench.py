"""benchmarks/first_answer.py at the unit level: its table, its folders, and its skip without a model."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "first_answer.py"


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT))


def test_the_table_shows_ready_both_answers_their_ratio_and_the_warm_up(bench: dict[str, Any]) -> None:
    runs = [{"run": "first run", "ready_s": 12.34, "first_answer_s": 30.0, "second_answer_s": 10.0,
             "warm": {"how": "read", "state": "ready", "seconds": 25.5}},
            {"run": "restart", "ready_s": 5.0, "first_answer_s": 12.0, "second_answer_s": 8.0,
             "warm": {"how": "restored", "state": "ready", "seconds": 0.8}},
            {"run": "failed", "ready_s": 5.0, "first_answer_s": 40.0, "second_answer_s": None,
             "warm": {"how": None, "state": "failed", "seconds": 0.1}}]
    lines = bench["table"](runs).splitlines()
    assert lines[0].split() == ["run", "ready", "s", "1st", "answer", "s", "2nd", "answer", "s", "1st/2nd", "warm"]
    assert lines[2].split() == ["first", "run", "12.3", "30.0", "10.0", "3.00", "read", "in", "25.5", "s"]
    assert lines[3].split() == ["restart", "5.0", "12.0", "8.0", "1.50", "restored", "in", "0.8", "s"]
    assert lines[4].split()[:5] == ["failed", "5.0", "40.0", "nan", "-"] and "failed in 0.1 s" in lines[4]


def test_the_folders_start_empty_and_link_the_model_folder(bench: dict[str, Any], tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.gguf").write_bytes(b"gguf")
    data, cache = bench["fresh_folders"](tmp_path / "run", models)
    assert list(data.iterdir()) == [] and (cache / "models").is_symlink()
    assert (cache / "models" / "m.gguf").read_bytes() == b"gguf"
    assert bench["fresh_folders"](tmp_path / "run", models) == (data, cache)  # the restart: same folders


def test_without_a_model_folder_it_says_skipped(bench: dict[str, Any], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert bench["main"](["--models", str(tmp_path / "none"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().err and not out.exists()


def test_the_steps_say_where_the_seconds_went(bench: dict[str, Any]) -> None:
    from agent.trace import Step

    steps = [Step("generate", 0.0, 7.891, model_calls=1, prompt_tokens=2246, model_seconds=7.5),
             Step("execute", 0.0, 0.0123)]
    assert bench["steps_of"](steps) == [
        {"node": "generate", "seconds": 7.89, "model_seconds": 7.5, "prompt_tokens": 2246},
        {"node": "execute", "seconds": 0.01, "model_seconds": 0.0, "prompt_tokens": 0}]


def test_the_results_are_written_after_each_run(bench: dict[str, Any], tmp_path: Path) -> None:
    from core.config import Settings

    out = tmp_path / "r" / "first_answer.json"
    bench["write"](out, Settings(), 10.0, [{"run": "first run", "ready_s": 1.0}])
    import json

    report = json.loads(out.read_text())
    assert report["pause_s"] == 10.0 and report["runs"] == [{"run": "first run", "ready_s": 1.0}]
    assert report["techniques"] == Settings().techniques.model_dump()
