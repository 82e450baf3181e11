"""Read files through DuckDB's readers and stream them out as Arrow batches."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from gristmill.config.secrets import redact
from gristmill.connectors.base import DuckDBReader, file_marker, parse_options, resolve_paths
from gristmill.connectors.files.config import EXTENSION_FORMATS, FilesSourceOptions, FilesTableOptions, Format
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceSpec, SourceTable

_MAX_JSON_OBJECT = 1 << 30  # a whole JSON document may be one object; allow it up to 1 GiB


class Source(DuckDBReader):
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        super().__init__()
        self.spec = spec
        self.root = root
        self.defaults = parse_options(FilesSourceOptions, spec.options, spec.file)
        self.tables = {
            key: parse_options(
                FilesTableOptions,
                table.options,
                table.location,
            )
            for key, table in spec.tables.items()
        }

    def _plan(self, table: SourceTable) -> tuple[list[Path], Format, FilesTableOptions]:
        options = self.tables[table.key]
        pattern = options.path or self.defaults.path
        if pattern is None:
            raise ConfigError(
                f'table "{table.key}" needs a "path" (or set one for the whole source)',
                location=table.location,
            )
        paths = resolve_paths(pattern, self.root, f"{self.spec.file} ({table.key})")
        fmt = options.format or self.defaults.format or EXTENSION_FORMATS.get(paths[0].suffix.lower())
        if fmt is None:
            raise ConfigError(
                f"cannot tell the format of {paths[0].name}",
                location=table.location,
                hint="set format: csv | json | ndjson | parquet",
            )
        return paths, fmt, options

    def _relation(self, table: SourceTable) -> duckdb.DuckDBPyRelation:
        paths, fmt, options = self._plan(table)
        files: Any = [p.as_posix() for p in paths]  # DuckDB readers take a list; its stubs say str
        shown = paths[0].relative_to(self.root) if paths[0].is_relative_to(self.root) else paths[0]
        what = f"{self.spec.file} ({table.key}): {shown}"
        try:
            if fmt == "csv":
                relation = self.con.read_csv(files, **options.options)
                self._check_csv_shape(paths[0], relation.columns, options, what)
            elif fmt == "parquet":
                relation = self.con.read_parquet(files, **options.options)
            else:
                kwargs = {
                    "format": "newline_delimited" if fmt == "ndjson" else "auto",
                    "maximum_object_size": _MAX_JSON_OBJECT,
                    **options.options,
                }
                relation = self.con.read_json(files, **kwargs)
            if options.records:
                if options.records not in relation.columns:
                    raise SourceError(
                        f'{what}: the document has no key "{options.records}"',
                        hint="top-level keys: " + ", ".join(relation.columns),
                    )
                unnested = exp.func("unnest", exp.column(options.records, quoted=True))
                relation = relation.project(exp.alias_(unnested, "r").sql(dialect="duckdb"))
                relation = relation.project("unnest(r)")
            relation = self.only(relation, options.columns, what, table.location)
        except duckdb.Error as err:
            raise SourceError(
                f"{what}: {redact(str(err).strip())}",
                hint="fix the file, or pass reader options under 'options:'",
            ) from None
        return self.landed(relation, what)

    def _check_csv_shape(self, path: Path, sniffed: list[str], options: FilesTableOptions, what: str) -> None:
        """Refuse a file whose sniffed shape disagrees with its first line.

        DuckDB's sniffer can take a stray line's field count as the file's shape and read no rows
        at all; comparing with the first line catches that, and DuckDB's reject table names the
        offending line."""
        if options.options.get("header") is False or "columns" in options.options:
            return
        dialect = self.con.execute(
            "SELECT Delimiter, Quote FROM sniff_csv(?)", [path.as_posix()]
        ).fetchone() or (",", '"')
        delimiter = str(options.options.get("delim", options.options.get("sep", dialect[0])))
        quote = str(options.options.get("quote", dialect[1]))
        quote = quote if len(quote) == 1 and quote != "\x00" else '"'
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            first = next(csv.reader(handle, delimiter=delimiter, quotechar=quote), [])
        if not first or len(first) == len(sniffed):
            return
        columns = {name or f"column{i}": "VARCHAR" for i, name in enumerate(first)}
        self.con.read_csv(
            path.as_posix(),
            header=True,
            delimiter=delimiter,
            quotechar=quote,
            columns=columns,
            store_rejects=True,
            ignore_errors=True,
        ).aggregate("count(*)").fetchall()
        reject = self.con.execute(
            "SELECT line, error_message, csv_line FROM reject_errors ORDER BY line LIMIT 1"
        ).fetchone()
        where = f"line {reject[0]}: {reject[1]}: {str(reject[2])[:120]!r}" if reject else "lines disagree"
        raise SourceError(
            f"{what}: the header has {len(first)} columns but {where}",
            hint="fix that line, or set reader options (delim, quote) under 'options:'",
        )

    def schema(self, table: SourceTable) -> pa.Schema:
        relation = self._relation(table)
        try:
            return relation.limit(0).to_arrow_table().schema
        except duckdb.Error as err:
            raise SourceError(f"{self.spec.file} ({table.key}): {redact(str(err).strip())}") from None

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        relation = self.since(self._relation(table), table, since)
        return self.stream(relation, f"{self.spec.file} ({table.key})")

    def change_marker(self, table: SourceTable) -> str | None:
        paths, _, _ = self._plan(table)
        return file_marker(paths)
