"""Read files through DuckDB's readers and stream them out as Arrow batches."""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import sqlglot
from sqlglot import exp

from gristmill._util.duckdb_extensions import load
from gristmill.config.secrets import redact
from gristmill.connectors.base import NativeRead, parse_options
from gristmill.connectors.duckdb_reader import READER_DIALECT, DuckDBReader, sql
from gristmill.connectors.files.config import (
    COMPRESSIONS,
    EXTENSION_FORMATS,
    FILE_COLUMN,
    MODIFIED_COLUMN,
    FilesSourceOptions,
    FilesTableOptions,
    Format,
)
from gristmill.connectors.files.spark_read import (
    SPARK_DIALECT,
    SparkColumns,
    csv_read,
    ndjson_read,
    offerable,
    parquet_read,
)
from gristmill.connectors.listing import FoundFile, find, marker, open_filesystem
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceSpec, SourceTable

if TYPE_CHECKING:
    import fsspec
    import pyarrow as pa

_MAX_JSON_OBJECT = 1 << 30  # a whole JSON document may be one object; allow it up to 1 GiB
_WHOLE_INPUT = {"sample_size": -1, "maximum_sample_files": -1}
"""JSON schemas are inferred over every record of every file: a key that first appears past a
sample would otherwise be dropped without a word (DuckDB samples 20,480 rows of 32 files)."""


def _storable(kind: str) -> str:
    """The type a JSON column lands with: lists of JSON values become lists of their JSON text,
    because DuckLake cannot read back inlined JSON[] rows whose elements are arrays or objects
    (``Malformed JSON ... when casting from source column``; DuckLake 1.5)."""
    return re.sub(r"\bJSON\[", "VARCHAR[", kind)


_CSV_FIX_DEFAULT = "fix that line, or set reader options (delim, quote) under 'options:'"
_CSV_FIXES = {
    "MISSING COLUMNS": "fix that line, or set options: {null_padding: true} (missing columns become NULL)",
    "TOO MANY COLUMNS": "fix that line (quote a value holding the delimiter), or set options: {delim: ...}",
    "UNQUOTED VALUE": "close the quote on that line, or set options: {quote: ''} if quotes are data",
    "INVALID ENCODING": "set options: {encoding: latin-1} (or the file's encoding)",
    "LINE SIZE OVER MAXIMUM": "set options: {max_line_size: ...} above that line's length",
}


def _locate_csv_error(path: Path, message: str, options: FilesTableOptions) -> tuple[str, str] | None:
    """DuckDB names the wrong line for some CSV errors (the start of its buffer, not the line):
    find the line itself for bytes that are not UTF-8 and for lines over ``max_line_size``, and
    say which option fixes it. Runs only after a read failed; the scan is in C (codecs, re)."""
    import mmap
    import re as regex

    if "not utf-8 encoded" in message or "Invalid unicode" in message:
        decoder, lines, chunk = codecs.getincrementaldecoder("utf-8")(), 1, b""
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 23):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:  # err.start is within this chunk (plus carried bytes)
                    carried = len(err.object) - len(chunk)
                    line = lines + chunk[: max(err.start - carried, 0)].count(b"\n")
                    byte = err.object[err.start]
                    break
                lines += chunk.count(b"\n")
            else:
                return None
        return (
            f"line {line}: byte 0x{byte:02x} is not UTF-8 (the file is in another encoding)",
            _CSV_FIXES["INVALID ENCODING"],
        )
    if "Maximum line size" in message:
        limit = int(options.options.get("max_line_size", 2_000_000))
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = regex.search(rb"[^\n]{%d}" % (limit + 1), data)
            if found is None:
                return None
            line = data[: found.start()].count(b"\n") + 1
            end = data.find(b"\n", found.start())
            size = (len(data) if end < 0 else end) - data.rfind(b"\n", 0, found.start()) - 1
        return (
            f"line {line} is {size:,} bytes, over the maximum line size of {limit:,}",
            f"set options: {{max_line_size: {size + 1}}} (or more)",
        )
    return None


def _literal(value: Any) -> exp.Expr:
    """A YAML value as a DuckDB literal: mappings become structs ({'n': 'VARCHAR'}), lists arrays."""
    if isinstance(value, dict):
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.Literal.string(str(k)), expression=_literal(v))
                for k, v in value.items()
            ]
        )
    if isinstance(value, list):
        return exp.Array(expressions=[_literal(v) for v in value])
    return exp.convert(value)


