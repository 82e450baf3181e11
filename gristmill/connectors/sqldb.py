"""What the PostgreSQL and MySQL sources share: options, the connection URL, finding tables and
columns, and the one SELECT each read sends to the server.

Every read is a SELECT built here as a sqlglot AST in the server's dialect: the columns, the
incremental lower bound and a partition's range are in its WHERE, so rows are filtered at the
origin by construction instead of relying on an optimiser's pushdown (DuckDB's scanners push
neither ``IS NULL`` nor ``OR``, which partition ranges need). Metadata — table names and column
types — comes from DuckDB attaching the database read-only, which also maps the types.
"""

from __future__ import annotations

import itertools
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

import duckdb
import sqlglot
from pydantic import Field
from sqlglot import exp
from sqlglot.errors import ParseError

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact, resolve
from gristmill.connectors.base import Options, parse_options
from gristmill.connectors.duckdb_reader import DuckDBReader, sql
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project.specs import SourceSpec, SourceTable

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

ALIAS = "source_db"
"""The attached database's name inside the source's private DuckDB."""

_NUMERIC = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$")
_REFUSED = re.compile(r"password|authenticat|access denied|does not exist|unknown database|permission", re.I)
_DRIVER_PREFIX = re.compile(
    r'^(IO Error: )?(Unable|Failed) to connect to [\w ]+? (at|with parameters) "[^"]*":\s*'
)
_MAX_LISTED = 30


class PartitionOptions(Options):
    column: str
    """A numeric column (its name in the database) whose min..max range is split into ``parts``."""
    parts: int = Field(ge=2, le=64)
    """How many ranges are read at once, each over its own connection."""


class DatabaseSourceOptions(Options):
    connection: str
    """A URL ``scheme://user:password@host:port/database``, normally a secret reference such as
    ``${env:SHOP_DB_URL}``; resolved only when the source first connects."""
    source_schema: str | None = None
    """The schema (PostgreSQL) or database (MySQL) holding the tables."""


class DatabaseTableOptions(Options):
    table: str | None = None
    """The table or view in ``source_schema``; defaults to the key under ``tables``."""
    query: str | None = None
    """A SELECT in the server's own SQL, read instead of a table."""
    columns: list[str] | None = None
    """Land only these columns (names as in the database)."""
    partition: PartitionOptions | None = None
    """Read in concurrent ranges of a numeric column."""


@dataclass(frozen=True)
class ConnectionURL:
    """A resolved connection URL; it may hold a password, so only ``redacted()`` is ever shown."""

    text: str
    parts: SplitResult

    @classmethod
    def parse(cls, text: str, schemes: Sequence[str], where: str) -> ConnectionURL:
        parts = urlsplit(text.strip())
        try:
            valid = parts.scheme in schemes and bool(parts.hostname) and (parts.port or 0) >= 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise ConfigError(
                f"connection is not a {' or '.join(s + '://' for s in schemes)} URL",
                location=where,
                hint=f"write {schemes[0]}://user:password@host:port/database"
                + (f' (the scheme given is "{parts.scheme}")' if parts.scheme else ""),
            )
        return cls(text.strip(), parts)

    @property
    def password(self) -> str | None:
        return unquote(self.parts.password) if self.parts.password else None

    @property
    def secrets(self) -> list[str]:
        """Every password the URL holds: in the user part, or as a ``password=`` parameter."""
        found = [self.password] + [value for key, value in self._query() if key == "password"]
        return [value for value in found if value]

    @property
    def database(self) -> str | None:
        return unquote(self.parts.path.lstrip("/")) or None

    def redacted(self) -> str:
        parts = self._with_netloc("***" if self.parts.password else None)
        query = [(key, "***" if key == "password" else value) for key, value in self._query()]
        return parts._replace(query=urlencode(query, quote_via=quote, safe="*")).geturl()

    def replaced(
        self,
        *,
        scheme: str | None = None,
        database: str | None = None,
        defaults: dict[str, str] | None = None,
    ) -> ConnectionURL:
        """The same URL with another scheme or database, and query parameters added when absent."""
        query = dict(self._query())
        parts = self.parts._replace(
            scheme=scheme or self.parts.scheme,
            path="/" + quote(database, safe="") if database else self.parts.path,
            query=urlencode({**(defaults or {}), **query}, quote_via=quote),  # %20, not +: libpq
        )
        return ConnectionURL(parts.geturl(), parts)

    def scrub(self, message: str) -> str:
        """Remove the password (raw and URL-encoded) and every known secret from a message."""
        message = message.replace(self.text, self.redacted())
        for secret in self.secrets:
            for form in (secret, quote(secret, safe=""), quote(secret)):
                message = message.replace(form, "***")
        return redact(message)

    def _query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.parts.query, keep_blank_values=True)

    def _with_netloc(self, password: str | None) -> SplitResult:
        user = self.parts.username or ""
        host = self.parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        port = f":{self.parts.port}" if self.parts.port else ""
        return self.parts._replace(netloc=f"{auth}{host}{port}")


