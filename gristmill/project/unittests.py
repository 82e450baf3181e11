"""Unit tests of models, declared in ``tests/*.yml``: fixture rows in, expected rows out.

    fct_revenue_counts_refunds:            # the test's name
      model: marts.fct_revenue             # the model under test
      description: refunds count as negative revenue
      given:                               # every asset the model reads
        staging.invoice:
          rows: [{invoice_id: 1, customer_id: 7, total: 10.5}]
          types: {total: DECIMAL(10,2)}
        staging.customer:
          csv: |
            customer_id,country
            7,Norway
      expect:
        rows: [{customer_id: 7, revenue: 10.5}]

Only the shape is checked here (keys, types, files); which model a test names and whether it
gives every asset the model reads is checked when the tests run, against the parsed SQL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.validation import validated

TESTS_FOLDER = "tests"
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".json": "json",
    ".ndjson": "json",
    ".jsonl": "json",
}
_TEST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_ASSET = re.compile(r"^[^.\s]+\.[^.\s]+$")

DataFormat = Literal["rows", "csv", "sql", "file"]
_FORMATS: tuple[DataFormat, ...] = ("rows", "csv", "sql", "file")


@dataclass(frozen=True)
class TableData:
    """Rows written in a test file: inline rows, CSV text, a DuckDB query or a file."""

    format: DataFormat
    rows: tuple[dict[str, Any], ...] = ()
    """``rows``: one mapping per row; a column missing from a row is NULL there."""
    text: str = ""
    """``csv``: the CSV text (with a header line); ``sql``: the query; ``file``: the path,
    relative to the project folder."""
    types: dict[str, str] = field(default_factory=dict)
    """Column -> DuckDB type, for columns whose type should not be inferred from the values.
    With ``rows`` a typed column may be missing from every row (NULL in each)."""
    location: str = ""
    """``file:line`` where this data is declared."""
    types_location: str = ""
    fill_missing: bool = False
    """Typed columns the data does not have are NULL (a dbt unit test's input, which dbt builds
    with every column of the relation), instead of an error."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of inline rows, in first-seen order (empty for other formats)."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        if self.format == "rows":
            seen.update(dict.fromkeys(self.types))
        return tuple(seen)


@dataclass(frozen=True)
class Fixture:
    """The rows an asset holds during one test."""

    asset: str
    data: TableData


@dataclass(frozen=True)
class Expectation:
    data: TableData
    ordered: bool = False
    """Compare the order of the rows too (by default rows are compared as a multiset)."""
    tolerance: float | None = None
    """How far apart two numbers may be and still count as equal (default: exact for integers and
    decimals, a relative 1e-9 when either side is a float)."""


@dataclass(frozen=True)
class UnitTestSpec:
    name: str
    model: str
    """The model under test as written: ``schema.name`` or a unique short name."""
    given: tuple[Fixture, ...]
    expect: Expectation
    description: str | None = None
    now: datetime | None = None
    """The run's time as the model sees it: ``now()``, ``current_timestamp`` and ``current_date``
    return it. Naive times are UTC."""
    incremental: bool | None = None
    """Test the incremental rendering (``True``), the full one (``False``), or decide from whether
    ``given`` holds the model's own rows (``None``)."""
    file: str = ""
    line: int = 0
    model_line: int = 0
    sql: str | None = None
    """The model's SQL for this test when it differs from the model's own rendering (a dbt unit
    test's ``overrides`` of macros, vars or env vars render the model anew)."""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def model_location(self) -> str:
        return f"{self.file}:{self.model_line or self.line}"

    def fixture(self, asset: str) -> Fixture | None:
        return next((f for f in self.given if f.asset == asset), None)


# --- declarations ---------------------------------------------------------------------------------


class _DataDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    rows: list[Any] | None = None
    csv: str | None = None
    sql: str | None = None
    file: str | None = None
    types: dict[str, str] = {}


class _ExpectDecl(_DataDecl):
    ordered: bool = False
    tolerance: float | None = Field(default=None, ge=0)


class _TestDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    model: str
    description: str | None = None
    given: dict[str, Any] = {}
    expect: Any = None
    now: datetime | date | str | None = None
    incremental: bool | None = None


