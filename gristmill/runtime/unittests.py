"""Run unit tests of models: each model's own SQL over fixture rows in a private, empty engine of
the project's kind, its result compared with the expected rows. The warehouse is never opened, so
tests work before the first ``gristmill run`` and never change published data.

Every test gets a fresh scratch engine from the registry (for a kind that cannot make one, the
in-memory DuckDB engine), its session time zone UTC. Fixture rows go in as Arrow (the engine's
``ArrowViews``) and each becomes the table ``<schema>.<name>`` the model reads; the model's query
runs unchanged (rendered for the engine, with ``now()`` and friends pinned when the test sets
``now``), and its result comes back as Arrow."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal, InvalidOperation
from itertools import count
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import sqlglot
from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill._util.text import shorten
from gristmill.engines.base import ArrowViews, Engine, Relation
from gristmill.engines.registry import fallback_engine, scratch_engine
from gristmill.errors import ConfigError, GristmillError, SelectionError
from gristmill.project.definition import Project
from gristmill.project.dialect import PROJECT_DIALECT as DIALECT
from gristmill.project.specs import ModelSpec
from gristmill.project.unittests import TableData, UnitTestSpec
from gristmill.sql.parse import ParsedModel, asset_name, parse_model

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

Status = Literal["passed", "failed", "error", "skipped"]
Row = tuple[Any, ...]

REL_TOLERANCE = 1e-9
"""Floats this close (relatively) are equal: 0.1 + 0.2 is 0.3 in a test."""

_views = count()


@dataclass(frozen=True)
class UnitTestResult:
    name: str
    model: str
    status: Status
    location: str
    """``file:line`` of the test."""
    description: str | None = None
    message: str = ""
    """Why it failed, errored or was skipped."""
    rendering: Literal["full", "incremental"] = "full"
    columns: tuple[str, ...] = ()
    """The columns compared, as the test names them."""
    missing: tuple[Row, ...] = ()
    """Expected rows the model did not return (one entry per missing copy)."""
    unexpected: tuple[Row, ...] = ()
    """Rows the model returned that were not expected."""
    misordered: tuple[tuple[int, Row, Row], ...] = ()
    """``ordered: true``: (position, expected row, returned row) where the order differs."""
    expected_rows: int | None = None
    returned_rows: int | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class UnitTestRun:
    results: list[UnitTestResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status in ("passed", "skipped") for r in self.results)

    def summary(self) -> dict[str, int | float]:
        counts: dict[str, int | float] = {s: 0 for s in ("passed", "failed", "error", "skipped")}
        for result in self.results:
            counts[result.status] += 1
        counts["seconds"] = round(self.seconds, 3)
        return counts


class _DataError(Exception):
    """Rows in a test file that cannot be made into a table; ``where`` is their file:line."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class _Prepared:
    test: UnitTestSpec
    model: ModelSpec
    query: exp.Query
    rendering: Literal["full", "incremental"]
    warnings: tuple[str, ...]


# --- choosing tests -------------------------------------------------------------------------------


def model_of(project: Project, test: UnitTestSpec) -> ModelSpec:
    """The model a test names: ``schema.name``, or a short name that only one model has."""
    name = test.model.lower()
    if name in project.models:
        return project.models[name]
    short = [asset for asset in project.models if asset.split(".", 1)[1] == name]
    if "." not in name and len(short) == 1:
        return project.models[short[0]]
    if len(short) > 1:
        raise ConfigError(
            f'test "{test.name}": more than one model is named "{test.model}": {", ".join(short)}',
            location=test.model_location,
            hint="write the model as <schema>.<name>",
        )
    tables = {t.asset for s in project.sources.values() for t in s.tables.values()}
    if name in tables:
        raise ConfigError(
            f'test "{test.name}": {name} is a source table, not a model; unit tests run a model\'s SQL',
            location=test.model_location,
        )
    raise ConfigError(
        f'test "{test.name}": no model "{test.model}"',
        location=test.model_location,
        hint=did_you_mean(name, project.models)
        or "a model is named <schema>.<name> after its file: models/marts/fct_sales.sql is marts.fct_sales",
    )


