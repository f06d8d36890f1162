"""The settings form is derived from the Techniques model, so new switches show up by themselves."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from core.config import Techniques
from ui.switches import LABELS, STAGES, by_stage, current_values, describe, switches, techniques_from_form


def test_every_technique_field_gets_a_switch() -> None:
    items = switches()
    assert [s.name for s in items] == list(Techniques.model_fields)
    by_name = {s.name: s for s in items}
    assert by_name["repair"].kind == "bool" and by_name["repair"].default is True
    assert by_name["max_repairs"].kind == "int"
    assert (by_name["max_repairs"].minimum, by_name["max_repairs"].maximum) == (0, 10)
    assert by_name["sample_rows"].help.startswith("sample rows")


def test_kinds_for_other_field_types() -> None:
    class Model(BaseModel):
        ratio: float = Field(0.5, ge=0.0, le=1.0)
        mode: Literal["a", "b"] = "a"
        name: str | None = None

    kinds = {s.name: (s.kind, s.choices) for s in switches(Model)}
    assert kinds == {"ratio": ("float", ()), "mode": ("choice", ("a", "b")), "name": ("text", ())}


def test_form_values_become_techniques() -> None:
    items = switches()
    values = current_values(Techniques(), items)
    values[[s.name for s in items].index("max_repairs")] = 4.0  # a number box gives floats
    values[[s.name for s in items].index("repair")] = False
    chosen = techniques_from_form(items, values)
    assert chosen.max_repairs == 4 and isinstance(chosen.max_repairs, int) and chosen.repair is False
    assert describe(chosen, Techniques()) == "repair=False, max_repairs=4"
    assert describe(Techniques(), Techniques()) == "the defaults"


def test_out_of_range_values_are_refused_with_the_field_named() -> None:
    items = switches()
    values = current_values(Techniques(), items)
    values[[s.name for s in items].index("max_repairs")] = 99
    with pytest.raises(ValueError, match="max_repairs"):
        techniques_from_form(items, values)


def test_a_switch_that_would_do_nothing_is_refused_with_the_one_to_turn_on() -> None:
    items = switches()
    values = current_values(Techniques(), items)
    values[[s.name for s in items].index("sc_repair_each")] = True  # but one candidate
    with pytest.raises(ValueError) as caught:
        techniques_from_form(items, values)
    # the combination's error has no field of its own: no empty "': '" before it
    # and names each switch once by the label the form shows
    assert str(caught.value) == ("Invalid technique settings: sc_repair_each (Repair every failed sample) does "
                                 "nothing with one candidate: set self_consistency (Self-consistency samples) to 2 "
                                 "or more")


def test_an_optional_number_is_a_text_box_whose_empty_value_is_unset() -> None:
    items = switches()
    by_name = {s.name: s for s in items}
    assert by_name["escalate_min_logprob"].kind == "text" and by_name["escalate_min_logprob"].optional
    values = current_values(Techniques(), items)
    at = [s.name for s in items].index("escalate_min_logprob")
    values[at] = ""  # the box as shown for None
    assert techniques_from_form(items, values).escalate_min_logprob is None
    escalating = current_values(Techniques(escalate=True, self_consistency=2), items)
    escalating[at] = "-0.5"
    assert techniques_from_form(items, escalating).escalate_min_logprob == -0.5
    # the whole form, as shown, applied unchanged, gives back what it showed, escalate on or off
    for shown in (Techniques(), Techniques(escalate=False)):
        form = ["" if v is None and s.optional else v for s, v in zip(items, current_values(shown, items), strict=True)]
        assert techniques_from_form(items, form) == shown


def test_switches_are_grouped_by_stage_with_readable_labels_and_a_new_field_lands_in_other() -> None:
    assert set(LABELS) <= set(Techniques.model_fields)  # no label for a field that is gone
    groups = dict(by_stage(switches()))
    assert [s.label for s in groups[STAGES["candidates"]]][0] == "Self-consistency samples"
    assert {s.name for s in groups[STAGES["repair"]]} == {"fix_qualifiers", "repair", "max_repairs", "sc_repair_each"}
    assert STAGES["other"] not in groups  # every shipped switch has its stage

    class Newer(Techniques):
        brand_new_switch: bool = Field(False, description="a switch added after this UI was written")

    other = dict(by_stage(switches(Newer)))[STAGES["other"]]
    assert [(s.name, s.label, s.help) for s in other] == [
        ("brand_new_switch", "Brand new switch", "a switch added after this UI was written")]
