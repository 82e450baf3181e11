"""The catalog shadow: an in-memory DuckDB holding an empty copy of every served relation, and
nothing else, that answers the catalog queries BI tools send on connect (``pg_catalog``,
``information_schema``, ``version()``) through DuckDB's PostgreSQL catalog emulation.

It lists exactly the served schemas, tables and columns with their types, and no data: a
catalog query cannot read a row, and external access is off and the configuration locked, so no
query can reach a file, an extension or a setting from here."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import duckdb
import pyarrow as pa
from sqlglot import exp

from gristmill.errors import EngineError
from gristmill.sql.render import render


class CatalogShadow:
    def __init__(self, relations: Mapping[tuple[str, str], pa.Schema]) -> None:
        self._con = duckdb.connect(":memory:", config={"enable_external_access": "false"})
        self._lock = threading.Lock()
        for (schema, name), arrow_schema in relations.items():
            self._con.execute(
                render(exp.Create(this=exp.to_identifier(schema), kind="SCHEMA", exists=True), "duckdb")
            )
            self._con.register("_shadow_empty", arrow_schema.empty_table())
            create = exp.Create(
                this=exp.table_(name, db=schema),
                kind="TABLE",
                expression=exp.select(exp.Star()).from_("_shadow_empty"),
            )
            self._con.execute(render(create, "duckdb"))
            self._con.unregister("_shadow_empty")
        self._con.execute("SET lock_configuration = true")

    def query(self, sql: str) -> pa.Table:
        """Run a catalog query (already checked by ``gristmill.sql.guard.catalog_probe``)."""
        with self._lock:
            try:
                return self._con.sql(sql).to_arrow_table()
            except duckdb.Error as error:
                raise EngineError(str(error).splitlines()[0]) from None

    def close(self) -> None:
        self._con.close()
