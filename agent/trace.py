"""One frozen Step record per node run: what went in, what came out, what went wrong, and its cost.

What came out is typed: one frozen record per kind of step (``ContextOutput``, ``HydeOutput``, ...), so
the UI, the report and the exports read fields. ``Step.to_dict()`` is the JSON form that the history,
the evaluation's results and the trace download keep; ``Step.from_dict`` reads it back (a trace stored
before the outputs were typed loads too: an unknown key is dropped, a missing one takes its default).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict


@dataclass(frozen=True)
class NoOutput:
    """A step that reports nothing beyond its error and cost (``error``, a refused or failed check)."""


@dataclass(frozen=True)
class ContextOutput:
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # "table.column"
    schema_chars: int = 0
    skipped: str | None = None  # why the retrieval techniques that are on were not used
    budget: dict[str, Any] | None = None  # the prompt budget's cut: limit, estimated_tokens, sample_rows_dropped


@dataclass(frozen=True)
class HydeOutput:
    draft_sql: str | None = None


class ValueShown(TypedDict):
    """A stored value the question mentions (``knowledge.retrieval.ValueMatch``, as a dict)."""

    phrase: str
    value: str
    table: str
    column: str
    score: float


class ExampleShown(TypedDict):
    """A solved example put in the prompt, with its similarity score."""

    question: str
    sql: str
    hardness: str | None
    score: float


class TableScore(TypedDict):
    table: str
    score: float


@dataclass(frozen=True)
class RetrieveOutput:
    values: list[ValueShown] = field(default_factory=list)
    examples: list[ExampleShown] = field(default_factory=list)
    table_scores: list[TableScore] = field(default_factory=list)  # schema linking's ranking
    predicted_hardness: str | None = None
    budget: dict[str, Any] | None = None
    tables: list[str] | None = None  # the tables the prompt shows, when not all of them
    columns: list[str] | None = None


@dataclass(frozen=True)
class GenerateOutput:
    sql: str | None = None
    plan: dict[str, Any] | None = None
    confidence: dict[str, Any] | None = None  # with escalate_min_logprob, on the first try


@dataclass(frozen=True)
class SampleOutput:
    samples: list[dict[str, Any]] = field(default_factory=list)  # sql, error


@dataclass(frozen=True)
class ValidateOutput:
    sql: str | None = None


@dataclass(frozen=True)
class CheckOutput:
    """What a check (``agent.policy.CHECKS``) made of the query: the SQL it passes on (rewritten or as
    it came), a note per change, and a problem the model can fix (the query is then repaired from it, as
    from a database error), or None."""

    sql: str | None = None
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass(frozen=True)
class ExecuteOutput:
    columns: list[str] = field(default_factory=list)
    row_count: int = 0
    truncated: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class RepairOutput:
    sql: str | None = None


@dataclass(frozen=True)
class VoteOutput:
    winner: int = 0
    sql: str | None = None
    groups: list[dict[str, Any]] = field(default_factory=list)  # candidates, size, rows, preview
    failed: list[dict[str, Any]] = field(default_factory=list)  # candidate, sql, error
    all_sql: dict[str, str | None] = field(default_factory=dict)  # candidate index (as text) -> its SQL


@dataclass(frozen=True)
class ConfirmOutput:
    confirmed: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)  # sql, agrees, error


@dataclass(frozen=True)
class EscalateOutput:
    reason: str = ""
    draft_sql: str | None = None


@dataclass(frozen=True)
class AnswerOutput:
    answer: str = ""


@dataclass(frozen=True)
class RouteOutput:
    route: str = "sql"
    tool: str | None = None


@dataclass(frozen=True)
class ReactOutput:
    thought: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    final_answer: str | None = None


@dataclass(frozen=True)
class ToolOutput:
    ok: bool = False
    result: str = ""
    seconds: float = 0.0


StepOutput = (NoOutput | ContextOutput | HydeOutput | RetrieveOutput | GenerateOutput | SampleOutput | ValidateOutput
              | CheckOutput | ExecuteOutput | RepairOutput | VoteOutput | ConfirmOutput | EscalateOutput | AnswerOutput
              | RouteOutput | ReactOutput | ToolOutput)

# Which record a node's step carries (a tool's step, "tool:<name>", carries a ToolOutput). A step's JSON
# form also names its record (``output_kind``), so a node not listed here (a check) is read back typed.
OUTPUTS: dict[str, type[StepOutput]] = {
    "context": ContextOutput, "hyde": HydeOutput, "retrieve": RetrieveOutput, "generate": GenerateOutput,
    "sample": SampleOutput, "validate": ValidateOutput, "execute": ExecuteOutput, "repair": RepairOutput,
    "vote": VoteOutput, "confirm": ConfirmOutput, "escalate": EscalateOutput, "answer": AnswerOutput,
    "route": RouteOutput, "react": ReactOutput,
}
OUTPUT_TYPES: tuple[type[StepOutput], ...] = (NoOutput, ToolOutput, CheckOutput, *OUTPUTS.values())
_BY_NAME: dict[str, type[StepOutput]] = {kind.__name__: kind for kind in OUTPUT_TYPES}


def output_type(node: str, kind: str | None = None) -> type[StepOutput]:
    """The record of a step: the one its JSON form names, else its node's."""
    if kind in _BY_NAME:
        return _BY_NAME[kind]
    return ToolOutput if node.startswith("tool:") else OUTPUTS.get(node, NoOutput)


