"""Charts for the UI: which chart fits a result, and a matplotlib Figure of it (pure: no Gradio).

The choice itself is the agent's own chart tool, ``tools.builtin.choose_chart`` (a line for a time-like
x, a bar for a category and a number, a scatter for two numbers, nothing for a single value), so the UI
and the agent agree. The UI adds a reason for "none" and prefers a measure over an id column as y. The
user can then change the kind and the columns; ``figure`` draws whatever was chosen (the one chart
renderer: the tool returns a spec, never a picture). No pyplot here:
``matplotlib.figure.Figure`` is safe to build in Gradio's worker threads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.builtin import ChartKind
from tools.builtin import choose_chart as choose_chart_spec

KINDS: tuple[ChartKind, ...] = ("bar", "line", "scatter", "none")
MAX_BARS = 30

_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_ID_NAME = re.compile(r"(^id$|_id$|Id$|ID$)")


@dataclass(frozen=True)
class ChartSpec:
    kind: ChartKind
    x: str | None = None
    y: str | None = None
    reason: str = ""


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_numeric(rows: Sequence[Sequence[Any]], i: int) -> bool:
    values = [r[i] for r in rows if i < len(r) and r[i] is not None]
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _why_none(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not columns or not rows:
        return "no rows to chart"
    if len(rows) == 1 and len(columns) == 1:
        return "a single value"
    if len(rows) == 1:
        return "a single row"
    if len(columns) == 1:
        return "a single column: nothing to plot it against"
    if not any(_is_numeric(rows, i) for i in range(len(columns))):
        return "no numeric column to plot"
    return "nothing to plot the numbers against"


def _prefer_measure(columns: Sequence[str], rows: Sequence[Sequence[Any]], x: str, y: str) -> str:
    """``ArtistId, Name, Albums`` charts Albums, not ArtistId: an id is a label, not a measure."""
    if not _ID_NAME.search(y):
        return y
    measures = [c for i, c in enumerate(columns) if c != x and _is_numeric(rows, i) and not _ID_NAME.search(c)]
    return measures[-1] if measures else y


def choose_chart(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> ChartSpec:
    """The chart that best fits a result (the agent's own choice), or ``none`` with the reason."""
    spec = choose_chart_spec(list(columns), [list(r) for r in rows])
    kind, x, y = spec.get("kind", "none"), spec.get("x"), spec.get("y")
    if kind == "none" or x is None or y is None:
        return ChartSpec("none", reason=_why_none(columns, rows))
    reasons = {"line": "a number over time", "bar": "a number per category", "scatter": "two numbers"}
    return ChartSpec(kind, x, _prefer_measure(columns, rows, x, y), reasons.get(kind, ""))


def chart_data(columns: Sequence[str], rows: Sequence[Sequence[Any]], spec: ChartSpec) -> tuple[list[Any], list[float]]:
    """The x labels/values and the y numbers of ``spec`` (rows whose y is not a number are skipped)."""
    if spec.kind == "none" or spec.x is None or spec.y is None or spec.x not in columns or spec.y not in columns:
        return [], []
    xi, yi = list(columns).index(spec.x), list(columns).index(spec.y)
    xs, ys = [], []
    for row in rows:
        y = _to_number(row[yi]) if yi < len(row) else None
        if y is None:
            continue
        xs.append(row[xi] if xi < len(row) else None)
        ys.append(y)
    return xs, ys


def _as_time(value: Any) -> Any:
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return dt.datetime.fromisoformat(value if len(value) > 7 else value + "-01")
        except ValueError:
            return value
    return value


def figure(columns: Sequence[str], rows: Sequence[Sequence[Any]], spec: ChartSpec, title: str = "") -> Any:
    """A matplotlib Figure of ``spec``, or None when there is nothing to draw."""
    from matplotlib.figure import Figure

    xs, ys = chart_data(columns, rows, spec)
    if not xs:
        return None
    fig = Figure(figsize=(7, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    color = "#ea580c"
    if spec.kind == "bar":
        shown = list(zip(xs, ys, strict=True))[:MAX_BARS]
        labels = ["NULL" if x is None else _short(str(x)) for x, _ in shown]
        ax.bar(range(len(shown)), [y for _, y in shown], color=color)
        ax.set_xticks(range(len(shown)), labels, rotation=45 if len(shown) > 6 else 0,
                      ha="right" if len(shown) > 6 else "center", fontsize=8)
        if len(xs) > MAX_BARS:
            title = (title + " " if title else "") + f"(first {MAX_BARS} of {len(xs)})"
    elif spec.kind == "line":
        pairs = sorted(((_as_time(x), y) for x, y in zip(xs, ys, strict=True) if x is not None),
                       key=lambda p: (str(type(p[0])), p[0]))
        ax.plot([p[0] for p in pairs], [p[1] for p in pairs], marker="o", markersize=3, color=color)
        fig.autofmt_xdate()
    else:
        numbers = [(_to_number(x), y) for x, y in zip(xs, ys, strict=True)]
        points = [(x, y) for x, y in numbers if x is not None]
        if not points:
            return None
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=14, color=color)
    ax.set_xlabel(spec.x or "")
    ax.set_ylabel(spec.y or "")
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
