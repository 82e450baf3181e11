"""Choosing the unit tests to run and preparing each: the model's query, its fixture types and
pinned time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, SelectionError
from gristmill.project.definition import Project
from gristmill.project.dialect import PROJECT_DIALECT as DIALECT
from gristmill.project.specs import ModelSpec
from gristmill.project.unittests import UnitTestSpec
from gristmill.runtime.unittests.results import Prepared, UnitTestResult
from gristmill.sql import types as sql_types
from gristmill.sql.parse import ParsedModel, parse_model

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


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


def prepare(project: Project, test: UnitTestSpec) -> Prepared | UnitTestResult:
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
    return Prepared(test, model, query, rendering, tuple(warnings))


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
            declared = {column: sql_types.render(kind, DIALECT) for column, kind in types.items()}
            widened = {**declared, **fixture.data.types}
            fixture = replace(fixture, data=replace(fixture.data, types=widened, fill_missing=True))
        given.append(fixture)
    return replace(test, given=tuple(given))


def _parse(model: ModelSpec, sql: str) -> ParsedModel:
    """The model's query, read in its own dialect (it runs rendered for the test engine's)."""
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
