"""The presets: Fast and Default with their measured figures, and Most accurate only when it is another rung."""

from __future__ import annotations

from core.config import MINIMAL, Techniques
from core.measured import Figures, Measured, shipped
from ui import presets
from ui.switches import switches, techniques_from_form


def test_the_shipped_presets_are_fast_and_default_and_default_is_the_most_accurate() -> None:
    items = presets.presets(shipped())
    assert [p.key for p in items] == ["fast", "default"]
    fast, default = items
    assert fast.techniques.model_dump() == {**presets.product_defaults().model_dump(), **MINIMAL}
    assert default.techniques == presets.product_defaults() and default.techniques.self_consistency == 4
    assert default.most_accurate and not fast.most_accurate
    assert presets.choice_label(default) == "Default · 67% correct (67/100), 5.2 s median · the most accurate measured"
    assert presets.choice_label(fast).startswith("Fast · 63% correct (63/100), 1.5 s median; measured without")
    note = presets.presets_markdown(items, shipped())
    assert "no measured rung beat" in note and note.endswith("(shipped with this release).")


def test_own_figures_replace_the_shipped_ones_and_a_better_rung_becomes_most_accurate() -> None:
    mine = Measured("measured by your `sqlsage eval` on this database", {
        "baseline": Figures(20, 10, 1.0), "default": Figures(20, 14, 6.0),
        "+cot": Figures(20, 16, 9.0, techniques={"cot": True, "answer": False}),
    })
    items = presets.presets(mine)
    assert [p.key for p in items] == ["fast", "default", "accurate"]
    accurate = items[-1]
    assert accurate.most_accurate and accurate.techniques.cot and accurate.techniques.answer  # a chat answers
    assert presets.figures_text(accurate.figures) == "80% correct (16/20), 9.0 s median"
    assert "your `sqlsage eval`" in presets.presets_markdown(items, mine)


def test_matching_names_the_preset_or_custom() -> None:
    items = presets.presets(shipped())
    assert presets.matching(items, presets.product_defaults()) == "default"
    assert presets.matching(items, presets.fast().model_dump()) == "fast"
    assert presets.matching(items, Techniques.minimal(cot=True)) == presets.CUSTOM


def test_a_preset_through_the_form_gives_back_its_own_techniques() -> None:
    items = switches()
    for p in presets.presets(shipped()):
        form = ["" if v is None and s.optional else v for s, v in
                zip(items, [getattr(p.techniques, s.name) for s in items], strict=True)]
        assert techniques_from_form(items, form) == p.techniques
