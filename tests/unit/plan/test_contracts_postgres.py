"""Schema contracts on types a real PostgreSQL describes: its own spelling (``integer``,
``text``, ``character varying``, ``jsonb``, ``integer[]``) compares as the same types do on
DuckDB, and changes are shown in PostgreSQL's words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from gristmill.config.settings import EngineSettings, ProjectSettings
from gristmill.engines.postgres.engine import PostgresEngine
from gristmill.engines.postgres.open import open_postgres
from gristmill.plan.contracts import compare
from tests.support.pg_engine import postgres_database, schema_prefix

pytestmark = pytest.mark.services


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[PostgresEngine]:
    with postgres_database("gristmill_contracts") as url:
        settings = EngineSettings(kind="postgres", url=url, schema_prefix=schema_prefix())
        opened = open_postgres(ProjectSettings(name="t", engine=settings), tmp_path)
        try:
            yield opened
        finally:
            opened.close()


def described(engine: PostgresEngine, sql: str) -> list[tuple[str, exp.DataType]]:
    query = sqlglot.parse_one(sql, dialect="postgres")
    assert isinstance(query, exp.Query)
    return engine.describe(query.subquery("q"))


def test_postgres_types_compare_without_false_drift(engine: PostgresEngine) -> None:
    held = described(
        engine,
        "select 1::integer as n, 'x'::text as s, 'y'::varchar as v, 1.5::numeric(18,3) as amount, "
        "now() as at, '{}'::jsonb as doc, array[1]::integer[] as ids, current_date as day",
    )
    assert [str(dtype.this) for _, dtype in held][:2] == ["DType.INT", "DType.TEXT"]
    same = described(
        engine,
        "select 2::integer as n, 'x'::varchar as s, 'y'::text as v, 2.5::numeric(18,3) as amount, "
        "now() as at, '[]'::jsonb as doc, array[2]::integer[] as ids, current_date as day",
    )
    assert compare(held, same, dialect=engine.dialect, nested=True) == []
    wider = described(
        engine,
        "select 2::bigint as n, 'x'::text as s, 'y'::text as v, 2.5::numeric(20,4) as amount, "
        "now() as at, '[]'::jsonb as doc, array[2]::bigint[] as ids, now() as day",
    )
    changes = compare(held, wider, dialect=engine.dialect, nested=True)
    assert [(c.kind, c.path) for c in changes] == [
        ("widened", "n"),
        ("widened", "amount"),
        ("widened", "ids[]"),
        ("widened", "day"),
    ]
    assert str(changes[0]) == 'column "n" widened integer -> bigint'
    assert str(changes[1]) == 'column "amount" widened numeric(18,3) -> numeric(20,4)'
