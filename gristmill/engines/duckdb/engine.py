"""DuckDB over DuckLake: ACID commits across tables, snapshots, and readers in other processes.

The class works on a connection it is given, with one attached catalog holding the managed
tables: ``lake.py`` opens the project's (a DuckLake or a DuckDB file), ``memory.py`` an empty one in
memory (unit tests, the conformance suite)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import duckdb
from sqlglot import exp

from gristmill.config.secrets import redact
from gristmill.engines.base import Column, Relation
from gristmill.engines.scope import TransactionScope
from gristmill.errors import EngineError
from gristmill.sql import types
from gristmill.sql.render import render

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

_MERGED_UP_TO = 16 << 20
"""Files this large are left out of ``compact``'s merges: a merge that took every file under
DuckLake's target size (512 MiB) would rewrite a growing table's merged file at every round."""
_INTERNAL_SCHEMAS = ("information_schema", "pg_catalog")
_INLINED_ROWS = 10
"""Inserts this small into a table made by :meth:`DuckDBEngine.ensure_table` (bookkeeping, stream
state) stay in the catalog instead of becoming a Parquet file each (DuckLake's own default)."""
_SMALL_STEP_ROWS = 1_000_000
"""A step reading fewer rows than this in all runs on one DuckDB thread (see ``expect_rows``)."""
_names = itertools.count()


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect=DuckDBEngine.dialect)


