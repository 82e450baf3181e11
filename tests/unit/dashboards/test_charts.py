"""Chart blocks compiled to Vega-Lite on the server: marks, field types from the Arrow types,
the rows inlined as JSON safe inside a <script>, big numbers and tables formatted."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from gristmill.dashboards import charts
from gristmill.project.dashboard_specs import ChartBlock

TABLE = pa.table(
    {
        "month": pa.array([date(2024, 1, 1), date(2024, 2, 1)]),
        "country": ["DE", "FR"],
        "revenue": pa.array([Decimal("10.50"), Decimal("1234.25")], pa.decimal128(10, 2)),
        "units": pa.array([3, 4], pa.int64()),
    }
)


def chart(kind: str, **given: str) -> ChartBlock:
    fields = {k: given.get(k) for k in ("x", "y", "color", "title", "format")}
    return ChartBlock(kind, "data", line=1, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "mark"), [("line", "line"), ("bar", "bar"), ("area", "area"), ("scatter", "point")]
)
def test_each_kind_has_its_mark(kind: str, mark: str) -> None:
    spec = charts.vega_lite(chart(kind, x="month", y="revenue"), TABLE)
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert spec["mark"]["type"] == mark
    assert spec["encoding"]["x"] == {"field": "month", "type": "temporal", "title": "month"}
    assert spec["encoding"]["y"]["type"] == "quantitative"
    assert spec["data"]["values"] == [
        {"month": "2024-01-01", "revenue": 10.5},
        {"month": "2024-02-01", "revenue": 1234.25},
    ]


def test_a_bar_over_categories_sorts_largest_first_with_colour_and_format() -> None:
    spec = charts.vega_lite(chart("bar", x="country", y="units", color="country", format=",.0f"), TABLE)
    assert spec["encoding"]["x"]["sort"] == "-y"
    assert spec["encoding"]["x"]["type"] == "nominal"
    assert spec["encoding"]["color"] == {"field": "country", "type": "nominal"}
    assert spec["encoding"]["y"]["axis"] == {"format": ",.0f"}


def test_x_and_y_default_to_the_first_two_columns() -> None:
    spec = charts.vega_lite(chart("line"), TABLE.select(["month", "units"]))
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == ("month", "units")


def test_a_column_that_is_not_there_is_named_with_the_columns_that_are() -> None:
    with pytest.raises(charts.ChartError, match=r'"amount" is not in the data \(columns: month, country'):
        charts.vega_lite(chart("line", x="month", y="amount"), TABLE)


def test_big_numbers_and_tables_are_formatted() -> None:
    assert charts.big_number(chart("big_number", y="revenue", format="$,.2f"), TABLE) == "$10.50"
    assert charts.big_number(chart("big_number"), TABLE.select(["units"])) == "3"
    assert charts.big_number(chart("big_number", y="units"), TABLE.slice(0, 0)) == "-"
    cells = charts.cells(TABLE, chart("table", format=",.1f"))
    assert [c.text for c in cells[1]] == ["2024-02-01", "FR", "1,234.2", "4.0"]
    assert [c.number for c in cells[1]] == [False, False, True, True]


def test_json_in_a_script_element_cannot_close_it() -> None:
    text = charts.to_json({"v": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"v": "</script><script>alert(1)</script>&"}
