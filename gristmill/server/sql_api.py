"""``POST /api/v1/sql``: read-only SQL for power users, off unless the server is started with
``--allow-sql`` (``[server] allow_sql = true``).

The router runs nothing itself: the ``SqlReading`` it is given (built by the workspace) passes
every statement through the SQL guard, caps the rows and applies the statement timeout. A
refused or failing statement is a 400 whose body says why; the result is JSON with its schema,
decimals and 64-bit integers as strings (JSON numbers lose their precision), and ``truncated``
when the row cap cut it."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from gristmill.errors import GristmillError
from gristmill.server.auth import grant_of, report_rows


class SqlResult(Protocol):
    @property
    def table(self) -> pa.Table: ...

    @property
    def truncated(self) -> bool: ...


class SqlReading(Protocol):
    """What the SQL endpoint and the PostgreSQL wire door read through (the workspace's
    ``SqlReader``); every method raises ``GristmillError`` with the reason a statement is refused."""

    row_cap: int

    def select(
        self,
        sql: str,
        *,
        dialect: str = "duckdb",
        params: Sequence[object] = (),
        schemas: frozenset[str] = frozenset(),
    ) -> SqlResult:
        """The guarded, capped, time-limited result of one SELECT over the served tables (and
        the ``metrics`` relations) in ``schemas``, the caller's scope (empty: all)."""
        ...

    def catalog(
        self, sql: str, *, params: Sequence[object] = (), schemas: frozenset[str] = frozenset()
    ) -> pa.Table | None:
        """A catalog probe (``pg_catalog``, ``information_schema``) answered over the served
        relations in ``schemas`` only; None when ``sql`` is not one."""
        ...


class SqlRequest(BaseModel):
    model_config = {"extra": "forbid"}

    sql: str = Field(description="One SELECT (WITH allowed) over the served tables, named schema.table.")
    max_rows: int | None = Field(default=None, ge=1, description="Fewer rows than the server's cap.")


_AS_STRING = (pa.types.is_decimal, pa.types.is_int64, pa.types.is_uint64)


def router(reader: SqlReading) -> APIRouter:
    """The ``POST /api/v1/sql`` route over ``reader``."""
    api = APIRouter()
    body_schema = {
        "content": {"application/json": {"schema": SqlRequest.model_json_schema()}},
        "required": True,
    }

    @api.post("/api/v1/sql", tags=["sql"], openapi_extra={"requestBody": body_schema})
    async def run_sql(request: Request) -> Any:
        # The body is read and checked here, not by FastAPI, so a bad one is a 400 naming the field.
        try:
            asked = SqlRequest.model_validate(await request.json())
        except ValueError as error:  # not JSON, or not the fields below
            return _bad_request(_field(error), _reason(error), 'send {"sql": "select ..."}')
        try:
            schemas = grant_of(request).schemas  # the key's scope: what the guard lets it read
            result = await run_in_threadpool(reader.select, asked.sql, schemas=schemas)
        except GristmillError as error:
            return _bad_request("sql", error.message, error.hint)
        table, truncated = result.table, result.truncated
        if asked.max_rows is not None and table.num_rows > asked.max_rows:
            table, truncated = table.slice(0, asked.max_rows), True
        report_rows(request, table.num_rows)
        return to_json(table, truncated)

    return api


def _bad_request(parameter: str, error: str, hint: str | None) -> JSONResponse:
    return JSONResponse({"error": error, "parameter": parameter, "hint": hint}, status_code=400)


def _field(error: ValueError) -> str:
    if isinstance(error, ValidationError) and error.errors():
        return ".".join(str(part) for part in error.errors()[0]["loc"]) or "body"
    return "body"


def _reason(error: ValueError) -> str:
    if isinstance(error, ValidationError) and error.errors():
        return str(error.errors()[0]["msg"])
    return "the body is not JSON"


def to_json(table: pa.Table, truncated: bool) -> dict[str, Any]:
    """The result with its schema; decimals and 64-bit integers as strings, said so per column."""
    columns: list[dict[str, str]] = []
    arrays: list[list[Any]] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        as_string = any(test(field.type) for test in _AS_STRING)
        temporal = pa.types.is_temporal(field.type) and not pa.types.is_interval(field.type)
        columns.append(
            {
                "name": field.name,
                "type": str(field.type),
                "json": "string" if as_string or temporal else _json_type(field.type),
            }
        )
        if pa.types.is_interval(field.type):
            arrays.append([_exact(v) for v in column.to_pylist()])
        elif as_string or temporal:
            arrays.append(pc.cast(column, pa.string()).to_pylist())
        elif _json_type(field.type) == "any":  # nested, binary: exact values inside too
            arrays.append([_exact(v) for v in column.to_pylist()])
        else:
            arrays.append(column.to_pylist())
    rows = [list(row) for row in zip(*arrays, strict=True)] if arrays else []
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated}


_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JSON reader holding doubles keeps exactly."""


def _exact(value: Any) -> Any:
    """A value inside a nested, binary or interval column, as JSON that keeps it exact."""
    if isinstance(value, dict):
        return {str(k): _exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not isinstance(value, pa.MonthDayNano):
        return [_exact(v) for v in value]
    if isinstance(value, pa.MonthDayNano):
        return f"P{value.months}M{value.days}DT{Decimal(value.nanoseconds) / 1_000_000_000}S"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INTEGER:
        return str(value)
    if isinstance(value, (Decimal, datetime.date, datetime.time, datetime.timedelta)):
        return str(value)
    return value


def _json_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return "any"