@dataclass(frozen=True)
class TableRead:
    """One table's validated options; ``query`` is parsed once, so a typo fails at load."""

    options: DatabaseTableOptions
    query: exp.Query | None


@dataclass(frozen=True)
class Selection:
    """What one table reads: the FROM of its SELECT and its columns with their landed names."""

    what: str
    origin: exp.Expr
    columns: dict[str, str]
    """Source column -> landed (snake_case) name, in landing order."""
    types: dict[str, str]
    """Source column -> DuckDB type, as DuckDB's scanner maps it."""
    schema: pa.Schema
    """The landed Arrow schema: ``schema()`` returns it and every batch of ``read()`` has it."""


class DatabaseSource(DuckDBReader):
    """A database server read through one SELECT per table (or per partition of a table)."""

    kind: ClassVar[str]
    """The DuckDB extension and ATTACH type."""
    dialect: ClassVar[str]
    """The sqlglot dialect of the server's SQL."""
    schemes: ClassVar[tuple[str, ...]]
    namespace: ClassVar[str] = "schema"
    """What the server calls the container of tables, for messages."""
    source_model: ClassVar[type[DatabaseSourceOptions]]
    table_model: ClassVar[type[DatabaseTableOptions]]

    def __init__(self, spec: SourceSpec, root: Path) -> None:
        super().__init__()
        self.spec = spec
        self.root = root
        self.options = parse_options(self.source_model, spec.options, spec.where())
        self.tables = {key: self._table_read(table) for key, table in spec.tables.items()}
        self._url: ConnectionURL | None = None
        self._names: list[str] | None = None
        self._selections: dict[str, Selection] = {}

    # -- hooks for each kind -----------------------------------------------------------------------

    @property
    @abstractmethod
    def schema_name(self) -> str:
        """The schema holding the tables (inside DuckDB's attached catalog and on the server)."""

    def _connection_url(self, url: ConnectionURL) -> ConnectionURL:
        """The URL as the drivers get it (defaults added, options applied)."""
        return url

    def _attach_options(self) -> list[exp.AttachOption]:
        return []

    def _column_expression(self, column: str, duckdb_type: str) -> exp.Expr:
        """How the SELECT reads one column; a kind may convert on the server side."""
        return exp.column(column, quoted=True)

    def _literal(self, value: Any) -> exp.Expr:
        return exp.convert(value)

    def _landed_schema(self, table: str | None, selection: Selection) -> pa.Schema:
        """A kind's corrections to the schema DuckDB reports; ``table`` is None for a query."""
        return selection.schema

    @abstractmethod
    def _stream(self, selection: Selection, queries: list[str]) -> pa.RecordBatchReader:
        """Run the SELECTs (one per partition) and stream their rows as ``selection.schema``."""

    # -- the Source protocol -----------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        return self._selection(table).schema

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        selection = self._selection(table)
        conditions = self._since(table, selection, since)
        queries = [
            self.select_sql(selection, [*conditions, *([part] if part is not None else [])])
            for part in self._partitions(table, selection, conditions)
        ]
        return self._stream(selection, queries)

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # a server cannot say cheaply whether a table changed: always read

    # -- connecting --------------------------------------------------------------------------------

    @property
    def url(self) -> ConnectionURL:
        if self._url is None:
            where = self.spec.where("connection")
            text = resolve_url(self.options.connection, base=self.root, where=where)
            self._url = self._connection_url(ConnectionURL.parse(text, self.schemes, where))
        return self._url

    def connect(self, what: str) -> list[str]:
        """Attach the database (once) and return the names of the tables in ``schema_name``."""
        if self._names is not None:
            return self._names
        attach = exp.Attach(
            this=exp.alias_(exp.Literal.string(self.url.text), ALIAS),
            expressions=[
                exp.AttachOption(this=exp.var("TYPE"), expression=exp.var(self.kind)),
                exp.AttachOption(this=exp.var("READ_ONLY")),
                *self._attach_options(),
            ],
        )
        try:
            self.con.execute("SET GLOBAL TimeZone = 'UTC'")  # aware columns land in UTC, cursors too
            self.con.execute(sql(attach))
            rows = self.con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = ? AND table_schema = ?",
                [ALIAS, self.schema_name],
            ).fetchall()
        except duckdb.Error as err:
            raise self._cannot_connect(what, err) from None
        self._names = sorted(row[0] for row in rows)
        return self._names

    def _cannot_connect(self, what: str, err: Exception) -> SourceError:
        detail = " ".join(_DRIVER_PREFIX.sub("", self.url.scrub(str(err).strip())).split())
        setting = self.options.connection
        shown = setting if "${" in setting else self.url.redacted()
        error = SourceError if _REFUSED.search(detail) else TransientSourceError
        return error(
            f"{what}: cannot connect to {self.url.redacted()}: {detail}",
            hint=f"check host, port, user, password and database of connection "
            f"({self.spec.where('connection')}: {shown}); is the server running and reachable?",
        )

    def on_server(self, query: str) -> str:
        """DuckDB SQL running ``query`` on the server through the scanner's ``*_query`` function.

        The query is a string literal, not a ``$1`` parameter: DuckDB materialises the result of a
        prepared statement before streaming it, which made a 1M-row read six times slower."""
        call = exp.Anonymous(
            this=f"{self.kind}_query", expressions=[exp.Literal.string(ALIAS), exp.Literal.string(query)]
        )
        return sql(exp.select("*").from_(exp.Table(this=call)))

    def remote(self, select: exp.Query, what: str) -> duckdb.DuckDBPyRelation:
        """A relation over a SELECT run on the server (prepared there, executed when read)."""
        try:
            return self.con.sql(self.on_server(select.sql(dialect=self.dialect)))
        except duckdb.Error as err:
            raise SourceError(f"{what}: {self.url.scrub(str(err).strip())}") from None

    # -- what a table reads ------------------------------------------------------------------------

    def _table_read(self, table: SourceTable) -> TableRead:
        options = parse_options(self.table_model, table.options, table.location)
        if options.table is not None and options.query is not None:
            raise ConfigError('give either "table" or "query", not both', location=table.location)
        query = None
        if options.query is not None:
            where = option_location(self.spec, table, "query")
            try:
                parsed = sqlglot.parse_one(options.query, dialect=self.dialect)
            except ParseError as err:
                raise ConfigError(
                    f"query does not parse: {str(err).splitlines()[0]}", location=where
                ) from None
            if not isinstance(parsed, exp.Query):
                raise ConfigError("query must be a SELECT", location=where)
            query = parsed
        return TableRead(options, query)

    def _selection(self, table: SourceTable) -> Selection:
        if table.key in self._selections:
            return self._selections[table.key]
        what = f"{self.spec.file} ({table.key})"
        names = self.connect(what)
        read = self.tables[table.key]
        name: str | None = None
        if read.query is not None:
            origin: exp.Expr = read.query.subquery("q")
            probe = self.remote(exp.select("*").from_(origin).limit(0), what)
        else:
            name = find_name(
                read.options.table or table.key,
                names,
                kind="table",
                container=f'{self.namespace} "{self.schema_name}"',
                location=option_location(self.spec, table, "table"),
            )
            origin = exp.table_(name, db=self.schema_name, quoted=True)
            what = f"{what}: {self.schema_name}.{name}"
            located = exp.table_(name, db=self.schema_name, catalog=ALIAS, quoted=True)
            probe = self.con.table(sql(located))
        try:
            arrow = probe.filter("false").to_arrow_table().schema  # the optimiser answers without a query
        except duckdb.Error as err:
            raise SourceError(f"{what}: {self.url.scrub(str(err).strip())}") from None
        types = dict(zip(probe.columns, (str(t) for t in probe.types), strict=True))
        chosen = [
            find_name(
                c,
                probe.columns,
                kind="column",
                container=what,
                location=option_location(self.spec, table, "columns"),
            )
            for c in read.options.columns or probe.columns
        ]
        columns = landed_names(chosen, what)
        import pyarrow as pa

        schema = pa.schema([arrow.field(source).with_name(landed) for source, landed in columns.items()])
        selection = Selection(what, origin, columns, {c: types[c] for c in chosen}, schema)
        try:
            selection = replace(selection, schema=self._landed_schema(name, selection))
        except duckdb.Error as err:
            raise SourceError(f"{what}: {self.url.scrub(str(err).strip())}") from None
        self._selections[table.key] = selection
        return selection

    def select_sql(self, selection: Selection, conditions: Sequence[exp.Expr]) -> str:
        select = exp.select(
            *(
                exp.alias_(self._column_expression(source, selection.types[source]), landed, quoted=True)
                for source, landed in selection.columns.items()
            )
        ).from_(selection.origin)
        if conditions:
            select = select.where(exp.and_(*conditions))
        return select.sql(dialect=self.dialect)

    def _since(self, table: SourceTable, selection: Selection, since: Any) -> list[exp.Expr]:
        incremental = table.load.incremental
        if since is None or incremental is None:
            return []
        source = {landed: source for source, landed in selection.columns.items()}.get(incremental.cursor)
        if source is None:
            landed = list(selection.columns.values())
            raise ConfigError(
                f'incremental cursor "{incremental.cursor}" is not a column of {table.asset}',
                location=table.location,
                hint=did_you_mean(incremental.cursor, landed) or "columns: " + ", ".join(landed),
            )
        return [exp.GTE(this=exp.column(source, quoted=True), expression=self._literal(since))]

    def _partitions(
        self, table: SourceTable, selection: Selection, conditions: list[exp.Expr]
    ) -> list[exp.Expr | None]:
        partition = self.tables[table.key].options.partition
        if partition is None:
            return [None]
        where = option_location(self.spec, table, "partition")
        column = find_name(
            partition.column, list(selection.types), kind="column", container=selection.what, location=where
        )
        if not _NUMERIC.match(selection.types[column]):
            raise ConfigError(
                f'partition column "{column}" is {selection.types[column]}, not a number',
                location=where,
                hint="split on an integer or decimal column, e.g. the primary key",
            )
        ref = exp.column(column, quoted=True)
        bounds = exp.select(exp.Min(this=ref), exp.Max(this=ref)).from_(selection.origin)
        if conditions:
            bounds = bounds.where(exp.and_(*conditions))
        try:
            low, high = self.remote(bounds, selection.what).fetchone() or (None, None)
        except duckdb.Error as err:
            raise SourceError(f"{selection.what}: {self.url.scrub(str(err).strip())}") from None
        return range_conditions(ref, split_points(low, high, partition.parts), self._literal)

    def guard(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch], what: str) -> pa.RecordBatchReader:
        """Stream ``batches``; a driver's error mid-stream becomes a SourceError without secrets."""
        import pyarrow as pa

        def generate() -> Iterator[pa.RecordBatch]:
            try:
                yield from batches
            except SourceError:
                raise
            except BaseException as err:  # the Rust drivers raise panics, which are BaseExceptions
                if not isinstance(err, Exception) and type(err).__name__ != "PanicException":
                    raise
                raise SourceError(f"{what}: {self.url.scrub(str(err).strip())}") from None

        return pa.RecordBatchReader.from_batches(schema, generate())


