"""DuckDB relations over Arrow data, for Python models that ask for a DuckDB relation when the
project's engine has no native relations of its own (``NativeRelations`` in engines/base.py):
the rows come over as Arrow into a private in-memory DuckDB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill._util.duckdb_extensions import connect

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


class ArrowRelations:
    """A private in-memory DuckDB, opened on first use, closed with :meth:`close`."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def relation(self, data: pa.Table) -> duckdb.DuckDBPyRelation:
        if self._con is None:
            self._con = connect()
        return self._con.from_arrow(data)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
