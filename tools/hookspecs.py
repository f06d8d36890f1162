"""The plugin hooks of sqlsage (project name ``sqlsage``). A plugin is a module with ``@hookimpl`` functions.

Plugins come in through the ``sqlsage`` entry-point group (the built-in tools too), or from a
``--tools module`` spec. Every hook here must have a docstring: a test checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "sqlsage"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_tools(register: Callable[..., Any]) -> None:
    """Register tools the agent may call: ``register(func, name=None, timeout_s=None)`` for each one.

    ``func`` is a typed Python function with a docstring; its JSON schema comes from its signature, its
    description from the docstring's first paragraph, per-argument descriptions from an ``Args:`` section.
    A parameter annotated ``ToolContext`` receives the database and knowledge store and is not shown to
    the model.
    """
