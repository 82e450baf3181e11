"""The source protocol, and the shared path for sources that DuckDB itself can read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlglot import exp

from gristmill._util.duckdb_extensions import connect
from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceSpec, SourceTable

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

BATCH_ROWS = 122_880  # DuckDB's row-group size: batches map onto its vectors without re-chunking


class Source(Protocol):
    spec: SourceSpec

    def schema(self, table: SourceTable) -> pa.Schema:
        """The landed schema (normalised column names), cheaply, without reading the data."""
        ...

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        """The table's rows as a stream of record batches with the landed schema.

        For an incremental table ``since`` is the lower bound (inclusive) of its cursor column,
        ``table.load.incremental.cursor`` (a landed name); None means read everything. A source
        that can filter at the origin should; the loader also filters, so none may return less."""
        ...

    def change_marker(self, table: SourceTable) -> str | None:
        """A value that changes whenever the data may have; None when the source cannot tell."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NativeRead:
    """A read a DuckDB engine runs itself, so no row crosses Python: ``setup`` first (an ATTACH of
    the source database), then ``query``. Offered by a source's optional ``native(table)``."""

    query: exp.Query
    bytes: int = 0
    setup: tuple[exp.Expr, ...] = ()


class Options(BaseModel):
    """Base of connector option models: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=Options)


def parse_options(
    model: type[OptionsT], data: dict[str, Any], where: str, *, ignore: Sequence[str] = ()
) -> OptionsT:
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in ignore})
    except ValidationError as err:
        problems = err.errors()
        # A misspelt key also makes the right one "missing": name the misspelling, it is the cause.
        first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
        key = ".".join(str(p) for p in first["loc"])
        line = getattr(data, "key_lines", {}).get(first["loc"][0]) if first["loc"] else None
        location = f"{where.split(':')[0]}:{line}" if line else where
        if first["type"] == "extra_forbidden":
            # Every key valid here, also those the project loader took before the connector saw
            # them (write, incremental, checks ...): a typo of one of those lands here.
            valid = sorted({*model.model_fields, *ignore, *getattr(data, "handled_elsewhere", ())})
            raise ConfigError(
                f'unknown option "{key}"',
                location=location,
                hint=did_you_mean(key, valid) or "options: " + ", ".join(valid),
            ) from None
        if first["type"] == "missing":
            raise ConfigError(f'missing required option "{key}"', location=location) from None
        raise ConfigError(f"{key}: {first['msg']}", location=location) from None


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
        return relation.project(", ".join(exp.column(c, quoted=True).sql(dialect="duckdb") for c in columns))

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
        return relation.project(", ".join(p.sql(dialect="duckdb") for p in projections))

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
        return relation.filter(condition.sql(dialect="duckdb"))

    def stream(self, relation: duckdb.DuckDBPyRelation, what: str) -> pa.RecordBatchReader:
        try:
            reader = relation.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as err:
            raise SourceError(f"{what}: {redact(str(err).strip())}") from None
        return _guarded(reader, what)

    def interrupt(self) -> None:
        """Abort what this source's DuckDB is running (from another thread: a cancel, a timeout)."""
        if self._con is not None:
            self._con.interrupt()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _guarded(reader: pa.RecordBatchReader, what: str) -> pa.RecordBatchReader:
    """Re-raise errors that surface mid-stream (a bad line far into a file) as SourceError."""
    import pyarrow as pa

    def generate() -> Any:
        try:
            yield from reader
        except (duckdb.Error, pa.ArrowException) as err:
            raise SourceError(f"{what}: {redact(str(err).strip())}") from None

    return pa.RecordBatchReader.from_batches(reader.schema, generate())
