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
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from sqlglot import exp

from gristmill.engines.base import Column, Relation
from gristmill.engines.spark import rewrite
from gristmill.engines.spark.frames import SparkFrames
from gristmill.engines.spark.ledger import LEDGER_SCHEMA, OWN_TABLES, Entry
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
from gristmill.engines.spark.transactions import SparkTransactions, engine_error
from gristmill.errors import EngineError, GristmillError
from gristmill.sql import types
from gristmill.sql.render import render

if TYPE_CHECKING:
    import pyarrow as pa

_log = logging.getLogger(__name__)
_names = itertools.count()
_MOST_SEGMENTS = 8
"""An append past this many segments rewrites the table as one (reads stay one scan of few files)."""
_CHUNK_BYTES = 64 << 20
"""Arrow sent to Spark in chunks this large: the driver holds one chunk at a time."""


class SparkEngine(SparkTransactions, SparkFrames):
    """The core protocol with transactions (a ledger's), Arrow views (Spark temporary views),
    maintenance (superseded and orphaned storage dropped, segments compacted), interrupt (job
    tags) and Spark DataFrames for Python models (frames.py)."""

    kind: ClassVar[str] = "spark"
    dialect: ClassVar[str] = "spark"
    SUPPORTS_VIEWS: ClassVar[bool] = True
    # Readers of the metastore's views never see uncommitted storage; with an embedded Derby
    # metastore only one process opens the target at a time (a PostgreSQL one is shared).
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool] = True
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool] = False
    SUPPORTS_NESTED_TYPES: ClassVar[bool] = True

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
        """Rewrites only the segments holding rows the condition matches (a segment whose rows
        all match is dropped unread; nothing matched, nothing changes). Appends land as segments,
        so replacing the latest interval or partition rewrites that segment, not the table."""
        relation, target = self._target(delete.this)
        if relation is None or delete.args.get("where") is None:
            self._rewritten(relation, target, rewrite.deleted(delete))
            return None
        with self._atomic():
            entry = self._existing_table(relation)
            segments = [exp.table_(name, db=entry.db, quoted=True) for name in entry.storage]
            matched, total = (
                {int(r[0]): int(r[1]) for r in self._collect(self._text(q))}
                for q in rewrite.segment_counts(delete, segments)
            )
            if not matched:
                return 0
            kept = []
            for i, name in enumerate(entry.storage):
                if matched.get(i, 0) == 0:
                    kept.append(name)
                elif matched[i] < total[i]:  # partly deleted: the rest as a new segment
                    kept.append(storage_name(relation.name))
                    self._new_storage(entry.db, kept[-1], rewrite.deleted_from(delete, segments[i]))
            if not kept:  # every row deleted: an empty table of the same columns
                kept = [storage_name(relation.name)]
                self._new_storage(entry.db, kept[0], rewrite.deleted(exp.Delete(this=segments[-1])))
            self._change(relation, self._table_entry(entry.db, kept))
        return sum(matched.values())

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
        if create.find(exp.TemporaryProperty) is not None:  # a view of the session (a files read)
            self._sql(render(create, self.dialect))
            return None
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

    def close(self) -> None:
        with suppress(GristmillError):
            if self._open:
                self._rollback()
        self._drop_tables([(self._stage_db, name) for name in self._stages])
        self._stages.clear()
        self._ledger.close()
