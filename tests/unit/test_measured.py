"""The measured figures: the shipped ones equal the benchmark's results; a user's own evaluation wins."""

from __future__ import annotations

import json
from pathlib import Path

from core import measured

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_the_shipped_figures_are_the_benchmarks_own() -> None:
    ship = measured.shipped()
    source = json.loads((RESULTS / "default_heldout.json").read_text())
    for rung in ("baseline", "default"):
        f = ship.rungs[rung]
        assert (f.n, f.correct, f.median_s) == (source[rung]["n"], source[rung]["ex"], source[rung]["median_s"])
    assert "100 Spider held-out questions" in ship.label and "shipped with this release" in ship.label


def test_own_figures_replace_the_shipped_ones_for_that_database_only(tmp_path: Path) -> None:
    url, other = "sqlite:////data/shop.sqlite", "sqlite:////data/other.sqlite"
    assert measured.figures_for(tmp_path, url) == measured.shipped()
    measured.write_own(tmp_path, url, {"default": measured.Figures(20, 15, 9.5)})
    mine = measured.figures_for(tmp_path, url)
    assert mine.rungs["default"].accuracy == 0.75 and mine.label.startswith(measured.OWN_LABEL)
    assert measured.figures_for(tmp_path, other) == measured.shipped()
    measured.own_path(tmp_path, url).write_text("{not json")
    assert measured.figures_for(tmp_path, url) == measured.shipped()  # unreadable: the shipped ones, labelled