def resolve_url(text: str, *, base: Path, where: str) -> str:
    """Resolve secret references in a URL; a password given as a reference of its own
    (``postgresql://app:${env:PW}@db/shop``) is URL-encoded, so any character may be in it."""
    try:
        password = urlsplit(text).password
    except ValueError:
        password = None
    if password and "${" in password:
        value = resolve(password, base=base, where=where)
        text = text.replace(f":{password}@", f":{quote(value, safe='')}@", 1)
    return resolve(text, base=base, where=where)


def option_location(spec: SourceSpec, table: SourceTable, key: str) -> str:
    """The file:line of one option of a table, or of the table when the key has no line."""
    line = getattr(table.options, "key_lines", {}).get(key)
    return f"{spec.file}:{line}" if line else table.location


def find_name(name: str, candidates: Sequence[str], *, kind: str, container: str, location: str) -> str:
    """The candidate called ``name`` — exactly, else ignoring case, else by its landed spelling."""
    if name in candidates:
        return name
    matches = [c for c in candidates if c.lower() == name.lower()] or [
        c for c in candidates if snake_case(c) == snake_case(name)
    ]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(candidates[:_MAX_LISTED]) + (", …" if len(candidates) > _MAX_LISTED else "")
    raise ConfigError(
        f'{container} has no {kind} "{name}"',
        location=location,
        hint=did_you_mean(name, candidates) or (f"{kind}s: {listed}" if candidates else f"it has no {kind}s"),
    )


