"""The chart chooser (the agent's own, via ui.charts) and the figure drawing."""

from __future__ import annotations

import pytest

from ui import charts


@pytest.mark.parametrize(
    "columns, rows, kind, x, y",
    [
        (["Genre", "Tracks"], [["Rock", 1297], ["Latin", 579]], "bar", "Genre", "Tracks"),
        (["InvoiceDate", "Total"], [["2009-01-01", 1.98], ["2009-02-01", 3.96]], "line", "InvoiceDate", "Total"),
        (["Year", "Sales"], [[2009, 449.46], [2010, 481.45]], "line", "Year", "Sales"),
        (["Milliseconds", "Bytes"], [[343719, 11170334], [342562, 5510424]], "scatter", "Milliseconds", "Bytes"),
        (["n"], [[275]], "none", None, None),
        (["Name"], [["AC/DC"], ["Accept"]], "none", None, None),
        ([], [], "none", None, None),
    ],
)
def test_choose_chart(columns: list[str], rows: list[list[object]], kind: str, x: str | None, y: str | None) -> None:
    spec = charts.choose_chart(columns, rows)
    assert (spec.kind, spec.x, spec.y) == (kind, x, y)


def test_a_measure_is_preferred_to_an_id_column() -> None:
    spec = charts.choose_chart(["ArtistId", "Name", "Albums"], [[1, "AC/DC", 2], [2, "Accept", 2]])
    assert (spec.kind, spec.x, spec.y) == ("bar", "Name", "Albums")


def test_none_says_why() -> None:
    assert charts.choose_chart(["n"], [[275]]).reason == "a single value"
    assert "no rows" in charts.choose_chart(["n"], []).reason
    assert "no numeric column" in charts.choose_chart(["a", "b"], [["x", "y"], ["z", "w"]]).reason


def test_chart_data_skips_rows_whose_y_is_not_a_number() -> None:
    spec = charts.ChartSpec("bar", "k", "v")
    assert charts.chart_data(["k", "v"], [["a", 1], ["b", None], ["c", "2.5"]], spec) == (["a", "c"], [1.0, 2.5])
    assert charts.chart_data(["k", "v"], [["a", 1]], charts.ChartSpec("bar", "k", "missing")) == ([], [])


@pytest.mark.parametrize("kind", ["bar", "line", "scatter"])
def test_figure_draws_each_kind_with_hover_values_and_axis_titles(kind: str) -> None:
    columns = ["Month", "Total"] if kind != "scatter" else ["A", "B"]
    rows = [["2009-01", 1.0], ["2009-02", 3.0]] if kind != "scatter" else [[1, 2.0], [2, 4.0]]
    fig = charts.figure(columns, rows, charts.ChartSpec(kind, columns[0], columns[1]))  # type: ignore[arg-type]
    assert fig.layout.xaxis.title.text == columns[0] and fig.layout.yaxis.title.text == columns[1]
    assert columns[0] in fig.data[0].hovertemplate and columns[1] in fig.data[0].hovertemplate


def test_long_labels_lie_sideways_and_stay_whole() -> None:
    rows = [["Alternative & Punk", 332], ["Rock", 1297], ["Latin", 579]]
    fig = charts.figure(["Genre", "Tracks"], rows, charts.ChartSpec("bar", "Genre", "Tracks"))
    bar = fig.data[0]
    assert bar.orientation == "h" and list(bar.y) == ["Alternative & Punk", "Rock", "Latin"]  # result order
    assert fig.layout.yaxis.title.text == "Genre" and fig.layout.xaxis.title.text == "Tracks"
    short = charts.figure(["k", "n"], [["a", 1], ["b", 2]], charts.ChartSpec("bar", "k", "n"))
    assert short.data[0].orientation is None and list(short.data[0].x) == ["a", "b"]


def test_bars_keep_the_largest_and_sum_the_rest_as_others() -> None:
    xs, ys = [f"g{i}" for i in range(25)], [float(i) for i in range(25)]
    b = charts.bars(xs, ys)
    assert len(b.labels) == charts.MAX_BARS and b.hidden == 25 - (charts.MAX_BARS - 1)
    assert b.labels[0] == "g24" and b.labels[-1] == f"others ({b.hidden})"
    assert sum(b.values) == sum(ys)  # the total is kept
    assert charts.bars(["a", None], [1.0, 2.0]).labels == ["a", "NULL"]


def test_figure_says_what_was_capped_and_draws_nothing_for_none() -> None:
    rows = [[f"g{i}", i] for i in range(50)]
    fig = charts.figure(["g", "n"], rows, charts.ChartSpec("bar", "g", "n"))
    assert len(fig.data[0].y) == charts.MAX_BARS and "largest of 50" in fig.layout.title.text
    assert charts.figure(["g", "n"], rows, charts.ChartSpec("none")) is None
    assert charts.figure(["g", "n"], rows, charts.ChartSpec("scatter", "g", "n")) is None  # text x: no scatter


def test_a_line_is_drawn_in_time_order() -> None:
    assert [y for _, y in charts.line_points(["2009-03", "2009-01", None], [3.0, 1.0, 9.0])] == [3.0, 1.0][::-1]
