"""The technique ladder: named configurations of the agent, each a dict of overrides for ``Techniques``.

Every rung is measured on the same questions and compared with ``baseline``; a switch a rung does not
set keeps its ``Techniques`` default.

Adding a rung for a new technique is one entry in :data:`CONFIGS`. Say ``few_shot: int`` has been added
to ``core.config.Techniques``; the rung is::

    "+few-shot": {**BASELINE, "few_shot": 4},

and ``sqlsage eval --config baseline +few-shot`` measures it against the baseline. A rung that builds on
another unpacks that one's dict (``"+repair+few-shot": {**REPAIR, "few_shot": 4}``, with ``REPAIR`` a
module constant like ``BASELINE``): a configuration is nothing but its dict. Every key is checked against
the fields of ``Techniques`` by :func:`validate` (run before every evaluation, and by the unit tests), so a
misspelt or removed switch fails loudly instead of silently measuring the default. Retrieval techniques
also need the knowledge store: run them with ``sqlsage eval --knowledge``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from core.config import MINIMAL, Techniques
from core.errors import SqlsageError

# Zero-shot, the schema in the prompt, one model call: no repair of any kind, no written answer. Every
# rung starts from MINIMAL (core.config), not from the product's defaults, so a change of the defaults
# changes no rung but ``default``.
BASELINE: dict[str, object] = {**MINIMAL, "repair": False, "fix_qualifiers": False, "answer": False}
# The baseline before the prompt search of 2026-12-02 (its prompt said "join tables through their keys").
BASELINE_V1: dict[str, object] = {**BASELINE, "prompts": "v1"}

REPAIR: dict[str, object] = {**BASELINE, "repair": True}
# Each rung adds one technique to the one before it (branches noted). Examples never come from the
# database asked about in an evaluation (same_db_examples off), and the runner leaves out every
# evaluated database's examples besides.
FIX_QUALIFIERS: dict[str, object] = {**REPAIR, "fix_qualifiers": True}
FEW_SHOT: dict[str, object] = {**FIX_QUALIFIERS, "few_shot": 4, "same_db_examples": False}
VALUES: dict[str, object] = {**FEW_SHOT, "values": True}
HYDE: dict[str, object] = {**VALUES, "hyde": True, "difficulty": True}
# Every question gets everything: the greedy HyDE draft joins the four samples in the vote.
FULL_ALWAYS: dict[str, object] = {**HYDE, "self_consistency": 4}
# The same stack, spent only where a zero-shot try failed or returned no rows; that try is the draft.
ESCALATE: dict[str, object] = {**FULL_ALWAYS, "escalate": True}
# The first try has two examples (cheap: a short prompt suffix); only a failed or empty one escalates.
FULL: dict[str, object] = {**ESCALATE, "first_try_examples": 2}

# What a user gets: the product's defaults (``Techniques()``), spelled out so that a unit test can keep
# the two equal. It is the most accurate rung within 2x the baseline's median on the same run, idle
# (2026-12-07: ``+escalate`` 69 at 1.17x; ``full`` 70 at 2.45x), with the chat's needs: the written
# answer, the tools, and examples from the database asked about (the runner still leaves out every
# evaluated database's examples).
DEFAULT: dict[str, object] = {**ESCALATE, "answer": True, "same_db_examples": True}

# The reference: a plain script's prompt (core/prompts/variants/script), one call, nothing else. Every
# report shows it beside the baseline: the distance to the simplest thing that could work.
SCRIPT: dict[str, object] = {**BASELINE, "prompts": "script", "sample_rows": 3}
REFERENCE = "script"

CONFIGS: dict[str, dict[str, object]] = {
    "baseline": BASELINE,
    "script": SCRIPT,
    "baseline-v1": BASELINE_V1,
    "+repair": REPAIR,
    "+fix-qualifiers": FIX_QUALIFIERS,
    "+few-shot": FEW_SHOT,
    "+values": VALUES,
    "+hyde": HYDE,  # the draft also predicts the hardness (difficulty-aware examples)
    "+schema-linking": {**VALUES, "schema_linking": True},  # a branch off +values
    "+cot": {**VALUES, "cot": True},  # a branch off +values
    "+self-consistency": {**VALUES, "self_consistency": 4},  # a branch off +values
    "+escalate": ESCALATE,  # full-always, but a zero-shot try first (a branch)
    "full": FULL,
    "default": DEFAULT,
    "full-always": FULL_ALWAYS,  # 'full' before escalation (2026-12-02 and earlier)
    # The full stack with every prompt capped at about 1,500 tokens: on big schemas the least similar
    # examples go, then the least relevant tables (the cap's accuracy cost against its time saved).
    "full-capped": {**FULL, "prompt_budget": 1500},
    # No examples, so every prompt is the schema (cached by the server) plus the question: one call.
    "fast": {**FIX_QUALIFIERS, "values": True, "self_consistency": 4},
}


class LadderError(SqlsageError):
    """An unknown configuration name, or a configuration that does not fit ``Techniques``."""


def validate(configs: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Check that every override names a real ``Techniques`` field with an acceptable value."""
    configs = CONFIGS if configs is None else configs
    fields = set(Techniques.model_fields)
    problems = []
    for name, overrides in configs.items():
        unknown = sorted(set(overrides) - fields)
        if unknown:
            problems.append(f"{name!r}: unknown technique(s) {unknown} (known: {', '.join(sorted(fields))})")
            continue
        try:
            Techniques(**overrides)  # type: ignore[arg-type]
        except ValidationError as err:
            problems.append(f"{name!r}: {err.error_count()} bad value(s): {err.errors()[0]['msg']}")
    if problems:
        raise LadderError("Bad ladder configuration(s): " + "; ".join(problems))


def resolve(name: str, configs: Mapping[str, Mapping[str, object]] | None = None) -> Techniques:
    """The ``Techniques`` of a named configuration (defaults for every switch it does not set).

    ``NAME:switch=value,switch=value`` is that configuration with some switches changed, to try a
    value without adding a rung (``full:escalate_min_logprob=-0.5``); the values are checked like
    the rungs'."""
    configs = CONFIGS if configs is None else configs
    base, _, changes = name.partition(":")
    if base not in configs:
        raise LadderError(f"Unknown configuration {base!r}; known: {', '.join(configs)}.")
    overrides: dict[str, object] = dict(configs[base])
    for change in filter(None, (c.strip() for c in changes.split(","))):
        switch, eq, value = change.partition("=")
        if not eq or not switch.strip():
            raise LadderError(f"{name!r}: write each change as switch=value, not {change!r}.")
        overrides[switch.strip()] = value.strip()
    validate({name: overrides})
    return Techniques(**overrides)  # type: ignore[arg-type]
