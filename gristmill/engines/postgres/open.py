"""Open the project's PostgreSQL engine from ``[engine]`` in gristmill.toml."""

from __future__ import annotations

from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.engines.postgres.connection import connect, engine_error, server
from gristmill.engines.postgres.engine import PostgresEngine


def open_postgres(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> PostgresEngine:
    """The engine on the server ``[engine] url`` names. ``read_only`` is not enforced by the
    server: a read-only transaction could not make the temporary tables reads stage into."""
    import psycopg

    engine = settings.engine
    if not engine.url:
        raise AssertionError("unreachable: settings validation requires url for the postgres engine")
    where = server(engine.url, base=root)
    con = connect(where)
    if engine.threads:
        # The workers one query may use beside its own process (threads - 1 helpers).
        try:
            con.execute(f"SET max_parallel_workers_per_gather = {int(engine.threads) - 1}")
        except psycopg.Error as err:
            con.close()
            raise engine_error(err, doing=f"cannot configure the session on {where.where}") from None
    return PostgresEngine(con, schema_prefix=engine.schema_prefix, where=where.where)
