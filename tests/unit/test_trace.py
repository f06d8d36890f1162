"""Typed steps: each node kind's output record, its JSON form, and traces stored before they were typed."""

from __future__ import annotations

import json

import pytest

from agent.shared_state import checkpoint_serde
from agent.trace import (
    OUTPUT_TYPES,
    OUTPUTS,
    ContextOutput,
    ExecuteOutput,
    NoOutput,
    RetrieveOutput,
    Step,
    StepTimer,
    ToolOutput,
    VoteOutput,
    output_type,
)


@pytest.mark.parametrize("node", [*OUTPUTS, "tool:run_sql"])
def test_every_kind_survives_its_json_form_and_the_checkpointer(node: str) -> None:
    kind = output_type(node)
    step = StepTimer(node, question="q").finish(kind())
    assert isinstance(step.output, kind)
    stored = json.loads(json.dumps(step.to_dict()))
    assert Step.from_dict(stored) == step
    serde = checkpoint_serde()
    assert serde.loads_typed(serde.dumps_typed(step)) == step  # allowed to restore, and typed again


def test_a_tool_step_carries_a_tool_output_and_an_unknown_node_none() -> None:
    assert output_type("tool:chart") is ToolOutput and output_type("error") is NoOutput
    assert set(OUTPUT_TYPES) >= {NoOutput, ToolOutput, *OUTPUTS.values()}


def test_a_trace_stored_before_the_outputs_were_typed_loads() -> None:
    old = [
        {"node": "context", "started_at": 1.0, "duration_s": 0.1, "output": {"tables": ["Artist"], "columns": [],
                                                                          "schema_chars": 10, "gone": 1}},
        {"node": "retrieve", "started_at": 1.1, "duration_s": 0.2, "output": {"examples": [], "draft_sql": "SELECT 1"}},
        {"node": "vote", "started_at": 1.2, "duration_s": 0.0, "output": {"winner": 1, "all_sql": {"0": "SELECT 1"}}},
        {"node": "execute", "started_at": 1.3, "duration_s": 0.0, "output": {}, "error": "no such table: x"},
        {"node": "brand_new", "started_at": 1.4, "duration_s": 0.0, "output": {"x": 1}, "not_a_field": True},
    ]
    context, retrieve, vote, execute, new = (Step.from_dict(s) for s in old)
    assert context.output == ContextOutput(tables=["Artist"], schema_chars=10)  # an unknown key is dropped
    assert retrieve.output == RetrieveOutput()  # the draft was retrieve's then; the hyde step's now
    assert isinstance(vote.output, VoteOutput) and vote.output.winner == 1 and vote.output.sql is None
    assert execute.output == NoOutput() and execute.error == "no such table: x"  # failed before it had rows
    assert new.output == NoOutput()
    assert ExecuteOutput() != NoOutput()
