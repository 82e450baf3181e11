"""The metrics endpoints of the data API: list the metrics, answer one by dimensions, grain and
structured filters, and show the SQL an answer runs. There is no free SQL: ``where`` takes
``dimension:op:value`` conditions whose values become literals, checked against the metric's
declared dimensions.

The router knows nothing of projects: it is handed a ``MetricReader`` (``Workspace`` is one), so
the application mounts it with ``app.include_router(metrics_api.router(workspace))``."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gristmill.errors import BadQuery, GristmillError

if TYPE_CHECKING:
    import pyarrow as pa

PREFIX = "/api/v1/metrics"
By = Annotated[list[str] | None, Query(description="Dimensions to group by (repeat, or comma-separated).")]
GrainParam = Annotated[str | None, Query(description="day, week, month, quarter or year (of metric_time).")]
Where = Annotated[list[str] | None, Query(description="dimension:op:value, e.g. country:in:DE,FR (repeat).")]
_SAFE_INTEGER = 2**53
"""Integers beyond this lose digits as JSON numbers in most readers: they are sent as strings."""


class MetricDescription(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


class MetricResult(Protocol):
    @property
    def sql(self) -> str: ...

    @property
    def table(self) -> pa.Table: ...


class MetricReader(Protocol):
    """What the router asks of the platform (``gristmill.workspace.Workspace`` answers it)."""

    def metrics(self) -> Sequence[MetricDescription]: ...

    def metric(
        self,
        name: str,
        *,
        by: Sequence[str] = (),
        grain: str | None = None,
        where: Sequence[str] = (),
        env: str = "prod",
        run: bool = True,
    ) -> MetricResult: ...


def router(reader: MetricReader, *, env: str = "prod") -> APIRouter:
    """The metrics routes over ``reader``, answering from the tables ``env`` serves. Calls to the
    reader take turns (a workspace holds one engine session)."""
    routes = APIRouter(prefix=PREFIX, tags=["metrics"])
    turn = threading.Lock()

    @routes.get("", summary="List the metrics")
    def list_metrics() -> dict[str, Any]:
        with turn:
            return {"metrics": [m.as_dict() for m in reader.metrics()]}

    @routes.get("/{name}", summary="A metric by dimensions and time grain")
    def query_metric(name: str, by: By = None, grain: GrainParam = None, where: Where = None) -> Any:
        try:
            with turn:
                answer = reader.metric(name, by=by or [], grain=grain, where=where or [], env=env)
        except GristmillError as err:
            return _error(err)
        return {
            "metric": name,
            "schema": _schema(answer.table),
            "rows": _rows(answer.table),
            "sql": answer.sql,
            "preaggregation": getattr(answer, "preaggregation", None),
        }

    @routes.get("/{name}/sql", summary="The SQL a metric query runs")
    def metric_sql(name: str, by: By = None, grain: GrainParam = None, where: Where = None) -> Any:
        try:
            with turn:
                answer = reader.metric(name, by=by or [], grain=grain, where=where or [], env=env, run=False)
        except GristmillError as err:
            return _error(err)
        return {"metric": name, "sql": answer.sql, "preaggregation": getattr(answer, "preaggregation", None)}

    return routes


def _error(err: GristmillError) -> JSONResponse:
    """A bad parameter is the client's to fix (400; 404 for an unknown metric); anything else the
    platform refuses (nothing built yet) is a 409 saying so, never a 500."""
    if isinstance(err, BadQuery):
        status = 404 if err.parameter == "name" else 400
        body = {"error": err.message, "parameter": err.parameter, "hint": err.hint}
    else:
        status, body = 409, {"error": err.message, "hint": err.hint}
    return JSONResponse(body, status_code=status)


def _schema(table: pa.Table) -> list[dict[str, str]]:
    """Each column's Arrow type, and how its values are written in JSON when not as numbers."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        written = "string" if pa.types.is_decimal(field.type) or pa.types.is_int64(field.type) else None
        entry = {"name": field.name, "type": str(field.type)}
        if written:
            entry["json"] = (
                "string (exact)" if pa.types.is_decimal(field.type) else "number, string beyond 2^53"
            )
        fields.append(entry)
    return fields


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Serialising one answer (a metric's rows are aggregates, not a table scan)."""
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _SAFE_INTEGER:
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value
