"""What the nodes may touch, passed in once: the graph's runtime context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from core.config import Techniques
from core.db import Database

if TYPE_CHECKING:
    from knowledge.retrieval import Retriever
    from tools.registry import ToolRegistry


@dataclass(frozen=True)
class Deps:
    llm: BaseChatModel
    db: Database
    knowledge: Retriever | None = None  # retrieval techniques need it; without it they are skipped
    tools: ToolRegistry | None = None  # the tools the agent may call (the ReAct path)


@dataclass(frozen=True)
class RunContext:
    """The graph's context schema: dependencies plus this run's technique switches."""

    deps: Deps
    techniques: Techniques = field(default_factory=Techniques)
