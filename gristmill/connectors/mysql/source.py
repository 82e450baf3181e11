"""Read MySQL and MariaDB with ConnectorX, typed as DuckDB's mysql scanner maps the columns.

Measured here on MariaDB 10.11, 1M rows x 5 columns: DuckDB's mysql scanner 1.9 s, ConnectorX's
Arrow stream 0.45 s (its Rust client decodes the binary protocol straight into Arrow). So rows
come through ConnectorX, while DuckDB — attached read-only — lists tables, validates names and
gives each column its type. ConnectorX widens some types (every DECIMAL to decimal128(38, 10),
BIT(1) to bytes, TIME to a type that cannot hold negative values); the SELECT converts those on the
server and each batch is cast, column by column in Arrow, to the scanner's exact type.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import connectorx
import pyarrow as pa
from sqlglot import exp

from gristmill.connectors.base import BATCH_ROWS
from gristmill.connectors.mysql.config import MySQLSourceOptions, MySQLTableOptions
from gristmill.connectors.sqldb import ALIAS, ConnectionURL, DatabaseSource, Selection
from gristmill.errors import ConfigError, SourceError

# TIMESTAMP columns are stored in UTC and shown in the session's time zone: read them in UTC.
_SESSION = ["SET time_zone = '+00:00'"]


class Source(DatabaseSource):
    kind = "mysql"
    dialect = "mysql"
    schemes = ("mysql", "mariadb")
    namespace = "database"
    extensions = ("mysql",)
    source_model = MySQLSourceOptions
    table_model = MySQLTableOptions

    @property
    def schema_name(self) -> str:
        database = self.url.database
        assert database is not None  # _connection_url refuses a URL without one
        return database

    def _connection_url(self, url: ConnectionURL) -> ConnectionURL:
        database = self.options.source_schema or url.database
        if not database:
            raise ConfigError(
                "connection names no database",
                location=self.spec.where("connection"),
                hint="end the URL with /<database>, or set source_schema",
            )
        return url.replaced(scheme="mysql", database=database)

    def _column_expression(self, column: str, duckdb_type: str) -> exp.Expr:
        ref = exp.column(column, quoted=True)
        if duckdb_type == "BOOLEAN":  # TINYINT(1) or BIT(1): 0/1 on the wire either way
            return exp.NEQ(this=ref, expression=exp.convert(0))
        if duckdb_type.startswith("DECIMAL") or duckdb_type == "VARCHAR":
            # Decimals as exact text (ConnectorX would round to 10 places); TIME, JSON, ENUM, SET as text.
            return exp.cast(ref, exp.DataType.build("CHAR", dialect="mysql"))
        if duckdb_type == "DOUBLE":  # also DECIMALs wider than 38 digits, which the scanner reads as double
            return exp.cast(ref, exp.DataType.build("DOUBLE", dialect="mysql"))
        return ref

    def _literal(self, value: Any) -> exp.Expr:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)  # the session is in UTC
        return exp.convert(value)

    def _landed_schema(self, table: str | None, selection: Selection) -> pa.Schema:
        if table is None:
            return selection.schema
        rows = self.con.execute(
            f"SELECT column_name FROM {ALIAS}.information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND data_type = 'timestamp'",
            [self.schema_name, table],
        ).fetchall()
        aware = {selection.columns[row[0]] for row in rows if row[0] in selection.columns}
        return pa.schema(
            [
                field.with_type(pa.timestamp(field.type.unit, tz="UTC")) if field.name in aware else field
                for field in selection.schema
            ]
        )

    def _stream(self, selection: Selection, queries: list[str]) -> pa.RecordBatchReader:
        try:
            # A list of SELECTs is read concurrently, one connection each (the partitions).
            reader = connectorx.read_sql(
                self.url.text,
                queries,
                return_type="arrow_stream",
                batch_size=BATCH_ROWS,
                pre_execution_query=_SESSION,
            )
        except RuntimeError as err:  # ConnectorX reports every driver error so
            raise SourceError(f"{selection.what}: {self.url.scrub(str(err).strip())}") from None
        return self.guard(selection.schema, _typed(reader, selection), selection.what)


def _typed(reader: pa.RecordBatchReader, selection: Selection) -> Iterator[pa.RecordBatch]:
    target = selection.schema
    for batch in reader:
        arrays = []
        for array, field in zip(batch.columns, target, strict=True):
            try:
                arrays.append(array.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise SourceError(
                    f'{selection.what}: column "{field.name}" arrives as {array.type} '
                    f"and cannot become {field.type}: {err}",
                    hint="read it through a query that casts it, e.g. CAST(x AS CHAR)",
                ) from None
        yield pa.RecordBatch.from_arrays(arrays, schema=target)
