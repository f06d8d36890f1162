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
def test_figure_draws_each_kind(kind: str) -> None:
    from matplotlib.figure import Figure

    columns = ["Month", "Total"] if kind != "scatter" else ["A", "B"]
    rows = [["2009-01", 1.0], ["2009-02", 3.0]] if kind != "scatter" else [[1, 2.0], [2, 4.0]]
    fig = charts.figure(columns, rows, charts.ChartSpec(kind, columns[0], columns[1]))  # type: ignore[arg-type]
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xlabel() == columns[0] and fig.axes[0].get_ylabel() == columns[1]


def test_figure_caps_bars_and_draws_nothing_for_none() -> None:
    rows = [[f"g{i}", i] for i in range(50)]
    fig = charts.figure(["g", "n"], rows, charts.ChartSpec("bar", "g", "n"))
    assert len(fig.axes[0].patches) == charts.MAX_BARS and "first 30 of 50" in fig.axes[0].get_title()
    assert charts.figure(["g", "n"], rows, charts.ChartSpec("none")) is None
    assert charts.figure(["g", "n"], rows, charts.ChartSpec("scatter", "g", "n")) is None  # text x: no scatter