def output_from_dict(node: str, data: Mapping[str, Any] | None, kind: str | None = None) -> StepOutput:
    """A step's output from its JSON form: the record of its node, from the keys that record has."""
    if not data:  # a step that failed before it had anything to report
        return NoOutput()
    kind_ = output_type(node, kind)
    names = {f.name for f in dataclasses.fields(kind_)}
    return kind_(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Step:
    node: str
    started_at: float
    duration_s: float
    inputs: dict[str, Any] = field(default_factory=dict)
    output: StepOutput = field(default_factory=NoOutput)
    error: str | None = None
    prompt: list[dict[str, str]] | None = None
    model_output: str | None = None
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    prompts: str | None = None  # the prompt set's name@version (agent.prompts), stamped by the assistant

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "output_kind": type(self.output).__name__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """A step from its ``to_dict()`` form (the history's, the evaluation's), typed again."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        node = str(values.pop("node", "?"))
        output = output_from_dict(node, values.pop("output", None), data.get("output_kind"))
        return cls(node=node, started_at=float(values.pop("started_at", 0.0) or 0.0),
                   duration_s=float(values.pop("duration_s", 0.0) or 0.0), output=output, **values)


@dataclass(frozen=True)
class Running:
    """The graph's nodes running now, in the order they started: LangGraph's own task stream (a task
    started and not yet finished), so a consumer shows what the agent does without knowing the graph."""

    nodes: tuple[str, ...]


class StepTimer:
    """Collects a step's facts while a node runs; ``finish`` freezes them into a Step."""

    def __init__(self, node: str, **inputs: Any) -> None:
        self.node = node
        self.inputs = inputs
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self.prompt: list[dict[str, str]] | None = None
        self.model_output: str | None = None
        self.model_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.model_seconds = 0.0

    def record_call(
        self, prompt: list[dict[str, str]], output: str, prompt_tokens: int, completion_tokens: int,
        seconds: float = 0.0,
    ) -> None:
        self.prompt, self.model_output = prompt, output
        self.model_calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.model_seconds += seconds

    def finish(self, output: StepOutput | None = None, error: str | None = None) -> Step:
        return Step(
            node=self.node, started_at=self.started_at, duration_s=time.monotonic() - self._t0,
            inputs=self.inputs, output=output or NoOutput(), error=error, prompt=self.prompt,
            model_output=self.model_output, model_calls=self.model_calls, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, model_seconds=self.model_seconds,
        )


def totals(steps: list[Step]) -> dict[str, float]:
    return {
        "model_calls": sum(s.model_calls for s in steps),
        "prompt_tokens": sum(s.prompt_tokens for s in steps),
        "completion_tokens": sum(s.completion_tokens for s in steps),
        "seconds": sum(s.duration_s for s in steps),
        "model_seconds": sum(s.model_seconds for s in steps),
    }
