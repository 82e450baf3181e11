"""Running one prepared unit test on a scratch engine of the project's kind (else DuckDB in memory)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from gristmill.errors import GristmillError
from gristmill.project.definition import Project
from gristmill.project.unittests import UnitTestSpec
from gristmill.runtime.unittests.compare import compare
from gristmill.runtime.unittests.data import DataError, create_table, expected_rows, python_rows
from gristmill.runtime.unittests.engine import first, test_engine
from gristmill.runtime.unittests.prepare import prepare
from gristmill.runtime.unittests.results import Prepared, Status, UnitTestResult, UnitTestRun
from gristmill.sql.parse import asset_name

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


def run_prepared(item: Prepared, kind: str) -> UnitTestResult:
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

    engine = test_engine(kind)
    try:
        try:
            for fixture in test.given:
                create_table(engine, fixture.asset, fixture.data)
        except DataError as err:
            return result("error", f"{err.where}: {err}")
        try:
            returned_columns, returned = python_rows(engine.query(item.query))
        except GristmillError as err:
            message = f"{model.file}: the model failed on the test's rows: {first(err)}"
            return result("error", message + _missing_column_hint(err.message, item.query))
        try:
            columns, expected = expected_rows(engine, test.expect.data)
        except DataError as err:
            return result("error", f"{err.where}: {err}")
    finally:
        engine.close()
    return compare(test, columns, expected, returned_columns, returned, result)


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


def run_unit_tests(project: Project, tests: Iterable[UnitTestSpec]) -> UnitTestRun:
    """Run each test in its own scratch engine. A test the project declares wrongly (unknown
    model, a read asset with no rows) raises ConfigError before any test runs; rows or SQL that
    fail while running make that test an ``error`` and the others still run."""
    started = time.perf_counter()
    prepared = [prepare(project, test) for test in tests]
    run = UnitTestRun()
    kind = project.settings.engine.kind
    for item in prepared:
        run.results.append(item if isinstance(item, UnitTestResult) else run_prepared(item, kind))
    run.seconds = time.perf_counter() - started
    return run
