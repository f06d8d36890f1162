"""The evaluation harness end to end with the real local model, on held-out Spider questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.llm import build_chat_model
from core.config import Endpoint, Settings
from evals.dataset import heldout_db_ids
from evals.evaluate import EvalRequest, evaluate

pytestmark = pytest.mark.llm


def test_baseline_on_eight_heldout_questions(local_endpoint: Endpoint, spider_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    request = EvalRequest(
        data=spider_dir / "train.json", db_dir=spider_dir / "database", split="heldout", limit=8, seed=0,
        configs=("baseline",), out=tmp_path / "run", workers=2, progress=False, reference=False,
    )
    outcome = evaluate(request, settings, llm=build_chat_model(settings, local_endpoint))
    (summary,) = outcome.summaries
    assert summary.n == 8
    assert {r.db_id for r in outcome.runs["baseline"]} <= heldout_db_ids()
    assert all(p.is_file() and p.stat().st_size > 0 for p in (outcome.files.json, outcome.files.markdown,
                                                               outcome.files.chart))
    data = json.loads(outcome.files.json.read_text())
    assert len(data["questions"]["baseline"]) == 8
    assert summary.accuracy is not None and summary.accuracy > 0.25, outcome.files.markdown.read_text()
    assert summary.mean_calls == 1  # baseline: one call per question
    assert summary.exec_rate is not None and summary.exec_rate >= summary.accuracy
