"""The README's "Write a tool" example runs as written (the text here is pasted there verbatim)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import bundled_database_url
from core.db import Database
from tools.base import ToolContext
from tools.registry import ToolRegistry

README = Path(__file__).resolve().parents[2] / "README.md"

EXAMPLE = '''\
# my_tools.py
def vat(amount: float, rate_percent: float = 20.0) -> float:
    """The value-added tax due on an amount.

    Args:
        amount: The amount before tax.
        rate_percent: The VAT rate, in percent.
    """
    return round(amount * rate_percent / 100, 2)
'''

PLUGIN = '''\
from tools import hookimpl

@hookimpl
def register_tools(register):
    register(vat)
'''


@pytest.fixture
def ctx() -> ToolContext:
    return ToolContext(db=Database.open(bundled_database_url()))


def test_the_example_is_at_most_ten_lines() -> None:
    assert len(EXAMPLE.splitlines()) <= 10


def test_the_example_registers_through_a_tools_spec(tmp_path: Path, ctx: ToolContext) -> None:
    path = tmp_path / "my_tools.py"
    path.write_text(EXAMPLE)
    registry = ToolRegistry.default([f"{path}:vat"])
    vat = registry.get("vat")
    assert vat is not None and vat.description == "The value-added tax due on an amount."
    assert vat.parameters_schema["properties"]["rate_percent"] == {
        "default": 20.0, "description": "The VAT rate, in percent.", "type": "number"}
    assert registry.call("vat", {"amount": 120}, ctx).value == 24.0


def test_the_example_registers_through_the_hook(tmp_path: Path, ctx: ToolContext) -> None:
    path = tmp_path / "my_tools.py"
    path.write_text(EXAMPLE + "\n\n" + PLUGIN)
    registry = ToolRegistry().load([str(path)])
    assert registry.names == ("vat",)
    assert registry.call("vat", {"amount": "50", "rate_percent": 10}, ctx).value == 5.0


def test_the_readme_shows_the_example_as_tested() -> None:
    text = README.read_text(encoding="utf-8")
    assert "## Write a tool" in text
    assert EXAMPLE in text and PLUGIN in text