def select_tests(
    project: Project, names: Sequence[str] = (), models: Collection[str] | None = None
) -> list[UnitTestSpec]:
    """Tests by name and by the model they test (``models``: selected asset names; None: all)."""
    known = {t.name: t for t in project.unit_tests}
    for name in names:
        if name not in known:
            raise SelectionError(
                f'no unit test named "{name}"',
                hint=did_you_mean(name, known)
                or ("the project has no unit tests yet" if not known else "run `gristmill test` for all"),
            )
    chosen = [t for t in project.unit_tests if not names or t.name in names]
    resolved = {t.name: model_of(project, t).asset for t in chosen}
    return [t for t in chosen if models is None or resolved[t.name] in models]


# --- running --------------------------------------------------------------------------------------


def run_unit_tests(project: Project, tests: Iterable[UnitTestSpec]) -> UnitTestRun:
    """Run each test in its own scratch engine. A test the project declares wrongly (unknown
    model, a read asset with no rows) raises ConfigError before any test runs; rows or SQL that
    fail while running make that test an ``error`` and the others still run."""
    started = time.perf_counter()
    prepared = [_prepare(project, test) for test in tests]
    run = UnitTestRun()
    kind = project.settings.engine.kind
    for item in prepared:
        run.results.append(item if isinstance(item, UnitTestResult) else _run(item, kind))
    run.seconds = time.perf_counter() - started
    return run


def _prepare(project: Project, test: UnitTestSpec) -> _Prepared | UnitTestResult:
    model = model_of(project, test)
    if model.error is not None:  # a dbt model that does not compile: the other tests still run
        return UnitTestResult(
            test.name, model.asset, "error", test.location, test.description, message=str(model.error)
        )
    test = _with_input_types(project, test)
    if model.language == "python":
        return UnitTestResult(
            test.name,
            model.asset,
            "skipped",
            test.location,
            test.description,
            message="Python models cannot be unit tested yet; test the SQL models that read them",
        )
    own = test.fixture(model.asset) is not None
    incremental = test.incremental if test.incremental is not None else own and bool(model.incremental_sql)
    if incremental and not model.incremental_sql and model.kind != "incremental":
        raise ConfigError(
            f'test "{test.name}": incremental: true, but {model.asset} is a {model.kind} model, '
            "built in full every run",
            location=test.location,
        )
    rendering: Literal["full", "incremental"] = (
        "incremental" if incremental and model.incremental_sql else "full"
    )
    sql = model.incremental_sql if rendering == "incremental" and model.incremental_sql else model.sql
    parsed = _parse(model, test.sql if test.sql is not None else sql)
    reads = list(dict.fromkeys(ref.asset for ref in parsed.reads))
    given = [f.asset for f in test.given]
    missing = [asset for asset in reads if asset not in given]
    if missing:
        unused = [asset for asset in given if asset not in reads]
        own_note = (
            f" ({model.asset} is the model itself: give the rows it holds before this incremental run)"
            if model.asset in missing
            else ""
        )
        raise ConfigError(
            f'test "{test.name}" gives no rows for {", ".join(missing)}, which {model.asset} reads{own_note}',
            location=test.location,
            hint=did_you_mean(missing[0], unused)
            or "add each under given: with rows: [...] (rows: [] and types: {...} for an empty table)",
        )
    warnings = []
    for fixture in test.given:
        if fixture.asset in reads:
            continue
        if fixture.asset == model.asset:
            why = (
                "the full rendering does not read it (incremental: true tests the incremental one)"
                if model.incremental_sql
                else "the model reads the same on every run, so its own rows are not used"
            )
            warnings.append(f"{fixture.data.location}: given {fixture.asset}: {why}")
        else:
            warnings.append(
                f"{fixture.data.location}: given {fixture.asset}: {model.asset} does not read it; "
                "these rows are not used"
            )
    query = parsed.expression if test.now is None else _pin_time(parsed.expression, test.now)
    return _Prepared(test, model, query, rendering, tuple(warnings))


