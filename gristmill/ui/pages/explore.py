"""Explore: a SQL editor over the read-only SQL endpoint's reader, a paged result grid (types
shown, decimals exact), a chart builder (mark, x, y, colour → Vega-Lite) and the dashboard block
(```sql name=…``` + ```chart```) the choices make.

Every statement goes through the same reader as ``POST /api/v1/sql``: the SQL guard (one SELECT
over the served tables), the visitor's key scope, the row cap and the statement timeout, all
server-side. The state is in the query string (``/explore?sql=…&type=bar&x=…&y=…``), so a
pasted link reruns the same query and draws the same chart. When the server's SQL is off
(``allow_sql`` false) the page says how to turn it on and runs nothing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gristmill.errors import GristmillError
from gristmill.server.sql_api import to_json
from gristmill.ui.access import COOKIE, LoginNeeded, visitor

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

PAGE_ROWS = 50
CHART_ROWS = 5000
"""The chart draws at most this many rows of the result (the browser draws them all)."""
CHART_TYPES = {"bar": "bar", "line": "line", "area": "area", "scatter": "point"}
"""Dashboard chart types (the ```chart``` block's ``type``) and the Vega-Lite mark of each."""
MAX_SQL = 20_000


def field_kind(arrow_type: pa.DataType) -> str:
    """The Vega-Lite type of a column: numbers are quantitative, times temporal, else nominal."""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "quantitative"
    if pa.types.is_temporal(arrow_type) and not pa.types.is_interval(arrow_type):
        return "temporal"
    return "nominal"


def chart_spec(table: pa.Table, kind: str, x: str, y: str, color: str = "") -> dict[str, Any] | None:
    """The Vega-Lite spec of the chart builder's choices, or None while x or y is missing or not a
    column. Decimals and 64-bit integers travel as exact strings and are parsed as numbers by the
    chart only (``format.parse``)."""
    names = table.column_names
    if kind not in CHART_TYPES or x not in names or y not in names or (color and color not in names):
        return None
    used = [c for c in dict.fromkeys((x, y, color)) if c]
    shown = to_json(table.select(used).slice(0, CHART_ROWS), False)
    values = [dict(zip(used, row, strict=True)) for row in shown["rows"]]
    kinds = {c: field_kind(table.schema.field(c).type) for c in used}
    parse = {c: "number" for c in used if kinds[c] == "quantitative"}
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": kinds[x]},
        "y": {"field": y, "type": kinds[y]},
        "tooltip": [{"field": c, "type": kinds[c]} for c in used],
    }
    if color:
        encoding["color"] = {"field": color, "type": kinds[color]}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": "container",
        "height": 280,
        "data": {"values": values, "format": {"parse": parse}},
        "mark": {"type": CHART_TYPES[kind], "tooltip": True},
        "encoding": encoding,
    }


def block_name(name: str) -> str:
    """A dashboard block's name: letters, digits and underscores."""
    cleaned = re.sub(r"[^0-9A-Za-z_]+", "_", name.strip()).strip("_").lower()
    return cleaned or "explore"


def dashboard_block(sql: str, name: str, kind: str, x: str, y: str, color: str = "") -> str:
    """The Markdown a ``dashboards/*.md`` file takes for this query and chart."""
    named = block_name(name)
    lines = [f"```sql name={named}", sql.strip(), "```"]
    if kind in CHART_TYPES and x and y:
        lines += ["", "```chart", f"type: {kind}", f"data: {named}", f"x: {x}", f"y: {y}"]
        if color:
            lines.append(f"color: {color}")
        lines.append("```")
    return "\n".join(lines) + "\n"


def scope_of(services: UiServices, request: Request) -> frozenset[str]:
    """The visitor's key scope (its schemas; empty: all), read from the key itself, server-side.
    Raises ``LoginNeeded`` without a live key: no statement runs for an unknown visitor."""
    visitor(request, services.keys)
    if services.keys is None:
        return frozenset()
    return frozenset(services.keys.check(request.cookies.get(COOKIE, "")).schemas)


def data(
    services: UiServices,
    sql: str = "",
    *,
    page: int = 1,
    choice: dict[str, str] | None = None,
    schemas: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    picked = {"type": "bar", "x": "", "y": "", "color": "", "name": "explore", **(choice or {})}
    found: dict[str, Any] = {"sql": sql, "choice": picked, "enabled": services.sql is not None}
    found.update(result=None, error=None, chart=None, block=None, page=1, pages=1, columns=[])
    if services.sql is None or not sql.strip():
        return found
    if len(sql) > MAX_SQL:
        found["error"] = (f"the statement is over {MAX_SQL:,} characters", None)
        return found
    try:
        answer = services.sql.select(sql, schemas=schemas)
    except GristmillError as err:
        found["error"] = (err.message, err.hint)
        return found
    table = answer.table
    pages = max(1, -(-table.num_rows // PAGE_ROWS))
    page = min(max(page, 1), pages)
    shown = to_json(table.slice((page - 1) * PAGE_ROWS, PAGE_ROWS), answer.truncated)
    columns = [{"name": f.name, "type": str(f.type), "kind": field_kind(f.type)} for f in table.schema]
    found.update(
        result={"rows": shown["rows"], "total": table.num_rows, "truncated": answer.truncated},
        columns=columns,
        page=page,
        pages=pages,
        row_cap=services.sql.row_cap,
        chart=chart_spec(table, picked["type"], picked["x"], picked["y"], picked["color"]),
        block=dashboard_block(sql, picked["name"], picked["type"], picked["x"], picked["y"], picked["color"]),
    )
    return found


def mount(router: APIRouter, ui: Ui) -> None:
    async def page(
        request: Request,
        sql: str = "",
        page: int = 1,
        type: str = "bar",
        x: str = "",
        y: str = "",
        color: str = "",
        name: str = "explore",
    ) -> Response:
        choice = {"type": type, "x": x, "y": y, "color": color, "name": name}
        try:
            schemas = scope_of(ui.services, request)
        except LoginNeeded as needed:
            return RedirectResponse(needed.location, status_code=303)
        # The statement runs (and may wait for its timeout) off the event loop.
        found = await run_in_threadpool(
            lambda: data(ui.services, sql, page=page, choice=choice, schemas=schemas)
        )
        return ui.show(request, "explore.html.j2", lambda: found, active="explore")

    router.add_api_route("/explore", page, methods=["GET"])
