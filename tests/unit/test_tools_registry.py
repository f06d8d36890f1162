"""The registry: built-ins through the entry point, third-party plugins, --tools specs, duplicates."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.config import bundled_database_url
from core.db import Database
from tools import hookimpl, hookspecs
from tools.base import ToolContext, ToolDefinitionError
from tools.registry import ToolRegistry

BUILTINS = ("run_sql", "list_tables", "describe_table", "sample_values", "search_knowledge", "make_chart")
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "sqlsage_example_plugin"


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Install the example plugin package into this interpreter's environment (idempotent). Built from a
    copy, so that no build/ or egg-info lands in the repository."""
    source = tmp_path_factory.mktemp("plugin") / "sqlsage_example_plugin"
    shutil.copytree(PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        command = [str(uv), "pip", "install", "--python", sys.executable,
                   "--reinstall-package", "sqlsage-example-plugin", str(source)]
    else:
        command = [sys.executable, "-m", "pip", "install", "--force-reinstall",
                   "--no-deps", str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    importlib.invalidate_caches()
    return "sqlsage-example-plugin"


def test_builtins_come_through_the_entry_point() -> None:
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="sqlsage")}
    assert eps.get("builtin_tools") == "tools.builtin"
    registry = ToolRegistry.default()
    assert registry.names[: len(BUILTINS)] == BUILTINS
    assert registry.source("run_sql") == "plugin 'builtin_tools'"
    assert registry.get("nope") is None and "run_sql" in registry


def test_an_installed_plugin_is_found(example_plugin: str) -> None:
    registry = ToolRegistry.default()
    assert {"days_between", "exchange_rate"} <= set(registry.names)
    assert registry.source("days_between") == "plugin 'example'"
    ctx = ToolContext(db=Database.open(bundled_database_url()))
    assert registry.call("days_between", {"start": "2024-01-01", "end": "2024-03-01"}, ctx).value == 60
    failed = registry.call("exchange_rate", {"currency": "XYZ"}, ctx)
    assert not failed.ok and "No rate for 'XYZ'" in (failed.error or "")


def test_describe_gives_name_description_and_schema() -> None:
    described = {d["name"]: d for d in ToolRegistry.default().describe()}
    sample = described["sample_values"]
    assert sample["description"].startswith("The most common distinct values")
    assert sample["parameters"]["required"] == ["table", "column"]
    assert sample["parameters"]["properties"]["limit"]["default"] == 20
    assert ToolRegistry.default().openai_tools()[0]["type"] == "function"


def test_unknown_tool_is_a_failed_result_naming_the_tools() -> None:
    ctx = ToolContext(db=Database.open(bundled_database_url()))
    result = ToolRegistry.default().call("run_python", {}, ctx)
    assert not result.ok and "no tool named 'run_python'" in (result.error or "") and "run_sql" in (result.error or "")


SCRIPT = '''
from tools import hookimpl

def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()

def whisper(text: str) -> str:
    """Say it softer."""
    return text.lower()

@hookimpl
def register_tools(register):
    register(whisper)
    register(shout, name="yell", timeout_s=2)
'''


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "my_tools.py"
    path.write_text(SCRIPT)
    return path


def test_tools_spec_registers_one_function_from_a_script(script: Path) -> None:
    registry = ToolRegistry().load([f"{script}:shout"])
    assert registry.names == ("shout",)
    assert registry.source("shout") == f"--tools {script}:shout"


def test_tools_spec_with_a_module_uses_its_hook(script: Path) -> None:
    registry = ToolRegistry().load([str(script)])
    assert registry.names == ("whisper", "yell")
    assert registry.get("yell").timeout_s == 2  # type: ignore[union-attr]


def test_tools_spec_with_an_importable_module_function() -> None:
    registry = ToolRegistry().load(["tools.builtin:list_tables"])
    assert registry.names == ("list_tables",)


def test_default_adds_the_specs_after_the_plugins(script: Path) -> None:
    registry = ToolRegistry.default([f"{script}:shout"])
    assert registry.names[-1] == "shout" and "run_sql" in registry


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("/nowhere/tools.py:f", "there is no file"),
        ("tools.builtin:nothing_here", "has no attribute 'nothing_here'"),
        ("json", "has no @hookimpl register_tools"),
        ("json:dumps", "parameter obj needs a type annotation"),
    ],
)
def test_bad_specs_fail_clearly(spec: str, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        ToolRegistry().load([spec])


def test_duplicate_names_are_an_error_naming_both_sources(tmp_path: Path) -> None:
    mine = tmp_path / "dup.py"
    mine.write_text('def run_sql(sql: str) -> str:\n    """Mine."""\n    return sql\n')
    with pytest.raises(ToolDefinitionError, match=r"Two tools are named 'run_sql': one from plugin 'builtin_tools', "
                                                 r"one from --tools .*dup.py:run_sql"):
        ToolRegistry.default([f"{mine}:run_sql"])


def test_duplicates_within_one_plugin_are_an_error() -> None:
    class Twice:
        @hookimpl
        def register_tools(self, register):  # type: ignore[no-untyped-def]
            def f() -> None:
                """F."""

            register(f)
            register(f)

    with pytest.raises(ToolDefinitionError, match="Two tools are named 'f': one from plugin 'twice', one from plugin"):
        ToolRegistry().load_plugin(Twice(), name="twice")


def test_a_plugin_whose_hook_fails_is_named() -> None:
    class Broken:
        @hookimpl
        def register_tools(self, register):  # type: ignore[no-untyped-def]
            raise KeyError("oops")

    with pytest.raises(ToolDefinitionError, match="register_tools hook of plugin 'broken' failed: KeyError"):
        ToolRegistry().load_plugin(Broken(), name="broken")


def test_every_hookspec_is_documented() -> None:
    source = inspect.getsource(hookspecs)
    specs = [
        node for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "hookspec" for d in node.decorator_list)
    ]
    assert specs, "hookspecs.py declares no hooks"
    for node in specs:
        doc = ast.get_docstring(node)
        assert doc and len(doc) > 40, f"hookspec {node.name} needs a docstring saying what a plugin does with it"
    assert textwrap.dedent(hookspecs.__doc__ or "").strip()
