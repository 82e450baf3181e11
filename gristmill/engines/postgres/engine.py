"""PostgreSQL as the engine: models run on the server, record batches arrive by binary COPY.

One psycopg connection in autocommit mode; the engine opens its own transactions (``BEGIN`` …
``COMMIT``), so DDL commits or rolls back with the data like everything else in PostgreSQL.
Every managed schema carries ``[engine] schema_prefix``, so several projects share a database."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import psycopg
from psycopg.rows import dict_row
from sqlglot import exp

from gristmill.engines.base import Column, Relation
from gristmill.engines.postgres.catalog import Catalog, changes_relations
from gristmill.engines.postgres.connection import engine_error
from gristmill.engines.scope import TransactionScope
from gristmill.errors import EngineError
from gristmill.sql import types
from gristmill.sql.render import render
from gristmill.sql.value_checks import TRY_CAST_FUNCTION

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

_names = itertools.count()
_COUNTED = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")
"""Command tags whose count is rows changed (a SELECT's is rows returned)."""
_TABLES = ("r", "p")  # pg_class.relkind of an ordinary and a partitioned table
_DEPENDENT_VIEWS = """
WITH RECURSIVE deps(oid, depth) AS (
  SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %(oid)s::regclass
    AND r.ev_class <> %(oid)s::regclass
  UNION
  SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid
  JOIN pg_rewrite r ON r.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> deps.oid
)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid), max(deps.depth) AS depth
FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' GROUP BY 1, 2, 3 ORDER BY depth"""
_COLUMNS = r"""
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('information_schema', 'pg_catalog', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%%'
  AND n.nspname LIKE %s
ORDER BY n.nspname, c.relname, a.attnum"""
_FORMAT_TYPES = """
SELECT format_type(t, m) FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY AS u(t, m, i) ORDER BY i"""


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")


class PostgresEngine(TransactionScope):
    """The core protocol with transactions, Arrow views (temporary tables filled by COPY),
    maintenance (VACUUM ANALYZE) and interrupt (a cancel request from another thread)."""

    kind: ClassVar[str] = "postgres"
    dialect: ClassVar[str] = "postgres"
    SUPPORTS_VIEWS: ClassVar[bool] = True
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool] = True
    # One connection per engine: steps of a run take turns on it (several connections would let
    # them write at once; not needed yet).
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool] = False
    # structs and lists of structs are staged as jsonb, lists of scalars as arrays
    SUPPORTS_NESTED_TYPES: ClassVar[bool] = False

    def __init__(self, con: psycopg.Connection, *, schema_prefix: str = "", where: str = "") -> None:
        """``con`` in autocommit mode; ``where`` names the server in messages (no password)."""
        self._con = con
        self._prefix = schema_prefix
        self._where = where
        self._catalog = Catalog(schema_prefix, lambda text, params: self._cursor(text, params).fetchall())
        self._type_names: dict[tuple[int, int], str] = {}  # (type oid, modifier) -> format_type
        self._open = False  # a transaction is open (grouped steps leave it open until commit())
        self._interrupted = False
        # Taken by a commit and by an interrupt: a step interrupted before its COMMIT never commits.
        self._commit_lock = threading.Lock()
        # Checked casts (loads fitting values to a held type) call it; a temporary function lasts
        # as long as this session, and is created outside any transaction so no rollback drops it.
        self._cursor(TRY_CAST_FUNCTION)

    # -- statements --------------------------------------------------------------------------------

    def table(self, relation: Relation) -> exp.Table:
        return exp.table_(relation.name, db=self._prefix + relation.schema, quoted=True)

    def _cursor(self, text: str, params: Sequence[Any] | dict[str, Any] | None = None) -> psycopg.Cursor[Any]:
        self._check_interrupted()
        try:
            return self._con.execute(text, params)
        except psycopg.Error as err:
            raise engine_error(err) from None

    def execute(self, statement: exp.Expr | str) -> int | None:
        if isinstance(statement, str):
            ddl = changes_relations(statement)
            cursor = self._cursor(statement)
            counted = (cursor.statusmessage or "").startswith(_COUNTED)
        else:
            ddl = isinstance(statement, exp.Create | exp.Drop | exp.Alter | exp.Command)
            cursor = self._cursor(render(statement, self.dialect))
            counted = isinstance(statement, exp.Insert | exp.Delete | exp.Update | exp.Merge | exp.Create)
        if ddl:  # a relation made, dropped or renamed by a statement the engine did not write
            self._catalog.forget()
        return cursor.rowcount if counted and cursor.rowcount >= 0 else None

    def query(self, sql: str | exp.Expr) -> pa.Table:
        from gristmill.engines.postgres.arrow import to_arrow

        text = sql if isinstance(sql, str) else render(sql, self.dialect)
        if not text.strip():
            import pyarrow as pa

            return pa.table({})
        return to_arrow(self._cursor(text))

    def _dicts(self, query: exp.Query) -> psycopg.Cursor[dict[str, Any]]:
        self._check_interrupted()
        cursor = self._con.cursor(row_factory=dict_row)
        try:
            return cursor.execute(render(query, self.dialect))
        except psycopg.Error as err:
            raise engine_error(err) from None

    def row(self, query: exp.Query) -> dict[str, Any] | None:
        return self._dicts(query).fetchone()

    def rows(self, query: exp.Query) -> list[dict[str, Any]]:
        return self._dicts(query).fetchall()

    # -- transactions and interrupts ---------------------------------------------------------------

    def interrupt(self) -> None:
        """Cancel the running statement and fail the rest of this transaction (from any thread).
        A COMMIT already under way finishes first (briefly waited for), so a step has either
        committed before the interrupt returns or never will."""
        locked = self._commit_lock.acquire(timeout=5)
        try:
            self._interrupted = True
        finally:
            if locked:
                self._commit_lock.release()
        # A cancel that fails still leaves the flag, which fails the step at its next statement.
        with suppress(psycopg.Error):
            self._con.cancel_safe(timeout=5)

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def _check_interrupted(self) -> None:
        if self._interrupted:
            raise EngineError("interrupted: the step was stopped before it finished")

    def _begin(self) -> None:
        self._cursor("BEGIN")

    def commit(self) -> None:
        if not self._open:
            return
        self._open = False
        with self._commit_lock:
            if self._interrupted:
                self._end("ROLLBACK")
                raise EngineError("interrupted: the step was stopped before it committed")
            try:
                self._con.execute("COMMIT")
            except psycopg.Error as err:
                self._catalog.forget()
                raise engine_error(err, doing="commit failed, nothing was published") from None

    def rollback(self) -> None:
        if self._open:
            self._rollback()

    def _rollback(self) -> None:
        self._open = False
        self._end("ROLLBACK")
        self._interrupted = False  # the interrupted transaction is gone: reads may follow

    def _end(self, statement: str) -> None:
        self._catalog.forget()  # what was created or dropped inside the transaction is undone
        try:
            self._con.execute(statement)
        except psycopg.Error as err:
            raise engine_error(err) from None

    def write_in_bulk(self, schemas: Iterable[str]) -> None:
        """Nothing: a PostgreSQL table costs the same to commit however it was written."""

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """Statements that must take effect together: inside the open transaction when there is
        one (its failure fails that transaction), else in one of their own."""
        if self._open:
            yield
            return
        with self.transaction():
            yield

    # -- tables ------------------------------------------------------------------------------------

    def _ensure_schema(self, schema: str) -> None:
        physical = self._prefix + schema
        if not self._catalog.has_schema(physical):
            self._cursor(f"CREATE SCHEMA IF NOT EXISTS {_ident(physical)}")
            self._catalog.add_schema(physical)

    def _kind(self, relation: Relation) -> str | None:
        return self._catalog.kind(self._prefix + relation.schema, relation.name)

    def _set_kind(self, relation: Relation, kind: str | None) -> None:
        self._catalog.set_kind(self._prefix + relation.schema, relation.name, kind)

    def _build(self, relation: Relation, kind: Literal["TABLE", "VIEW"], query: exp.Query) -> int:
        """Make the table or view of ``query`` take the place of ``relation`` in the current
        transaction; returns the rows a table got. A name nothing holds yet (a new version's)
        is created as itself: nobody reads it before the commit, so there is nothing to swap.
        Otherwise the relation is built beside the old one and put in its place."""
        self._ensure_schema(relation.schema)
        found = self._kind(relation)
        if found is None:
            rows = self._cursor(self._create_as(self.table(relation), kind, query)).rowcount
            self._set_kind(relation, "r" if kind == "TABLE" else "v")
            return rows
        name, new = self._new(relation)
        # One round trip: the new relation and the views that depend on the old one.
        cursor = self._cursor(f"{self._create_as(new, kind, query)};\n{self._dependents(relation)}")
        rows = cursor.rowcount
        cursor.nextset()
        self._swap(relation, found, name, kind, cursor.fetchall())
        return rows

    def _create_as(self, target: exp.Table, kind: Literal["TABLE", "VIEW"], query: exp.Query) -> str:
        return render(exp.Create(this=target, kind=kind, expression=query), self.dialect)

    def _dependents(self, relation: Relation) -> str:
        """The query for the views over ``relation``, parameters bound: it can share an execute."""
        return psycopg.ClientCursor(self._con).mogrify(_DEPENDENT_VIEWS, {"oid": self._name(relation)})

    def _publish(self, relation: Relation, new: str, kind: Literal["TABLE", "VIEW"]) -> None:
        """Put the table or view ``new`` (made in ``relation``'s schema) in place of
        ``relation``, in the current transaction."""
        found = self._kind(relation)
        schema = _ident(self._prefix + relation.schema)
        if found is None:
            self._cursor(f"ALTER {kind} {schema}.{_ident(new)} RENAME TO {_ident(relation.name)}")
        else:
            self._swap(relation, found, new, kind, self._cursor(self._dependents(relation)).fetchall())
            return
        self._set_kind(relation, "r" if kind == "TABLE" else "v")

    def _swap(
        self, relation: Relation, found: str, new: str, kind: Literal["TABLE", "VIEW"], views: list[Any]
    ) -> None:
        """Drop ``relation`` (a ``found`` relkind) and the ``views`` over it, rename ``new`` to
        it and make the views again over the new one (PostgreSQL binds a view to the table
        itself, not to its name: view models, environments' views): one round trip."""
        schema = _ident(self._prefix + relation.schema)
        statements = [f"DROP VIEW {_ident(s)}.{_ident(n)}" for s, n, _, _ in reversed(views)]
        statements.append(f"DROP {'VIEW' if found == 'v' else 'TABLE'} {self._name(relation)}")
        statements.append(f"ALTER {kind} {schema}.{_ident(new)} RENAME TO {_ident(relation.name)}")
        for view_schema, name, definition, _ in views:
            body = str(definition).rstrip().removesuffix(";")
            statements.append(f"CREATE VIEW {_ident(view_schema)}.{_ident(name)} AS {body}")
        self._cursor(";\n".join(statements))
        self._set_kind(relation, "r" if kind == "TABLE" else "v")

    def _name(self, relation: Relation) -> str:
        return render(self.table(relation), self.dialect)

    def _new(self, relation: Relation) -> tuple[str, exp.Table]:
        """A name for a relation being built next to ``relation``, until it takes its place."""
        # Random, not counted: another process may build beside the same table at the same time.
        name = f"_gristmill_new_{uuid.uuid4().hex[:12]}"
        return name, exp.table_(name, db=self._prefix + relation.schema, quoted=True)

    def create_table_as(self, relation: Relation, query: exp.Query) -> int:
        """Create the table beside the old, then drop the old and rename the new, in one
        transaction: readers see the old table until the commit, and a failure keeps it."""
        with self._atomic():
            rows = self._build(relation, "TABLE", query)
        return max(rows, 0)

    def create_view_as(self, relation: Relation, query: exp.Query) -> None:
        with self._atomic():
            self._build(relation, "VIEW", query)

    def _create(
        self, target: exp.Table, columns: Sequence[tuple[str, str]], *, temporary: bool = False
    ) -> None:
        listed = ", ".join(f"{_ident(name)} {dtype}" for name, dtype in columns)
        self._cursor(
            f"CREATE {'TEMPORARY ' if temporary else ''}TABLE {render(target, self.dialect)} ({listed})"
        )

    def _copy(self, target: exp.Table, data: pa.RecordBatchReader, plan: Any) -> int:
        from gristmill.engines.postgres.arrow import copy_in

        listed = ", ".join(_ident(name) for name, _ in plan.columns)
        self._check_interrupted()
        try:
            return copy_in(self._con.cursor(), f"{render(target, self.dialect)} ({listed})", data, plan)
        except psycopg.Error as err:
            raise engine_error(err) from None

    def _temporary(self, name: str, data: pa.RecordBatchReader) -> exp.Table:
        from gristmill.engines.postgres.arrow import plan

        table = exp.table_(name, db="pg_temp", quoted=True)
        planned = plan(data.schema)
        self._create(table, planned.columns, temporary=True)
        self._copy(table, data, planned)
        return table

    def write_arrow(
        self, relation: Relation, data: pa.RecordBatchReader, mode: Literal["replace", "append"] = "replace"
    ) -> int:
        """Replace: COPY into a new table, then put it in place like :meth:`create_table_as`.
        Append: COPY into a temporary table, then INSERT … SELECT (binary COPY needs the
        columns' exact types; the INSERT casts to the target's)."""
        from gristmill.engines.postgres.arrow import plan

        with self._atomic():
            self._ensure_schema(relation.schema)
            found = self._kind(relation)
            if found is None:  # a new name: no old table to keep for readers until the commit
                planned = plan(data.schema)
                self._create(self.table(relation), planned.columns)
                self._set_kind(relation, "r")
                return self._copy(self.table(relation), data, planned)
            if mode == "replace":
                name, new = self._new(relation)
                planned = plan(data.schema)
                self._create(new, planned.columns)
                rows = self._copy(new, data, planned)
                self._publish(relation, name, "TABLE")
                return rows
            staged = self._temporary(f"_gristmill_append_{next(_names)}", data)
            names = [exp.to_identifier(field.name, quoted=True) for field in data.schema]
            insert = exp.insert(exp.select(*names).from_(staged), self.table(relation), columns=names)
            rows = self._cursor(render(insert, self.dialect)).rowcount
            self._cursor(f"DROP TABLE {render(staged, self.dialect)}")
            return rows

    def stage(self, data: pa.RecordBatchReader | exp.Query) -> exp.Table:
        """A temporary table of this session, gone with it (or with a rolled-back transaction)."""
        name = f"_gristmill_stage_{next(_names)}"
        if not isinstance(data, exp.Query):
            return self._temporary(name, data)
        table = exp.table_(name, db="pg_temp", quoted=True)
        temporary = exp.Properties(expressions=[exp.TemporaryProperty()])
        create = exp.Create(
            this=exp.table_(name, quoted=True), kind="TABLE", properties=temporary, expression=data
        )
        self._cursor(render(create, self.dialect))
        return table

    def register(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` as the temporary table ``name`` (a copy: PostgreSQL cannot read Arrow in place)."""
        self.unregister(name)
        return self._temporary(name, data.to_reader())

    def unregister(self, name: str) -> None:
        self._cursor(f"DROP TABLE IF EXISTS pg_temp.{_ident(name)}")

    def read_arrow(self, table: exp.Table) -> pa.RecordBatchReader:
        return self.query(exp.select("*").from_(table)).to_reader()

    def exists(self, relation: Relation) -> bool:
        return self._kind(relation) is not None

    def drop(self, relation: Relation) -> None:
        found = self._kind(relation)
        if found is not None:
            self._cursor(f"DROP {'VIEW' if found == 'v' else 'TABLE'} {self._name(relation)}")
            self._set_kind(relation, None)

    def drop_view(self, relation: Relation) -> None:
        self._cursor(f"DROP VIEW IF EXISTS {self._name(relation)}")
        if self._kind(relation) == "v":
            self._set_kind(relation, None)

    def describe(self, table: exp.Table | exp.Subquery) -> list[Column]:
        """(column, type) pairs as ``format_type`` prints them: the result's type oids and
        modifiers of an empty read, named by the server in one more round trip for the pairs
        this engine has not named yet (a type's oid is never reused while it exists)."""
        cursor = self._cursor(render(exp.select("*").from_(table).limit(0), self.dialect))
        described = cursor.description or []
        result = cursor.pgresult
        keys = [(column.type_code, result.fmod(i) if result else -1) for i, column in enumerate(described)]
        missing = sorted(set(keys) - self._type_names.keys())
        if missing:
            names = self._cursor(_FORMAT_TYPES, [[k[0] for k in missing], [k[1] for k in missing]]).fetchall()
            self._type_names.update(zip(missing, (str(name[0]) for name in names), strict=True))
        return [
            (column.name, types.parse(self._type_names[key], self.dialect))
            for column, key in zip(described, keys, strict=True)
        ]

    def ensure_table(self, relation: Relation, columns: Sequence[Column]) -> None:
        found = self._kind(relation)
        if found in _TABLES:
            return
        self._ensure_schema(relation.schema)
        definition = exp.Schema(
            this=self.table(relation),
            # copied: the types may be shared (sql/types.py caches them)
            expressions=[exp.ColumnDef(this=exp.to_identifier(name), kind=t.copy()) for name, t in columns],
        )
        self._cursor(render(exp.Create(this=definition, kind="TABLE", exists=True), self.dialect))
        if found is None:
            self._set_kind(relation, "r")

    def columns(self) -> dict[Relation, list[Column]]:
        pattern = self._prefix.replace("_", "\\_") + "%"
        result: dict[Relation, list[Column]] = {}
        for schema, name, column, dtype in self._cursor(_COLUMNS, [pattern]).fetchall():
            relation = Relation(schema[len(self._prefix) :], name)
            result.setdefault(relation, []).append((column, types.parse(dtype, self.dialect)))
        return result

    # -- maintenance -------------------------------------------------------------------------------

    def _vacuum(self, names: Iterable[str]) -> None:
        # VACUUM cannot run inside a transaction block; ANALYZE (the statistics) can.
        verb = "ANALYZE" if self._open else "VACUUM (ANALYZE)"
        for name in names:
            self._cursor(f"{verb} {name}")

    def reclaim(self, older_than_days: int) -> None:
        """VACUUM ANALYZE every managed table: the space of rows deleted or replaced (merges,
        appends over a unique key) is reusable, and the planner's statistics are fresh.
        PostgreSQL keeps no snapshots, so ``older_than_days`` has nothing to act on."""
        tables = sorted({relation for relation, _ in self.columns().items() if self._is_table(relation)})
        self._vacuum(self._name(relation) for relation in tables)

    def _is_table(self, relation: Relation) -> bool:
        return self._kind(relation) in _TABLES

    def compact(self, relation: Relation) -> None:
        """VACUUM ANALYZE the table (a stream's many small writes leave no small files here,
        only dead rows of its merges); nothing when it is not a table."""
        if self._is_table(relation):
            self._vacuum([self._name(relation)])

    def close(self) -> None:
        # A transaction grouped steps left open is rolled back (closing would too); a server gone
        # meanwhile must not turn the close into a second error over the first.
        with suppress(EngineError):
            if self._open and not self._con.closed:
                self._rollback()
        self._con.close()
