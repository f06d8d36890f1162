"""The tool protocol: a tool is a typed Python function with a docstring.

Its JSON schema comes from its signature (through pydantic), its description from the docstring's first
paragraph, and per-argument descriptions from its parameter section (Google ``Args:``, NumPy ``Parameters``,
ReST ``:param x:`` or Epydoc ``@param x:``, read by docstring-parser). A parameter annotated
``ToolContext`` is injected when the tool runs and never shown to the model.

Errors are sorted by whose fault they are: a tool defined wrongly raises ToolDefinitionError when it is
registered (the plugin author fixes it); bad arguments, a tool that raises and a tool that hangs become a
failed ToolResult (the model reads it and tries again); a SqlsageError raised inside a tool (the database
is gone, the model server is down) propagates and stops the run.
"""

from __future__ import annotations

import contextvars
import inspect
import re
import threading
import time
import typing
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from core.db import Database
from core.errors import SqlsageError

if TYPE_CHECKING:
    from core.config import Settings
    from knowledge.retrieval import Retriever

DEFAULT_TIMEOUT_S = 30.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")  # what OpenAI accepts as a function name


class ToolDefinitionError(SqlsageError):
    """A tool or plugin is defined wrongly (no docstring, an untyped parameter, a duplicate name, a bad
    ``--tools`` spec). Raised when the tools are registered; the tool's author fixes it."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool may touch, injected into a parameter annotated ``ToolContext``.

    ``last_table`` holds the columns and rows of the last successful ``run_sql`` of the current ReAct loop
    (so ``make_chart`` can chart them without the model copying rows into its arguments).
    """

    db: Database
    knowledge: Retriever | None = None
    settings: Settings | None = None
    last_table: tuple[list[str], list[list[Any]]] | None = None


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters_schema: dict[str, Any]
    func: Callable[..., Any]
    timeout_s: float = DEFAULT_TIMEOUT_S
    arguments_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)
    context_param: str | None = field(default=None, repr=False)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """The keyword arguments for ``func``, checked against the schema. Raises ValueError with a message
        written for the model."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ValueError(f"arguments must be a JSON object, not {type(arguments).__name__}")
        if self.arguments_model is None:
            return dict(arguments)
        try:
            parsed = self.arguments_model.model_validate(dict(arguments))
        except ValidationError as err:
            raise ValueError(validation_message(err)) from err
        return {f.alias or name: getattr(parsed, name) for name, f in type(parsed).model_fields.items()}

    def call(self, arguments: Any, ctx: ToolContext) -> ToolResult:
        """Validate, then run in a worker thread, cut off after ``timeout_s``.

        A hung Python thread cannot be killed: on timeout it is abandoned (a daemon thread, so it does not
        keep the process alive) and the loop goes on without it.
        """
        began = time.monotonic()
        try:
            kwargs = self.validate(arguments)
        except ValueError as err:
            return ToolResult(False, error=f"Invalid arguments for {self.name}: {err}", seconds=_since(began))
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        future: Future[Any] = Future()
        context = contextvars.copy_context()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(context.run(self.func, **kwargs))
            except BaseException as err:  # handed to the caller through the future
                future.set_exception(err)

        threading.Thread(target=work, name=f"sqlsage-tool-{self.name}", daemon=True).start()
        done, _ = wait([future], timeout=self.timeout_s)
        if not done:
            message = f"The tool {self.name} did not finish within {self.timeout_s:g} s; it was abandoned."
            return ToolResult(False, error=message, seconds=_since(began))
        try:
            value = future.result()
        except SqlsageError:
            raise  # the database or the model server is broken: stop
        except Exception as err:
            return ToolResult(False, error=f"{type(err).__name__}: {err}", seconds=_since(began))
        return ToolResult(True, value=value, seconds=_since(began))


def _since(began: float) -> float:
    return time.monotonic() - began


def validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        where = ".".join(str(x) for x in e["loc"]) or "arguments"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def tool_from_function(func: Callable[..., Any], name: str | None = None, timeout_s: float | None = None) -> Tool:
    """The Tool for a typed function with a docstring. Raises ToolDefinitionError when it is not one."""
    if not callable(func):
        raise ToolDefinitionError(f"A tool must be a function, not {type(func).__name__}: {func!r}")
    tool_name: str = name or str(getattr(func, "__name__", ""))
    where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', tool_name)}"
    if not _NAME.match(tool_name):
        raise ToolDefinitionError(f"Tool name {tool_name!r} ({where}) must match {_NAME.pattern}")
    if timeout_s is not None and timeout_s <= 0:
        raise ToolDefinitionError(f"Tool {tool_name}: timeout_s must be positive, not {timeout_s}")
    doc = inspect.getdoc(func) or ""
    description = first_paragraph(doc)
    if not description:
        raise ToolDefinitionError(f"Tool {tool_name} ({where}) needs a docstring: the model reads it.")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as err:
        raise ToolDefinitionError(f"Tool {tool_name} ({where}): cannot resolve its type hints: {err}") from err
    try:
        arg_docs = argument_docs(doc)
    except docstring_parser.ParseError as err:
        raise ToolDefinitionError(
            f"Tool {tool_name} ({where}): its docstring's parameter section cannot be read: {err}"
        ) from err
    fields: dict[str, Any] = {}
    context_param = None
    for i, param in enumerate(inspect.signature(func).parameters.values()):
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise ToolDefinitionError(
                f"Tool {tool_name} ({where}): parameter {param.name} must be a plain or keyword-only parameter"
            )
        annotation = hints.get(param.name, param.annotation)
        if annotation is ToolContext:
            context_param = param.name
            continue
        if annotation is inspect.Parameter.empty:
            raise ToolDefinitionError(f"Tool {tool_name} ({where}): parameter {param.name} needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        # Fields get neutral names and the parameter's name as alias: a parameter called "schema" or
        # "json" would otherwise shadow BaseModel's attributes.
        fields[f"p{i}"] = (annotation, Field(default, alias=param.name, description=arg_docs.get(param.name)))
    try:
        model = create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = clean_schema(model.model_json_schema(by_alias=True))
    except Exception as err:  # pydantic cannot build a schema for one of the annotations
        raise ToolDefinitionError(f"Tool {tool_name} ({where}): no JSON schema for its parameters: {err}") from err
    return Tool(
        name=tool_name, description=description, parameters_schema=schema, func=func,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s),
        arguments_model=model, context_param=context_param,
    )


def first_paragraph(doc: str) -> str:
    paragraph = doc.strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def argument_docs(doc: str) -> dict[str, str]:
    """Per-argument descriptions from the docstring's parameter section, in whichever style it is written.
    Google is read first and on its own: docstring-parser's AUTO would read a malformed ``Args:`` line as
    some other style with no parameters, where Google's parser raises ParseError saying which line."""
    parsed = docstring_parser.parse(doc, style=docstring_parser.DocstringStyle.GOOGLE)
    if not parsed.params:
        parsed = docstring_parser.parse(doc)  # AUTO: the style (NumPy, ReST, Epydoc) that finds the most
    return {p.arg_name.lstrip("*"): " ".join(p.description.split()) for p in parsed.params if p.description}


def clean_schema(schema: Any) -> Any:
    """The schema without pydantic's generated titles (noise in a small model's prompt)."""
    if isinstance(schema, list):
        return [clean_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in ("default", "const", "enum", "examples"):  # data, not schema
            cleaned[key] = value
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            cleaned[key] = {name: clean_schema(sub) for name, sub in value.items()}
        else:
            cleaned[key] = clean_schema(value)
    return cleaned