def _with_input_types(project: Project, test: UnitTestSpec) -> UnitTestSpec:
    """A dbt project's inputs as dbt builds them: every column of the input (NULL where the test
    gives none), each value cast to the column's type. Rows and CSV are widened; a SQL query's
    rows are used as given (dbt asks a ``sql`` fixture for every column)."""
    if project.input_types is None:
        return test
    given = []
    for fixture in test.given:
        data = fixture.data
        widens = data.format in ("rows", "csv") or (data.format == "file" and data.text.endswith(".csv"))
        types = project.input_types(fixture.asset) if widens else None
        if types:
            widened = {**types, **fixture.data.types}
            fixture = replace(fixture, data=replace(fixture.data, types=widened, fill_missing=True))
        given.append(fixture)
    return replace(test, given=tuple(given))


def _parse(model: ModelSpec, sql: str) -> ParsedModel:
    """The model's query, read in its own dialect (it runs rendered as DuckDB SQL)."""
    try:
        return parse_model(
            sql,
            file=model.file,
            first_line=model.sql_line,
            dialect=model.dialect.lower(),
            passthrough=model.passthrough,
        )
    except ValueError:
        raise ConfigError(
            f'dialect "{model.dialect}" is not a SQL dialect Gristmill can read',
            location=model.file,
            hint="e.g. duckdb, postgres, snowflake, bigquery, spark, tsql",
        ) from None


_NOW_FUNCTIONS = {"now", "get_current_timestamp", "transaction_timestamp"}


def _pin_time(query: exp.Query, now: datetime) -> exp.Query:
    """The query with the current time, date and timestamp replaced by ``now`` (naive: UTC)."""
    utc = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)

    def cast(text: str, to: str) -> exp.Expr:
        return exp.cast(exp.Literal.string(text), exp.DataType.build(to, dialect=DIALECT))

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CurrentTimestamp) or (
            isinstance(node, exp.Anonymous) and node.name.lower() in _NOW_FUNCTIONS
        ):
            return cast(utc.isoformat(), "TIMESTAMPTZ")
        if isinstance(node, exp.Localtimestamp | exp.CurrentDatetime):
            return cast(utc.replace(tzinfo=None).isoformat(sep=" "), "TIMESTAMP")
        if isinstance(node, exp.CurrentDate) or (
            isinstance(node, exp.Anonymous) and node.name.lower() == "today"
        ):
            return cast(utc.date().isoformat(), "DATE")
        if isinstance(node, exp.CurrentTime | exp.Localtime):
            return cast(utc.time().isoformat(), "TIME")
        return node

    pinned = query.transform(swap, copy=True)
    assert isinstance(pinned, exp.Query)
    return pinned


@runtime_checkable
class _TestEngine(Engine, ArrowViews, Protocol):
    """What a unit test needs of its engine: the core and Arrow views."""


def _engine(kind: str) -> _TestEngine:
    """A scratch engine of the project's kind that takes Arrow; else the in-memory DuckDB one."""
    engine = scratch_engine(kind)
    if isinstance(engine, _TestEngine):
        return engine
    engine.close()
    fallback = fallback_engine()
    assert isinstance(fallback, _TestEngine)
    return fallback


def _run(item: _Prepared, kind: str) -> UnitTestResult:
    test, model = item.test, item.model
    started = time.perf_counter()

    def result(status: Status, message: str = "", **found: Any) -> UnitTestResult:
        return UnitTestResult(
            test.name,
            model.asset,
            status,
            test.location,
            test.description,
            message,
            item.rendering,
            warnings=item.warnings,
            seconds=time.perf_counter() - started,
            **found,
        )

    engine = _engine(kind)
    try:
        try:
            for fixture in test.given:
                _create_table(engine, fixture.asset, fixture.data)
        except _DataError as err:
            return result("error", f"{err.where}: {err}")
        try:
            returned_columns, returned = _python_rows(engine.query(item.query))
        except GristmillError as err:
            message = f"{model.file}: the model failed on the test's rows: {_first(err)}"
            return result("error", message + _missing_column_hint(err.message, item.query))
        try:
            columns, expected = _expected(engine, test.expect.data)
        except _DataError as err:
            return result("error", f"{err.where}: {err}")
    finally:
        engine.close()
    return _compare(test, columns, expected, returned_columns, returned, result)


