"""The files source's reads for a Spark engine: Spark reads the files itself, no row through Python.

A read is a temporary view over Spark's own file source (``CREATE TEMPORARY VIEW … USING csv``)
and a query over it, all sqlglot ASTs rendered in :data:`SPARK_DIALECT`. The columns and their types
are the ones the DuckDB reader decides (the CSV sniffer's types, the JSON schema inferred over
every record of every file), handed to Spark as the view's schema, so a spark target lands the
columns and types a duckdb target lands:

- CSV: every column is read as STRING and then cast to the sniffed type with a checked cast: a
  value that does not fit stops the read naming the file, the column and the value (Spark's CSV
  reader knows no line numbers; the source's ``diagnose`` asks DuckDB for the line). Quoted
  values may span lines (``multiLine``), so each CSV file is read by one task.
- NDJSON: parsed with the inferred schema; a top-level column of mixed JSON values is read as a
  VARIANT and lands as its JSON text.
- Parquet: read with the schema the files declare (given to Spark explicitly).

Every read is ``mode FAILFAST``: a line Spark cannot parse stops the load, never becomes NULLs.
A read is offered only when it keeps those promises; otherwise (compressed files, JSON documents,
URLs, reader options with no Spark form, types with no Spark twin) the source offers none and the
rows arrive as Arrow from the DuckDB reader."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import sqlglot
from sqlglot import exp

from gristmill.connectors.base import NativeRead
from gristmill.connectors.files.config import COMPRESSIONS
from gristmill.connectors.listing import FoundFile
from gristmill.sql import writes

SPARK_DIALECT = "spark"

_CSV_OPTIONS = {"delim", "sep", "quote", "escape", "header", "new_line", "comment", "encoding"}
"""DuckDB reader options the Spark read honours (through the sniffer's dialect); any other option
keeps the DuckDB reader."""
_ISO_DATES = {"", "%Y-%m-%d"}
_ISO_TIMES = {"", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f"}
_SCALARS = {
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.VARBINARY,
}
_NESTED = {exp.DataType.Type.STRUCT, exp.DataType.Type.ARRAY, exp.DataType.Type.LIST, exp.DataType.Type.MAP}
_GLOB_SPECIAL = set("{}[]*?\\,:")
"""Characters a Hadoop path pattern reads specially: a path holding one is not offered."""


@dataclass(frozen=True)
class SparkColumns:
    """What the DuckDB reader found: each source column with its type as DuckDB spells it."""

    names: Sequence[str]
    types: Sequence[str]
    kept: Sequence[str]
    """The columns that land (the user's ``columns``, or all)."""
    landed: Sequence[str]
    """The snake_case names the kept columns land under."""


def offerable(files: Sequence[FoundFile]) -> bool:
    """Files Spark's own file source reads exactly as listed: local paths (seen by every executor
    in local mode; a shared mount on a cluster), uncompressed, not hidden from Spark (it skips
    names starting with ``_`` or ``.``), with no character its path patterns read specially."""
    for found in files:
        name = PurePosixPath(found.url).name
        if not found.url.startswith("/") or set(found.suffixes) & set(COMPRESSIONS):
            return False
        if name.startswith(("_", ".")) or _GLOB_SPECIAL & set(found.url):
            return False
    return True


def csv_read(
    files: Sequence[FoundFile],
    sniffed: exp.ReadCSV,
    columns: SparkColumns,
    user: dict[str, object],
    view: str,
) -> NativeRead | None:
    """The read of CSV files in the dialect DuckDB's sniffer found (``sniffed``: its ``read_csv``
    call), every column read as text and cast to the sniffed type; None when the dialect or the
    options have no Spark form."""
    if set(user) - _CSV_OPTIONS:
        return None
    given = {e.this.name: e.expression for e in sniffed.expressions if isinstance(e, exp.EQ)}
    options = _csv_options(given, user)
    types = [_spark_type(k, json_ok=False) for k in columns.types]
    if options is None or any(t is None for t in types):
        return None
    text = exp.DataType.build("STRING", dialect=SPARK_DIALECT)
    setup = _view(view, "csv", files, [(n, text) for n in columns.names], options)
    kinds = dict(zip(columns.names, types, strict=True))
    values = [
        exp.alias_(_checked(n, kinds[n]), name, quoted=True)  # type: ignore[arg-type]
        for n, name in zip(columns.kept, columns.landed, strict=True)
    ]
    return _read(files, view, values, setup)


def ndjson_read(files: Sequence[FoundFile], columns: SparkColumns, view: str) -> NativeRead | None:
    """The read of newline-delimited JSON with the schema DuckDB inferred over every record; None
    when a type has no Spark twin (a JSON value nested in a struct, an unsigned integer...)."""
    types = [_spark_type(k, json_ok=True) for k in columns.types]
    if any(t is None for t in types):
        return None
    schema = [(n, t) for n, t in zip(columns.names, types, strict=True)]
    setup = _view(view, "json", files, schema, {"mode": "FAILFAST", "multiLine": "false"})  # type: ignore[arg-type]
    kinds = dict(zip(columns.names, types, strict=True))
    values = []
    for name, landed in zip(columns.kept, columns.landed, strict=True):
        kind = kinds[name]
        value: exp.Expr = _col(name)
        if kind is not None and kind.this == exp.DataType.Type.VARIANT:
            # A JSON value lands as its JSON text; JSON null is SQL NULL, as DuckDB reads it.
            value = exp.If(
                this=exp.func("is_variant_null", value), true=exp.null(), false=exp.JSONFormat(this=value)
            )
        values.append(exp.alias_(value, landed, quoted=True))
    return _read(files, view, values, setup)


def parquet_read(files: Sequence[FoundFile], columns: SparkColumns, view: str) -> NativeRead | None:
    """The read of Parquet files with the columns and types the files declare."""
    types = [_spark_type(k, json_ok=False) for k in columns.types]
    if any(t is None for t in types):
        return None
    schema = [(n, t) for n, t in zip(columns.names, types, strict=True)]
    setup = _view(view, "parquet", files, schema, {})  # type: ignore[arg-type]
    values = [
        exp.alias_(_col(n), landed, quoted=True)
        for n, landed in zip(columns.kept, columns.landed, strict=True)
    ]
    return _read(files, view, values, setup)


def _csv_options(sniffed: dict[str, exp.Expr], user: dict[str, object]) -> dict[str, str] | None:
    """Spark's CSV options for DuckDB's sniffed dialect; None when it has no Spark form."""

    def text(key: str) -> str:
        value = sniffed.get(key)
        return value.name if isinstance(value, exp.Literal) else ""

    skip = sniffed.get("skip")
    if isinstance(skip, exp.Literal) and skip.name not in ("", "0"):
        return None
    if text("dateformat") not in _ISO_DATES or text("timestampformat") not in _ISO_TIMES:
        return None
    if text("new_line") not in ("", "\\n", "\n", "\\r\\n", "\r\n"):
        return None
    encoding = str(user.get("encoding", "utf-8")).lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8"):
        return None
    header = sniffed.get("header")
    quote, escape = text("quote"), text("escape")
    options = {
        "sep": text("delim") or ",",
        # No quoting at all is quote "\u0000" to Spark.
        "quote": quote if quote else "\u0000",
        # DuckDB's empty escape means RFC 4180: a quote inside quotes is doubled.
        "escape": escape or quote or "\\",
        "header": "true" if isinstance(header, exp.Boolean) and header.this else "false",
        "mode": "FAILFAST",
        "multiLine": "true",  # a quoted value may hold line breaks, as DuckDB reads it
        "encoding": "UTF-8",
    }
    if text("comment"):
        options["comment"] = text("comment")
    return options


def _spark_type(duckdb_type: str, *, json_ok: bool) -> exp.DataType | None:
    """DuckDB's type as the type Spark reads the value with; None when Spark has no twin for it.
    A top-level JSON column (``json_ok``) is read as a VARIANT."""
    try:
        built = exp.DataType.build(duckdb_type, dialect="duckdb")
    except (sqlglot.errors.ParseError, ValueError):
        return None
    if built.this == exp.DataType.Type.JSON:
        return exp.DataType.build("VARIANT", dialect=SPARK_DIALECT) if json_ok else None
    for node in built.find_all(exp.DataType):
        if node.this not in _SCALARS and node.this not in _NESTED:
            return None
    if built.this == exp.DataType.Type.MAP:
        key = built.expressions[0] if built.expressions else None
        if not isinstance(key, exp.DataType) or key.this not in (
            exp.DataType.Type.VARCHAR,
            exp.DataType.Type.TEXT,
        ):
            return None
    return built


def _checked(name: str, kind: exp.DataType) -> exp.Expr:
    """A CSV text value as ``kind``: NULL stays NULL; a value that does not fit stops the read,
    naming the file, the column and the value (never a NULL in its place). Spark decodes bytes
    that are not UTF-8 as U+FFFD without a word, so a text holding one stops the read too."""
    value = _col(name)
    if kind.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
        garbled = exp.func("contains", value.copy(), exp.Literal.string("\ufffd"))
        return exp.If(
            this=garbled, true=_complaint(name, value, "holds bytes that are not UTF-8"), false=value
        )
    fits = exp.TryCast(this=value.copy(), to=kind.copy(), safe=True)  # safe: spelt TRY_CAST in Spark
    shown = kind.sql(SPARK_DIALECT)
    complaint = _complaint(name, value, f"is not a {shown} (the type the first rows have)")
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=value.copy(), expression=exp.null()), true=exp.null()),
            exp.If(
                this=exp.Is(this=fits.copy(), expression=exp.null()), true=exp.cast(complaint, kind.copy())
            ),
        ],
        default=fits,
    )


