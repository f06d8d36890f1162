"""The technique ladder: named configurations checked against the fields of Techniques."""

from __future__ import annotations

import pytest

from core.config import Techniques
from evals.evaluate import resolve_configs
from evals.ladder import CONFIGS, LadderError, resolve, validate


def test_every_configuration_fits_techniques() -> None:
    validate()
    assert {"baseline", "+repair"} <= set(CONFIGS)


def test_baseline_is_zero_shot_one_call_and_repair_adds_repair() -> None:
    base = resolve("baseline")
    assert isinstance(base, Techniques)
    assert (base.repair, base.answer) == (False, False)
    repair = resolve("+repair")
    assert repair.repair and not repair.answer
    # everything else is the same as the baseline
    assert {k: v for k, v in repair.model_dump().items() if k != "repair"} == {
        k: v for k, v in base.model_dump().items() if k != "repair"}


def test_the_script_reference_is_the_plain_prompt_alone_and_runs_beside_every_ladder() -> None:
    from evals.evaluate import resolve_configs

    script = resolve("script")
    assert script.prompts == "script" and script.sample_rows == 3
    assert not (script.repair or script.fix_qualifiers or script.answer or script.few_shot or script.values)
    assert script.self_consistency == 1 and not script.escalate
    assert list(resolve_configs(["baseline", "full"])) == ["baseline", "script", "full"]
    assert list(resolve_configs(["full"])) == ["script", "full"]
    assert list(resolve_configs(["full", "script"])) == ["full", "script"]
    assert list(resolve_configs(["full"], reference=False)) == ["full"]


def test_an_unknown_name_lists_the_known_ones() -> None:
    known = r"known: baseline, script, baseline-v1, \+repair"
    with pytest.raises(LadderError, match=r"Unknown configuration '\+nope'; " + known):
        resolve("+nope")


def test_a_misspelt_technique_fails_loudly() -> None:
    with pytest.raises(LadderError, match=r"'\+fewshot': unknown technique\(s\) \['few_shots'\]"):
        validate({"+fewshot": {"repair": False, "few_shots": 4}})


def test_a_bad_value_fails_loudly() -> None:
    with pytest.raises(LadderError, match="'bad': 1 bad value"):
        validate({"bad": {"max_repairs": 99}})


def test_ragas_runs_turn_the_written_answer_on() -> None:
    configs = resolve_configs(["baseline", "+repair"], ragas=True)
    assert all(t.answer for t in configs.values())
    assert not resolve_configs(["baseline"])["baseline"].answer


def test_a_configuration_named_twice_is_refused() -> None:
    with pytest.raises(Exception, match="named twice"):
        resolve_configs(["baseline", "baseline"])


def test_a_configuration_with_changed_switches() -> None:
    t = resolve("full:escalate_min_logprob=-0.25, self_consistency=6")
    assert t.escalate_min_logprob == -0.25 and t.self_consistency == 6
    assert t.few_shot == resolve("full").few_shot  # the rest is the named configuration's


@pytest.mark.parametrize("name, says", [
    ("full:self_consistency", "switch=value"),
    ("full:no_such_switch=1", "unknown technique"),
    ("full:self_consistency=many", "bad value"),
    ("nope:few_shot=1", "Unknown configuration 'nope'"),
])
def test_bad_changes_fail_loudly(name: str, says: str) -> None:
    with pytest.raises(LadderError, match=says):
        resolve(name)


def _without_technique_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tests' conftest sets the minimal techniques through the environment; these see none."""
    for name in Techniques.model_fields:
        monkeypatch.delenv(f"SQLSAGE_TECH_{name.upper()}", raising=False)


def test_the_default_rung_is_exactly_what_a_user_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import Settings

    _without_technique_env(monkeypatch)
    assert resolve("default") == Techniques() == Settings().techniques


def test_the_product_defaults_are_escalate_with_the_chats_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # The measured choice (benchmarks/README.md, 2026-12-07, idle): '+escalate', the most accurate rung
    # within 2x the baseline's median time ('full', one more point, took 2.45x). Changing a default
    # changes what every user gets: re-measure, then change this test.
    _without_technique_env(monkeypatch)
    escalate, default = resolve("+escalate").model_dump(), Techniques().model_dump()
    assert {k for k in default if default[k] != escalate[k]} == {"answer", "same_db_examples"}
    assert default["answer"] and default["same_db_examples"]
    assert default["escalate"] and default["self_consistency"] == 4 and default["few_shot"] == 4
    assert default["first_try_examples"] == 0  # a zero-shot first try: 'full' is this with 2


def test_rungs_do_not_move_with_the_product_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline is one zero-shot call whatever Techniques' defaults are.
    _without_technique_env(monkeypatch)
    base = resolve("baseline")
    assert (base.few_shot, base.self_consistency, base.escalate, base.values, base.hyde) == (0, 1, False, False, False)
    assert Techniques.minimal() == Techniques.minimal(**{})
    assert Techniques.minimal(few_shot=2).few_shot == 2 and not Techniques.minimal().escalate