_NO_COLUMN = re.compile(
    r'Table "([^"]+)" does not have a column named "([^"]+)"|Referenced column "([^"]+)" not found'
)


def _missing_column_hint(message: str, query: exp.Query) -> str:
    """A given table lacks a column the model reads: say which table to add it to."""
    found = _NO_COLUMN.search(message)
    if not found:
        return ""
    alias, column = (found.group(1), found.group(2)) if found.group(2) else (None, found.group(3))
    tables = {t.alias_or_name.lower(): asset_name(t) for t in query.find_all(exp.Table) if t.db}
    where = (
        f"the rows given for {tables[alias.lower()]}"
        if alias and alias.lower() in tables
        else "the given rows"
    )
    return f'\nhint: add "{column}" to {where} (null when its value does not matter to this test)'


def _first(err: GristmillError) -> str:
    """The engine's message without the quoted statement (it is the rendered SQL, not the file)."""
    return shorten(err.message.split("\n\nLINE ")[0].strip())


def _python_rows(table: pa.Table) -> tuple[list[str], list[Row]]:
    """A result's column names and rows as Python values: maps as dicts and intervals as
    timedeltas (months counted as 30 days), as the engine's own driver would give them."""
    import pyarrow as pa

    values = []
    for column in table.columns:
        if pa.types.is_interval(column.type):
            values.append([None if v is None else _timedelta(v) for v in column.to_pylist()])
        else:
            values.append(column.to_pylist(maps_as_pydicts="strict"))
    return list(table.column_names), list(zip(*values, strict=True)) if values else []


