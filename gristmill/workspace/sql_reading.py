"""The reader behind read-only SQL (``POST /api/v1/sql``) and the PostgreSQL wire door: built
here, under the workspace, so the server only holds what it is given (``SqlReading`` in
``gristmill/server/sql_api.py``).

Data statements pass the guard and run on the environment's tables with a row cap and a
statement timeout; catalog probes (``pg_catalog``, ``information_schema``) are answered by a
catalog shadow that holds the served relations' empty copies and nothing else, rebuilt when it
is older than ``catalog_ttl`` seconds so newly published tables appear without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from fastapi import APIRouter

    from gristmill.engines.duckdb.shadow import CatalogShadow
    from gristmill.project import Project
    from gristmill.runtime.session import Session
    from gristmill.runtime.sql_reads import SqlAnswer
    from gristmill.server.pgwire import PgDoor


class Workspace(Protocol):
    """What the SQL doors need of a workspace (``workspace.facade.Workspace`` is one; named
    structurally so this module does not import the facade that imports it)."""

    project: Project
    _session: Session


DEFAULT_ROW_CAP = 10_000
DEFAULT_TIMEOUT = 30.0


class SqlReader:
    """Thread-safe; lives as long as the server."""

    def __init__(
        self,
        workspace: Workspace,
        env: str = "prod",
        *,
        row_cap: int = DEFAULT_ROW_CAP,
        timeout: float = DEFAULT_TIMEOUT,
        catalog_ttl: float = 30.0,
    ) -> None:
        self._session = workspace._session  # the workspace's own session: same lake, same project
        self.env = env
        self.row_cap = row_cap
        self.timeout = timeout
        self._catalog_ttl = catalog_ttl
        self._shadow: tuple[float, CatalogShadow] | None = None
        self._lock = threading.Lock()

    def select(self, sql: str, *, dialect: str = "duckdb", params: Sequence[object] = ()) -> SqlAnswer:
        from gristmill.runtime.sql_reads import guarded_query

        return guarded_query(
            self._session,
            sql,
            self.env,
            row_cap=self.row_cap,
            timeout=self.timeout,
            read=dialect,
            params=params,
        )

    def catalog(self, sql: str, *, params: Sequence[object] = ()) -> pa.Table | None:
        from gristmill.engines.duckdb.shadow import OVERRIDES
        from gristmill.sql.guard import catalog_probe

        probe = catalog_probe(sql, read="postgres", params=params, overrides=OVERRIDES)
        return None if probe is None else self._catalog_shadow().query(probe)

    def _catalog_shadow(self) -> CatalogShadow:
        from gristmill.engines.duckdb.shadow import CatalogShadow
        from gristmill.runtime.sql_reads import served_schemas

        with self._lock:
            now = time.monotonic()
            if self._shadow is None or now - self._shadow[0] > self._catalog_ttl:
                # the old one is not closed here: another connection may be reading it; it closes
                # when the last reference goes
                self._shadow = (now, CatalogShadow(served_schemas(self._session, self.env)))
            return self._shadow[1]

    def close(self) -> None:
        with self._lock:
            if self._shadow is not None:
                self._shadow[1].close()
                self._shadow = None


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
) -> SqlDoors:
    """Build the doors ``[server]`` (or the flags given here, which win) asks for; the wire door
    is listening when this returns."""
    from gristmill.server.pgwire import start_pg_door
    from gristmill.server.sql_api import router

    settings = workspace.project.settings.server
    reader = SqlReader(workspace, env, row_cap=settings.sql_row_cap, timeout=settings.sql_timeout)
    allowed = settings.allow_sql if allow_sql is None else allow_sql
    port = settings.pg_port if pg_port is None else pg_port
    door = start_pg_door(reader, host or settings.host, port) if port is not None else None
    return SqlDoors(reader, [router(reader)] if allowed else [], door)
