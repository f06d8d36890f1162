"""The ReAct path with the real local model: a plugin's tool is routed to, called, and its result answered;
a tool that raises is an error step and the loop goes on."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.deps import Deps, RunContext
from agent.graph import build_graph
from agent.llm import build_chat_model
from agent.nodes.context import gather_context
from agent.nodes.react import after_route, react, route
from agent.state import AgentState, new_turn
from agent.trace import Step
from core.config import Endpoint, Settings, Techniques, bundled_database_url
from core.db import Database
from tools.registry import ToolRegistry

pytestmark = pytest.mark.llm

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "sqlsage_example_plugin"
TOOLS_ON = Techniques(tools=True)


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Install the example plugin package into this environment (idempotent; built from a copy)."""
    source = tmp_path_factory.mktemp("plugin") / "sqlsage_example_plugin"
    shutil.copytree(PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    uv = Path(sys.executable).parent / "uv"
    command = ([str(uv), "pip", "install", "--python", sys.executable, "--reinstall-package",
                "sqlsage-example-plugin", str(source)] if uv.exists() else
               [sys.executable, "-m", "pip", "install", "--force-reinstall", "--no-deps", str(source)])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def deps(local_endpoint: Endpoint, example_plugin: None) -> Iterator[Deps]:
    db = Database.open(bundled_database_url())
    registry = ToolRegistry.default()
    assert "days_between" in registry and "exchange_rate" in registry
    yield Deps(llm=build_chat_model(Settings(), local_endpoint), db=db, tools=registry)
    db.close()


def tools_graph() -> CompiledStateGraph:
    """The full graph once the ReAct path is wired into it; until then context → route → react."""
    full = build_graph(Techniques())
    if "react" in full.nodes and "route" in full.nodes:
        return full
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("context", gather_context)
    graph.add_node("route", route)
    graph.add_node("react", react)
    graph.add_node("generate", lambda state: {"answer": None})  # the SQL path is not under test here
    graph.add_edge(START, "context")
    graph.add_edge("context", "route")
    graph.add_conditional_edges("route", after_route)
    graph.add_edge("react", END)
    graph.add_edge("generate", END)
    return graph.compile()


def ask(deps: Deps, question: str) -> dict[str, Any]:
    return tools_graph().invoke(new_turn(question), context=RunContext(deps, TOOLS_ON))


def describe(trace: list[Step]) -> str:
    return "\n".join(f"{s.node}: in={s.inputs} out={s.output} error={s.error} model={s.model_output!r}"
                     for s in trace)


def test_a_plugin_tool_is_called_and_its_result_answered(deps: Deps) -> None:
    out = ask(deps, "How many days are between 2024-01-01 and 2024-03-01? Use the days_between tool.")
    trace = out["trace"]
    assert out["route"] == "tools", describe(trace)
    calls = [s for s in trace if s.node == "tool:days_between"]
    assert calls and calls[0].error is None, describe(trace)
    assert calls[0].inputs == {"start": "2024-01-01", "end": "2024-03-01"}
    assert calls[0].output.result == "60"
    assert "60" in (out["answer"] or ""), describe(trace)
    assert trace[-1].node == "react" and trace[-1].error is None


def flaky_stock_tool() -> Callable[[str], int]:
    """A tool that fails on its first call (a service hiccup) and works on the next."""
    calls: list[str] = []

    def warehouse_stock(product: str) -> int:
        """How many units of a product are in the warehouse.

        Args:
            product: The product's name.
        """
        calls.append(product)
        if len(calls) == 1:
            raise ConnectionError("The warehouse service did not respond. Call warehouse_stock again.")
        return 42

    return warehouse_stock


def test_a_raising_tool_is_an_error_step_and_the_loop_goes_on(deps: Deps) -> None:
    registry = ToolRegistry.default()
    registry.register(flaky_stock_tool())
    out = ask(replace(deps, tools=registry), "How many units of Blue Widget are in the warehouse? "
                                             "Use the warehouse_stock tool.")
    trace = out["trace"]
    assert out["route"] == "tools", describe(trace)
    calls = [s for s in trace if s.node == "tool:warehouse_stock"]
    assert calls and calls[0].error == "ConnectionError: The warehouse service did not respond. Call " \
                                       "warehouse_stock again.", describe(trace)
    assert len(calls) >= 2 and calls[1].error is None, describe(trace)  # the model read the error and went on
    assert "42" in (out["answer"] or ""), describe(trace)
