"""The reading facade on a real DuckLake: pinned snapshots, served names only, version keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlglot import exp

from gristmill.errors import ReadError
from gristmill.workspace import Workspace


def test_a_pin_reads_one_snapshot_and_refuses_what_is_not_served(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/answer.sql": "select 42 as answer\n"})
    workspace = Workspace(root)
    workspace.run()
    reader = workspace.reader()
    try:
        with reader.pin() as pinned:
            catalog = pinned.relations()
            assert [c.type for c in catalog["marts.answer"].columns] == ["INTEGER"]
            query = exp.select("answer").from_(exp.table_("answer", db="marts"))
            assert pinned.read(query).read_all().column("answer").to_pylist() == [42]
            assert pinned.version(query) == pinned.version(["marts.answer"])
            for forbidden in (
                exp.table_("versions", db="_gristmill"),
                exp.table_("answer", db="marts", catalog="x"),
            ):
                with pytest.raises(ReadError):
                    pinned.read(exp.select("*").from_(forbidden))
            first = pinned.snapshot
        with pytest.raises(ReadError, match="as_of"):
            reader.pin("not a time")
        with reader.pin(first) as again:
            assert again.snapshot == first
        with reader.pin(datetime.now(UTC).isoformat()) as now:
            assert now.snapshot == first
        with pytest.raises(ReadError, match="no snapshot at or before"):
            reader.pin("2000-01-01T00:00:00Z")
    finally:
        reader.close()
        workspace.close()


def test_storage_without_snapshots_reads_live_and_refuses_as_of(make_project: Callable[..., Path]) -> None:
    toml = 'name = "t"\n[storage]\nformat = "duckdb"\n'
    root = make_project({"models/marts/answer.sql": "select 42 as answer\n"}, toml=toml)
    workspace = Workspace(root)
    workspace.run()
    reader = workspace.reader()
    try:
        assert not reader.time_travel
        with reader.pin() as pinned:
            assert pinned.snapshot == "live"
            with reader.pin(pinned.snapshot) as again:  # what a cursor of a live page asks
                query = exp.select("answer").from_(exp.table_("answer", db="marts"))
                assert again.read(query).read_all().num_rows == 1
        with pytest.raises(ReadError, match="as_of needs snapshots"):
            reader.pin("1")
    finally:
        reader.close()
        workspace.close()


def _copies(pinned: object) -> list[str]:
    engine = pinned.engine  # type: ignore[attr-defined]
    rows = engine.query("SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory'")
    return sorted(rows.column("table_name").to_pylist())


@pytest.mark.parametrize("budget_mb", [0, 1])
def test_hot_tables_are_read_from_a_copy_in_memory_within_the_budget(
    make_project: Callable[..., Path], budget_mb: int
) -> None:
    """A served table small enough for ``[server] memory_copies_mb`` is copied into the
    snapshot engine's memory by its first read and read there after; the answers are the
    lake's, a new snapshot gets its own copy, and a budget of 0 never copies."""
    toml = f'name = "t"\n[server]\nmemory_copies_mb = {budget_mb}\n'
    root = make_project({"models/marts/n.sql": "select range as n from range(1000)\n"}, toml=toml)
    workspace = Workspace(root)
    workspace.run()
    query = exp.select("n").from_(exp.table_("n", db="marts")).order_by("n")
    reader = workspace.reader()
    with reader.pin() as pinned:
        assert pinned.read(query).read_all().column("n").to_pylist() == list(range(1000))
        assert _copies(pinned) == (["gm_copy__marts__n"] if budget_mb else [])
        assert pinned.read(query).read_all().num_rows == 1000
    reader.close()
    # A run in this same process while the reader holds its engines cannot commit (the catalog's
    # SQLite locks are per process); a server's runs are processes of their own.
    (root / "models/marts/n.sql").write_text("select range as n from range(7)\n")
    workspace.close()
    workspace = Workspace(root)  # the project as it is now
    workspace.run()
    reader = workspace.reader()
    with reader.pin() as newer:
        assert newer.read(query).read_all().column("n").to_pylist() == list(range(7))
        assert _copies(newer) == (["gm_copy__marts__n"] if budget_mb else [])
    reader.close()
    workspace.close()
