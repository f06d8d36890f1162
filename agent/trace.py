"""One frozen Step record per node run: what went in, what came out, what went wrong, and its cost."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    node: str
    started_at: float
    duration_s: float
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    prompt: list[dict[str, str]] | None = None
    model_output: str | None = None
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    prompts: str | None = None  # the prompt set's name@version (agent.prompts), stamped by the assistant

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def finish(self, error: str | None = None, **output: Any) -> Step:
        return Step(
            node=self.node, started_at=self.started_at, duration_s=time.monotonic() - self._t0,
            inputs=self.inputs, output=output, error=error, prompt=self.prompt, model_output=self.model_output,
            model_calls=self.model_calls, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            model_seconds=self.model_seconds,
        )


def totals(steps: list[Step]) -> dict[str, float]:
    return {
        "model_calls": sum(s.model_calls for s in steps),
        "prompt_tokens": sum(s.prompt_tokens for s in steps),
        "completion_tokens": sum(s.completion_tokens for s in steps),
        "seconds": sum(s.duration_s for s in steps),
        "model_seconds": sum(s.model_seconds for s in steps),
    }