def load_unit_tests(root: Path) -> tuple[UnitTestSpec, ...]:
    """Every test in ``tests/**/*.yml``, in file order; a name may be used once per project."""
    tests: dict[str, UnitTestSpec] = {}
    for path in sorted((root / TESTS_FOLDER).rglob("*.y*ml")):
        if path.suffix not in (".yml", ".yaml"):
            continue
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                "a tests file maps each test's name to its model, given rows and expected rows, e.g. "
                "'fct_sales_sums_lines: {model: marts.fct_sales, given: {…}, expect: {rows: […]}}'",
                location=file,
            )
        key_lines = getattr(data, "key_lines", {})
        for name, body in data.items():
            line = int(key_lines.get(name, 1))
            test = _load_test(str(name), body, root, file, line)
            if test.name in tests:
                raise ConfigError(
                    f'two unit tests are both named "{test.name}" (the other is at '
                    f"{tests[test.name].location})",
                    location=test.location,
                    hint="rename one of them",
                )
            tests[test.name] = test
    return tuple(tests.values())


def _load_test(name: str, body: Any, root: Path, file: str, line: int) -> UnitTestSpec:
    where = f"{file}:{line}"
    if not _TEST_NAME.match(name):
        raise ConfigError(f'test name "{name}" may hold only letters, digits, _ and -', location=where)
    if not isinstance(body, dict):
        raise ConfigError(f'test "{name}" must be a mapping with model, given and expect', location=where)
    line_of = partial(yamlfile.line_of, body)
    decl = validated(_TestDecl, body, file=file, line_of=lambda loc: line_of(loc) or line, context=name)
    key_lines: Mapping[str, int] = getattr(body, "key_lines", {})
    at = lambda key: f"{file}:{key_lines.get(key, line)}"  # noqa: E731
    given = []
    raw_given = body.get("given") or {}
    given_lines = getattr(raw_given, "key_lines", {})
    for asset, entry in raw_given.items():
        asset_where = f"{file}:{given_lines.get(asset, key_lines.get('given', line))}"
        asset_name = str(asset).lower()
        if not _ASSET.match(asset_name):
            raise ConfigError(
                f'given: "{asset}" is not an asset name; write <schema>.<name>, e.g. staging.customer',
                location=asset_where,
            )
        data, _ = _table_data(
            entry, _DataDecl, root, file, asset_where, f"{name}.given.{asset}", needs_columns=True
        )
        given.append(Fixture(asset_name, data))
    if "expect" not in body or body["expect"] is None:
        raise ConfigError(
            f'test "{name}" has no expect: the rows the model should return',
            location=where,
            hint="write expect: {rows: [...]}; rows: [] expects no rows",
        )
    expect_decl = body["expect"]
    expected, options = _table_data(expect_decl, _ExpectDecl, root, file, at("expect"), f"{name}.expect")
    assert isinstance(options, _ExpectDecl)
    return UnitTestSpec(
        name=name,
        model=decl.model.strip(),
        given=tuple(given),
        expect=Expectation(expected, ordered=options.ordered, tolerance=options.tolerance),
        description=decl.description,
        now=_run_time(decl.now, at("now")),
        incremental=decl.incremental,
        file=file,
        line=line,
        model_line=int(key_lines.get("model", line)),
    )


def table_data(entry: Any, root: Path, file: str, where: str, context: str, *, given: bool) -> TableData:
    """One block of rows written as in a tests file (``rows``, ``csv``, ``sql`` or ``file``)."""
    decl = _DataDecl if given else _ExpectDecl
    return _table_data(entry, decl, root, file, where, context, needs_columns=given)[0]


