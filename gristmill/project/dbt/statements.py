"""dbt's ``statement`` / ``load_result`` / ``run_query`` while compiling.

Packages compute values with a query that reads no table (dbt_date's ``date_spine`` asks the
warehouse for ``datediff(start, end)`` to size its series). Such a query is answered by the
target's probe (``project/probe.py``: the project's engine kind, on private scratch state), so it
gives the value the warehouse would.
A query that reads a table is refused: Gristmill compiles before anything is built, and a
value taken from data would make the SQL change with the data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gristmill.errors import EngineError
from gristmill.project.dbt.jinja import DbtError
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.probe import CompileProbe

_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}
"""Table functions that compute rows instead of reading them."""


@dataclass(frozen=True)
class ResultColumn:
    name: str
    _values: tuple[Any, ...]

    def values(self) -> tuple[Any, ...]:
        return self._values


class ResultTable:
    """What dbt's ``run_query`` returns (an agate table): ``rows``, ``columns``, ``column_names``."""

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.column_names = tuple(names)
        self.rows = [ResultRow(names, row) for row in rows]
        self.columns = [ResultColumn(n, tuple(r[i] for r in rows)) for i, n in enumerate(names)]

    def __iter__(self) -> Iterator[ResultRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def print_table(self, *args: Any, **kwargs: Any) -> str:
        return ""


class ResultRow(tuple[Any, ...]):
    """A row read by position (``row[0]``) or by column name (``row['n']``)."""

    def __new__(cls, names: list[str], values: tuple[Any, ...]) -> ResultRow:
        row = super().__new__(cls, values)
        row._names = names  # type: ignore[attr-defined]
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))  # type: ignore[attr-defined]
        return tuple.__getitem__(self, key)


def _check_reads_nothing(sql: str, caller: str) -> None:
    try:
        trees = [t for t in sqlglot.parse(sql, read=PROJECT_DIALECT) if t is not None]
    except SqlglotError as err:
        raise DbtError(f"{caller}() got SQL that cannot be read: {err}") from None
    for tree in trees:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if isinstance(table.this, exp.Func):
                name = table.this.sql_name().lower() if not isinstance(table.this, exp.Anonymous) else ""
                name = name or str(table.this.name).lower()
                if name in _TABLE_FUNCTIONS or name.replace("_", "") in _TABLE_FUNCTIONS:
                    continue
            elif not table.db and table.name.lower() in ctes:
                continue
            raise DbtError(
                f"{caller}() reads {table.sql(dialect=PROJECT_DIALECT)} from the warehouse while compiling, "
                "which Gristmill does not do (only queries that read no table run while compiling)",
                hint="write the values into the model (or a var in dbt_project.yml) instead",
            )


def run_pure(sql: str, caller: str, probe: CompileProbe) -> ResultTable:
    """``sql`` answered by ``probe`` (private scratch state of the project's engine kind), if it
    reads no table."""
    _check_reads_nothing(sql, caller)
    try:
        names, rows = probe.run_constant(sql)
    except EngineError as err:
        raise DbtError(f"{caller}() failed while compiling: {err.message}") from None
    return ResultTable(names, rows)


class Statements:
    """``statement``, ``load_result`` and ``run_query`` for one rendering."""

    def __init__(self, executing: bool, probe: CompileProbe) -> None:
        self.executing = executing
        self.probe = probe
        self.results: dict[str, dict[str, Any]] = {}

    def statement(
        self,
        name: Any = None,
        fetch_result: bool = False,
        auto_begin: bool = True,
        language: str = "sql",
        caller: Callable[[], str] | None = None,
    ) -> str:
        sql = str(caller()) if caller is not None else ""
        if not self.executing or not sql.strip():
            return ""  # dbt runs statements only when executing
        table = run_pure(sql, "statement", self.probe)
        if name is not None:
            self.results[str(name)] = {
                "response": "OK",
                "data": [tuple(row) for row in table.rows] if fetch_result else [],
                "table": table if fetch_result else None,
            }
        return ""

    def load_result(self, name: Any) -> dict[str, Any] | None:
        return self.results.get(str(name))

    def run_query(self, sql: Any) -> ResultTable | None:
        if not self.executing:
            return None
        return run_pure(str(sql), "run_query", self.probe)