def _reader(
    fmt: Format, files: list[FoundFile], options: FilesTableOptions, *, filename: bool = False
) -> exp.Func:
    """DuckDB's reader for the files, with the user's options under their DuckDB names."""
    named: dict[str, Any] = dict(options.options)
    if fmt in ("json", "ndjson"):
        named = {
            "format": "newline_delimited" if fmt == "ndjson" else "auto",
            "maximum_object_size": _MAX_JSON_OBJECT,
            **({} if "columns" in named else _WHOLE_INPUT),
            **named,
        }
    if filename:
        named["filename"] = True
    return exp.func(
        {"csv": "read_csv", "parquet": "read_parquet"}.get(fmt, "read_json"),
        exp.Array(expressions=[exp.Literal.string(f.url) for f in files]),
        *(exp.PropertyEQ(this=exp.to_identifier(k), expression=_literal(v)) for k, v in named.items()),
    )


def _sniffed(prompt: str, files: list[FoundFile], options: FilesTableOptions) -> exp.Func | None:
    """The read_csv call DuckDB's sniffer proposed (dialect and column types fixed), over all the
    files and with the user's options on top; None if there is none to use, or the user shapes
    the columns themselves."""
    if set(options.options) & {
        "types",
        "dtype",
        "column_types",
        "columns",
        "names",
        "auto_detect",
        "all_varchar",
        "sample_size",
        "union_by_name",
    }:
        return None
    try:
        parsed = sqlglot.parse_one(
            prompt.rstrip().rstrip(";").removeprefix("FROM ").strip(), read=READER_DIALECT
        )
    except sqlglot.errors.ParseError:
        return None
    call = parsed.find(exp.ReadCSV)
    if call is None:
        return None
    call.set("this", exp.Array(expressions=[exp.Literal.string(f.url) for f in files]))
    given = {str(k) for k in options.options}
    kept = [e for e in call.expressions if not (isinstance(e, exp.EQ) and e.this.name in given)]
    call.set(
        "expressions",
        [*kept, *(exp.EQ(this=exp.column(k), expression=_literal(v)) for k, v in options.options.items())],
    )
    return call


def _format_of(file: FoundFile) -> Format | None:
    suffixes = [s for s in file.suffixes if s not in COMPRESSIONS]
    return EXTENSION_FORMATS.get(suffixes[-1]) if suffixes else None