def _table_data(
    entry: Any,
    model: type[_DataDecl],
    root: Path,
    file: str,
    where: str,
    context: str,
    *,
    needs_columns: bool = False,
) -> tuple[TableData, _DataDecl]:
    """Validate one block of rows (a bare list is short for ``rows:``); also returns the declaration."""
    if isinstance(entry, list):
        rows_list = yamlfile.LineList(entry)
        rows_list.line = getattr(entry, "line", 0)
        rows_list.item_lines = getattr(entry, "item_lines", [])
        entry = yamlfile.LineDict(rows=rows_list)
        entry.line = rows_list.line
        entry.key_lines = {"rows": rows_list.line}
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{context}: give rows (a list of mappings) or one of rows:, csv:, sql:, file:", location=where
        )
    line = int(where.rsplit(":", 1)[1])
    if isinstance(entry.get("types"), dict):
        entry = _with_types(entry, _rejoined(entry["types"]))
    decl = validated(
        model,
        entry,
        file=file,
        line_of=lambda loc: yamlfile.line_of(entry, loc) or line,
        context=context,
    )
    key_lines: Mapping[str, int] = getattr(entry, "key_lines", {})
    given = [k for k in _FORMATS if getattr(decl, k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"{context}: give the rows one way: rows, csv, sql or file"
            + (f" (found {', '.join(given)})" if given else ""),
            location=where,
        )
    how = given[0]
    here = f"{file}:{key_lines.get(how, line)}"
    types_where = f"{file}:{key_lines.get('types', line)}"
    types = {str(k): str(v) for k, v in decl.types.items()}
    if how == "rows":
        raw = entry["rows"]
        item_lines = getattr(raw, "item_lines", [])
        rows = []
        for index, row in enumerate(raw):
            row_where = (
                f"{file}:{item_lines[index] if index < len(item_lines) else key_lines.get('rows', line)}"
            )
            if not isinstance(row, dict):
                raise ConfigError(
                    f"{context}.rows: each row is a mapping of column to value, e.g. {{id: 1, name: Ann}}; "
                    f"got {row!r}",
                    location=row_where,
                )
            for column in row:
                if not isinstance(column, str):
                    raise ConfigError(
                        f'{context}.rows: column name {column!r} must be text (quote it: "{column}")',
                        location=row_where,
                    )
            rows.append(_plain(row))
        if needs_columns and not rows and not types:
            raise ConfigError(
                f"{context}: an empty table needs its columns: give types, e.g. "
                "{rows: [], types: {id: INTEGER, name: VARCHAR}}",
                location=here,
            )
        return TableData("rows", tuple(rows), "", types, here, types_where), decl
    text = str(getattr(decl, how))
    if how == "file":
        path = (root / text).resolve()
        if Path(text).suffix.lower() not in FILE_FORMATS:
            raise ConfigError(
                f'{context}.file: cannot tell the format of "{text}"',
                location=here,
                hint="use a .csv, .tsv, .parquet, .json or .ndjson file",
            )
        if not path.is_file():
            raise ConfigError(f'{context}.file: no file "{text}" in the project folder', location=here)
        text = path.as_posix()
    elif not text.strip():
        raise ConfigError(f"{context}.{how} is empty", location=here)
    return TableData(how, (), text, types, here, types_where), decl


def _rejoined(types: dict[Any, Any]) -> dict[Any, Any]:
    """Undo YAML's split of a flow mapping at the comma inside a type: ``{total: DECIMAL(10,2)}``
    reads as ``{total: "DECIMAL(10", "2)": null}``; join the pieces back into ``DECIMAL(10,2)``."""
    joined: dict[Any, Any] = {}
    open_key: Any = None
    for key, value in types.items():
        if open_key is not None and value is None:
            joined[open_key] += f",{key}"
        else:
            joined[key] = value
            open_key = None
        text = joined[open_key if open_key is not None else key]
        if isinstance(text, str) and text.count("(") > text.count(")"):
            open_key = open_key if open_key is not None else key
        else:
            open_key = None
    return joined


def _with_types(entry: Any, types: dict[Any, Any]) -> Any:
    """A copy of a line-numbered mapping with its ``types`` replaced."""
    copy = yamlfile.LineDict(entry)
    copy["types"] = types
    copy.line = getattr(entry, "line", 0)
    copy.key_lines = dict(getattr(entry, "key_lines", {}))
    return copy


def _plain(value: Any) -> Any:
    """YAML's line-numbered containers as plain dicts and lists (for Arrow and for display)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _run_time(value: datetime | date | str | None, where: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f'now: "{value}" is not a date or time', location=where, hint="write e.g. 2024-03-01 12:00:00"
        ) from None
