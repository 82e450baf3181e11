"""``POST /api/v1/sql``: read-only SQL for power users, off unless the server is started with
``--allow-sql`` (``[server] allow_sql = true``).

The router runs nothing itself: the ``SqlReading`` it is given (built by the workspace) passes
every statement through the SQL guard, caps the rows and applies the statement timeout. A
refused or failing statement is a 400 whose body says why; the result is JSON with its schema,
decimals and 64-bit integers as strings (JSON numbers lose their precision), and ``truncated``
when the row cap cut it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gristmill.errors import GristmillError


class SqlResult(Protocol):
    @property
    def table(self) -> pa.Table: ...

    @property
    def truncated(self) -> bool: ...


class SqlReading(Protocol):
    """What the SQL endpoint and the PostgreSQL wire door read through (the workspace's
    ``SqlReader``); every method raises ``GristmillError`` with the reason a statement is refused."""

    row_cap: int

    def select(self, sql: str, *, dialect: str = "duckdb", params: Sequence[object] = ()) -> SqlResult:
        """The guarded, capped, time-limited result of one SELECT over the served tables."""
        ...

    def catalog(self, sql: str, *, params: Sequence[object] = ()) -> pa.Table | None:
        """A catalog probe (``pg_catalog``, ``information_schema``) answered over the served
        relations only; None when ``sql`` is not one."""
        ...


class SqlRequest(BaseModel):
    sql: str = Field(description="One SELECT (WITH allowed) over the served tables, named schema.table.")
    max_rows: int | None = Field(default=None, ge=1, description="Fewer rows than the server's cap.")


_AS_STRING = (pa.types.is_decimal, pa.types.is_int64, pa.types.is_uint64)


def router(reader: SqlReading) -> APIRouter:
    """The ``POST /api/v1/sql`` route over ``reader``."""
    api = APIRouter()

    @api.post("/api/v1/sql", tags=["sql"])
    def run_sql(request: SqlRequest) -> Any:
        try:
            result = reader.select(request.sql)
        except GristmillError as error:
            return JSONResponse(
                {"error": error.message, "parameter": "sql", "hint": error.hint}, status_code=400
            )
        table, truncated = result.table, result.truncated
        if request.max_rows is not None and table.num_rows > request.max_rows:
            table, truncated = table.slice(0, request.max_rows), True
        return to_json(table, truncated)

    return api


def to_json(table: pa.Table, truncated: bool) -> dict[str, Any]:
    """The result with its schema; decimals and 64-bit integers as strings, said so per column."""
    columns, arrays = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        as_string = any(test(field.type) for test in _AS_STRING)
        temporal = pa.types.is_temporal(field.type)
        columns.append(
            {
                "name": field.name,
                "type": str(field.type),
                "json": "string" if as_string or temporal else _json_type(field.type),
            }
        )
        arrays.append(pc.cast(column, pa.string()) if as_string or temporal else column)
    rows = [list(row) for row in zip(*(a.to_pylist() for a in arrays), strict=True)] if arrays else []
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated}


def _json_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return "any"
