"""A DuckLake attached read-only at one snapshot, read by many threads at once (``gristmill serve``).

Every request of the server reads on a cursor of its own (DuckDB connections are not shared
between threads; a cursor shares the attached catalog and its cache), and streams its result as
record batches, so memory stays bounded by a batch whatever the result's size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from gristmill.config.secrets import redact
from gristmill.engines.base import Relation
from gristmill.engines.duckdb.engine import DuckDBEngine
from gristmill.errors import EngineError
from gristmill.sql.render import render

if TYPE_CHECKING:
    import pyarrow as pa


class SnapshotEngine(DuckDBEngine):
    """``StreamedReads`` (engines/base.py) over a lake pinned at a snapshot."""

    def cursor(self) -> SnapshotEngine:
        """Another connection to the same database, for a reader on another thread."""
        return SnapshotEngine(self._con.cursor(), catalog=self._catalog, lake=self._lake)

    def copy_locally(self, relation: Relation, name: str) -> exp.Table:
        """``LocalCopies``: the table copied into the connection's own in-memory database (shared
        by every cursor of the snapshot), in the lake's row order, so its zone maps still skip
        what a keyset page does not need."""
        copy = exp.table_(name, db="main", catalog="memory", quoted=True)
        select = exp.select("*").from_(self.table(relation))
        self.execute(exp.Create(this=copy, kind="TABLE", expression=select, exists=True))
        return copy

    def stream(self, query: exp.Query, batch_rows: int = 65_536) -> pa.RecordBatchReader:
        """The query's result as record batches, produced as they are read."""
        self._check_interrupted()
        try:
            return self._con.execute(render(query, self.dialect)).to_arrow_reader(batch_rows)
        except duckdb.Error as err:
            raise EngineError(redact(str(err).strip())) from None
