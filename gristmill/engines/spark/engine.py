"""Apache Spark as the engine: models run in Spark, tables are immutable Parquet storage, and a
transactional ledger decides what each relation is.

A managed relation ``schema.name`` is, in Spark, the view ``name`` of the database
``<schema_prefix><schema>`` (names spelled as the metastore takes them, storage.py): over its
storage tables (``_gm_<name>_<random>``, Parquet, never changed once written; several segments are
read as UNION ALL) or, for a view model, the model's own query. Inside a transaction every change
is written as new storage and kept pending; every statement the engine runs reads the pending
storage of the relations it names (the transaction sees its own writes), while other readers
still see the committed views. The commit writes the relations' new rows to the ledger, with a
journal of the views to switch, in one ledger transaction: that COMMIT is the commit point. The
views are switched after it, and a journal left by a crash in between is rolled forward on open.

The platform's own ``_gristmill`` tables live in the ledger (ledger.py), and statements naming
only them run there, in the ledger's transaction."""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sqlglot
from sqlglot import exp

from gristmill.config.secrets import redact
from gristmill.engines.base import Column, Relation
from gristmill.engines.spark import rewrite
from gristmill.engines.spark.ledger import LEDGER_SCHEMA, OWN_TABLES, Entry, Ledger, Step
from gristmill.engines.spark.storage import (
    STORAGE_PREFIX,
    data_type,
    ident,
    qualified,
    spark_type_text,
    sparkable,
    spelled,
    storage_name,
)
from gristmill.errors import EngineError, GristmillError
from gristmill.sql import types
from gristmill.sql.render import render

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

_log = logging.getLogger(__name__)
_names = itertools.count()
_MOST_SEGMENTS = 8
"""An append past this many segments rewrites the table as one (reads stay one scan of few files)."""
_CHUNK_BYTES = 64 << 20
"""Arrow sent to Spark in chunks this large: the driver holds one chunk at a time."""
_STAGE_SCHEMA = "_gristmill_stage"
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\.?\s*$")

CRASH_POINTS = ("before_commit", "after_ledger_commit")
"""Where a commit may be stopped by a crash, for the tests that kill a process there."""


def _no_fault(point: str) -> None:
    """Production's hook: nothing."""


fault_hook: Callable[[str], None] = _no_fault
"""Called at each of ``CRASH_POINTS`` (tests/support/spark_crashing.py kills the process there)."""


def engine_error(err: BaseException, *, doing: str | None = None) -> EngineError:
    """Spark's error as Gristmill's: its first line (the error class and message), without the
    JVM's stack or the SQLSTATE."""
    text = str(err).strip() or type(err).__name__
    first = _SQLSTATE.sub("", text.splitlines()[0])
    message = redact(first.strip())
    return EngineError(f"{doing}: {message}" if doing else message)


