"""Chart blocks compiled to Vega-Lite specs on the server, with the block's rows inlined: the
page needs no data request, and a static build opens from ``file://``.

``big_number`` and ``table`` are not Vega-Lite: they are HTML, formatted here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

from gristmill.project.dashboard_specs import ChartBlock

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_MARKS = {"line": "line", "bar": "bar", "area": "area", "scatter": "point"}


class ChartError(ValueError):
    """A chart that cannot be drawn from its data (a column it names is not there)."""


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and whether it is a number (right-aligned)."""

    text: str
    number: bool


def field_type(dtype: pa.DataType) -> str:
    if pa.types.is_temporal(dtype):
        return "temporal"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "quantitative"
    return "nominal"


def vega_lite(chart: ChartBlock, table: pa.Table) -> dict[str, Any]:
    """The Vega-Lite spec of a line, bar, area or scatter chart over ``table``'s rows; x and y
    default to the first two columns."""
    names = table.column_names
    x = chart.x or (names[0] if names else None)
    y = chart.y or (names[1] if len(names) > 1 else None)
    for column in (x, y, chart.color):
        if column is not None and column not in names:
            raise ChartError(f'column "{column}" is not in the data (columns: {", ".join(names)})')
    if x is None or y is None:
        raise ChartError("a chart needs two columns, x and y")
    x_type, y_type = field_type(table.schema.field(x).type), field_type(table.schema.field(y).type)
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": x_type, "title": x},
        "y": {"field": y, "type": y_type, "title": y},
        "tooltip": [
            {"field": c, "type": field_type(table.schema.field(c).type)} for c in (x, y, chart.color) if c
        ],
    }
    if chart.format and y_type == "quantitative":
        encoding["y"]["axis"] = {"format": _d3(chart.format)}
    if chart.type == "bar" and x_type == "nominal" and y_type == "quantitative":
        encoding["x"]["sort"] = "-y"  # a ranking reads best largest first
    if chart.color:
        encoding["color"] = {"field": chart.color, "type": field_type(table.schema.field(chart.color).type)}
    mark: dict[str, Any] = {"type": _MARKS[chart.type], "tooltip": True}
    if chart.type == "line":
        mark["point"] = True
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 260,
        "data": {"values": rows(table, [c for c in (x, y, chart.color) if c])},
        "mark": mark,
        "encoding": encoding,
    }


def rows(table: pa.Table, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows: decimals as floats (a chart's scale), times as ISO 8601."""
    chosen = table.select(columns) if columns else table
    return [{k: _plain(v) for k, v in row.items()} for row in chosen.to_pylist()]


def big_number(chart: ChartBlock, table: pa.Table) -> str:
    """The first row's ``y`` (else its first numeric column), formatted."""
    numeric = [f.name for f in table.schema if field_type(f.type) == "quantitative"]
    column = chart.y or (numeric[0] if numeric else None)
    if column is None or column not in table.column_names:
        raise ChartError(f"big_number needs a numeric column (columns: {', '.join(table.column_names)})")
    value = table.column(column)[0].as_py() if table.num_rows else None
    return "-" if value is None else format_value(value, chart.format)


def cells(table: pa.Table, chart: ChartBlock) -> list[list[Cell]]:
    numeric = {f.name for f in table.schema if field_type(f.type) == "quantitative"}
    return [
        [Cell(format_value(v, chart.format if k in numeric else None), k in numeric) for k, v in row.items()]
        for row in table.to_pylist()
    ]


def format_value(value: object, spec: str | None) -> str:
    """``spec``: a d3/Python format such as ``,.2f`` or ``$,.0f`` (a leading ``$`` is a prefix)."""
    if value is None:
        return ""
    if spec and isinstance(value, (int, float, Decimal)):
        prefix, body = ("$", spec[1:]) if spec.startswith("$") else ("", spec)
        try:
            return prefix + format(value, body)
        except ValueError:
            return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    return str(value)


def to_json(value: object) -> str:
    """JSON safe to put inside a ``<script>`` element (no ``<``, ``>`` or ``&`` as themselves)."""
    text = json.dumps(value, separators=(",", ":"), default=_plain)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _d3(spec: str) -> str:
    return spec  # the d3 and Python format mini-languages agree on what dashboards use


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value
