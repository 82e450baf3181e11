"""The spark engine's ledger: a small database with real transactions that records which storage
makes each relation, and where the platform's own ``_gristmill`` tables live.

Spark's Hive tables have no multi-statement transactions, so the ledger's COMMIT is the spark
engine's commit point: a relation is what its ``spark_relations`` row says, and the metastore's
views are switched to match afterwards, from a journal written in the same ledger transaction (so a
crash between the two is rolled forward on the next open).

The ledger is an engine of another kind: a DuckDB database file in the target's folder by default,
or a PostgreSQL database (``ledger = "postgresql://…"``, or the metastore's own database)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlglot import exp

from gristmill.engines.base import Engine, Relation, Transactions
from gristmill.sql import types

LEDGER_SCHEMA = "_gristmill"
"""The platform's bookkeeping schema: every table under it lives in the ledger, not in Spark."""
RELATIONS = Relation(LEDGER_SCHEMA, "spark_relations")
JOURNAL = Relation(LEDGER_SCHEMA, "spark_journal")
SUPERSEDED = Relation(LEDGER_SCHEMA, "spark_superseded")
OWN_TABLES = frozenset({RELATIONS, JOURNAL, SUPERSEDED})

_RELATION_COLUMNS = [
    ("schema_name", "VARCHAR"),
    ("name", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("storage", "VARCHAR"),
    ("view_sql", "VARCHAR"),
    ("columns", "VARCHAR"),
    ("committed_at", "VARCHAR"),
]
_JOURNAL_COLUMNS = [("seq", "BIGINT"), ("statement", "VARCHAR"), ("superseded", "VARCHAR")]
_SUPERSEDED_COLUMNS = [("db", "VARCHAR"), ("storage", "VARCHAR"), ("superseded_at", "VARCHAR")]


@dataclass(frozen=True)
class Entry:
    """What makes one relation: a table's storage tables (segments read as UNION ALL, in its
    database) or a view's query, and its columns as Spark type names."""

    kind: Literal["table", "view"]
    db: str
    """The Spark database the relation's view and storage are in."""
    storage: tuple[str, ...] = ()
    view_sql: str | None = None
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Step:
    """One statement of the journal: run in Spark after the ledger commit, in order."""

    seq: int
    statement: str
    superseded: tuple[tuple[str, str], ...]
    """(db, storage) the statement leaves unreferenced, recorded once it ran."""


class Ledger:
    """The ledger's tables over ``engine`` (an engine with transactions)."""

    def __init__(self, engine: Engine) -> None:
        assert isinstance(engine, Transactions)
        self.engine = engine
        self.transactions: Transactions = engine
        for relation, columns in (
            (RELATIONS, _RELATION_COLUMNS),
            (JOURNAL, _JOURNAL_COLUMNS),
            (SUPERSEDED, _SUPERSEDED_COLUMNS),
        ):
            engine.ensure_table(relation, types.columns(columns))

    def _select(self, relation: Relation, columns: list[tuple[str, str]]) -> exp.Select:
        return exp.select(*(exp.column(name, quoted=True) for name, _ in columns)).from_(
            self.engine.table(relation)
        )

    def entries(self) -> dict[Relation, Entry]:
        """Every relation as last committed."""
        found: dict[Relation, Entry] = {}
        for row in self.engine.rows(self._select(RELATIONS, _RELATION_COLUMNS)):
            stored = json.loads(row["storage"] or "{}")
            found[Relation(row["schema_name"], row["name"])] = Entry(
                kind=row["kind"],
                db=stored.get("db", ""),
                storage=tuple(stored.get("tables", ())),
                view_sql=row["view_sql"],
                columns=tuple((name, dtype) for name, dtype in json.loads(row["columns"] or "[]")),
            )
        return found

    def journal(self) -> list[Step]:
        query = self._select(JOURNAL, _JOURNAL_COLUMNS).order_by(exp.column("seq", quoted=True))
        return [
            Step(
                int(row["seq"]),
                row["statement"],
                tuple((db, name) for db, name in json.loads(row["superseded"] or "[]")),
            )
            for row in self.engine.rows(query)
        ]

    def record(self, changes: Mapping[Relation, Entry | None], steps: Iterable[Step]) -> None:
        """Write the relations' new rows and the journal, in the ledger's open transaction."""
        now = _now()
        table = self.engine.table(RELATIONS)
        for relation, entry in changes.items():
            self.engine.execute(exp.delete(table.copy(), where=_is(relation)))
            if entry is None:
                continue
            storage = json.dumps({"db": entry.db, "tables": list(entry.storage)})
            values = [
                relation.schema,
                relation.name,
                entry.kind,
                storage,
                entry.view_sql,
                json.dumps([list(c) for c in entry.columns]),
                now,
            ]
            self._insert(RELATIONS, _RELATION_COLUMNS, [values])
        rows = [[step.seq, step.statement, json.dumps([list(s) for s in step.superseded])] for step in steps]
        if rows:
            self._insert(JOURNAL, _JOURNAL_COLUMNS, rows)

    def finish(self, steps: Iterable[Step]) -> None:
        """The journal's statements ran: its storage is superseded, and it is emptied (one
        ledger transaction)."""
        now = _now()
        superseded = [[db, name, now] for step in steps for db, name in step.superseded]
        with self.transactions.transaction():
            if superseded:
                self._insert(SUPERSEDED, _SUPERSEDED_COLUMNS, superseded)
            self.engine.execute(exp.delete(self.engine.table(JOURNAL)))

    def superseded(self, older_than_days: int) -> list[tuple[str, str]]:
        """(db, storage) superseded longer ago than that (ISO times compare as text)."""
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).isoformat(timespec="seconds")
        query = self._select(SUPERSEDED, _SUPERSEDED_COLUMNS).where(
            exp.LTE(this=exp.column("superseded_at", quoted=True), expression=exp.Literal.string(cutoff))
        )
        return [(row["db"], row["storage"]) for row in self.engine.rows(query)]

    def known_superseded(self) -> set[tuple[str, str]]:
        return {
            (row["db"], row["storage"])
            for row in self.engine.rows(self._select(SUPERSEDED, _SUPERSEDED_COLUMNS))
        }

    def forget_superseded(self, dropped: Iterable[tuple[str, str]]) -> None:
        table = self.engine.table(SUPERSEDED)
        with self.transactions.transaction():
            for db, name in dropped:
                where = exp.and_(
                    exp.column("db", quoted=True).eq(exp.Literal.string(db)),
                    exp.column("storage", quoted=True).eq(exp.Literal.string(name)),
                )
                self.engine.execute(exp.delete(table.copy(), where=where))

    def _insert(
        self, relation: Relation, columns: list[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> None:
        values = exp.values([exp.tuple_(*(_literal(v) for v in row)) for row in rows])
        names = [exp.to_identifier(name, quoted=True) for name, _ in columns]
        self.engine.execute(exp.insert(values, self.engine.table(relation), columns=names))

    def close(self) -> None:
        self.engine.close()


def _is(relation: Relation) -> exp.Expr:
    return exp.and_(
        exp.column("schema_name", quoted=True).eq(exp.Literal.string(relation.schema)),
        exp.column("name", quoted=True).eq(exp.Literal.string(relation.name)),
    )


def _literal(value: object) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def open_ledger(url: str | None, folder: Path, *, schema_prefix: str, read_only: bool) -> Ledger:
    """The ledger at ``url`` (PostgreSQL, its tables under ``schema_prefix``), or in the DuckDB
    file ``folder/ledger.duckdb``."""
    if url:
        from gristmill.engines.postgres.connection import connect, server
        from gristmill.engines.postgres.engine import PostgresEngine

        where = server(url)
        return Ledger(PostgresEngine(connect(where), schema_prefix=schema_prefix, where=where.where))
    return Ledger(_duckdb_ledger(folder / "ledger.duckdb", read_only=read_only))


def _duckdb_ledger(path: Path, *, read_only: bool) -> Engine:
    from gristmill._util.duckdb_extensions import connect
    from gristmill.config.secrets import redact
    from gristmill.engines.duckdb.engine import DuckDBEngine
    from gristmill.errors import EngineError

    path.parent.mkdir(parents=True, exist_ok=True)
    # Read-only or not, opened for writing: opening rolls a crash's journal forward.
    _ = read_only
    try:
        con = connect(path.as_posix())  # the file's catalog is named after it: "ledger"
    except Exception as err:  # duckdb's errors (the file locked by another process, damaged)
        busy = "lock" in str(err).lower()
        raise EngineError(
            f"cannot open the spark engine's ledger {path}: {redact(str(err).strip())}",
            hint="another process uses this target (an embedded Derby metastore and a DuckDB ledger"
            ' serve one process at a time; metastore = "postgresql://…" lets several share it)'
            if busy
            else None,
        ) from None
    return DuckDBEngine(con, catalog=path.stem, lake=False)
