"""What the nodes may touch, passed in once: the graph's runtime context."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from agent.config import Techniques
from agent.db import Database


@dataclass(frozen=True)
class Deps:
    llm: BaseChatModel
    db: Database


@dataclass(frozen=True)
class RunContext:
    """The graph's context schema: dependencies plus this run's technique switches."""

    deps: Deps
    techniques: Techniques = field(default_factory=Techniques)
