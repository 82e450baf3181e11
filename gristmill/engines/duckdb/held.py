"""Hold a DuckDB database file still while it is copied: attached read-only, it keeps DuckDB's
file lock, so no run can write to it (nor to its WAL) until the copy is done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from gristmill._util.duckdb_extensions import connect
from gristmill.errors import EngineError


@contextmanager
def database_held(path: Path) -> Iterator[None]:
    """While inside, ``path`` and its ``.wal`` are a consistent pair no other process changes."""
    con = connect(extensions=())
    try:
        literal = path.as_posix().replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS held (READ_ONLY)")
    except duckdb.Error as err:
        con.close()
        raise EngineError(
            f"cannot back up {path.name}: a run in another process holds it ({err})",
            hint='wait for the run to finish; storage.format = "ducklake" is backed up while runs continue',
        ) from None
    try:
        yield
    finally:
        con.close()
