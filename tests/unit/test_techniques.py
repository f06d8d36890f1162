"""``Techniques`` refuses a switch that would do nothing without another one, and says which to turn on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.config import Techniques
from evals.ladder import CONFIGS


@pytest.mark.parametrize(
    "switches, message",
    [
        ({"escalate": True}, "escalate has nothing to escalate to: turn on few_shot"),
        ({"escalate": True, "repair": True, "cot": True}, "escalate has nothing to escalate to"),
        ({"first_try_examples": 3}, "first_try_examples does nothing without escalate: turn escalate on"),
        ({"first_try_examples": 3, "few_shot": 4}, "first_try_examples does nothing without escalate"),
        ({"escalate_check": 2, "self_consistency": 4}, "escalate_check does nothing without escalate"),
        ({"escalate_min_logprob": -1.0}, "escalate_min_logprob does nothing without escalate"),
        ({"sc_repair_each": True}, "sc_repair_each does nothing with one candidate: set self_consistency to 2"),
        ({"link_tables": 3}, "link_tables does nothing without schema_linking: turn schema_linking on"),
        ({"link_tables": 3, "few_shot": 2}, "link_tables does nothing without schema_linking"),
    ],
)
def test_a_switch_that_would_do_nothing_is_refused_naming_the_one_to_turn_on(
    switches: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Techniques(**switches)


def test_every_problem_is_told_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Techniques(sc_repair_each=True, link_tables=3)
    assert "sc_repair_each does nothing" in str(caught.value) and "link_tables does nothing" in str(caught.value)


@pytest.mark.parametrize(
    "switches",
    [
        {},  # the defaults (link_tables at its default needs no schema_linking)
        {"escalate": True, "self_consistency": 2},  # samples to escalate to
        {"escalate": True, "few_shot": 2},
        {"escalate": True, "values": True},
        {"escalate": True, "schema_linking": True},
        {"escalate": True, "hyde": True},
        {"escalate": True, "difficulty": True},
        {"escalate": True, "prompt_budget": 1500},
        {"escalate": True, "first_try_examples": 2},  # the router retrieves for that first try
        {"escalate": True, "few_shot": 2, "first_try_examples": 1, "escalate_check": 2, "escalate_min_logprob": -1.0},
        {"sc_repair_each": True, "self_consistency": 2},
        {"schema_linking": True, "link_tables": 3},
    ],
)
def test_switches_that_work_together_are_accepted(switches: dict[str, Any]) -> None:
    Techniques(**switches)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_rung_of_the_ladder_is_accepted(name: str) -> None:
    Techniques(**CONFIGS[name])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "switches, expected",
    [
        ({}, False),
        ({"few_shot": 1}, True),
        ({"values": True}, True),
        ({"schema_linking": True}, True),
        ({"hyde": True}, True),
        ({"difficulty": True}, True),
        ({"prompt_budget": 1000}, True),
        ({"self_consistency": 3, "cot": True}, False),  # sampling and planning need no store
        ({"escalate": True, "first_try_examples": 2}, True),
    ],
)
def test_retrieves(switches: dict[str, Any], expected: bool) -> None:
    assert Techniques(**switches).retrieves() is expected


@pytest.mark.parametrize("switch, off", [("escalate", False), ("self_consistency", 1), ("few_shot", 0),
                                         ("hyde", False), ("values", False), ("first_try_examples", 0)])
def test_turning_one_default_off_is_accepted(monkeypatch: pytest.MonkeyPatch, switch: str, off: Any) -> None:
    # The product's defaults turn escalation on with two first-try examples; a user who unticks one
    # switch in the settings form must not be told to zero its sub-settings too.
    for name in Techniques.model_fields:
        monkeypatch.delenv(f"SQLSAGE_TECH_{name.upper()}", raising=False)
    assert getattr(Techniques(**{switch: off}), switch) == off