def _complaint(name: str, value: exp.Expr, what: str) -> exp.Expr:
    """``raise_error`` naming the file (Spark's URL of it), the column and the value."""
    return exp.func(
        "raise_error",
        exp.Concat(
            expressions=[
                exp.func("input_file_name"),
                exp.Literal.string(f': column "{name}": the value "'),
                exp.func("left", value.copy(), exp.convert(200)),
                exp.Literal.string(f'" {what}'),
            ]
        ),
    )


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _view(
    view: str,
    fmt: str,
    files: Sequence[FoundFile],
    schema: list[tuple[str, exp.DataType]],
    options: dict[str, str],
) -> exp.Create:
    """``CREATE OR REPLACE TEMPORARY VIEW view (schema) USING fmt OPTIONS (path …)``: the files
    as one relation of Spark's file source (several files as one ``{a,b}`` path pattern)."""
    urls = [f.url for f in files]
    path = urls[0]
    if len(urls) > 1:  # /common/{a.csv,b/c.csv}: a pattern must start at a folder, not a brace
        common = posixpath.commonpath(urls)
        path = common.rstrip("/") + "/{" + ",".join(u[len(common) :].lstrip("/") for u in urls) + "}"
    properties = [
        exp.Property(this=exp.Literal.string(k), value=exp.Literal.string(v))
        for k, v in {"path": path, **options}.items()
    ]
    return exp.Create(
        this=exp.Schema(
            this=exp.to_table(view),
            expressions=[exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=t) for n, t in schema],
        ),
        kind="VIEW",
        replace=True,
        properties=exp.Properties(
            expressions=[
                exp.TemporaryProperty(),
                exp.FileFormatProperty(this=exp.var(fmt)),
                exp.OptionsProperty(expressions=properties),
            ]
        ),
    )