def _timedelta(value: Any) -> timedelta:
    return timedelta(days=value.months * 30 + value.days, microseconds=value.nanoseconds // 1000)


# --- fixtures -------------------------------------------------------------------------------------


def _create_table(engine: _TestEngine, asset: str, data: TableData) -> None:
    with _typed(engine, data, f"given {asset}") as query:
        try:
            engine.create_table_as(Relation.of(asset), query)
        except GristmillError as err:
            raise _data_error(err, data, f"given {asset}") from None


def _expected(engine: _TestEngine, data: TableData) -> tuple[list[str], list[Row]]:
    if data.format == "rows" and not data.types:
        columns = list(data.columns)
        return columns, [tuple(row.get(c) for c in columns) for row in data.rows]
    with _typed(engine, data, "expect") as query:
        try:
            return _python_rows(engine.query(query))
        except GristmillError as err:
            raise _data_error(err, data, "expect") from None


def _data_error(err: GristmillError, data: TableData, label: str) -> _DataError:
    where = data.types_location if data.types and "Conversion Error" in err.message else data.location
    return _DataError(f"{label}: {_first(err)}", where)


class _typed:
    """A SELECT over the data (registered as an Arrow view) with the declared types cast."""

    def __init__(self, engine: _TestEngine, data: TableData, label: str) -> None:
        self.engine, self.data, self.label = engine, data, label
        self.view = f"_gristmill_fixture_{next(_views)}"

    def __enter__(self) -> exp.Query:
        table = _arrow(self.engine, self.data, self.label)
        unknown = [c for c in self.data.types if c not in table.column_names]
        if unknown and self.data.fill_missing and table.column_names:
            view = self.engine.register(self.view, table)
            filled = [
                *(self._column(c) for c in table.column_names),
                *(exp.cast(exp.null(), self._type(self.data.types[c])).as_(c, quoted=True) for c in unknown),
            ]
            return exp.select(*filled).from_(view)
        if unknown:
            raise _DataError(
                f"{self.label}: types names {', '.join(unknown)}, which the rows do not have "
                f"(they have: {', '.join(table.column_names) or 'no columns'})",
                self.data.types_location,
            )
        if not table.column_names:
            raise _DataError(f"{self.label}: the rows have no columns", self.data.location)
        projection = [self._column(column) for column in table.column_names]
        return exp.select(*projection).from_(self.engine.register(self.view, table))

    def _column(self, column: str) -> exp.Expr:
        ref = exp.column(column, quoted=True)
        declared = self.data.types.get(column)
        return ref if declared is None else exp.cast(ref, self._type(declared)).as_(column, quoted=True)

    def _type(self, declared: str) -> exp.DataType:
        try:
            return exp.DataType.build(declared, dialect=DIALECT)
        except (sqlglot.ParseError, ValueError):
            raise _DataError(
                f'{self.label}: "{declared}" is not a DuckDB type (e.g. INTEGER, DECIMAL(10,2), DATE)',
                self.data.types_location,
            ) from None

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(GristmillError, KeyError, ValueError):  # never registered
            self.engine.unregister(self.view)


def _arrow(engine: _TestEngine, data: TableData, label: str) -> pa.Table:
    """The data as an Arrow table: types inferred from the values, declared columns as text. A
    ``sql`` fixture runs on the test's engine; CSV text and files are read like a files source
    reads them (DuckDB's readers)."""
    if data.format == "rows":
        return _rows_table(data, label)
    try:
        if data.format == "sql":
            return engine.query(data.text)
        from gristmill.connectors.duckdb_reader import read_fixture

        return read_fixture(data.text, inline=data.format == "csv", text_columns=list(data.types))
    except GristmillError as err:
        raise _DataError(f"{label}: cannot read the {data.format}: {_first(err)}", data.location) from None


def _rows_table(data: TableData, label: str) -> pa.Table:
    import pyarrow as pa

    arrays: dict[str, pa.Array] = {}
    for column in data.columns:
        values = [row.get(column) for row in data.rows]
        if column in data.types and not any(isinstance(v, dict | list) for v in values):
            arrays[column] = pa.array([None if v is None else _text(v) for v in values], pa.string())
            continue
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            yaml_bool = " (YAML reads an unquoted yes, no, on, off as true/false)" if "bool" in kinds else ""
            raise _DataError(
                f'{label}: column "{column}" mixes values of different kinds ({", ".join(kinds)}); '
                f"quote them all, or give the column a type under types:{yaml_bool}",
                data.location,
            ) from None
    return pa.table(arrays)


def _text(value: Any) -> str:
    """A YAML value as the text DuckDB casts to a declared type (exactly: 10.50 stays 10.50)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | clock):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


# --- comparing ------------------------------------------------------------------------------------


def _compare(
    test: UnitTestSpec,
    expected_columns: list[str],
    expected: list[Row],
    returned_columns: list[str],
    returned: list[Row],
    result: Any,
) -> UnitTestResult:
    counts = {"expected_rows": len(expected), "returned_rows": len(returned)}
    position: dict[str, int] = {}
    for index, column in enumerate(returned_columns):
        position.setdefault(column, index)
        position.setdefault(column.lower(), index)
    if not expected_columns and not expected:  # no rows expected: any row returned is shown whole
        expected_columns = returned_columns
    absent = [c for c in expected_columns if position.get(c, position.get(c.lower())) is None]
    if absent:
        hint = did_you_mean(absent[0], returned_columns)
        return result(
            "failed",
            f"the model returns no column {', '.join(repr(c) for c in absent)} "
            f"(it returns {', '.join(returned_columns)})" + (f"; {hint}" if hint else ""),
            columns=tuple(expected_columns),
            **counts,
        )
    picks = [position.get(c, position.get(c.lower(), 0)) for c in expected_columns]
    actual = [tuple(row[i] for i in picks) for row in returned]
    tolerance = test.expect.tolerance
    missing, unexpected = _multiset_diff(expected, actual, tolerance)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{_rows(len(missing))} expected but not returned")
        if unexpected:
            parts.append(f"{_rows(len(unexpected))} returned but not expected")
        return result(
            "failed",
            "; ".join(parts) + f" (expected {_rows(len(expected))}, the model returned {len(returned)})",
            columns=tuple(expected_columns),
            missing=tuple(missing),
            unexpected=tuple(unexpected),
            **counts,
        )
    if test.expect.ordered:
        misordered = tuple(
            (index, want, got)
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            if not _same_row(want, got, tolerance)
        )
        if misordered:
            return result(
                "failed",
                f"the rows match but in another order (first difference at row {misordered[0][0] + 1})",
                columns=tuple(expected_columns),
                misordered=misordered,
                **counts,
            )
    return result("passed", columns=tuple(expected_columns), **counts)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _multiset_diff(
    expected: list[Row], actual: list[Row], tolerance: float | None
) -> tuple[list[Row], list[Row]]:
    """Expected rows not returned and returned rows not expected, each copy counted."""
    left = set(range(len(actual)))
    by_value: dict[Row, list[int]] = {}
    for index, row in enumerate(actual):
        with contextlib.suppress(TypeError):  # a list or struct value: matched below
            by_value.setdefault(row, []).append(index)
    pending: list[Row] = []
    for row in expected:
        try:
            hits = by_value.get(row)
        except TypeError:
            hits = None
        if hits:
            left.discard(hits.pop(0))
        else:
            pending.append(row)
    missing: list[Row] = []
    for row in pending:
        match = next((i for i in sorted(left) if _same_row(row, actual[i], tolerance)), None)
        if match is None:
            missing.append(row)
        else:
            left.discard(match)
    return missing, [actual[i] for i in sorted(left)]


def _same_row(expected: Row, actual: Row, tolerance: float | None) -> bool:
    return all(_same(e, a, tolerance) for e, a in zip(expected, actual, strict=True))


def _same(expected: Any, actual: Any, tolerance: float | None) -> bool:
    """Equal as a reader of the test means it: 10.5 is DECIMAL 10.50, "2024-01-31" is that DATE."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        want = _as_bool(expected)
        return want is not None and want == _as_bool(actual)
    if isinstance(actual, int | float | Decimal):
        number = _as_number(expected)
        return number is not None and _same_number(number, actual, tolerance)
    if isinstance(actual, datetime):
        instant = _as_datetime(expected)
        return instant is not None and _utc(instant) == _utc(actual)
    if isinstance(actual, date):
        day = _as_date(expected)
        return day is not None and day == actual
    if isinstance(actual, clock):
        return _as_time(expected) == actual
    if isinstance(actual, list | tuple):
        return (
            isinstance(expected, list | tuple)
            and len(expected) == len(actual)
            and all(_same(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(actual, dict):
        return (
            isinstance(expected, dict)
            and {str(k) for k in expected} == {str(k) for k in actual}
            and all(_same(expected.get(k, expected.get(str(k))), v, tolerance) for k, v in actual.items())
        )
    if isinstance(actual, str):
        return (expected if isinstance(expected, str) else _text(expected)) == actual
    return bool(expected == actual) or str(expected) == str(actual)


def _same_number(
    expected: int | float | Decimal, actual: int | float | Decimal, tolerance: float | None
) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        want, got = float(expected), float(actual)
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return math.isclose(want, got, rel_tol=REL_TOLERANCE, abs_tol=tolerance or 0.0)
    if tolerance:
        return abs(Decimal(expected) - Decimal(actual)) <= Decimal(str(tolerance))
    return Decimal(expected) == Decimal(actual)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "t", "f"):
        return value.strip().lower() in ("true", "t")
    return None


def _as_number(value: Any) -> int | float | Decimal | None:
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, clock())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date() if value.time() == clock() and value.tzinfo is None else None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_time(value: Any) -> clock | None:
    if isinstance(value, clock):
        return value
    if isinstance(value, int) and 0 <= value < 86_400:  # YAML reads an unquoted 12:30:00 as seconds
        return (datetime.min + timedelta(seconds=value)).time()
    if isinstance(value, str):
        try:
            return clock.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _utc(value: datetime) -> datetime:
    """Naive times in a test are UTC, the session time zone of every test."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