def landed_names(columns: Sequence[str], what: str) -> dict[str, str]:
    landed: dict[str, str] = {}
    for column in columns:
        name = snake_case(column)
        clash = next((source for source, other in landed.items() if other == name), None)
        if clash is not None:
            raise SourceError(
                f'{what}: columns "{clash}" and "{column}" both land as "{name}"',
                hint="list the columns to land with columns:, or rename one in a query",
            )
        landed[column] = name
    return landed


def split_points(low: Any, high: Any, parts: int) -> list[Any]:
    """Values cutting low..high into ``parts`` even ranges (fewer when the range is narrow)."""
    if low is None or high is None or low >= high:
        return []
    if isinstance(low, int) and isinstance(high, int):  # low..high holds high - low + 1 values
        points: list[Any] = [low + (high - low + 1) * i // parts for i in range(1, parts)]
    else:  # Decimal stays Decimal, float stays float
        points = [low + (high - low) * i / parts for i in range(1, parts)]
    return sorted({p for p in points if low < p <= high})


def range_conditions(column: exp.Column, points: Sequence[Any], literal: Any) -> list[exp.Expr | None]:
    """One WHERE per range, together covering every row exactly once (NULLs go to the first).

    The outer ranges are open, so rows written after min/max were taken are still read."""
    if not points:
        return [None]
    bounds: list[Any] = [None, *points, None]
    conditions: list[exp.Expr | None] = []
    for low, high in itertools.pairwise(bounds):
        sides: list[exp.Expr] = []
        if low is not None:
            sides.append(exp.GTE(this=column.copy(), expression=literal(low)))
        if high is not None:
            sides.append(exp.LT(this=column.copy(), expression=literal(high)))
        condition: exp.Expr = exp.and_(*sides)
        if low is None:
            condition = exp.or_(condition, column.copy().is_(exp.null()))
        conditions.append(condition)
    return conditions
