"""Read SQLite tables through DuckDB's scanner and stream them out as Arrow batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.base import parse_options
from gristmill.connectors.duckdb_reader import DuckDBReader, sql
from gristmill.connectors.listing import find, marker
from gristmill.connectors.sqlite.config import SQLiteSourceOptions, SQLiteTableOptions
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceSpec, SourceTable

_ALIAS = "source_db"


class Source(DuckDBReader):
    extensions = ("sqlite",)

    def __init__(self, spec: SourceSpec, root: Path) -> None:
        super().__init__()
        self.spec = spec
        self.root = root
        self.options = parse_options(SQLiteSourceOptions, spec.options, spec.where())
        self.tables = {
            key: parse_options(
                SQLiteTableOptions,
                table.options,
                table.location,
            )
            for key, table in spec.tables.items()
        }
        self.file = find(self.options.path, root, None, spec.where("path"))[0]
        self.path = Path(self.file.url)
        self._attached = False
        self._names: list[str] = []

    def _attach(self) -> None:
        if self._attached:
            return
        literal = sql(exp.Literal.string(self.path.as_posix()))
        try:
            self.con.execute(f"ATTACH {literal} AS {_ALIAS} (TYPE sqlite, READ_ONLY)")
            self._names = [
                row[0]
                for row in self.con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [_ALIAS]
                ).fetchall()
            ]
        except duckdb.Error as err:
            raise SourceError(
                f"{self.spec.where('path')}: cannot open {self.path.name} as SQLite: "
                f"{redact(str(err).strip())}"
            ) from None
        self._attached = True

    def _relation(self, table: SourceTable) -> duckdb.DuckDBPyRelation:
        self._attach()
        options = self.tables[table.key]
        name = options.table or table.key
        if name not in self._names:
            # Case-insensitive as in SQLite; the landed spelling works too (PlaylistTrack, playlist_track).
            matches = [n for n in self._names if n.lower() == name.lower()] or [
                n for n in self._names if snake_case(n) == name
            ]
            if len(matches) != 1:
                raise ConfigError(
                    f'{self.path.name} has no table "{name}"',
                    location=table.location,
                    hint=did_you_mean(name, self._names) or "tables: " + ", ".join(self._names),
                )
            name = matches[0]
        what = f"{self.spec.file} ({table.key}): {self.path.name}:{name}"
        try:
            relation = self.con.table(f"{_ALIAS}.{sql(exp.to_identifier(name, quoted=True))}")
            relation = self.only(relation, options.columns, what, table.location)
        except duckdb.Error as err:
            raise SourceError(f"{what}: {redact(str(err).strip())}") from None
        return self.landed(relation, what)

    def schema(self, table: SourceTable) -> pa.Schema:
        return self._relation(table).limit(0).to_arrow_table().schema

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        relation = self.since(self._relation(table), table, since)
        return self.stream(relation, f"{self.spec.file} ({table.key})")

    def change_marker(self, table: SourceTable) -> str | None:
        return marker(find(self.options.path, self.root, None, self.spec.where("path")))
