"""Golden SQL: a generated statement rendered for every dialect, compared with a file on disk.

``assert_golden("models/table_merge", statement)`` renders ``statement`` with ``sql.render`` for
each dialect in ``DIALECTS`` and compares it with ``tests/fixtures/sql/models/table_merge.<dialect>.sql``.
Outputs for engines other than DuckDB must also parse with sqlglot's parser for that dialect, so
a fixture can never hold text the engine's own grammar rejects. Set ``GRISTMILL_UPDATE_GOLDEN=1``
to (re)write the files, then read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlglot
from sqlglot import exp

from gristmill.sql.render import render

DIALECTS = ("duckdb", "postgres", "spark")
FIXTURES = Path(__file__).parent / "fixtures" / "sql"


def assert_golden(name: str, statement: exp.Expr) -> None:
    for dialect in DIALECTS:
        assert_golden_text(name, dialect, render(statement, dialect))


def assert_golden_text(name: str, dialect: str, text: str) -> None:
    """SQL text already rendered for ``dialect`` (``gristmill compile``'s output), compared with
    ``tests/fixtures/sql/<name>.<dialect>.sql`` the same way."""
    if dialect != "duckdb":
        sqlglot.parse_one(text, read=dialect)  # raises ParseError on text the dialect rejects
    path = FIXTURES / f"{name}.{dialect}.sql"
    pretty = sqlglot.transpile(text, read=dialect, write=dialect, pretty=True)[0] + "\n"
    if os.environ.get("GRISTMILL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pretty)
        return
    assert path.exists(), f"no golden file {path}; run with GRISTMILL_UPDATE_GOLDEN=1 to create it"
    assert pretty == path.read_text(), f"{name} for {dialect} differs from {path}"