class Source(DuckDBReader):
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        super().__init__()
        self.spec = spec
        self.root = root
        self.defaults = parse_options(FilesSourceOptions, spec.options, spec.file)
        self.tables = {
            key: parse_options(FilesTableOptions, table.options, table.location)
            for key, table in spec.tables.items()
        }
        self._filesystems: dict[str, fsspec.AbstractFileSystem] = {}
        self._prompts: dict[str, str] = {}  # sniff_csv's ready-made read_csv call, per file

    def _filesystem(self, pattern: str) -> fsspec.AbstractFileSystem | None:
        if "://" not in pattern:
            return None
        protocol = pattern.split("://", 1)[0]
        if protocol not in self._filesystems:
            fs = open_filesystem(protocol, self.defaults.storage, self.root)
            self.con.register_filesystem(fs)  # DuckDB reads the URLs through it
            # A Python filesystem is called back under the GIL. Binding a query (JSON and CSV
            # auto-detection) holds the GIL while DuckDB's worker threads wait for it to read:
            # with more than one thread that deadlocked about every other S3 NDJSON read. One
            # thread runs those reads on the calling thread; the reads are GIL-bound anyway.
            self.con.execute("SET threads = 1")
            self._filesystems[protocol] = fs
        return self._filesystems[protocol]

    def _plan(self, table: SourceTable) -> tuple[list[FoundFile], Format, FilesTableOptions]:
        options = self.tables[table.key]
        pattern = options.path or self.defaults.path
        if pattern is None:
            raise ConfigError(
                f'table "{table.key}" needs a "path" (or set one for the whole source)',
                location=table.location,
            )
        files = find(pattern, self.root, self._filesystem(pattern), f"{self.spec.file} ({table.key})")
        fmt = options.format or self.defaults.format or _format_of(files[0])
        if fmt is None:
            raise ConfigError(
                f"cannot tell the format of {files[0].url.rsplit('/', 1)[-1]}",
                location=table.location,
                hint="set format: csv | json | ndjson | parquet | excel",
            )
        return files, fmt, options

    def _new_files_only(self, table: SourceTable) -> bool:
        incremental = table.load.incremental
        return incremental is not None and incremental.cursor == MODIFIED_COLUMN

    def _relation(self, table: SourceTable, since: Any = None) -> duckdb.DuckDBPyRelation:
        files, fmt, options = self._plan(table)
        tracked = self._new_files_only(table)
        if tracked and since is not None:
            # Files are immutable once landed: one no newer than the cursor was loaded whole already.
            files = [f for f in files if f.modified > since] or files[-1:]  # keep one file for the schema
        what = f"{self.spec.file} ({table.key}): {files[0].shown}"
        try:
            if (
                fmt == "csv"
                and files[0].url.startswith("/")
                and not set(files[0].suffixes) & set(COMPRESSIONS)
            ):
                self._check_csv_shape(Path(files[0].url), options, what)
            if fmt == "excel":
                relation = self._excel(files, options)
            else:
                reader = _reader(fmt, files, options, filename=tracked)
                relation = self.con.sql(sql(exp.select("*").from_(reader)))
            if options.records:
                if options.records not in relation.columns:
                    raise SourceError(
                        f'{what}: the document has no key "{options.records}"',
                        hint="top-level keys: " + ", ".join(relation.columns),
                    )
                unnested = exp.func("unnest", exp.column(options.records, quoted=True))
                relation = relation.project(sql(exp.alias_(unnested, "r")))
                relation = relation.project("unnest(r)")
            if any(_storable(str(t)) != str(t) for t in relation.types):
                relation = relation.project(
                    ", ".join(
                        sql(
                            exp.cast(
                                exp.column(c, quoted=True),
                                exp.DataType.build(_storable(str(t)), dialect=READER_DIALECT),
                            ).as_(c, quoted=True)
                        )
                        for c, t in zip(relation.columns, relation.types, strict=True)
                    )
                )
            if tracked:
                relation = self._with_file_columns(relation, files, options.columns)
            else:
                relation = self.only(relation, options.columns, what, table.location)
        except duckdb.Error as err:
            raise SourceError(
                f"{what}: {redact(str(err).strip())}",
                hint="fix the file, or pass reader options under 'options:'",
            ) from None
        return self.landed(relation, what)

    def native(self, table: SourceTable, dialect: str = READER_DIALECT) -> NativeRead | None:
        """The whole read as one query over local files, for the engine to run itself (no Arrow
        hop), with the bytes it covers; None when only the Arrow stream will do. A DuckDB read, or
        a Spark one (``connectors/files/spark_read.py``) for a spark engine."""
        if dialect == SPARK_DIALECT:
            return self._spark_native(table)
        if dialect != READER_DIALECT:
            return None
        files, fmt, options = self._plan(table)
        if fmt == "excel" or self._new_files_only(table) or not files[0].url.startswith("/"):
            return None
        what = f"{self.spec.file} ({table.key}): {files[0].shown}"
        reader = _reader(fmt, files, options)
        query = exp.select("*").from_(reader)
        sniffed = None
        try:
            if fmt == "csv" and not set(files[0].suffixes) & set(COMPRESSIONS):
                sniffed = self._check_csv_shape(Path(files[0].url), options, what)
                sniffed_reader = _sniffed(self._prompts.get(files[0].url, ""), files, options)
                if sniffed_reader is not None:  # the engine need not sniff the file again
                    reader = sniffed_reader
                    query = exp.select("*").from_(reader)
            if options.records:
                keys = self.con.sql(sql(query)).columns
                if options.records not in keys:
                    raise SourceError(
                        f'{what}: the document has no key "{options.records}"',
                        hint="top-level keys: " + ", ".join(keys),
                    )
                unnested = exp.alias_(exp.func("unnest", exp.column(options.records, quoted=True)), "r")
                query = exp.select(exp.func("unnest", exp.column("r"))).from_(
                    exp.select(unnested).from_(reader).subquery("doc")
                )
                sniffed = None
            if (
                sniffed is None
                and fmt in ("json", "ndjson")
                and not options.records
                and not (set(options.options) & {"columns", "auto_detect"})
            ):
                probe = self.con.sql(sql(query))
                sniffed = probe.columns
                # The engine reads with the types found here instead of sampling the file again.
                typed = {
                    **options.options,
                    "columns": {
                        c: _storable(str(t)) for c, t in zip(probe.columns, probe.types, strict=True)
                    },
                }
                query = exp.select("*").from_(
                    _reader(fmt, files, options.model_copy(update={"options": typed}))
                )
            available = sniffed or self.con.sql(sql(query)).columns
        except duckdb.Error as err:
            raise SourceError(
                f"{what}: {redact(str(err).strip())}",
                hint="fix the file, or pass reader options under 'options:'",
            ) from None
        names = _chosen(options.columns, available, what, table)
        landed = [
            exp.alias_(exp.column(c, quoted=True), name, quoted=True)
            for c, name in zip(names, self.landed_names(names, what), strict=True)
        ]
        return NativeRead(
            exp.select(*landed).from_(query.subquery("src")), READER_DIALECT, sum(f.size for f in files)
        )

    def _spark_native(self, table: SourceTable) -> NativeRead | None:
        """The read as Spark runs it itself, with the columns and types this reader finds (the
        CSV sniffer's, the JSON schema over every record), so both engines land the same table."""
        files, fmt, options = self._plan(table)
        if options.records or self._new_files_only(table) or not offerable(files):
            return None
        what = f"{self.spec.file} ({table.key}): {files[0].shown}"
        view = "_gm_files_" + re.sub(r"\W", "_", f"{self.spec.name}__{table.key}")
        reader: exp.Func | None = None
        try:
            if fmt == "csv":
                self._check_csv_shape(Path(files[0].url), options, what)
                reader = _sniffed(self._prompts.get(files[0].url, ""), files, options)
            elif fmt == "ndjson" and not options.options:
                reader = _reader(fmt, files, options)  # the schema inferred over every record
            elif fmt == "parquet" and not options.options:
                reader = _reader(fmt, files, options)
            if reader is None:
                return None
            probe = self.con.sql(sql(exp.select("*").from_(reader)))
            names, kinds = probe.columns, [str(t) for t in probe.types]
        except duckdb.Error as err:
            raise SourceError(
                f"{what}: {redact(str(err).strip())}",
                hint="fix the file, or pass reader options under 'options:'",
            ) from None
        kept = _chosen(options.columns, names, what, table)
        columns = SparkColumns(names, kinds, kept, self.landed_names(kept, what))
        if fmt == "csv":
            assert isinstance(reader, exp.ReadCSV)
            read = csv_read(files, reader, columns, dict(options.options), view)
        elif fmt == "ndjson":
            read = ndjson_read(files, columns, view)
        else:
            read = parquet_read(files, columns, view)
        if read is None:
            return None
        duck = exp.select("*").from_(reader)
        return replace(read, diagnose=lambda: self._diagnose(duck))

    def _diagnose(self, query: exp.Query) -> str | None:
        """After Spark's read failed: DuckDB's reading of the same files, which names the line
        (Spark's readers know none); None when DuckDB reads them without an error."""
        try:
            # count(COLUMNS(*)): every column is read and converted, none pruned away
            every = exp.Count(this=exp.Columns(this=exp.Star()))
            self.con.sql(sql(exp.select(every).from_(query.subquery("d")))).fetchall()
        except duckdb.Error as err:
            return redact(str(err).strip())
        return None

    def _excel(self, files: list[FoundFile], options: FilesTableOptions) -> duckdb.DuckDBPyRelation:
        load(self.con, "excel")
        reads = [
            exp.select("*").from_(
                exp.func(
                    "read_xlsx",
                    exp.Literal.string(f.url),
                    *(
                        exp.PropertyEQ(this=exp.to_identifier(k), expression=exp.convert(v))
                        for k, v in options.options.items()
                    ),
                )
            )
            for f in files
        ]
        query: exp.Query = reads[0]
        for more in reads[1:]:
            query = exp.Union(this=query, expression=more, distinct=False, by_name=True)
        return self.con.sql(sql(query))

    def _with_file_columns(
        self, relation: duckdb.DuckDBPyRelation, files: list[FoundFile], columns: list[str] | None
    ) -> duckdb.DuckDBPyRelation:
        """Add the file each row came from and when that file last changed (the new-files cursor)."""
        import pyarrow as pa

        times = pa.table(
            {
                "filename": pa.array([f.url for f in files]),
                MODIFIED_COLUMN: pa.array([f.modified for f in files], pa.timestamp("us", tz="UTC")),
            }
        )
        files_table = self.con.from_arrow(times).set_alias("f")
        keep = columns or [c for c in relation.columns if c != "filename"]
        projection = [
            *(exp.column(c, table="r", quoted=True) for c in keep),
            exp.alias_(exp.column("filename", "r"), FILE_COLUMN, quoted=True),
            exp.column(MODIFIED_COLUMN, "f", quoted=True),
        ]
        joined = relation.set_alias("r").join(files_table, "r.filename = f.filename")
        return joined.project(", ".join(sql(p) for p in projection))

    def _check_csv_shape(self, path: Path, options: FilesTableOptions, what: str) -> list[str] | None:
        """Refuse a file whose sniffed shape disagrees with its first line; returns the sniffed
        column names (None when the user set the columns or said there is no header).

        DuckDB's sniffer can take a stray line's field count as the file's shape and read no rows
        at all; comparing with the first line catches that, and DuckDB's reject table names the
        offending line."""
        if options.options.get("header") is False or "columns" in options.options:
            return None
        sniff = exp.func(
            "sniff_csv",
            exp.Literal.string(path.as_posix()),
            *(
                exp.PropertyEQ(this=exp.to_identifier(k), expression=_literal(v))
                for k, v in options.options.items()
            ),
        )
        try:
            dialect = self.con.sql(
                sql(exp.select("Delimiter", "Quote", "Columns", "Prompt").from_(sniff))
            ).fetchone() or (",", '"', [])
        except duckdb.Error as err:
            located = _locate_csv_error(path, str(err), options)
            if located is not None:
                raise SourceError(f"{what}: {located[0]}", hint=located[1]) from None
            if "automatically detect" not in str(err):
                raise
            dialect = ("", '"', [], "")  # no dialect fits every line: find the line that breaks it
        sniffed = [str(c["name"]) for c in dialect[2]]
        self._prompts[path.as_posix()] = str(dialect[3]) if len(dialect) > 3 else ""
        encoding = str(options.options.get("encoding", "utf-8"))
        with path.open(newline="", encoding=encoding, errors="replace") as handle:
            header = handle.readline()
        given = options.options.get("delim", options.options.get("sep"))
        delimiter = str(given if given is not None else dialect[0])
        if given is None and len(sniffed) <= 1:
            # One stray line (a column too many or too few) can make the sniffer settle for a
            # one-column dialect, landing whole lines as text: judge by the header's delimiter.
            counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
            best = max(counts, key=lambda d: counts[d])
            delimiter = best if counts[best] else delimiter or ","
        quote = str(options.options.get("quote", dialect[1]))
        quote = quote if len(quote) == 1 and quote != "\x00" else '"'
        first = next(csv.reader([header], delimiter=delimiter, quotechar=quote), [])
        if not first or len(first) == len(sniffed):
            return sniffed
        columns = {name or f"column{i}": "VARCHAR" for i, name in enumerate(first)}
        diagnose = {
            **{k: v for k, v in options.options.items() if k in ("encoding", "max_line_size", "escape")},
            "header": True,
            "delim": delimiter,
            "quote": quote,
            "columns": columns,
            "store_rejects": True,
            "ignore_errors": True,
            "auto_detect": False,  # the dialect is given: sniffing again would fail the same way
        }
        reader = exp.func(
            "read_csv",
            exp.Literal.string(path.as_posix()),
            *(exp.PropertyEQ(this=exp.to_identifier(k), expression=_literal(v)) for k, v in diagnose.items()),
        )
        self.con.sql(sql(exp.select(exp.Count(this=exp.Star())).from_(reader))).fetchall()
        reject = self.con.execute(
            "SELECT line, error_message, csv_line, error_type FROM reject_errors ORDER BY line LIMIT 1"
        ).fetchone()
        where = f"line {reject[0]}: {reject[1]}: {str(reject[2])[:120]!r}" if reject else "lines disagree"
        shape = reject is None or str(reject[3]) in ("MISSING COLUMNS", "TOO MANY COLUMNS")
        raise SourceError(
            f"{what}: the header has {len(first)} columns but {where}" if shape else f"{what}: {where}",
            hint=_CSV_FIXES.get(str(reject[3]) if reject else "", _CSV_FIX_DEFAULT),
        )

    def schema(self, table: SourceTable) -> pa.Schema:
        relation = self._relation(table)
        try:
            return relation.limit(0).to_arrow_table().schema
        except duckdb.Error as err:
            raise SourceError(f"{self.spec.file} ({table.key}): {redact(str(err).strip())}") from None

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        relation = self.since(self._relation(table, since), table, since)
        return self.stream(relation, f"{self.spec.file} ({table.key})")

    def change_marker(self, table: SourceTable) -> str | None:
        files, _, _ = self._plan(table)
        return marker(files)


def _chosen(columns: list[str] | None, available: list[str], what: str, table: SourceTable) -> list[str]:
    """The columns a table's ``columns:`` picks (all when it picks none), each checked to exist."""
    for column in columns or ():
        if column not in available:
            raise ConfigError(
                f'{what} has no column "{column}"',
                location=table.location,
                hint="columns: " + ", ".join(available),
            )
    return list(columns or available)
