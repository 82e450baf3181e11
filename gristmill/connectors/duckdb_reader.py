"""The shared path for sources that DuckDB itself reads (files, SQLite, databases it attaches):
each source gets a private in-memory DuckDB, its relations streamed out as Arrow batches.

Connectors that read with DuckDB import it; ``connectors/base.py`` does not. SQL for the reader is
rendered in :data:`READER_DIALECT` through ``gristmill.sql.render``."""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from gristmill._util.duckdb_extensions import connect
from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.base import BATCH_ROWS
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceTable
from gristmill.sql.render import render

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

READER_DIALECT = "duckdb"
"""The dialect of every statement a DuckDB reader runs, and of the native reads it offers."""


def sql(statement: exp.Expr) -> str:
    """``statement`` as the reader's DuckDB runs it."""
    return render(statement, READER_DIALECT)


class DuckDBReader:
    """Sources DuckDB reads natively (files, SQLite): relations streamed out as Arrow batches.

    Each source gets a private in-memory DuckDB, so reading never contends with the lake."""

    extensions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = connect(extensions=self.extensions)
        return self._con

    def only(
        self, relation: duckdb.DuckDBPyRelation, columns: Sequence[str] | None, what: str, location: str
    ) -> duckdb.DuckDBPyRelation:
        """Keep only the columns the user listed, refusing names the source does not have."""
        if not columns:
            return relation
        for column in columns:
            if column not in relation.columns:
                raise ConfigError(
                    f'{what} has no column "{column}"',
                    location=location,
                    hint=did_you_mean(column, relation.columns) or "columns: " + ", ".join(relation.columns),
                )
        return relation.project(", ".join(sql(exp.column(c, quoted=True)) for c in columns))

    @staticmethod
    def landed_names(columns: Sequence[str], what: str) -> list[str]:
        """The snake_case names columns land under, refusing two that would collide."""
        seen: dict[str, str] = {}
        for column in columns:
            name = snake_case(column)
            if name in seen:
                raise SourceError(
                    f'{what}: columns "{seen[name]}" and "{column}" both land as "{name}"',
                    hint="select or rename one of them in the source",
                )
            seen[name] = column
        return list(seen)

    def landed(self, relation: duckdb.DuckDBPyRelation, what: str) -> duckdb.DuckDBPyRelation:
        """Project the relation onto snake_case column names, refusing names that collide."""
        names = self.landed_names(relation.columns, what)
        projections = [
            exp.alias_(exp.column(c, quoted=True), n, quoted=True)
            for c, n in zip(relation.columns, names, strict=True)
        ]
        return relation.project(", ".join(sql(p) for p in projections))

    def since(
        self, relation: duckdb.DuckDBPyRelation, table: SourceTable, since: Any
    ) -> duckdb.DuckDBPyRelation:
        """Rows at or past ``since`` on the incremental cursor (the relation has landed names)."""
        incremental = table.load.incremental
        if since is None or incremental is None:
            return relation
        if incremental.cursor not in relation.columns:
            raise ConfigError(
                f'incremental cursor "{incremental.cursor}" is not a column of {table.asset}',
                location=table.location,
                hint=did_you_mean(incremental.cursor, relation.columns)
                or "columns: " + ", ".join(relation.columns),
            )
        condition = exp.column(incremental.cursor, quoted=True) >= exp.convert(since)
        return relation.filter(sql(condition))

    def stream(self, relation: duckdb.DuckDBPyRelation, what: str) -> pa.RecordBatchReader:
        try:
            reader = relation.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as err:
            raise SourceError(f"{what}: {redact(str(err).strip())}") from None
        # DuckDB exports a JSON column as plain text: it is marked JSON again so another engine
        # stages JSON values (jsonb), not their spelling in a text column.
        json = {
            name for name, kind in zip(relation.columns, relation.types, strict=True) if str(kind) == "JSON"
        }
        return _guarded(reader, what, json)

    def interrupt(self) -> None:
        """Abort what this source's DuckDB is running (from another thread: a cancel, a timeout)."""
        if self._con is not None:
            self._con.interrupt()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _guarded(reader: pa.RecordBatchReader, what: str, json: Collection[str] = ()) -> pa.RecordBatchReader:
    """Re-raise errors that surface mid-stream (a bad line far into a file) as SourceError; the
    ``json`` columns typed ``arrow.json``."""
    import pyarrow as pa

    schema = reader.schema
    if json:
        schema = pa.schema([pa.field(f.name, pa.json_()) if f.name in json else f for f in schema])

    def marked(batch: pa.RecordBatch) -> pa.RecordBatch:
        if not json:
            return batch
        columns = [
            pa.ExtensionArray.from_storage(pa.json_(), c) if f.name in json else c
            for f, c in zip(batch.schema, batch.columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def generate() -> Any:
        try:
            for batch in reader:
                yield marked(batch)
        except (duckdb.Error, pa.ArrowException) as err:
            raise SourceError(f"{what}: {redact(str(err).strip())}") from None

    return pa.RecordBatchReader.from_batches(schema, generate())


def read_fixture(text: str, *, inline: bool, text_columns: Collection[str]) -> pa.Table:
    """Rows a unit test gives as CSV text (``inline``) or in a file (CSV/TSV, Parquet, else
    JSON), read by DuckDB's readers as a files source reads them; ``text_columns`` are read as
    text (the test casts them to their declared types). Fails with SourceError."""
    con = connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # as the test's engine: times compare in UTC
        suffix = "csv" if inline else text.rsplit(".", 1)[-1].lower()
        if suffix in ("csv", "tsv"):

            def source() -> Any:
                return io.StringIO(text) if inline else text

            header = con.read_csv(source(), header=True).columns
            as_text = {c: "VARCHAR" for c in text_columns if c in header}
            return con.read_csv(source(), header=True, dtype=as_text or None).to_arrow_table()
        if suffix == "parquet":
            return con.read_parquet(text).to_arrow_table()
        return con.read_json(text).to_arrow_table()
    except duckdb.Error as err:
        raise SourceError(redact(str(err).strip())) from None
    finally:
        con.close()