class SparkEngine:
    """The core protocol with transactions (a ledger's), Arrow views (Spark temporary views),
    maintenance (superseded and orphaned storage dropped, segments compacted), interrupt (job
    tags) and native relations (DataFrames)."""

    kind: ClassVar[str] = "spark"
    dialect: ClassVar[str] = "spark"
    SUPPORTS_VIEWS: ClassVar[bool] = True
    # Readers of the metastore's views never see uncommitted storage; with an embedded Derby
    # metastore only one process opens the target at a time (a PostgreSQL one is shared).
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool] = True
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool] = False
    SUPPORTS_NESTED_TYPES: ClassVar[bool] = True

    def __init__(self, spark: SparkSession, ledger: Ledger, *, schema_prefix: str = "") -> None:
        self._spark = spark
        self._ledger = ledger
        self._prefix = schema_prefix
        self._committed: dict[Relation, Entry] = ledger.entries()
        self._pending: dict[Relation, Entry | None] = {}
        self._made: list[tuple[str, str]] = []  # storage written in the open transaction
        self._stages: list[str] = []  # stage tables of this engine (dropped at close)
        self._staged_now: list[str] = []  # ... made in the open transaction (dropped at its end)
        self._dbs: set[str] = set()
        self._open = False
        self._interrupted = False
        self._commit_lock = threading.Lock()
        self._tag = f"gristmill-{uuid.uuid4().hex[:12]}"
        self._index: dict[tuple[str, str], Relation] | None = None
        with suppress(Exception):  # TIME columns (Spark 4.1+); older sessions refuse them at write
            spark.conf.set("spark.sql.timeType.enabled", "true")
        self.roll_forward()

    # -- names -------------------------------------------------------------------------------------

    def _db(self, schema: str) -> str:
        return spelled(self._prefix + schema)

    @property
    def _ledger_db(self) -> str:
        return self._db(LEDGER_SCHEMA)

    @property
    def _stage_db(self) -> str:
        return self._db(_STAGE_SCHEMA)

    def table(self, relation: Relation) -> exp.Table:
        if relation.schema == LEDGER_SCHEMA:  # never sent to Spark: its name stays as given
            return exp.table_(relation.name, db=self._ledger_db, quoted=True)
        return exp.table_(spelled(relation.name), db=self._db(relation.schema), quoted=True)

    def _relation_of(self, table: exp.Table) -> Relation | None:
        """The managed relation a table reference names (None: a stage table, another table)."""
        if self._index is None:
            self._index = {}
            for relation in itertools.chain(self._committed, self._pending):
                self._index[(self._db(relation.schema), spelled(relation.name))] = relation
        return self._index.get((table.text("db").lower(), table.name.lower()))

    def _state(self, relation: Relation) -> Entry | None:
        if relation in self._pending:
            return self._pending[relation]
        return self._committed.get(relation)

    def _change(self, relation: Relation, entry: Entry | None) -> None:
        assert self._open
        self._pending[relation] = entry
        self._index = None

    # -- running statements ------------------------------------------------------------------------

    def _check_interrupted(self) -> None:
        if self._interrupted:
            raise EngineError("interrupted: the step was stopped before it finished")

    def _sql(self, text: str) -> DataFrame:
        self._check_interrupted()
        try:
            return self._spark.sql(text)
        except Exception as err:  # pyspark's errors and py4j's: all are a failed statement
            raise engine_error(err) from None

    def _collect(self, text: str) -> list[Any]:
        self._check_interrupted()
        try:
            return list(self._spark.sql(text).collect())
        except Exception as err:
            raise engine_error(err) from None

    def _source(self, table: exp.Table) -> exp.Expr | None:
        relation = self._relation_of(table)
        if relation is None or relation not in self._pending:
            return None
        entry = self._pending[relation]
        if entry is None:
            return None
        return self._reading(entry)

    def _reading(self, entry: Entry) -> exp.Expr:
        """What reads a relation's pending state: its storage, or its view's query."""
        if entry.kind == "view":
            assert entry.view_sql is not None
            return rewrite.substitute(sqlglot.parse_one(entry.view_sql, read=self.dialect), self._source)
        parts = [exp.table_(name, db=entry.db, quoted=True) for name in entry.storage]
        if len(parts) == 1:
            return parts[0]
        return rewrite.union(parts)

    def _text(self, statement: exp.Expr) -> str:
        """``statement`` in Spark SQL, reading what the open transaction wrote."""
        statement = rewrite.substitute(statement, self._source) if self._pending else statement.copy()
        return render(rewrite.arrival_order(statement), self.dialect)

    def _parse(self, text: str) -> exp.Expr | None:
        try:
            return sqlglot.parse_one(text, read=self.dialect)
        except sqlglot.errors.ParseError:
            return None

    def _for_ledger(self, statement: exp.Expr) -> exp.Expr | None:
        """``statement`` over the ledger's tables when it names only ``_gristmill`` tables; None
        when it names none of them."""
        named = rewrite.tables(statement)
        ours = [t for t in named if t.text("db") == self._ledger_db]
        if not ours:
            return None
        if len(ours) != len(named):
            others = sorted({f"{t.text('db')}.{t.name}" for t in named if t not in ours})
            raise EngineError(
                f"a statement reads both the platform's _gristmill tables and Spark's ({', '.join(others)}):"
                " the spark engine keeps _gristmill tables in its ledger, apart from Spark"
            )

        def moved(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Table) and node.text("db") == self._ledger_db:
                found = self._ledger.engine.table(Relation(LEDGER_SCHEMA, node.name))
                if node.args.get("alias") is not None:
                    found.set("alias", node.args["alias"].copy())
                return found
            return node

        return statement.copy().transform(moved, copy=False)

    def execute(self, statement: exp.Expr | str) -> int | None:
        parsed = self._parse(statement) if isinstance(statement, str) else statement
        if parsed is None:  # SQL sqlglot cannot read (a hook's): run as written
            assert isinstance(statement, str)
            self._sql(statement)
            return None
        routed = self._for_ledger(parsed)
        if routed is not None:
            return self._ledger.engine.execute(routed)
        if isinstance(parsed, exp.Insert):
            return self._insert(parsed)
        if isinstance(parsed, exp.Delete):
            return self._delete(parsed)
        if isinstance(parsed, exp.Update):
            return self._update(parsed)
        if isinstance(parsed, exp.Alter):
            return self._alter(parsed)
        if isinstance(parsed, exp.Create):
            return self._create(parsed)
        if isinstance(parsed, exp.Drop):
            return self._drop(parsed)
        if isinstance(parsed, exp.Merge):
            raise EngineError(
                "MERGE is not supported on the spark engine (its Parquet tables are rewritten:"
                " send DELETE and INSERT, or UPDATE)"
            )
        self._sql(self._text(parsed))
        return None

    def query(self, sql: str | exp.Expr) -> pa.Table:
        import pyarrow as pa

        parsed = self._parse(sql) if isinstance(sql, str) else sql
        if isinstance(sql, str) and not sql.strip():
            return pa.table({})
        if parsed is not None:
            routed = self._for_ledger(parsed)
            if routed is not None:
                return self._ledger.engine.query(routed)
        text = self._text(parsed) if parsed is not None else str(sql)
        self._check_interrupted()
        try:
            return self._spark.sql(text).toArrow()
        except Exception as err:
            raise engine_error(err) from None

    def row(self, query: exp.Query) -> dict[str, Any] | None:
        found = self.rows(
            query.limit(1) if isinstance(query, exp.Select) and not query.args.get("limit") else query
        )
        return found[0] if found else None

    def rows(self, query: exp.Query) -> list[dict[str, Any]]:
        routed = self._for_ledger(query)
        if routed is not None:
            return self._ledger.engine.rows(routed)  # type: ignore[arg-type]
        return [row.asDict(recursive=True) for row in self._collect(self._text(query))]

    # -- transactions and interrupts ---------------------------------------------------------------

    def interrupt(self) -> None:
        """Cancel the running Spark jobs of this engine and fail the rest of this transaction
        (from any thread). A commit already under way finishes first (briefly waited for)."""
        locked = self._commit_lock.acquire(timeout=5)
        try:
            self._interrupted = True
        finally:
            if locked:
                self._commit_lock.release()
        with suppress(Exception):  # a session without job tags still fails at its next statement
            self._spark.interruptTag(self._tag)

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    @contextmanager
    def transaction(self, *, group: bool = False) -> Iterator[None]:
        self._interrupted = False  # an interrupt is for the step it was sent to, not the next
        if not self._open:
            with self._ledger.transactions.transaction(group=True):
                pass  # the ledger's transaction, left open until commit
            self._open = True
            with suppress(Exception):
                self._spark.addTag(self._tag)
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        if not group:
            self.commit()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        if self._open:
            yield
            return
        with self.transaction():
            yield

    def commit(self) -> None:
        if not self._open:
            return
        with self._commit_lock:
            if self._interrupted:
                self._rollback()
                raise EngineError("interrupted: the step was stopped before it committed")
            steps = self._steps()
            fault_hook("before_commit")
            try:
                self._ledger.record(self._pending, steps)
                self._ledger.transactions.commit()  # the commit point
            except GristmillError as err:
                self._rollback()
                raise EngineError(f"commit failed, nothing was published: {err}") from None
            self._open = False
        for relation, entry in self._pending.items():
            if entry is None:
                self._committed.pop(relation, None)
            else:
                self._committed[relation] = entry
        referenced = {(e.db, s) for e in self._pending.values() if e is not None for s in e.storage}
        unseen = [made for made in self._made if made not in referenced]  # never visible to anyone
        self._end()
        fault_hook("after_ledger_commit")
        self._apply(steps)
        self._drop_tables(unseen)

    def _steps(self) -> list[Step]:
        """The journal of the open transaction: each changed relation's view, made or dropped,
        and the storage its old version leaves unreferenced."""
        steps = []
        base = time.time_ns() // 1000
        for i, (relation, entry) in enumerate(self._pending.items()):
            old = self._committed.get(relation)
            kept = set(entry.storage) if entry is not None else set()
            superseded = tuple((old.db, s) for s in old.storage if s not in kept) if old is not None else ()
            view = qualified(self._db(relation.schema), spelled(relation.name))
            if entry is None:
                statement = f"DROP VIEW IF EXISTS {view}"
            else:
                parts = [exp.table_(name, db=entry.db, quoted=True) for name in entry.storage]
                body = entry.view_sql if entry.kind == "view" else render(rewrite.union(parts), self.dialect)
                statement = f"CREATE OR REPLACE VIEW {view} WITH SCHEMA EVOLUTION AS {body}"
            steps.append(Step(base + i, statement, superseded))
        return steps

    def _apply(self, steps: Sequence[Step]) -> None:
        """Switch the metastore's views as the ledger says, then record the superseded storage
        and empty the journal. A view over another made later in the same list is retried once
        the rest ran; what still fails stays in the journal (rolled forward on the next open)."""
        if not steps:
            return
        left = list(steps)
        for _ in range(2):
            failed: list[Step] = []
            error: BaseException | None = None
            for step in left:
                try:
                    self._spark.sql(step.statement)
                except Exception as err:
                    failed.append(step)
                    error = err
            left = failed
            if not left:
                break
        if left:
            assert error is not None
            _log.warning(
                "committed, but %d view(s) not switched yet (retried on next open): %s",
                len(left),
                engine_error(error),
            )
            return
        self._ledger.finish(steps)

    def roll_forward(self) -> None:
        """Switch views a crash left unswitched after their ledger commit (cheap when none)."""
        steps = self._ledger.journal()
        if steps:
            self._apply(steps)

    def rollback(self) -> None:
        if self._open:
            self._rollback()

    def _rollback(self) -> None:
        self._open = False
        made = list(self._made)
        try:
            self._ledger.transactions.rollback()
        finally:
            self._end()
            self._interrupted = False
            self._drop_tables(made)

    def _end(self) -> None:
        """Forget the transaction's pending state, drop its stage tables."""
        self._pending.clear()
        self._index = None
        self._made.clear()
        staged, self._staged_now = self._staged_now, []
        self._stages = [s for s in self._stages if s not in staged]
        self._drop_tables([(self._stage_db, name) for name in staged])
        with suppress(Exception):
            self._spark.removeTag(self._tag)

    def _drop_tables(self, tables: Iterable[tuple[str, str]]) -> None:
        for db, name in tables:
            with suppress(Exception):  # storage no one references: reclaim drops what stays
                self._spark.sql(f"DROP TABLE IF EXISTS {qualified(db, name)}")

    def write_in_bulk(self, schemas: Iterable[str]) -> None:
        """Nothing: every write is a whole new Parquet table already."""

    # -- storage -----------------------------------------------------------------------------------

    def _ensure_db(self, db: str) -> str:
        if db not in self._dbs:
            self._sql(f"CREATE DATABASE IF NOT EXISTS {ident(db)}")
            self._dbs.add(db)
        return db

    def _schema_of(self, db: str, name: str) -> tuple[tuple[str, str], ...]:
        try:
            fields = self._spark.table(qualified(db, name)).schema.fields
        except Exception as err:
            raise engine_error(err) from None
        return tuple((f.name, spark_type_text(f.dataType)) for f in fields)

    def _count(self, db: str, name: str) -> int:
        found = self._collect(f"SELECT count(*) AS n FROM {qualified(db, name)}")
        return int(found[0][0])

    def _new_storage(self, db: str, name: str, query: exp.Expr) -> int:
        """A new storage table of ``query``'s rows; returns their count."""
        self._ensure_db(db)
        self._made.append((db, name))
        self._sql(f"CREATE TABLE {qualified(db, name)} USING parquet AS {self._text(query)}")
        return self._count(db, name)

    def _table_entry(self, db: str, storage: Sequence[str]) -> Entry:
        return Entry("table", db, tuple(storage), None, self._schema_of(db, storage[-1]))

    def _columns_of(self, entry: Entry) -> list[Column]:
        return [(name, data_type(dtype)) for name, dtype in entry.columns]

    def _existing_table(self, relation: Relation) -> Entry:
        entry = self._state(relation)
        if entry is None or entry.kind != "table":
            what = "a view" if entry is not None else "missing"
            raise EngineError(f"{relation} is {what}: only a table's rows can change")
        return entry

    def create_table_as(self, relation: Relation, query: exp.Query) -> int:
        """A new storage table of the query, published at the commit (a failure keeps the old)."""
        if relation.schema == LEDGER_SCHEMA:
            return self._ledger.engine.create_table_as(relation, self._for_ledger(query) or query)  # type: ignore[arg-type]
        with self._atomic():
            db = self._ensure_db(self._db(relation.schema))
            name = storage_name(relation.name)
            rows = self._new_storage(db, name, query)
            self._change(relation, self._table_entry(db, [name]))
        return rows

    def create_view_as(self, relation: Relation, query: exp.Query) -> None:
        """The view's query as written (it names relations, which are views themselves), checked
        now against what the transaction sees."""
        with self._atomic():
            db = self._ensure_db(self._db(relation.schema))
            try:
                schema = self._sql(f"{self._text(query)}").schema
            except EngineError:
                raise
            except Exception as err:
                raise engine_error(err) from None
            columns = tuple((f.name, spark_type_text(f.dataType)) for f in schema.fields)
            sql = render(query, self.dialect)
            self._change(relation, Entry("view", db, (), sql, columns))

    def ensure_table(self, relation: Relation, columns: Sequence[Column]) -> None:
        if relation.schema == LEDGER_SCHEMA:
            self._ledger.engine.ensure_table(relation, columns)
            return
        found = self._state(relation)
        if found is not None and found.kind == "table":
            return
        with self._atomic():
            db = self._ensure_db(self._db(relation.schema))
            name = storage_name(relation.name)
            listed = ", ".join(f"{ident(n)} {types.render(t, self.dialect)}" for n, t in columns)
            self._made.append((db, name))
            self._sql(f"CREATE TABLE {qualified(db, name)} ({listed}) USING parquet")
            self._change(relation, self._table_entry(db, [name]))

    def exists(self, relation: Relation) -> bool:
        if relation.schema == LEDGER_SCHEMA:
            return self._ledger.engine.exists(relation)
        return self._state(relation) is not None

    def drop(self, relation: Relation) -> None:
        if relation.schema == LEDGER_SCHEMA:
            self._ledger.engine.drop(relation)
            return
        if self._state(relation) is not None:
            with self._atomic():
                self._change(relation, None)

    def drop_view(self, relation: Relation) -> None:
        found = self._state(relation)
        if found is not None and found.kind == "view":
            self.drop(relation)

    # -- statements Parquet tables cannot run, as new storage ---------------------------------------

    def _target(self, table: exp.Expr) -> tuple[Relation | None, exp.Table]:
        target = table.this if isinstance(table, exp.Schema) else table
        assert isinstance(target, exp.Table)
        if target.text("db").lower() == self._stage_db:
            return None, target
        relation = self._relation_of(target)
        if relation is None:
            raise EngineError(f"no such table: {target.text('db')}.{target.name}")
        return relation, target

    def _insert(self, insert: exp.Insert) -> int | None:
        relation, _ = self._target(insert.this)
        if relation is None:  # a stage table takes INSERT itself
            self._sql(self._text(insert))
            return None
        with self._atomic():
            entry = self._existing_table(relation)
            select = rewrite.inserted(insert, self._columns_of(entry))
            name = storage_name(relation.name)
            rows = self._new_storage(entry.db, name, select)
            segments = [*entry.storage, name]
            if len(segments) > _MOST_SEGMENTS:
                whole = storage_name(relation.name)
                self._new_storage(entry.db, whole, self._reading(replace(entry, storage=tuple(segments))))
                segments = [whole]
            self._change(relation, replace(entry, storage=tuple(segments)))
        return rows

    def _rewritten(self, relation: Relation | None, target: exp.Table, query: exp.Query) -> None:
        """The table's rows become ``query``'s: new storage of a relation, or a stage table
        rebuilt under its name (private to this engine: nobody reads it meanwhile)."""
        if relation is None:
            db, name = self._stage_db, target.name
            new = f"{name}_{next(_names)}"
            self._sql(f"CREATE TABLE {qualified(db, new)} USING parquet AS {self._text(query)}")
            self._sql(f"DROP TABLE {qualified(db, name)}")
            self._sql(f"ALTER TABLE {qualified(db, new)} RENAME TO {qualified(db, name)}")
            return
        with self._atomic():
            entry = self._existing_table(relation)
            name = storage_name(relation.name)
            self._new_storage(entry.db, name, query)
            self._change(relation, self._table_entry(entry.db, [name]))

    def _delete(self, delete: exp.Delete) -> int | None:
        relation, target = self._target(delete.this)
        self._rewritten(relation, target, rewrite.deleted(delete))
        return None

    def _update(self, update: exp.Update) -> int | None:
        relation, target = self._target(update.this)
        columns = self.describe(exp.table_(target.name, db=target.text("db"), quoted=True))
        changed = self._changed_rows(update)
        self._rewritten(relation, target, rewrite.updated(update, columns))
        return changed

    def _changed_rows(self, update: exp.Update) -> int:
        """How many rows ``update`` changes (counted before it runs)."""
        where = update.args.get("where")
        count = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(update.this.copy())
        source = update.args.get("from_") or update.args.get("from")
        if source is not None:
            count = count.join(source.this.copy(), on=where.this.copy() if where is not None else exp.true())
        elif where is not None:
            count = count.where(where.this.copy())
        found = self._collect(self._text(count))
        return int(found[0][0])

    def _alter(self, alter: exp.Alter) -> int | None:
        relation, target = self._target(alter.this)
        columns = self.describe(exp.table_(target.name, db=target.text("db"), quoted=True))
        try:
            query = rewrite.altered(alter, columns)
        except ValueError as err:
            raise EngineError(f"not supported on the spark engine: {err}") from None
        self._rewritten(relation, target, query)
        return None

    def _create(self, create: exp.Create) -> int | None:
        kind = str(create.args.get("kind") or "").upper()
        target = create.this
        if kind == "SCHEMA":
            return None  # databases are made when a relation needs one
        if isinstance(target, exp.Table) and target.text("db").lower() == self._stage_db:
            self._sql(self._text(create))
            return None
        table = target.this if isinstance(target, exp.Schema) else target
        assert isinstance(table, exp.Table)
        relation = self._relation_of(table) or self._named(table)
        query = create.expression
        if kind == "VIEW" and isinstance(query, exp.Query):
            self.create_view_as(relation, query)
            return None
        if kind == "TABLE" and isinstance(query, exp.Query):
            if create.args.get("exists") and self.exists(relation):
                return None
            return self.create_table_as(relation, query)
        if kind == "TABLE" and isinstance(target, exp.Schema):
            columns = [(c.name, c.args["kind"]) for c in target.expressions if isinstance(c, exp.ColumnDef)]
            self.ensure_table(relation, columns)
            return None
        raise EngineError(f"not supported on the spark engine: {render(create, self.dialect)[:200]}")

    def _named(self, table: exp.Table) -> Relation:
        """A relation not yet managed, from a table reference (its schema without the prefix)."""
        db = table.text("db")
        if not db.startswith(spelled(self._prefix)) if self._prefix else False:
            raise EngineError(f"not a managed schema: {db}")
        return Relation(db[len(spelled(self._prefix)) :] if self._prefix else db, table.name)

    def _drop(self, drop: exp.Drop) -> int | None:
        for table in drop.expressions:
            if not isinstance(table, exp.Table):
                continue
            if table.text("db").lower() == self._stage_db:
                self._sql(f"DROP TABLE IF EXISTS {qualified(self._stage_db, table.name)}")
                continue
            relation = self._relation_of(table)
            if relation is not None:
                self.drop(relation)
        return None

    # -- Arrow -------------------------------------------------------------------------------------

    def _land(self, db: str, name: str, data: pa.RecordBatchReader, columns: Sequence[Column] | None) -> int:
        """Write record batches as the new table ``db.name`` in chunks (the driver holds one at a
        time); with ``columns``, cast to those (an append's target), else as Arrow's types map."""
        import pyarrow as pa

        schema, casts = sparkable(data.schema)
        view = f"_gm_arrow_{uuid.uuid4().hex[:12]}"
        target = qualified(db, name)
        self._ensure_db(db)
        if columns is None:
            select = exp.select(
                *(
                    exp.alias_(exp.cast(exp.column(f.name, quoted=True), casts[f.name]), f.name, quoted=True)
                    if f.name in casts
                    else exp.column(f.name, quoted=True)
                    for f in schema
                )
            ).from_(view)
        else:
            named = exp.Schema(
                this=exp.table_(name), expressions=[exp.to_identifier(f.name, quoted=True) for f in schema]
            )
            select = rewrite.inserted(exp.Insert(this=named, expression=exp.select("*").from_(view)), columns)
        text = render(select, self.dialect)
        rows, made = 0, False

        def send(chunk: list[pa.RecordBatch]) -> None:
            nonlocal made
            self._check_interrupted()
            table = pa.Table.from_batches(chunk, schema=data.schema).cast(schema, safe=False)
            try:
                # One partition: a chunk is one Parquet file, its rows read back in their order.
                self._spark.createDataFrame(table).coalesce(1).createOrReplaceTempView(view)
            except Exception as err:
                raise engine_error(err, doing="cannot send the rows to Spark") from None
            if not made:
                self._made.append((db, name))
                self._sql(f"CREATE TABLE {target} USING parquet AS {text}")
                made = True
            else:
                self._sql(f"INSERT INTO {target} {text}")

        chunk: list[pa.RecordBatch] = []
        size = 0
        try:
            for batch in data:
                chunk.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if size >= _CHUNK_BYTES:
                    send(chunk)
                    chunk, size = [], 0
            if chunk or not made:
                send(chunk)
        finally:
            with suppress(Exception):
                self._spark.catalog.dropTempView(view)
        return rows

    def write_arrow(
        self, relation: Relation, data: pa.RecordBatchReader, mode: Literal["replace", "append"] = "replace"
    ) -> int:
        if relation.schema == LEDGER_SCHEMA:
            return self._ledger.engine.write_arrow(relation, data, mode)
        with self._atomic():
            entry = self._state(relation)
            db = self._ensure_db(self._db(relation.schema))
            name = storage_name(relation.name)
            if mode == "append" and entry is not None and entry.kind == "table":
                rows = self._land(entry.db, name, data, self._columns_of(entry))
                self._change(relation, replace(entry, storage=(*entry.storage, name)))
                if len(entry.storage) + 1 > _MOST_SEGMENTS:
                    self.compact(relation)
                return rows
            rows = self._land(db, name, data, None)
            self._change(relation, self._table_entry(db, [name]))
        return rows

    def stage(self, data: pa.RecordBatchReader | exp.Query) -> exp.Table:
        """A Parquet table in the stage database, dropped when the transaction ends (or the
        engine closes)."""
        name = f"_gm_stage_{uuid.uuid4().hex[:12]}"
        db = self._ensure_db(self._stage_db)
        if isinstance(data, exp.Query):
            self._sql(f"CREATE TABLE {qualified(db, name)} USING parquet AS {self._text(data)}")
        else:
            self._land(db, name, data, None)
            self._made = [m for m in self._made if m != (db, name)]
        self._stages.append(name)
        if self._open:
            self._staged_now.append(name)
        return exp.table_(name, db=db, quoted=True)

    def register(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` as the temporary view ``name`` of this session."""
        schema, _ = sparkable(data.schema)
        try:
            frame = self._spark.createDataFrame(data.cast(schema, safe=False)).coalesce(1)
            frame.createOrReplaceTempView(name)
        except Exception as err:
            raise engine_error(err) from None
        return exp.table_(name, quoted=True)

    def unregister(self, name: str) -> None:
        with suppress(Exception):
            self._spark.catalog.dropTempView(name)

    def read_arrow(self, table: exp.Table) -> pa.RecordBatchReader:
        return self.query(exp.select("*").from_(table)).to_reader()

    def describe(self, table: exp.Table | exp.Subquery) -> list[Column]:
        if isinstance(table, exp.Table):
            if table.text("db") == self._ledger_db:
                routed = self._for_ledger(table)
                assert isinstance(routed, exp.Table)
                return self._ledger.engine.describe(routed)
            relation = self._relation_of(table)
            entry = self._state(relation) if relation is not None else None
            if entry is not None:
                return self._columns_of(entry)
        frame = self._sql(self._text(exp.select("*").from_(table.copy()).limit(0)))
        try:
            fields = frame.schema.fields
        except Exception as err:
            raise engine_error(err) from None
        return [(f.name, data_type(spark_type_text(f.dataType))) for f in fields]

    def columns(self) -> dict[Relation, list[Column]]:
        found: dict[Relation, list[Column]] = {}
        for relation, entry in sorted({**self._committed, **self._pending}.items()):
            if entry is not None:
                found[relation] = self._columns_of(entry)
        for relation, listed in self._ledger.engine.columns().items():
            if relation.schema == LEDGER_SCHEMA and relation not in OWN_TABLES:
                found[relation] = listed
        return found

    # -- maintenance -------------------------------------------------------------------------------

    def reclaim(self, older_than_days: int) -> None:
        """Drop storage superseded longer ago than that, and storage no ledger row references
        (written by a transaction that never committed: a crash, a killed process)."""
        old = self._ledger.superseded(older_than_days)
        self._drop_tables(old)
        self._ledger.forget_superseded(old)
        referenced = {(e.db, s) for e in self._committed.values() for s in e.storage}
        referenced |= {(e.db, s) for e in self._pending.values() if e is not None for s in e.storage}
        referenced |= set(self._made) | self._ledger.known_superseded()
        orphans = [
            (db, name)
            for db in self._managed_dbs()
            for name in self._tables_in(db)
            if name.startswith(STORAGE_PREFIX) and (db, name) not in referenced
        ]
        stages = set(self._stages)
        orphans += [(self._stage_db, n) for n in self._tables_in(self._stage_db) if n not in stages]
        self._drop_tables(orphans)

    def _managed_dbs(self) -> list[str]:
        known = {e.db for e in self._committed.values()} | self._dbs
        if self._prefix:
            pattern = spelled(self._prefix) + "*"
            known |= {row[0] for row in self._collect(f"SHOW DATABASES LIKE '{pattern}'")}
        return sorted(known - {self._stage_db})

    def _tables_in(self, db: str) -> list[str]:
        try:
            rows = self._spark.sql(f"SHOW TABLES IN {ident(db)}").collect()
        except Exception:
            return []  # no such database
        return [row["tableName"] for row in rows if not row["isTemporary"]]

    def compact(self, relation: Relation) -> None:
        """Rewrite a table's segments as one storage table; nothing when it is one already."""
        entry = self._state(relation)
        if entry is None or entry.kind != "table" or len(entry.storage) < 2:
            return
        with self._atomic():
            name = storage_name(relation.name)
            self._new_storage(entry.db, name, self._reading(entry))
            self._change(relation, self._table_entry(entry.db, [name]))

    # -- Python models: DataFrames -----------------------------------------------------------------

    def relation(self, table: exp.Table) -> DataFrame:
        """A lazy DataFrame over ``table``, as the open transaction sees it."""
        return self._sql(self._text(exp.select("*").from_(table.copy())))

    def stage_relation(self, result: Any) -> exp.Table | None:
        """Write a DataFrame to a stage table; None when ``result`` is not a DataFrame."""
        from pyspark.sql import DataFrame

        if not isinstance(result, DataFrame):
            return None
        name = f"_gm_stage_{uuid.uuid4().hex[:12]}"
        db = self._ensure_db(self._stage_db)
        self._check_interrupted()
        try:
            result.write.format("parquet").saveAsTable(qualified(db, name))
        except Exception as err:
            raise engine_error(err) from None
        self._stages.append(name)
        if self._open:
            self._staged_now.append(name)
        return exp.table_(name, db=db, quoted=True)

    def close(self) -> None:
        with suppress(GristmillError):
            if self._open:
                self._rollback()
        self._drop_tables([(self._stage_db, name) for name in self._stages])
        self._stages.clear()
        self._ledger.close()
