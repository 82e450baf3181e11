"""Read PostgreSQL through DuckDB's postgres scanner and stream the rows out as Arrow batches.

The scanner (binary COPY straight into DuckDB vectors, then Arrow) read 1M rows x 5 columns here
in 0.4-0.55 s, against 0.9 s for ConnectorX and 2-3 s for psycopg, so every read goes through it:
``postgres_query`` runs the SELECT built in ``sqldb`` on the server.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import duckdb
import psycopg
from sqlglot import exp

from gristmill._util.duckdb_extensions import local_repository
from gristmill.config.secrets import register
from gristmill.connectors.base import BATCH_ROWS, NativeRead
from gristmill.connectors.duckdb_reader import READER_DIALECT
from gristmill.connectors.postgres.config import PostgresSourceOptions, PostgresTableOptions
from gristmill.connectors.sqldb import (
    ConnectionURL,
    DatabaseSource,
    Selection,
    find_name,
    landed_names,
    option_location,
)
from gristmill.errors import SourceError
from gristmill.project.specs import SourceTable

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

_CONNECT_TIMEOUT_S = "10"  # libpq waits forever by default on an unanswered host


class Source(DatabaseSource):
    kind = "postgres"
    dialect = "postgres"
    schemes = ("postgresql", "postgres")
    extensions = ("postgres",)
    source_model = PostgresSourceOptions
    table_model = PostgresTableOptions

    @property
    def schema_name(self) -> str:
        return self.options.source_schema or "public"

    def _connection_url(self, url: ConnectionURL) -> ConnectionURL:
        return url.replaced(defaults={"connect_timeout": _CONNECT_TIMEOUT_S})

    def _attach_options(self) -> list[exp.AttachOption]:
        # Only this schema's catalog is loaded, not every schema of the database.
        return [exp.AttachOption(this=exp.var("SCHEMA"), expression=exp.Literal.string(self.schema_name))]

    def native(self, table: SourceTable, dialect: str = READER_DIALECT) -> NativeRead | None:
        """A whole-table read the DuckDB engine runs itself: it attaches the database and the
        scanner reads the table in parallel, straight into the lake. Custom queries and partitioned
        reads keep the Arrow path. The table and its columns are looked up with one light libpq
        connection, not a second DuckDB session."""
        read = self.tables[table.key]
        if dialect != READER_DIALECT or read.options.partition is not None or read.query is not None:
            return None
        what = f"{self.spec.file} ({table.key})"
        name, columns = self._catalog(table, what)
        alias = f"gm_source_{self.spec.name}"
        for secret in self.url.secrets:
            register(secret)  # an engine error quoting the ATTACH must not show the password
        attach = exp.Attach(
            this=exp.alias_(exp.Literal.string(self.url.text), alias),
            exists=True,
            expressions=[
                exp.AttachOption(this=exp.var("TYPE"), expression=exp.var(self.kind)),
                exp.AttachOption(this=exp.var("READ_ONLY")),
                *self._attach_options(),
            ],
        )
        origin = exp.table_(name, db=self.schema_name, catalog=alias, quoted=True)
        query = exp.select(
            *(
                exp.alias_(exp.column(source, quoted=True), landed, quoted=True)
                for source, landed in columns.items()
            )
        ).from_(origin)
        local_repository(self.extensions)  # the engine installs the scanner from the packaged file
        setup = (
            exp.Install(this=exp.to_identifier(self.kind)),
            exp.Command(this="LOAD", expression=self.kind),
        )
        return NativeRead(query, READER_DIALECT, 0, (*setup, attach))

    def _catalog(self, table: SourceTable, what: str) -> tuple[str, dict[str, str]]:
        """The table's real name and its columns (source -> landed), from the server's catalog."""
        options = self.tables[table.key].options
        try:
            with psycopg.connect(self.url.text, autocommit=True) as con:
                names = [
                    row[0]
                    for row in con.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        [self.schema_name],
                    ).fetchall()
                ]
                name = find_name(
                    options.table or table.key,
                    names,
                    kind="table",
                    container=f'{self.namespace} "{self.schema_name}"',
                    location=option_location(self.spec, table, "table"),
                )
                available = [
                    row[0]
                    for row in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                        " AND table_name = %s ORDER BY ordinal_position",
                        [self.schema_name, name],
                    ).fetchall()
                ]
        except psycopg.Error as err:
            raise self._cannot_connect(what, err) from None
        what = f"{what}: {self.schema_name}.{name}"
        chosen = [
            find_name(
                c,
                available,
                kind="column",
                container=what,
                location=option_location(self.spec, table, "columns"),
            )
            for c in options.columns or available
        ]
        return name, landed_names(chosen, what)

    def _stream(self, selection: Selection, queries: list[str]) -> pa.RecordBatchReader:
        # One DuckDB connection (cursor) per SELECT: DuckDB runs the branches of a UNION ALL one
        # after the other, while separate connections drained from threads really overlap.
        cursors = [self.con.cursor() for _ in queries]
        try:
            relations = [
                cursor.sql(self.on_server(query)) for cursor, query in zip(cursors, queries, strict=True)
            ]
        except duckdb.Error as err:
            _close(cursors)
            raise SourceError(f"{selection.what}: {self.url.scrub(str(err).strip())}") from None
        openers = [_opener(relation) for relation in relations]
        batches = concurrently(openers) if len(openers) > 1 else _drain(openers[0])
        return self.guard(selection.schema, _closing(batches, cursors), selection.what)


def _opener(relation: duckdb.DuckDBPyRelation) -> Callable[[], Iterator[pa.RecordBatch]]:
    return lambda: iter(relation.to_arrow_reader(BATCH_ROWS))


def _drain(opener: Callable[[], Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
    yield from opener()  # started on the first batch, inside the guard that translates errors


def _closing(
    batches: Iterator[pa.RecordBatch], cursors: Sequence[duckdb.DuckDBPyConnection]
) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    finally:
        _close(cursors)


def _close(cursors: Sequence[duckdb.DuckDBPyConnection]) -> None:
    for cursor in cursors:
        cursor.close()


_END = object()


def concurrently(openers: Sequence[Callable[[], Iterator[pa.RecordBatch]]]) -> Iterator[pa.RecordBatch]:
    """Drain several batch streams at once, each from its own thread, into one stream.

    Batches come out in arrival order. A bounded queue keeps memory to a few batches per stream;
    an error in any stream ends the whole read with that error; stopping early stops them all."""
    import pyarrow as pa

    handoff: queue.Queue[object] = queue.Queue(maxsize=2 * len(openers))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def drain(opener: Callable[[], Iterator[pa.RecordBatch]]) -> None:
        try:
            for batch in opener():
                if not put(batch):
                    return
            put(_END)
        except BaseException as err:  # handed to the reading thread, which raises it
            put(err)

    threads = [threading.Thread(target=drain, args=(opener,), daemon=True) for opener in openers]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            item = handoff.get()
            if item is _END:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, pa.RecordBatch)
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
