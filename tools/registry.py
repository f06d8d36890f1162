"""The tool registry: every tool comes in through the one ``register_tools`` hook.

Built-in tools and third-party packages alike are plugins found through the ``sqlsage`` entry-point group
(``[project.entry-points.sqlsage]``); a script's tools come from a ``--tools`` spec:

- ``package.module:function`` or ``path/to/script.py:function``: register that one function;
- ``package.module`` or ``path/to/script.py``: a module with a ``@hookimpl register_tools(register)``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from tools import hookspecs
from tools.base import Tool, ToolContext, ToolDefinitionError, ToolResult, tool_from_function

ENTRY_POINT_GROUP = hookspecs.PROJECT


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


class ToolRegistry:
    """The tools the agent may call, by name. ``ToolRegistry.default(specs)`` is the usual way in."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._sources: dict[str, str] = {}
        for tool in tools:
            self.add(tool)

    @classmethod
    def default(cls, extra_specs: Sequence[str] = ()) -> ToolRegistry:
        """Every installed plugin's tools (the built-ins among them), then the ``--tools`` specs."""
        registry = cls()
        registry.load_entry_points()
        registry.load(extra_specs)
        return registry

    # -- registering ---------------------------------------------------------------------------------

    def add(self, tool: Tool, source: str = "code") -> None:
        if tool.name in self._tools:
            raise ToolDefinitionError(
                f"Two tools are named {tool.name!r}: one from {self._sources[tool.name]}, one from {source}. "
                "Rename one of them: register(func, name='another_name')."
            )
        self._tools[tool.name] = tool
        self._sources[tool.name] = source

    def register(
        self, func: Callable[..., Any], name: str | None = None, timeout_s: float | None = None, *,
        source: str = "code",
    ) -> None:
        """The ``register`` callback handed to the ``register_tools`` hook."""
        self.add(tool_from_function(func, name=name, timeout_s=timeout_s), source)

    def load_plugin(self, plugin: object, name: str) -> None:
        """Register the tools of one plugin (a module or object with ``@hookimpl`` functions)."""
        pm = plugin_manager()
        pm.register(plugin, name=name)
        self._collect(pm)

    def load_entry_points(self) -> None:
        """The tools of every installed plugin: ``pm.load_setuptools_entrypoints`` written out, to name the
        plugin that fails to import and to keep a stable order."""
        pm = plugin_manager()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_builtins_first):
            if pm.get_plugin(ep.name) is not None:
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = ep.load()
            except Exception as err:
                raise ToolDefinitionError(
                    f"The sqlsage plugin {ep.name!r} ({ep.value}) failed to import: {type(err).__name__}: {err}"
                ) from err
            pm.register(plugin, name=ep.name)
        self._collect(pm)

    def load(self, specs: Sequence[str]) -> ToolRegistry:
        """Register the tools named by ``--tools`` specs (see the module's docstring)."""
        for spec in specs:
            module_name, sep, attr = spec.strip().rpartition(":")
            if not sep or not attr.isidentifier():
                module_name, attr = spec.strip(), ""
            module = _import(module_name, spec)
            if not attr:
                if getattr(getattr(module, "register_tools", None), f"{hookspecs.PROJECT}_impl", None) is None:
                    raise ToolDefinitionError(
                        f"--tools {spec}: {module_name} has no @hookimpl register_tools(register); "
                        "name a function instead: module:function"
                    )
                self.load_plugin(module, name=f"--tools {spec}")
                continue
            func = getattr(module, attr, None)
            if func is None:
                raise ToolDefinitionError(f"--tools {spec}: {module_name} has no attribute {attr!r}")
            if getattr(func, f"{hookspecs.PROJECT}_impl", None) is not None:  # a register_tools hook itself
                func(register=functools.partial(self.register, source=f"--tools {spec}"))
            else:
                self.register(func, source=f"--tools {spec}")
        return self

    def _collect(self, pm: pluggy.PluginManager) -> None:
        # One plugin at a time, so that a duplicate name or a broken tool can be blamed on its plugin.
        for impl in pm.hook.register_tools.get_hookimpls():  # in the order the plugins were registered
            source = f"plugin {impl.plugin_name!r}"
            register = functools.partial(self.register, source=source)
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except ToolDefinitionError:
                raise
            except Exception as err:
                raise ToolDefinitionError(
                    f"The register_tools hook of {source} failed: {type(err).__name__}: {err}"
                ) from err

    # -- using ---------------------------------------------------------------------------------------

    @property
    def tools(self) -> tuple[Tool, ...]:
        return tuple(self._tools.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def source(self, name: str) -> str | None:
        """Where a tool came from (``plugin 'builtin_tools'``, ``--tools my_tools.py:f``)."""
        return self._sources.get(name)

    def describe(self) -> list[dict[str, Any]]:
        """Name, description and JSON schema of the arguments of every tool, for prompts."""
        return [{"name": t.name, "description": t.description, "parameters": t.parameters_schema}
                for t in self._tools.values()]

    def openai_tools(self) -> list[dict[str, Any]]:
        """The tools in OpenAI's function-calling format (for ``llm.bind_tools``)."""
        return [{"type": "function", "function": d} for d in self.describe()]

    def call(self, name: str, arguments: Any, ctx: ToolContext) -> ToolResult:
        """Run a tool. Unknown names, bad arguments, errors and timeouts come back as a failed ToolResult
        for the model to read; a SqlsageError (broken database or backend) propagates."""
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(False, error=f"There is no tool named {name!r}. The tools are: {', '.join(self._tools)}.")
        return tool.call(arguments, ctx)


def _builtins_first(ep: EntryPoint) -> tuple[bool, str]:
    # A stable order: sqlsage's own tools first, then the plugins by name (the prompts list them so).
    return (ep.dist is None or ep.dist.name != "sqlsage", ep.name)


def _import(module_name: str, spec: str) -> ModuleType:
    path = Path(module_name)
    try:
        if module_name.endswith(".py") or path.is_file():
            if not path.is_file():
                raise ToolDefinitionError(f"--tools {spec}: there is no file {path}")
            name = f"sqlsage_tools_{path.stem}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ToolDefinitionError(f"--tools {spec}: cannot load {path} as Python")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module  # dataclasses and pydantic look their module up
            loader_spec.loader.exec_module(module)
            return module
        return importlib.import_module(module_name)
    except ToolDefinitionError:
        raise
    except Exception as err:
        raise ToolDefinitionError(f"--tools {spec}: cannot import {module_name}: {type(err).__name__}: {err}") from err