class DuckDBEngine(TransactionScope):
    """The core protocol and every capability of ``engines/base.py`` (transactions, Arrow views,
    maintenance, interrupt, native relations)."""

    kind: ClassVar[str] = "duckdb"
    dialect: ClassVar[str] = "duckdb"
    SUPPORTS_VIEWS: ClassVar[bool] = True
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool] = True
    # DuckLake's SQLite catalog loses commits when one process writes from several connections
    # at once (measured), so steps take turns; each statement uses all of DuckDB's threads.
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool] = False
    SUPPORTS_NESTED_TYPES: ClassVar[bool] = True

    def __init__(self, con: duckdb.DuckDBPyConnection, *, catalog: str, lake: bool) -> None:
        """``con`` with ``catalog`` attached and in use; ``lake``: the catalog is a DuckLake
        (snapshots, data inlining, file maintenance), else a DuckDB database."""
        self._con = con
        self._catalog = catalog
        self._lake = lake
        threads = self._con.execute("SELECT current_setting('threads')").fetchone()
        self._threads = int(threads[0]) if threads else 1  # the project's: for large steps
        self._using = self._threads  # what DuckDB is set to now (SET only when it changes)
        self._schemas: set[str] = set()
        self._interrupted = False
        self._open = False  # a transaction is open (grouped steps leave it open until commit())
        self._inlined: set[Relation] | None = None  # tables keeping small inserts inline (option)
        self._bulk: set[str] | None = None  # schemas without data inlining (see write_in_bulk)
        self._to_inline: list[Relation] = []  # ... once their creation has committed
        # Taken by a commit and by an interrupt: a step interrupted before its COMMIT never commits.
        self._commit_lock = threading.Lock()
        self._kinds: dict[Relation, str] | None = None  # TABLE/VIEW per relation; information_schema is slow

    # -- statements --------------------------------------------------------------------------------

    def table(self, relation: Relation) -> exp.Table:
        return exp.table_(relation.name, db=relation.schema, catalog=self._catalog, quoted=True)

    def execute(self, statement: exp.Expr | str) -> int | None:
        """Run a statement; returns the rows it changed when the engine reports them."""
        if isinstance(statement, str):
            cursor = self._run(statement)
            # DuckDB answers a statement that changes rows with their count, in one "Count" column
            if [d[0] for d in cursor.description or ()] != ["Count"]:
                return None
        else:
            cursor = self._run(render(statement, self.dialect))
            if not isinstance(statement, exp.Insert | exp.Delete | exp.Update | exp.Create):
                return None
        row = cursor.fetchone()
        return int(row[0]) if row and isinstance(row[0], int) else None

    def query(self, sql: str | exp.Expr) -> pa.Table:
        import pyarrow as pa

        text = sql if isinstance(sql, str) else render(sql, self.dialect)
        self._check_interrupted()
        try:
            return self._con.sql(text).to_arrow_table() if text.strip() else pa.table({})
        except duckdb.Error as err:
            raise EngineError(redact(str(err))) from None

    def row(self, query: exp.Query) -> dict[str, Any] | None:
        cursor = self._run(render(query, self.dialect))
        found = cursor.fetchone()
        names = [d[0] for d in cursor.description or ()]
        return dict(zip(names, found, strict=True)) if found is not None else None

    def rows(self, query: exp.Query) -> list[dict[str, Any]]:
        cursor = self._run(render(query, self.dialect))
        found = cursor.fetchall()
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in found]

    def interrupt(self) -> None:
        """Abort the running statement and fail the rest of this transaction (from any thread),
        so a timed-out or cancelled step rolls back instead of publishing. A COMMIT already under
        way finishes first (briefly waited for), so a step has either committed before the
        interrupt returns or never will."""
        locked = self._commit_lock.acquire(timeout=5)
        try:
            self._interrupted = True
        finally:
            if locked:
                self._commit_lock.release()
        self._con.interrupt()

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def _check_interrupted(self) -> None:
        if self._interrupted:
            raise EngineError("interrupted: the step was stopped before it finished")

    def _run(self, text: str) -> duckdb.DuckDBPyConnection:
        self._check_interrupted()
        try:
            return self._con.execute(text)
        except duckdb.Error as err:
            raise EngineError(redact(str(err).strip())) from None

    def _begin(self) -> None:
        """Grouped steps share one transaction (``transaction(group=True)``) so that several small
        steps publish in one DuckLake snapshot (each snapshot costs a commit and a rebuild of the
        catalog for the next statement, ~0.1 s CPU with hundreds of tables, far more than a small
        model's own SQL)."""
        self._con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            with self._commit_lock:
                if self._interrupted:
                    self._con.execute("ROLLBACK")
                    self._forget_uncommitted()
                    raise EngineError("interrupted: the step was stopped before it committed")
                self._commit()
        except duckdb.Error as err:
            self._forget_uncommitted()
            raise EngineError(f"commit failed, nothing was published: {redact(str(err))}") from None
        self._keep_inlining()

    def _commit(self) -> None:
        """COMMIT; on DuckLake with DuckDB's scheduler down to one thread. A DuckLake commit is
        dozens of small catalog queries per table written; with several threads each of them
        pays for waking and polling the others, and the commit costs 2-3x the CPU (measured:
        190 vs 73 ms for a group of 10 tables in a lake of 600; docs/benchmarks.md)."""
        using = self._using
        if not self._lake or using <= 1:
            self._con.execute("COMMIT")
            return
        self._use_threads(1)
        try:
            self._con.execute("COMMIT")
        finally:
            self._use_threads(using)

    def expect_rows(self, rows: int | None) -> None:
        """One DuckDB thread for a step that reads fewer than ``_SMALL_STEP_ROWS`` rows, the
        project's threads otherwise (and when the size is unknown). With more than one thread,
        the client polls the workers through every statement, and a small statement (a model
        over 100k rows, its check, DuckLake's catalog queries for its inputs) costs more CPU
        than it saves: a 300-model build cost 16.5 CPU-s on one thread against 20.5 on two
        (docs/benchmarks.md, "Build cost as the project grows"). Large steps keep every thread
        (the point-in-time fact at TPC-H SF 1 uses them)."""
        small = rows is not None and rows < _SMALL_STEP_ROWS
        self._use_threads(1 if small else self._threads)

    def _use_threads(self, threads: int) -> None:
        if threads != self._using:  # SET costs ~0.5 ms: only when it changes
            try:
                self._con.execute(f"SET threads = {int(threads)}")
            except duckdb.Error:
                return  # only a matter of cost: the statements run as they would have
            self._using = threads

    def rollback(self) -> None:
        """Roll back the transaction grouped steps left open (nothing when none is)."""
        if self._open:
            self._rollback()

    def _rollback(self) -> None:
        self._open = False
        try:
            self._con.execute("ROLLBACK")
        finally:
            self._forget_uncommitted()
            self._interrupted = False  # the interrupted transaction is gone: reads may follow

    def _forget_uncommitted(self) -> None:
        self._schemas.clear()  # what was created inside the transaction is gone too
        self._kinds = None
        self._to_inline.clear()

    # -- tables ------------------------------------------------------------------------------------

    def _ensure_schema(self, schema: str) -> None:
        if schema not in self._schemas:
            self.execute(
                exp.Create(
                    this=exp.Table(
                        db=exp.to_identifier(schema, quoted=True), catalog=exp.to_identifier(self._catalog)
                    ),
                    kind="SCHEMA",
                    exists=True,
                )
            )
            self._schemas.add(schema)

    def write_arrow(
        self, relation: Relation, data: pa.RecordBatchReader, mode: Literal["replace", "append"] = "replace"
    ) -> int:
        self._ensure_schema(relation.schema)
        view = f"_gristmill_batches_{next(_names)}"
        self._con.register(view, data)
        try:
            source = exp.select("*").from_(view)
            if mode == "replace":
                return self.create_table_as(relation, source)
            insert = exp.insert(source, self.table(relation))
            return int(self._run(render(insert, self.dialect)).fetchone()[0])  # type: ignore[index]
        finally:
            self._con.unregister(view)

    def create_table_as(self, relation: Relation, query: exp.Query) -> int:
        self._ensure_schema(relation.schema)
        if self._kind(relation) == "VIEW":
            self.drop_view(relation)
        create = exp.Create(this=self.table(relation), kind="TABLE", replace=True, expression=query)
        rows = int(self._run(render(create, self.dialect)).fetchone()[0])  # type: ignore[index]
        self._set_kind(relation, "TABLE")
        return rows

    def register(self, name: str, data: pa.Table) -> exp.Table:
        try:
            self._con.register(name, data)
        except duckdb.CatalogException:
            # A transaction whose commit failed (another writer of the lake) can leave the name
            # taken: it is ours, so take it back.
            try:
                self._con.unregister(name)
                self._con.register(name, data)
            except duckdb.Error as err:
                raise EngineError(redact(str(err).strip())) from None
        return exp.table_(name, quoted=True)

    def unregister(self, name: str) -> None:
        self._con.unregister(name)

    def exists(self, relation: Relation) -> bool:
        return self._kind(relation) is not None

    def stage(self, data: pa.RecordBatchReader | exp.Query) -> exp.Table:
        """Land record batches (or a query's result) in a temporary table of this session; it
        spills to disk past the memory limit and disappears with the session."""
        name = f"_gristmill_stage_{next(_names)}"
        temporary = exp.Properties(expressions=[exp.TemporaryProperty()])
        view = f"{name}_batches"
        query = data if isinstance(data, exp.Query) else exp.select("*").from_(view)
        if not isinstance(data, exp.Query):
            self._con.register(view, data)
        try:
            self.execute(
                exp.Create(this=exp.table_(name), kind="TABLE", properties=temporary, expression=query)
            )
        finally:
            if not isinstance(data, exp.Query):
                self._con.unregister(view)
        return exp.table_(name, db="main", catalog="temp")

    def describe(self, table: exp.Table | exp.Subquery) -> list[Column]:
        """(column, type) pairs of a staged or published table, or of a query."""
        rows = self._run(f"DESCRIBE {render(exp.select('*').from_(table), self.dialect)}").fetchall()
        return [(str(row[0]), types.parse(str(row[1]), self.dialect)) for row in rows]

    def ensure_table(self, relation: Relation, columns: Sequence[Column]) -> None:
        if self._kind(relation) == "TABLE":
            self._inline(relation)
            return
        self._ensure_schema(relation.schema)
        definition = exp.Schema(
            this=self.table(relation),
            # copied: the types may be shared (sql/types.py caches them)
            expressions=[exp.ColumnDef(this=exp.to_identifier(name), kind=t.copy()) for name, t in columns],
        )
        self.execute(exp.Create(this=definition, kind="TABLE", exists=True))
        self._set_kind(relation, "TABLE")
        self._inline(relation)

    def write_in_bulk(self, schemas: Iterable[str]) -> None:
        """Tables in ``schemas`` are written whole (models): no data inlining there. DuckLake's
        default inlining makes a catalog table for every table created
        (`ducklake_inlined_data_<id>_<version>`), and every transaction pays for them when SQLite
        reads its schema on each new connection: a 1,000-row CREATE TABLE … AS went from 74 to
        287 ms CPU between 1 and 300 tables (without: 86 -> 139). A schema option, set once per
        schema outside any transaction; tables that take small inserts there (stream state, see
        ensure_table) keep inlining by a table option."""
        if not self._lake:
            return
        for schema in sorted(set(schemas) - self._bulk_schemas()):
            self._ensure_schema(schema)
            self._set_inlining(0, schema=schema)
            self._bulk_schemas().add(schema)

    def _options(self) -> list[tuple[str, str, int]]:
        rows = self._con.execute(
            "SELECT scope, scope_entry, value::BIGINT FROM ducklake_options(" + _literal(self._catalog) + ")"
            " WHERE option_name = 'data_inlining_row_limit'"
        ).fetchall()
        return [(str(scope), str(entry), int(value)) for scope, entry, value in rows]

    def _bulk_schemas(self) -> set[str]:
        if self._bulk is None:
            self._bulk = {entry for scope, entry, value in self._options() if scope == "SCHEMA" and not value}
        return self._bulk

    def _inlining(self) -> set[Relation]:
        if self._inlined is None:
            self._inlined = {Relation.of(e) for s, e, value in self._options() if s == "TABLE" and value}
        return self._inlined

    def _inline(self, relation: Relation) -> None:
        """Let ``relation`` keep small inserts in the catalog (stream state): a table option,
        which DuckLake accepts only once the table's creation has committed."""
        if not self._lake or relation in self._to_inline:
            return
        if relation.schema in self._bulk_schemas() and relation not in self._inlining():
            self._to_inline.append(relation)
            if not self._open:
                self._keep_inlining()

    def _keep_inlining(self) -> None:
        for relation in self._to_inline:
            try:
                self._set_inlining(_INLINED_ROWS, schema=relation.schema, table_name=relation.name)
            except EngineError:
                continue  # dropped meanwhile: inlining only saves files
            self._inlining().add(relation)
        self._to_inline.clear()

    def _set_inlining(self, rows: int, **scope: str) -> None:
        call = exp.func(
            "set_option",
            exp.Literal.string("data_inlining_row_limit"),
            exp.Literal.number(rows),
            *(exp.Kwarg(this=exp.var(k), expression=exp.Literal.string(v)) for k, v in scope.items()),
        )
        self._run(f"CALL {self._catalog}.{render(call, self.dialect)}")

    def create_view_as(self, relation: Relation, query: exp.Query) -> None:
        self._ensure_schema(relation.schema)
        if self._kind(relation) == "TABLE":
            self.drop_table(relation)
        self.execute(exp.Create(this=self.table(relation), kind="VIEW", replace=True, expression=query))
        self._set_kind(relation, "VIEW")

    def drop_table(self, relation: Relation) -> None:
        self.execute(exp.Drop(tables=[self.table(relation)], kind="TABLE", exists=True))
        self._set_kind(relation, None)

    def drop_view(self, relation: Relation) -> None:
        self.execute(exp.Drop(tables=[self.table(relation)], kind="VIEW", exists=True))
        self._set_kind(relation, None)

    def drop(self, relation: Relation) -> None:
        kind = self._kind(relation)
        if kind == "VIEW":
            self.drop_view(relation)
        elif kind == "TABLE":
            self.drop_table(relation)

    def reclaim(self, older_than_days: int) -> None:
        """Give back space: DuckLake forgets snapshots older than this and deletes the files only
        they used; a DuckDB database file is checkpointed."""
        if not self._lake:
            self._run(f"CHECKPOINT {self._catalog}")
            return
        age = exp.Sub(
            this=exp.CurrentTimestamp(),
            expression=exp.Interval(this=exp.Literal.string(str(older_than_days)), unit=exp.var("DAY")),
        )
        for procedure, argument, value in (
            ("ducklake_expire_snapshots", "older_than", age),
            ("ducklake_cleanup_old_files", "cleanup_all", exp.true()),
        ):
            call = exp.func(
                procedure,
                exp.Literal.string(self._catalog),
                exp.Kwarg(this=exp.var(argument), expression=value),
            )
            self._run(f"CALL {render(call, self.dialect)}")

    def compact(self, relation: Relation) -> None:
        if not self._lake or self._kind(relation) != "TABLE":
            return  # a DuckDB file keeps rows in its own blocks; a view or no table has no files
        lake, schema, table = _literal(self._catalog), _literal(relation.schema), _literal(relation.name)
        # Rows small writes kept in the catalog (DuckLake inlines them, with every version since)
        # go to a file first; then files mostly deleted are rewritten, and the small files
        # merged. DuckLake keeps each snapshot's view of the merged files (time travel).
        for call in (
            f"ducklake_flush_inlined_data({lake}, schema_name => {schema}, table_name => {table})",
            f"ducklake_rewrite_data_files({lake}, {table}, schema => {schema})",
            f"ducklake_merge_adjacent_files({lake}, {table}, schema => {schema},"
            f" max_file_size => {_MERGED_UP_TO})",
        ):
            self._run(f"CALL {call}").fetchall()

    def _kind(self, relation: Relation) -> str | None:
        if self._kinds is None:
            # duckdb_tables() estimates every table's size (seconds on a large DuckLake); the
            # relations with columns, minus the views, are the tables.
            rows = self._con.execute(
                "SELECT DISTINCT schema_name, table_name, 'TABLE' FROM duckdb_columns()"
                " WHERE database_name = $1 AND (schema_name, table_name) NOT IN"
                " (SELECT (schema_name, view_name) FROM duckdb_views() WHERE database_name = $1)"
                " UNION ALL"
                " SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE database_name = $1".replace(
                    "$1", _literal(self._catalog)
                )  # bound parameters make DuckDB import pandas
            ).fetchall()
            self._kinds = {Relation(s, n): kind for s, n, kind in rows}
        return self._kinds.get(relation)

    def _set_kind(self, relation: Relation, kind: str | None) -> None:
        if self._kinds is not None:
            if kind is None:
                self._kinds.pop(relation, None)
            else:
                self._kinds[relation] = kind

    def columns(self) -> dict[Relation, list[Column]]:
        rows = self._con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            f"WHERE database_name = {_literal(self._catalog)} ORDER BY schema_name, table_name, column_index"
        ).fetchall()
        result: dict[Relation, list[Column]] = {}
        for schema, name, column, dtype in rows:
            if schema not in _INTERNAL_SCHEMAS:
                result.setdefault(Relation(schema, name), []).append(
                    (column, types.parse(dtype, self.dialect))
                )
        return result

    # -- Python models: relations over this connection ----------------------------------------------

    def read_arrow(self, table: exp.Table) -> pa.RecordBatchReader:
        try:
            return self.relation(table).to_arrow_reader()
        except duckdb.Error as err:
            raise EngineError(redact(str(err).strip())) from None

    def relation(self, table: exp.Table) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over ``table`` on this connection: what a Python model builds on
        it runs here, in the engine."""
        try:
            return self._con.sql(render(exp.select("*").from_(table), self.dialect))
        except duckdb.Error as err:
            raise EngineError(redact(str(err).strip())) from None

    def stage_relation(self, relation: Any) -> exp.Table | None:
        """Land a DuckDB relation in a temporary table, like :meth:`stage`. One built on this
        connection runs in place; one from another connection streams in as Arrow. None when
        ``relation`` is not a DuckDB relation."""
        if not isinstance(relation, duckdb.DuckDBPyRelation):
            return None
        view = f"_gristmill_relation_{next(_names)}"
        temporary_view = exp.table_(view, db="main", catalog="temp")
        drop = render(exp.Drop(tables=[temporary_view], kind="VIEW", exists=True), self.dialect)
        try:
            relation.query(view, "SELECT 1")  # names the relation as a temporary view where it lives
            probe = (
                exp.select("count(*)")
                .from_("duckdb_views()")
                .where(exp.and_("temporary", exp.column("view_name").eq(exp.Literal.string(view))))
            )
            ours = self._con.execute(render(probe, self.dialect)).fetchone()  # unbound: no pandas
            if not (ours and ours[0]):
                relation.query(view, drop)
                return self.stage(relation.to_arrow_reader())
            name = f"_gristmill_stage_{next(_names)}"
            temporary = exp.Properties(expressions=[exp.TemporaryProperty()])
            query = exp.select("*").from_(view)
            create = exp.Create(this=exp.table_(name), kind="TABLE", properties=temporary, expression=query)
            relation.query(view, render(create, self.dialect))
            self._run(drop)
        except duckdb.Error as err:
            raise EngineError(redact(str(err).strip())) from None
        return exp.table_(name, db="main", catalog="temp")

    def close(self) -> None:
        self._con.close()
