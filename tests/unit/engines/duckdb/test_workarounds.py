"""Workarounds for DuckDB defects, each with a test that fails once the engine is fixed (then the
workaround goes): see ENGINE_WORKAROUNDS in gristmill/engines/duckdb/lake.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from gristmill._util.duckdb_extensions import connect
from gristmill.engines.duckdb.lake import ENGINE_WORKAROUNDS
from tests.conftest import Cli

# Ids spread wide (as hashed row ids are), so the join filters with a bloom filter, not a min/max
# range; HUGEINT is stored in Parquet as DOUBLE, so the scan maps the filter onto another type.
PARENT = (
    "select (range * 1000000007)::hugeint as id, ['eu', 'us', 'apac'][range % 3 + 1] as region"
    " from range(20000)"
)
CHILD = (
    "select (range * 1000000007 + 1)::hugeint as child_id, ((range // 2) * 1000000007)::hugeint as parent_id"
    " from range(40000)"
)
JOIN = "select count(*) as n from {parent} p join {child} c on c.parent_id = p.id where p.region = 'eu'"
EXPECTED = 13334  # parents 0, 3, 6 … below 20,000, two children each


def _lake(tmp_path: Path, config: dict[str, str | int | bool]) -> duckdb.DuckDBPyConnection:
    con = connect(extensions=("ducklake", "sqlite"), config=config)
    data = tmp_path / "data"
    con.execute(f"ATTACH 'ducklake:sqlite:{tmp_path / 'catalog.sqlite'}' AS lake (DATA_PATH '{data}')")
    con.execute("USE lake")
    return con


def test_duckdb_still_fails_a_bloom_filter_join_on_the_lake_without_the_workaround(tmp_path: Path) -> None:
    """When this fails, DuckDB handles the join: remove "disabled_optimizers" from ENGINE_WORKAROUNDS."""
    con = _lake(tmp_path, {})
    con.execute(f"create table parent as {PARENT}")
    con.execute(f"create table child as {CHILD}")
    with pytest.raises(duckdb.NotImplementedException, match="BLOOM_FILTER"):
        con.execute(JOIN.format(parent="parent", child="child")).fetchall()
    con.close()
    fixed = _lake(tmp_path, dict(ENGINE_WORKAROUNDS))
    assert fixed.execute(JOIN.format(parent="parent", child="child")).fetchall() == [(EXPECTED,)]
    fixed.close()


def test_query_joins_parent_and_child_tables_with_a_filter(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project({"models/marts/parent.sql": PARENT + "\n", "models/marts/child.sql": CHILD + "\n"})
    code, out = cli("run", project=root)
    assert code == 0, out
    code, out = cli("query", JOIN.format(parent="marts.parent", child="marts.child"), project=root)
    assert code == 0, out
    assert f"{EXPECTED}" in out, out
