"""The jaffle_shop dbt project, unchanged, through ``gristmill run``: every seed and model table and
every test result must equal what dbt-duckdb produced (recorded by dbt_expected/make_expected.py).

Values are compared exactly, with dates as ISO strings and floating-point numbers rounded to 9
decimals; each column must also have the same kind of type (integer, float, decimal, text, date…),
so that a date landing as text could not pass for one."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.e2e.dbt_expected.make_expected import SCENARIOS

PROJECT = Path(__file__).parent / "data" / "jaffle_shop_dbt"
EXPECTED = Path(__file__).parent / "dbt_expected"
_FAMILIES = {
    "integer": re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT)$"),
    "float": re.compile(r"^(FLOAT|REAL|DOUBLE)$"),
    "decimal": re.compile(r"^DECIMAL"),
    "text": re.compile(r"^VARCHAR"),
    "date": re.compile(r"^DATE$"),
    "timestamp": re.compile(r"^TIMESTAMP"),
    "boolean": re.compile(r"^BOOLEAN$"),
}


def family(duckdb_type: str) -> str:
    return next((name for name, pattern in _FAMILIES.items() if pattern.match(duckdb_type)), duckdb_type)


def comparable(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "float":
        return round(float(value), 9)
    if kind == "decimal":
        return Decimal(str(value))
    return value


def rows_of(rows: list[list[Any]], kinds: list[str]) -> list[list[Any]]:
    converted = [[comparable(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows]
    return sorted(converted, key=lambda row: json.dumps(row, default=str))


def build(scenario: str, folder: Path, cli: Cli) -> Path:
    project = folder / "jaffle_shop"
    shutil.copytree(PROJECT, project)
    change = SCENARIOS[scenario]
    if change is not None:
        change(project)
    code, out = cli("run", project=project)
    assert code == 0, out
    return project


def query(cli: Cli, project: Path, sql: str) -> list[dict[str, Any]]:
    code, out = cli("query", sql, "--format", "json", project=project)
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def assert_tables_match(scenario: str, project: Path, cli: Cli) -> None:
    tables = sorted((EXPECTED / scenario / "tables").glob("*.json"))
    assert len(tables) == 8
    types: dict[str, list[list[str]]] = {}
    for column in query(
        cli,
        project,
        "select schema_name || '.' || table_name as name, column_name, data_type from duckdb_columns()"
        " where schema_name = 'main' order by name, column_index",
    ):
        types.setdefault(column["name"], []).append([column["column_name"], family(column["data_type"])])
    for path in tables:
        name = path.name.removesuffix(".json")
        expected = json.loads(path.read_text())
        assert types[name] == [[c, family(t)] for c, t in expected["columns"]], name
        kinds = [kind for _, kind in types[name]]
        actual = [list(row.values()) for row in query(cli, project, f"select * from {name}")]
        assert len(actual) == len(expected["rows"]), name
        assert rows_of(actual, kinds) == rows_of(expected["rows"], kinds), name


def _check_name(test: dict[str, Any]) -> tuple[str, str]:
    """The asset and check name Gristmill gives the check a dbt test maps to."""
    kwargs = test["kwargs"]
    column = kwargs["column_name"]
    if test["test"] == "relationships":
        parent = re.fullmatch(r"ref\('(\w+)'\)", kwargs["to"])
        assert parent is not None
        return test["relation"], f"relationships({column} -> main.{parent.group(1)}.{kwargs['field']})"
    return test["relation"], f"{test['test']}({column})"


def assert_checks_match(scenario: str, project: Path) -> None:
    expected = json.loads((EXPECTED / scenario / "tests.json").read_text())
    with sqlite3.connect(project / ".gristmill" / "state.sqlite") as db:
        rows = db.execute(
            "select asset, check_name, severity, status, failures from check_results"
        ).fetchall()
    results = {
        (asset, name): (severity, status, failures) for asset, name, severity, status, failures in rows
    }
    assert len(results) == len(rows) == len(expected)
    for test in expected:
        severity, status, failures = results[_check_name(test)]
        # dbt says warn for a failing test of severity warn; Gristmill records a failure and its severity
        assert {"pass": "pass", "warn": "fail", "fail": "fail"}[test["status"]] == status, test["name"]
        assert severity == ("warn" if scenario == "jaffle_shop_failing" else "error")
        # dbt counts failing groups and Gristmill failing rows: the same here, one bad row each
        assert failures == test["failures"], test["name"]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_tables_and_test_results_match_dbt(scenario: str, tmp_path: Path, cli: Cli) -> None:
    project = build(scenario, tmp_path, cli)
    assert_tables_match(scenario, project, cli)
    assert_checks_match(scenario, project)


def test_a_second_run_changes_nothing(tmp_path: Path, cli: Cli) -> None:
    project = build("jaffle_shop", tmp_path, cli)
    code, out = cli("run", project=project)
    assert code == 0, out
    assert "0 built, 8 skipped" in out
