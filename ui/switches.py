"""The settings form, derived from the ``Techniques`` model: one control per field, built at run time.

Other parts of sqlsage add technique switches as fields of ``core.config.Techniques``; the UI picks
them up without a change here. Pure: no Gradio (the app turns each ``Switch`` into a component).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from core.config import Techniques

SwitchKind = Literal["bool", "int", "float", "choice", "text"]


@dataclass(frozen=True)
class Switch:
    name: str
    kind: SwitchKind
    default: Any
    label: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    # A number that may be unset (None): shown as a text box, where empty means unset. A number box
    # cannot be empty: it would send 0, a real value (``escalate_min_logprob=0`` escalates nearly every
    # question, and without escalate it is refused).
    optional: bool = False
    stage: str = "other"  # the method's stage it belongs to (STAGES), "other" for a field not listed


# The method's stages, in the order a question goes through them, each with the switches it holds and a
# readable label for each. A field of Techniques not listed here still gets a control, in "other".
STAGES: dict[str, str] = {
    "context": "Context: what the prompt shows of the database",
    "examples": "Examples: solved questions and values retrieved into the prompt",
    "reasoning": "Reasoning",
    "candidates": "Candidates: more than one try, and when to spend them",
    "repair": "Repair: fixing SQL that failed",
    "answer": "Answer and tools",
    "other": "Other",
}
LABELS: dict[str, tuple[str, str]] = {
    "prompts": ("context", "Prompt set"),
    "sample_rows": ("context", "Sample rows per table"),
    "schema_linking": ("context", "Only the relevant tables (schema linking)"),
    "link_tables": ("context", "Tables kept by schema linking"),
    "prompt_budget": ("context", "Prompt size cap in tokens (0: none)"),
    "few_shot": ("examples", "Solved examples in the prompt"),
    "first_try_examples": ("examples", "Solved examples in the first try"),
    "same_db_examples": ("examples", "Use examples from this database"),
    "hyde": ("examples", "Draft the SQL first to pick examples (HyDE)"),
    "difficulty": ("examples", "Prefer examples of similar difficulty"),
    "values": ("examples", "Match words of the question to stored values"),
    "cot": ("reasoning", "Plan columns, tables and joins first (chain of thought)"),
    "self_consistency": ("candidates", "Self-consistency samples"),
    "sc_temperature": ("candidates", "Temperature of the samples"),
    "escalate": ("candidates", "Try once cheaply, escalate when unsure"),
    "escalate_check": ("candidates", "Samples that check the first try"),
    "escalate_min_logprob": ("candidates", "Escalate below this token log-probability"),
    "fix_qualifiers": ("repair", "Fix columns qualified with the wrong table"),
    "repair": ("repair", "Repair SQL from the database's error"),
    "max_repairs": ("repair", "Repairs at most"),
    "sc_repair_each": ("repair", "Repair every failed sample"),
    "answer": ("answer", "Write an answer sentence"),
    "tools": ("answer", "Let the agent use its tools"),
    "max_tool_steps": ("answer", "Tool calls at most"),
}


def _label(name: str) -> str:
    return LABELS[name][1] if name in LABELS else name.replace("_", " ").capitalize()


def _stage(name: str) -> str:
    return LABELS[name][0] if name in LABELS else "other"


def by_stage(items: Sequence[Switch]) -> list[tuple[str, list[Switch]]]:
    """The switches grouped by stage, in the order of STAGES (empty stages left out)."""
    return [(title, [s for s in items if s.stage == stage]) for stage, title in STAGES.items()
            if any(s.stage == stage for s in items)]


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def switches(model: type[BaseModel] = Techniques) -> list[Switch]:
    """One Switch per field of ``model`` (bool, int, float, Literal choices, anything else as text)."""
    out = []
    for name, field in model.model_fields.items():
        annotation = _unwrap_optional(field.annotation)
        optional = annotation is not field.annotation
        minimum = maximum = None
        for meta in field.metadata:
            for attr in ("ge", "gt"):
                if getattr(meta, attr, None) is not None:
                    minimum = getattr(meta, attr)
            for attr in ("le", "lt"):
                if getattr(meta, attr, None) is not None:
                    maximum = getattr(meta, attr)
        common = {"name": name, "default": field.get_default(call_default_factory=True), "label": _label(name),
                  "help": field.description or "", "stage": _stage(name)}
        if optional and annotation in (int, float):
            out.append(Switch(kind="text", optional=True, **common))
        elif annotation is bool:
            out.append(Switch(kind="bool", **common))
        elif annotation is int:
            out.append(Switch(kind="int", minimum=minimum, maximum=maximum, **common))
        elif annotation is float:
            out.append(Switch(kind="float", minimum=minimum, maximum=maximum, **common))
        elif typing.get_origin(annotation) is Literal:
            out.append(Switch(kind="choice", choices=typing.get_args(annotation), **common))
        else:
            out.append(Switch(kind="text", **common))
    return out


def current_values(techniques: BaseModel, items: Sequence[Switch]) -> list[Any]:
    return [getattr(techniques, s.name, s.default) for s in items]


def techniques_from_form(items: Sequence[Switch], values: Sequence[Any], base: Techniques | None = None) -> Techniques:
    """The Techniques the form describes. Raises ValueError with one readable line per bad field."""
    data: dict[str, Any] = (base or Techniques.model_validate({})).model_dump()
    for switch, value in zip(items, values, strict=True):
        if switch.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if switch.kind in ("int", "float") and value is None:
            value = switch.default
        if switch.optional and (value is None or not str(value).strip()):
            value = None  # an empty box: unset
        data[switch.name] = value
    try:
        return Techniques.model_validate(data)
    except ValidationError as err:
        # A field's error names the field; a combination's (loc is empty) names its switches itself.
        labels = {s.name: s.label for s in items}
        problems = "; ".join(": ".join(filter(None, (_where(e["loc"], labels), _readable(e["msg"], labels))))
                             for e in err.errors())
        raise ValueError(f"Invalid technique settings: {problems}") from err


def _where(loc: Sequence[Any], labels: Mapping[str, str]) -> str:
    name = ".".join(str(p) for p in loc)
    return f"{labels[name]} ({name})" if name in labels else name


def _readable(message: str, labels: Mapping[str, str]) -> str:
    """A combination's message names switches by field name; add the label the form shows (once)."""
    message = message.removeprefix("Value error, ")
    for name in sorted(labels, key=len, reverse=True):
        message = re.sub(rf"\b{name}\b(?! \()", f"{name} ({labels[name]})", message, count=1)
    return message


def describe(techniques: BaseModel, base: BaseModel | None = None) -> str:
    """The switches that differ from ``base`` (or all of them), as ``name=value`` text."""
    now: Mapping[str, Any] = techniques.model_dump()
    ref: Mapping[str, Any] = base.model_dump() if base is not None else {}
    changed = {k: v for k, v in now.items() if base is None or ref.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "the defaults"
