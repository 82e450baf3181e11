"""Run a DuckDB statement on DuckDB and, rendered, on Spark; compare what a reader sees: the
values and the kind of each column (integer, floating, decimal with its scale, text, date, naive
or zoned timestamp, list of …). Integer widths are not compared (DuckDB's ``sum`` is a HUGEINT,
Spark's a BIGINT; both read back as whole numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot

from gristmill.sql.render import render

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def kind(arrow_type: pa.DataType) -> Any:
    """A column's type as a reader tells it apart."""
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_decimal(arrow_type):
        # DuckDB's HUGEINT (sums of integers) reads back as decimal(38, 0)
        return (
            "integer"
            if arrow_type.scale == 0 and arrow_type.precision == 38
            else f"decimal({arrow_type.scale})"
        )
    if pa.types.is_floating(arrow_type):
        return "floating"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return ("list", kind(arrow_type.value_type))
    if pa.types.is_struct(arrow_type):
        return ("struct", tuple((f.name, kind(f.type)) for f in arrow_type))
    return str(arrow_type)


def described(table: pa.Table) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Column kinds and rows (as tuples: names may repeat)."""
    rows = (
        list(zip(*(column.to_pylist() for column in table.columns), strict=True)) if table.num_columns else []
    )
    return [kind(f.type) for f in table.schema], rows


def on_duckdb(ddb: duckdb.DuckDBPyConnection, query: str) -> tuple[list[Any], list[tuple[Any, ...]]]:
    return described(ddb.execute(query).fetch_arrow_table())


def spark_sql(query: str) -> str:
    """The DuckDB statement as the spark engine sends it."""
    return render(sqlglot.parse_one(query, read="duckdb"), "spark", strict=True)


def on_spark(spark: SparkSession, query: str) -> tuple[list[Any], list[tuple[Any, ...]]]:
    return described(spark.sql(spark_sql(query)).toArrow())


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    ddb = duckdb.connect()
    ddb.execute("SET TimeZone = 'UTC'")
    return ddb
