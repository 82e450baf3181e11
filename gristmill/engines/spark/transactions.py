"""The spark engine's transactions: relations' pending storage over a transactional ledger.

Inside a transaction every change to a relation is new storage, kept pending here; every
statement the engine runs is rewritten to read the pending storage of the relations it names (the
transaction sees its own writes), while other readers still see the committed views. The commit
writes the relations' new rows to the ledger with a journal of the views to switch, in one ledger
transaction (the commit point); the views are switched after it, and a journal a crash left in
between is rolled forward on open. ``engine.py`` builds the engine's operations on this."""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar

import sqlglot
from sqlglot import exp

from gristmill.config.secrets import redact
from gristmill.engines.base import Column, Relation
from gristmill.engines.scope import TransactionScope
from gristmill.engines.spark import rewrite
from gristmill.engines.spark.ledger import LEDGER_SCHEMA, Entry, Ledger, Step
from gristmill.engines.spark.storage import data_type, ident, qualified, spark_type_text, spelled
from gristmill.errors import EngineError, GristmillError
from gristmill.sql.render import render

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_log = logging.getLogger(__name__)
STAGE_SCHEMA = "_gristmill_stage"
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\.?\s*$")

CRASH_POINTS = ("before_commit", "after_ledger_commit")
"""Where a commit may be stopped by a crash, for the tests that kill a process there."""


def _no_fault(point: str) -> None:
    """Production's hook: nothing."""


fault_hook: Callable[[str], None] = _no_fault
"""Called at each of ``CRASH_POINTS`` (tests/support/crashing.py kills the process there)."""


def engine_error(err: BaseException, *, doing: str | None = None) -> EngineError:
    """Spark's error as Gristmill's: its first line (the error class and message), without the
    JVM's stack or the SQLSTATE."""
    text = str(err).strip() or type(err).__name__
    first = _SQLSTATE.sub("", text.splitlines()[0])
    message = redact(first.strip())
    return EngineError(f"{doing}: {message}" if doing else message)


class SparkTransactions(TransactionScope):
    """Relations' committed and pending state, statements rewritten to read the pending one,
    and the ledger's transactions (``SparkEngine`` adds the engine's operations)."""

    dialect: ClassVar[str] = "spark"

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
        return self._db(STAGE_SCHEMA)

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

    def _begin(self) -> None:
        with self._ledger.transactions.transaction(group=True):
            pass  # the ledger's transaction, left open until commit
        with suppress(Exception):
            self._spark.addTag(self._tag)

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