def _read(files: Sequence[FoundFile], view: str, values: list[exp.Expr], setup: exp.Create) -> NativeRead:
    query = exp.select(*values).from_(exp.to_table(view))
    return NativeRead(
        query, SPARK_DIALECT, sum(f.size for f in files), (setup,), numbered=_numbered(files, view, values)
    )


def _numbered(files: Sequence[FoundFile], view: str, values: list[exp.Expr]) -> exp.Query:
    """The read with ``_gm_ord``: 0, 1, 2 … in arrival order (file order, then position in the
    file), as DuckDB's row ids number the same read, computed without moving every row to one
    task.

    Spark's ``monotonically_increasing_id`` is the task's partition in its upper bits and the row's
    position in the task below: increasing within a task, with gaps between tasks, and tasks pack
    file pieces by size, not file order. So rows are grouped by (file, task) — a group's ids are
    consecutive, and a file's pieces lie in tasks in file order: Spark packs pieces of equal size
    in listing order, a full piece fills a task alone and a file has one short piece, its last —
    and a running count over the (small) table of groups gives each group its first ordinal."""
    landed = [v.alias_or_name for v in values]
    decoded = exp.func("url_decode", exp.func("input_file_name"))
    index = exp.Case(
        ifs=[
            exp.If(
                this=exp.EQ(this=decoded.copy(), expression=exp.Literal.string(f"file://{f.url}")),
                true=exp.convert(i),
            )
            for i, f in enumerate(files)
        ],
        default=exp.convert(len(files)),  # a spelling not foreseen: ordered last, never lost
    )
    position = exp.func("monotonically_increasing_id")
    scanned = exp.select(
        *values,
        exp.alias_(index, "_gm_f"),
        exp.alias_(decoded, "_gm_name"),
        exp.alias_(position, "_gm_m"),
    ).from_(exp.to_table(view))
    task = exp.BitwiseRightShift(this=exp.column("_gm_m"), expression=exp.convert(33))
    groups = (
        exp.select(
            "_gm_f",
            "_gm_name",
            exp.alias_(task, "_gm_p"),
            exp.alias_(exp.Min(this=exp.column("_gm_m")), "_gm_lo"),
            exp.alias_(exp.Count(this=exp.Star()), "_gm_n"),
        )
        .from_("s")
        .group_by("_gm_f", "_gm_name", task.copy())
    )
    running = exp.Window(
        this=exp.Sum(this=exp.column("_gm_n")),
        order=exp.Order(
            expressions=[exp.Ordered(this=exp.column(c)) for c in ("_gm_f", "_gm_name", "_gm_p")]
        ),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    offsets = exp.select(
        "_gm_f",
        "_gm_name",
        "_gm_p",
        "_gm_lo",
        exp.alias_(exp.Sub(this=running, expression=exp.column("_gm_n")), "_gm_base"),
    ).from_("g")
    ordinal = exp.Add(
        this=exp.column("_gm_base", "o"),
        expression=exp.Sub(this=exp.column("_gm_m", "s"), expression=exp.column("_gm_lo", "o")),
    )
    same = exp.and_(
        *(exp.EQ(this=exp.column(c, "s"), expression=exp.column(c, "o")) for c in ("_gm_f", "_gm_name")),
        exp.EQ(
            this=exp.BitwiseRightShift(this=exp.column("_gm_m", "s"), expression=exp.convert(33)),
            expression=exp.column("_gm_p", "o"),
        ),
    )
    return (
        exp.select(
            *(exp.column(c, "s", quoted=True) for c in landed),
            exp.alias_(ordinal, writes.ORDINAL, quoted=True),
        )
        .from_(exp.to_table("s"))
        .join(exp.to_table("o"), on=same)
        .with_("s", as_=scanned)
        .with_("g", as_=groups)
        .with_("o", as_=offsets)
    )
