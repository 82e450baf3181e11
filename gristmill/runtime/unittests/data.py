"""Fixture rows as tables: typed, loaded through Arrow, and results read back as Python values."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from gristmill.engines.base import Relation
from gristmill.errors import GristmillError
from gristmill.project.dialect import PROJECT_DIALECT as DIALECT
from gristmill.project.unittests import TableData
from gristmill.runtime.unittests.engine import TestEngine, first
from gristmill.runtime.unittests.results import Row, views

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa


class DataError(Exception):
    """Rows in a test file that cannot be made into a table; ``where`` is their file:line."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def python_rows(table: pa.Table) -> tuple[list[str], list[Row]]:
    """A result's column names and rows as Python values: maps as dicts and intervals as
    timedeltas (months counted as 30 days), as the engine's own driver would give them."""
    import pyarrow as pa

    values = []
    for column in table.columns:
        if pa.types.is_interval(column.type):
            values.append([None if v is None else _timedelta(v) for v in column.to_pylist()])
        else:
            values.append(column.to_pylist(maps_as_pydicts="strict"))
    return list(table.column_names), list(zip(*values, strict=True)) if values else []


def _timedelta(value: Any) -> timedelta:
    return timedelta(days=value.months * 30 + value.days, microseconds=value.nanoseconds // 1000)


# --- fixtures -------------------------------------------------------------------------------------


def create_table(engine: TestEngine, asset: str, data: TableData) -> None:
    with _typed(engine, data, f"given {asset}") as query:
        try:
            engine.create_table_as(Relation.of(asset), query)
        except GristmillError as err:
            raise _data_error(err, data, f"given {asset}") from None


def expected_rows(engine: TestEngine, data: TableData) -> tuple[list[str], list[Row]]:
    if data.format == "rows" and not data.types:
        columns = list(data.columns)
        return columns, [tuple(row.get(c) for c in columns) for row in data.rows]
    with _typed(engine, data, "expect") as query:
        try:
            return python_rows(engine.query(query))
        except GristmillError as err:
            raise _data_error(err, data, "expect") from None


def _data_error(err: GristmillError, data: TableData, label: str) -> DataError:
    where = data.types_location if data.types and "Conversion Error" in err.message else data.location
    return DataError(f"{label}: {first(err)}", where)


class _typed:
    """A SELECT over the data (registered as an Arrow view) with the declared types cast."""

    def __init__(self, engine: TestEngine, data: TableData, label: str) -> None:
        self.engine, self.data, self.label = engine, data, label
        self.view = f"_gristmill_fixture_{next(views)}"

    def __enter__(self) -> exp.Query:
        table = _arrow(self.engine, self.data, self.label)
        unknown = [c for c in self.data.types if c not in table.column_names]
        if unknown and self.data.fill_missing and table.column_names:
            view = self.engine.register(self.view, table)
            filled = [
                *(self._column(c) for c in table.column_names),
                *(exp.cast(exp.null(), self._type(self.data.types[c])).as_(c, quoted=True) for c in unknown),
            ]
            return exp.select(*filled).from_(view)
        if unknown:
            raise DataError(
                f"{self.label}: types names {', '.join(unknown)}, which the rows do not have "
                f"(they have: {', '.join(table.column_names) or 'no columns'})",
                self.data.types_location,
            )
        if not table.column_names:
            raise DataError(f"{self.label}: the rows have no columns", self.data.location)
        projection = [self._column(column) for column in table.column_names]
        return exp.select(*projection).from_(self.engine.register(self.view, table))

    def _column(self, column: str) -> exp.Expr:
        ref = exp.column(column, quoted=True)
        declared = self.data.types.get(column)
        return ref if declared is None else exp.cast(ref, self._type(declared)).as_(column, quoted=True)

    def _type(self, declared: str) -> exp.DataType:
        try:
            return exp.DataType.build(declared, dialect=DIALECT)
        except (sqlglot.ParseError, ValueError):
            raise DataError(
                f'{self.label}: "{declared}" is not a DuckDB type (e.g. INTEGER, DECIMAL(10,2), DATE)',
                self.data.types_location,
            ) from None

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(GristmillError, KeyError, ValueError):  # never registered
            self.engine.unregister(self.view)


def _arrow(engine: TestEngine, data: TableData, label: str) -> pa.Table:
    """The data as an Arrow table: types inferred from the values, declared columns as text. A
    ``sql`` fixture runs on the test's engine; CSV text and files are read like a files source
    reads them (DuckDB's readers)."""
    if data.format == "rows":
        return _rows_table(data, label)
    try:
        if data.format == "sql":
            return engine.query(data.text)
        from gristmill.connectors.duckdb_reader import read_fixture

        return read_fixture(data.text, inline=data.format == "csv", text_columns=list(data.types))
    except GristmillError as err:
        raise DataError(f"{label}: cannot read the {data.format}: {first(err)}", data.location) from None


def _rows_table(data: TableData, label: str) -> pa.Table:
    import pyarrow as pa

    arrays: dict[str, pa.Array] = {}
    for column in data.columns:
        values = [row.get(column) for row in data.rows]
        if column in data.types and not any(isinstance(v, dict | list) for v in values):
            arrays[column] = pa.array([None if v is None else text(v) for v in values], pa.string())
            continue
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            yaml_bool = " (YAML reads an unquoted yes, no, on, off as true/false)" if "bool" in kinds else ""
            raise DataError(
                f'{label}: column "{column}" mixes values of different kinds ({", ".join(kinds)}); '
                f"quote them all, or give the column a type under types:{yaml_bool}",
                data.location,
            ) from None
    return pa.table(arrays)


def text(value: Any) -> str:
    """A YAML value as the text DuckDB casts to a declared type (exactly: 10.50 stays 10.50)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | clock):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)
