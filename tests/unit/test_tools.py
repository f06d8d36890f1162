"""The tool protocol: a schema from a typed signature and its docstring; validated, guarded calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Literal

import pytest

from core.config import bundled_database_url
from core.db import Database
from core.errors import DatabaseUnavailable
from tools.base import ToolContext, ToolDefinitionError, argument_docs, tool_from_function


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    database = Database.open(bundled_database_url())
    yield database
    database.close()


@pytest.fixture
def ctx(db: Database) -> ToolContext:
    return ToolContext(db=db)


def convert(ctx: ToolContext, amount: float, currency: Literal["EUR", "GBP"] = "EUR", note: str | None = None) -> str:
    """Convert an amount of US dollars into another currency.

    Rates are made up: this second paragraph is not part of the description.

    Args:
        amount: How many dollars. A description
            that goes on over two lines.
        currency (str): The currency to convert into.

    Returns:
        The converted amount, as text.
    """
    return f"{amount * (0.9 if currency == 'EUR' else 0.8):.2f} {currency}"


def test_schema_comes_from_the_signature_and_the_docstring() -> None:
    tool = tool_from_function(convert)
    assert tool.name == "convert"
    assert tool.description == "Convert an amount of US dollars into another currency."
    schema = tool.parameters_schema
    assert schema["type"] == "object" and schema["required"] == ["amount"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert list(props) == ["amount", "currency", "note"]  # ctx is injected, never shown to the model
    assert props["amount"] == {
        "type": "number", "description": "How many dollars. A description that goes on over two lines."}
    assert props["currency"]["enum"] == ["EUR", "GBP"] and props["currency"]["default"] == "EUR"
    assert props["currency"]["description"] == "The currency to convert into."
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "title" not in str(schema)  # pydantic's generated titles are noise in a prompt
    assert tool.context_param == "ctx"


def test_a_parameter_named_like_a_pydantic_attribute_still_works(ctx: ToolContext) -> None:
    def lookup(schema: str, json: int = 1, title: str = "t") -> str:
        """Echo."""
        return f"{schema}-{json}-{title}"

    tool = tool_from_function(lookup)
    assert list(tool.parameters_schema["properties"]) == ["schema", "json", "title"]
    assert tool.call({"schema": "s", "json": "2"}, ctx).value == "s-2-t"


def test_name_and_timeout_can_be_given() -> None:
    tool = tool_from_function(convert, name="usd_to", timeout_s=3)
    assert (tool.name, tool.timeout_s) == ("usd_to", 3.0)


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f(x: int) -> int:\n    return x", "needs a docstring"),
        ("def f(x) -> int:\n    '''Doc.'''\n    return x", "needs a type annotation"),
        ("def f(*xs: int) -> int:\n    '''Doc.'''\n    return 1", "plain or keyword-only"),
    ],
)
def test_a_badly_defined_tool_is_refused_with_a_clear_message(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(ToolDefinitionError, match=message):
        tool_from_function(namespace["f"])  # type: ignore[arg-type]


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="must match"):
        tool_from_function(convert, name="two words")


@pytest.mark.parametrize("section", [
    pytest.param("Args:\n    a (int): First.\n    b: Second,\n        continued.\n\nReturns:\n    c: not an arg",
                 id="google"),
    pytest.param("Parameters\n----------\na : int\n    First.\nb : str\n    Second,\n    continued.\n\n"
                 "Returns\n-------\nint\n    not an arg", id="numpy"),
    pytest.param(":param a: First.\n:type a: int\n:param b: Second,\n    continued.\n:returns: not an arg", id="rest"),
])
def test_argument_docs_read_the_parameter_section_in_each_style(section: str) -> None:
    assert argument_docs(f"Do it.\n\n{section}") == {"a": "First.", "b": "Second, continued."}


def test_argument_docs_of_a_docstring_without_sections_are_empty() -> None:
    assert argument_docs("No sections here.") == {}


def test_a_numpy_style_tool_gets_its_parameter_descriptions_in_the_schema() -> None:
    def scale(x: float, factor: float = 2.0) -> float:
        """Scale a number.

        Parameters
        ----------
        x : float
            The number.
        factor : float
            What to multiply it by.
        """
        return x * factor

    properties = tool_from_function(scale).parameters_schema["properties"]
    assert properties["x"]["description"] == "The number."
    assert properties["factor"]["description"] == "What to multiply it by."


def test_an_unreadable_google_args_section_is_a_definition_error() -> None:
    def f(a: int) -> int:
        """Do it.

        Args:
            a (int First.
        """
        return a

    with pytest.raises(ToolDefinitionError, match=r"Tool f .*parameter section cannot be read.*colon"):
        tool_from_function(f)


def test_call_validates_coerces_and_injects_the_context(ctx: ToolContext) -> None:
    seen: list[ToolContext] = []

    def count(ctx: ToolContext, table: str, limit: int = 3) -> int:
        """Count."""
        seen.append(ctx)
        return limit

    tool = tool_from_function(count)
    result = tool.call({"table": "Artist", "limit": "7"}, ctx)
    assert result.ok and result.value == 7 and result.error is None and result.seconds >= 0
    assert seen == [ctx]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "amount: Field required"),
        ({"amount": "lots"}, "amount: Input should be a valid number"),
        ({"amount": 1, "currency": "JPY"}, "currency: Input should be 'EUR' or 'GBP'"),
        ({"amount": 1, "extra": 2}, "extra: Extra inputs are not permitted"),
        (["amount", 1], "must be a JSON object"),
    ],
)
def test_arguments_are_validated_before_the_call(ctx: ToolContext, arguments: object, message: str) -> None:
    calls: list[float] = []

    def convert_spy(ctx: ToolContext, amount: float, currency: Literal["EUR", "GBP"] = "EUR") -> float:
        """Convert."""
        calls.append(amount)
        return amount

    result = tool_from_function(convert_spy).call(arguments, ctx)
    assert not result.ok and result.value is None
    assert result.error is not None and result.error.startswith("Invalid arguments for convert_spy:")
    assert message in result.error
    assert calls == []  # never called with bad arguments


def test_a_tool_that_raises_becomes_a_failed_result(ctx: ToolContext) -> None:
    def broken(x: int) -> int:
        """Divide."""
        return 1 // x

    result = tool_from_function(broken).call({"x": 0}, ctx)
    assert not result.ok and result.error == "ZeroDivisionError: integer division or modulo by zero"


def test_a_tool_raising_timeout_error_is_not_mistaken_for_a_hang(ctx: ToolContext) -> None:
    def slow_socket() -> None:
        """Raise TimeoutError at once."""
        raise TimeoutError("socket timed out")

    result = tool_from_function(slow_socket, timeout_s=5).call({}, ctx)
    assert result.error == "TimeoutError: socket timed out"


def test_a_hanging_tool_is_cut_off_and_abandoned(ctx: ToolContext) -> None:
    release = threading.Event()

    def hang() -> str:
        """Wait until released."""
        release.wait(30)
        return "late"

    began = time.monotonic()
    try:
        result = tool_from_function(hang, timeout_s=0.5).call({}, ctx)
    finally:
        release.set()  # let the abandoned thread end with the test
    assert time.monotonic() - began < 5
    assert not result.ok and result.error == "The tool hang did not finish within 0.5 s; it was abandoned."


def test_a_broken_backend_inside_a_tool_propagates(ctx: ToolContext) -> None:
    def gone() -> None:
        """The database went away."""
        raise DatabaseUnavailable("The database is locked.")

    with pytest.raises(DatabaseUnavailable, match="locked"):
        tool_from_function(gone).call({}, ctx)
