"""Charts for the UI: which chart fits a result, and an interactive Plotly figure of it (no Gradio).

The choice itself is the agent's own chart tool, ``tools.builtin.choose_chart`` (a line for a time-like
x, a bar for a category and a number, a scatter for two numbers, nothing for a single value), so the UI
and the agent agree (an id column is a label, never the measure). The UI adds a reason for "none". The
user can then change the kind and the columns; ``figure`` draws whatever was chosen (the one chart
renderer: the tool returns a spec, never a picture). The figure hovers its values, draws bars
sideways when their labels are long (so no label is cut), keeps the largest ``MAX_BARS`` categories
and sums the rest into "others", and its toolbar downloads a PNG (drawn in the browser). Plotly is
imported only when a figure is drawn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.builtin import DATE_TEXT, ChartKind
from tools.builtin import choose_chart as choose_chart_spec

KINDS: tuple[ChartKind, ...] = ("bar", "line", "scatter", "none")
MAX_BARS = 15  # categories drawn; the rest are summed into one "others" bar
LONG_LABEL = 10  # a category label longer than this (characters) turns the bars sideways
OTHERS = "others"
COLOR = "#ea580c"



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


def choose_chart(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> ChartSpec:
    """The chart that best fits a result (the agent's own choice), or ``none`` with the reason."""
    spec = choose_chart_spec(list(columns), [list(r) for r in rows])
    kind, x, y = spec.get("kind", "none"), spec.get("x"), spec.get("y")
    if kind == "none" or x is None or y is None:
        return ChartSpec("none", reason=_why_none(columns, rows))
    reasons = {"line": "a number over time", "bar": "a number per category", "scatter": "two numbers"}
    return ChartSpec(kind, x, y, reasons.get(kind, ""))


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
    if isinstance(value, str) and DATE_TEXT.match(value):
        try:
            return dt.datetime.fromisoformat(value if len(value) > 7 else value + "-01")
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class Bars:
    """The bars of a bar chart: at most ``MAX_BARS`` labels (largest first when capped, with
    ``others`` summing the rest), and whether they lie sideways."""

    labels: list[str]
    values: list[float]
    hidden: int  # categories summed into "others" (0: none)
    horizontal: bool


def bars(xs: Sequence[Any], ys: Sequence[float], cap: int = MAX_BARS) -> Bars:
    """The bars for ``xs``/``ys``: the order of the result when it fits, else the ``cap - 1`` largest
    and one "others" bar with the sum of the rest (so the total stays right)."""
    labels = ["NULL" if x is None else str(x) for x in xs]
    pairs = list(zip(labels, ys, strict=True))
    hidden = 0
    if len(pairs) > cap:
        ranked = sorted(pairs, key=lambda p: p[1], reverse=True)
        kept, rest = ranked[: cap - 1], ranked[cap - 1:]
        pairs = [*kept, (f"{OTHERS} ({len(rest)})", sum(v for _, v in rest))]
        hidden = len(rest)
    horizontal = any(len(label) > LONG_LABEL for label, _ in pairs) or len(pairs) > 8
    return Bars([p[0] for p in pairs], [p[1] for p in pairs], hidden, horizontal)


def line_points(xs: Sequence[Any], ys: Sequence[float]) -> list[tuple[Any, float]]:
    """The points of a line chart, in x order (dates parsed, so the axis is a time axis)."""
    pairs = [(_as_time(x), y) for x, y in zip(xs, ys, strict=True) if x is not None]
    return sorted(pairs, key=lambda p: (str(type(p[0])), p[0]))


def scatter_points(xs: Sequence[Any], ys: Sequence[float]) -> list[tuple[float, float]]:
    numbers = [(_to_number(x), y) for x, y in zip(xs, ys, strict=True)]
    return [(x, y) for x, y in numbers if x is not None]


def figure(columns: Sequence[str], rows: Sequence[Sequence[Any]], spec: ChartSpec, title: str = "") -> Any:
    """A Plotly Figure of ``spec`` (hover values, full labels, PNG download), or None when there is
    nothing to draw."""
    import plotly.graph_objects as go

    xs, ys = chart_data(columns, rows, spec)
    if not xs:
        return None
    x_name, y_name = spec.x or "", spec.y or ""
    fig = go.Figure()
    height = 380
    if spec.kind == "bar":
        b = bars(xs, ys)
        if b.hidden:
            title = (title + " " if title else "") + f"(the {len(b.labels) - 1} largest of {len(xs)}; " \
                f"{b.hidden} summed as {OTHERS})"
        if b.horizontal:  # top to bottom in the result's order: the y axis is reversed
            fig.add_trace(go.Bar(x=b.values, y=b.labels, orientation="h", marker_color=COLOR, name=y_name,
                                 hovertemplate=f"{x_name}: %{{y}}<br>{y_name}: %{{x:,}}<extra></extra>"))
            fig.update_yaxes(autorange="reversed", automargin=True, title_text=x_name, type="category")
            fig.update_xaxes(title_text=y_name)
            height = max(300, 26 * len(b.labels) + 120)
        else:
            fig.add_trace(go.Bar(x=b.labels, y=b.values, marker_color=COLOR, name=y_name,
                                 hovertemplate=f"{x_name}: %{{x}}<br>{y_name}: %{{y:,}}<extra></extra>"))
            fig.update_xaxes(title_text=x_name, type="category", automargin=True)
            fig.update_yaxes(title_text=y_name)
    elif spec.kind == "line":
        pts = line_points(xs, ys)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 line_color=COLOR, name=y_name,
                                 hovertemplate=f"{x_name}: %{{x}}<br>{y_name}: %{{y:,}}<extra></extra>"))
        fig.update_xaxes(title_text=x_name, automargin=True)
        fig.update_yaxes(title_text=y_name)
    else:
        points = scatter_points(xs, ys)
        if not points:
            return None
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="markers",
                                 marker_color=COLOR, name=y_name,
                                 hovertemplate=f"{x_name}: %{{x:,}}<br>{y_name}: %{{y:,}}<extra></extra>"))
        fig.update_xaxes(title_text=x_name)
        fig.update_yaxes(title_text=y_name)
    fig.update_layout(
        title_text=title or None, title_font_size=13, height=height, showlegend=False, hovermode="closest",
        margin={"l": 10, "r": 10, "t": 40 if title else 16, "b": 10}, template="plotly_white",
        font={"family": "DejaVu Sans, sans-serif", "size": 12},
    )
    return fig

