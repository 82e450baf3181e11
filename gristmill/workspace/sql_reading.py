"""The reader behind read-only SQL (``POST /api/v1/sql``) and the PostgreSQL wire door: built
here, under the workspace, so the server only holds what it is given (``SqlReading`` in
``gristmill/server/sql_api.py``).

Every statement runs on the tables reader of ``gristmill serve`` (``workspace/reading.py``): it
pins the newest lake snapshot, on an engine the reader keeps attached, so a statement costs no
engine start and never sees half a run. It passes the guard (the relations the calling key's
schemas allow, and the ``metrics`` relations rewritten into their compiled queries), gets a row
cap and a statement timeout (the pin's cursor is interrupted). Catalog probes (``pg_catalog``,
``information_schema``) are answered by a catalog shadow holding the empty copies of what the
key may read and nothing else, one per (snapshot, scope), so newly published tables appear with
the snapshot that publishes them."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from fastapi import APIRouter

    from gristmill.engines.duckdb.shadow import CatalogShadow
    from gristmill.project import Project
    from gristmill.runtime.sql_reads import SqlAnswer
    from gristmill.server.pgwire import PgDoor
    from gristmill.server.reading import PinnedRead, ServedRelation, TableReader
    from gristmill.sql.metric_sql import MetricRelation
    from gristmill.workspace.keys import ApiKeys

log = logging.getLogger(__name__)


class Workspace(Protocol):
    """What the SQL doors need of a workspace (``workspace.facade.Workspace`` is one; named
    structurally so this module does not import the facade that imports it)."""

    project: Project

    def reader(self, env: str = "prod") -> TableReader: ...


DEFAULT_ROW_CAP = 10_000
DEFAULT_TIMEOUT = 30.0
_SHADOWS_KEPT = 8


class SqlReader:
    """Thread-safe; lives as long as the server. ``tables``: the serve command's tables reader
    (shared, closed by its owner); without it the reader makes and closes its own."""

    def __init__(
        self,
        workspace: Workspace,
        env: str = "prod",
        *,
        tables: TableReader | None = None,
        row_cap: int = DEFAULT_ROW_CAP,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        from gristmill.sql.metric_sql import metric_relations
        from gristmill.workspace.metrics import metric_infos

        self._project = workspace.project
        self._owned = tables is None
        self._tables = tables if tables is not None else workspace.reader(env)
        self.env = env
        self.row_cap = row_cap
        self.timeout = timeout
        self._metrics = metric_relations(
            (i.name, i.dimensions, i.grains) for i in metric_infos(self._project)
        )
        self._shadows: OrderedDict[tuple[str, frozenset[str]], CatalogShadow] = OrderedDict()
        self._lock = threading.Lock()

    def select(
        self,
        sql: str,
        *,
        dialect: str = "duckdb",
        params: Sequence[object] = (),
        schemas: frozenset[str] = frozenset(),
    ) -> SqlAnswer:
        """The guarded, capped, time-limited result of one SELECT; ``schemas``: the calling key's
        scope (empty: every schema)."""
        from gristmill.runtime.sql_reads import SqlAnswer
        from gristmill.sql.guard import capped, guard_select
        from gristmill.sql.metric_sql import rewrite_metrics

        with self._tables.pin() as pinned:
            served = [name for name in pinned.relations() if _allows(schemas, name.split(".", 1)[0])]
            metrics = self._metrics if _allows(schemas, "metrics") else {}
            query = guard_select(
                sql,
                served,
                read=dialect,
                params=params,
                rewrite=lambda tree: rewrite_metrics(tree, self._project.metrics, metrics),
            )
            table = self._run(pinned, capped(query, self.row_cap))
        if table.num_rows > self.row_cap:
            return SqlAnswer(table.slice(0, self.row_cap), True)
        return SqlAnswer(table, False)

    def _run(self, pinned: PinnedRead, query: object) -> pa.Table:
        from gristmill.errors import GristmillError, SqlRefused, StatementTimeout

        interrupt = getattr(pinned, "interrupt", None)  # the lake reader's pins have it
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            if interrupt is not None:
                interrupt()

        timer = threading.Timer(self.timeout, stop)
        timer.start()
        try:
            return pinned.read(query).read_all()  # type: ignore[arg-type]
        except Exception as error:
            if stopped.is_set():
                raise StatementTimeout(
                    f"the statement ran longer than the {self.timeout:g} s statement timeout",
                    hint="filter or aggregate more, or ask for fewer rows",
                ) from None
            if isinstance(error, GristmillError):
                # The engine's first line says what went wrong; the rest quotes the statement as
                # rewritten onto physical tables, which are not the caller's names.
                said = error.message.strip().splitlines()[0] if error.message.strip() else error.message
                raise SqlRefused(said, hint=error.hint) from None
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SqlRefused(first, hint="check the SQL against the served tables' columns") from None
        finally:
            timer.cancel()

    def catalog(
        self, sql: str, *, params: Sequence[object] = (), schemas: frozenset[str] = frozenset()
    ) -> pa.Table | None:
        """A catalog probe answered over what ``schemas`` allows (None when ``sql`` is not one)."""
        from gristmill.engines.duckdb.shadow import OVERRIDES
        from gristmill.sql.guard import catalog_probe

        probe = catalog_probe(sql, read="postgres", params=params, overrides=OVERRIDES)
        return None if probe is None else self._catalog_shadow(schemas).query(probe)

    def _catalog_shadow(self, schemas: frozenset[str]) -> CatalogShadow:
        with self._tables.pin() as pinned:
            key = (pinned.snapshot, schemas)
            with self._lock:
                if key in self._shadows:
                    self._shadows.move_to_end(key)
                    return self._shadows[key]
            relations = [r for r in pinned.relations().values() if _allows(schemas, r.schema)]
            metrics = self._metric_schemas(pinned, schemas) if _allows(schemas, "metrics") else {}
            shadow = _shadow_of(relations, metrics)
        with self._lock:
            self._shadows[key] = shadow
            while len(self._shadows) > _SHADOWS_KEPT:
                # not closed here: a connection may still be reading it; it closes with its last reference
                self._shadows.popitem(last=False)
            return shadow

    def _metric_schemas(
        self, pinned: PinnedRead, schemas: frozenset[str]
    ) -> dict[tuple[str, str], pa.Schema]:
        """Each metric relation's Arrow schema, from its compiled query read with no rows; only
        the metrics whose tables ``schemas`` allows (the guard refuses the others)."""
        from gristmill.errors import GristmillError

        found: dict[tuple[str, str], pa.Schema] = {}
        for relation in self._metrics.values():
            try:
                found[("metrics", relation.name)] = _metric_schema(self._project, pinned, relation, schemas)
            except GristmillError as error:  # a metric over a table not built yet: not listed
                log.debug("metrics.%s is not listed: %s", relation.name, error.message)
        return found

    def close(self) -> None:
        with self._lock:
            for shadow in self._shadows.values():
                shadow.close()
            self._shadows.clear()
        if self._owned:
            self._tables.close()


def _shadow_of(relations: list[ServedRelation], metrics: dict[tuple[str, str], pa.Schema]) -> CatalogShadow:
    """The shadow of ``relations`` (their columns, keys and descriptions) and the metrics."""
    from gristmill.engines.duckdb.shadow import CatalogShadow

    tables = {(r.schema, r.name): [(c.name, c.type) for c in r.columns] for r in relations}
    keys = {(r.schema, r.name): r.key for r in relations if r.key}
    comments: dict[tuple[str, str, str | None], str] = {
        (r.schema, r.name, None): r.description for r in relations if r.description
    }
    for r in relations:
        comments |= {(r.schema, r.name, c.name): c.description for c in r.columns if c.description}
    return CatalogShadow(tables, metrics, keys, comments)


def _allows(schemas: frozenset[str], schema: str) -> bool:
    return not schemas or schema in schemas


def _metric_schema(
    project: Project, pinned: PinnedRead, relation: MetricRelation, schemas: frozenset[str]
) -> pa.Schema:
    import pyarrow as pa
    from sqlglot import exp

    from gristmill.errors import SqlRefused
    from gristmill.sql.metrics import MetricQuery, compile_metric

    grain = "day" if relation.grains else None
    compiled = compile_metric(project.metrics, MetricQuery(relation.name, relation.dimensions, grain))  # type: ignore[arg-type]
    if not all(_allows(schemas, table.db) for table in compiled.find_all(exp.Table) if table.db):
        raise SqlRefused("it reads tables out of the key's schemas")
    empty = pinned.read(exp.select(exp.Star()).from_(compiled.subquery("m")).limit(0)).read_all().schema
    fields = [empty.field(d) for d in relation.dimensions]
    fields += [pa.field(column, empty.field("metric_time").type) for column in relation.time_columns]
    return pa.schema([*fields, empty.field(relation.name)])


class SqlDoors:
    """The SQL ways into a served environment, as ``gristmill serve`` composes them: the
    ``POST /api/v1/sql`` router (when allowed) and the PostgreSQL wire door (when a port is given).
    ``stop()`` closes the door and the reader."""

    def __init__(self, reader: SqlReader, routers: list[APIRouter], door: PgDoor | None) -> None:
        self.reader = reader
        self.routers = routers
        self.door = door

    def stop(self) -> None:
        if self.door is not None:
            self.door.stop()
        self.reader.close()


def open_sql_doors(
    workspace: Workspace,
    env: str = "prod",
    *,
    allow_sql: bool | None = None,
    pg_port: int | None = None,
    host: str | None = None,
    tables: TableReader | None = None,
    keys: ApiKeys | None = None,
    tls: tuple[str, str] | None = None,
) -> SqlDoors:
    """Build the doors ``[server]`` (or the flags given here, which win) asks for; the wire door
    is listening when this returns. ``keys``: the API keys the door asks for (None: no keys,
    which ``check_door`` allows on loopback only); ``tls``: (certificate, key) files for it."""
    from gristmill.server.pgwire import start_pg_door
    from gristmill.server.sql_api import router

    settings = workspace.project.settings.server
    reader = SqlReader(
        workspace, env, tables=tables, row_cap=settings.sql_row_cap, timeout=settings.sql_timeout
    )
    allowed = settings.allow_sql if allow_sql is None else allow_sql
    port = settings.pg_port if pg_port is None else pg_port
    door = None
    if port is not None:
        door = start_pg_door(reader, host or settings.host, port, keys=keys, tls=tls)
    return SqlDoors(reader, [router(reader)] if allowed else [], door)
