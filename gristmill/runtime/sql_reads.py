"""Free read-only SQL against what an environment serves (``POST /api/v1/sql``, the PostgreSQL
wire door): every statement passes the guard (``gristmill.sql.guard``), gets a row cap and a
statement timeout, and reads the environment's tables the way ``gristmill query`` does."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Engine, Interruptible
from gristmill.errors import EngineError, SqlRefused, StatementTimeout
from gristmill.runtime import planning
from gristmill.runtime.published import in_environment
from gristmill.runtime.session import Session
from gristmill.sql.guard import capped, guard_select
from gristmill.sql.render import render

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class SqlAnswer:
    table: pa.Table
    """At most the row cap's rows."""
    truncated: bool
    """True when the cap cut the result (there were more rows)."""


def served_names(session: Session) -> list[str]:
    """``schema.name`` of every relation the project serves: its models and its sources' tables."""
    project = session.project
    sources = [t.asset for s in project.sources.values() for t in s.tables.values()]
    return sorted(set(project.models) | set(sources))


def guarded_query(
    session: Session,
    sql: str,
    env: str,
    *,
    row_cap: int,
    timeout: float,
    read: str = "duckdb",
    params: Sequence[object] = (),
) -> SqlAnswer:
    """Run ``sql`` if the guard admits it, capped at ``row_cap`` rows and ``timeout`` seconds."""
    planning.check_env(env)
    query = capped(guard_select(sql, served_names(session), read=read, params=params), row_cap)
    table = _run(session, query, env, timeout)
    if table.num_rows > row_cap:
        return SqlAnswer(table.slice(0, row_cap), True)
    return SqlAnswer(table, False)


def served_schemas(session: Session, env: str) -> dict[tuple[str, str], pa.Schema]:
    """The Arrow schema of every served relation that exists in ``env`` (for the catalog shadow),
    read on one engine."""
    schemas: dict[tuple[str, str], pa.Schema] = {}
    with session.engine(read_only=True) as engine:
        if engine is None:
            return schemas
        for name in served_names(session):
            schema, _, table = name.partition(".")
            probe = exp.select(exp.Star()).from_(exp.table_(table, db=schema)).limit(0)
            try:
                schemas[(schema, table)] = _query(session, engine, probe, env, 30.0).schema
            except SqlRefused:
                continue  # not built yet in this environment: not listed
    return schemas


def _run(session: Session, query: exp.Query, env: str, timeout: float) -> pa.Table:
    with session.engine(read_only=True) as engine:
        if engine is None:
            raise SqlRefused("this project has no data yet", hint="run `gristmill run` first")
        return _query(session, engine, query, env, timeout)


def _query(session: Session, engine: Engine, query: exp.Query, env: str, timeout: float) -> pa.Table:
    project = session.project
    sources = {t.asset.split(".", 1)[0] for s in project.sources.values() for t in s.tables.values()}
    models = {m.split(".", 1)[0] for m in project.models}
    text = in_environment(render(query, engine.dialect), models, env, engine.dialect, engine, sources)
    stoppable = engine if isinstance(engine, Interruptible) else None
    timer = threading.Timer(timeout, stoppable.interrupt) if stoppable is not None else None
    if timer is not None:
        timer.start()
    try:
        return engine.query(text)
    except EngineError as error:
        if stoppable is not None and stoppable.interrupted:
            raise StatementTimeout(
                f"the statement ran longer than the {timeout:g} s statement timeout",
                hint="filter or aggregate more, or ask for fewer rows",
            ) from None
        raise SqlRefused(str(error), hint="check the SQL against the served tables' columns") from None
    finally:
        if timer is not None:
            timer.cancel()
